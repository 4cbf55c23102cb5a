"""Demo data for redemption: the demo shop's catalogue (added once; running the seed again changes nothing)."""

from __future__ import annotations

from typing import Any

from ledger.access.policy import SYSTEM
from ledger.infra.books import Books
from ledger.redemption.catalogue import add_item, list_items

DEMO_ITEMS = (("过桥米线 Crossing-the-bridge noodles", 12), ("鲜花饼 Flower cake", 8),
              ("洗衣液 Laundry liquid 2L", 25), ("大米 Rice 5 kg", 45))


def seed_redemption(books: Books, district: Any) -> None:
    merchant_id = district.merchant_id
    if merchant_id and not list_items(books, merchant_id, by=SYSTEM):
        for name, price in DEMO_ITEMS:
            add_item(books, merchant_id, name, price, by=SYSTEM)
