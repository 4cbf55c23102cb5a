"""A merchant's catalogue: items with a price in beans, added, changed and withdrawn by the merchant's owner;
anyone signed in may read the active ones (the owner also sees withdrawn ones). A withdrawn item is kept for
the receipts that name it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.policy import Principal
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.redemption.common import merchant_row
from ledger.redemption.models import CatalogueItem

MAX_QTY = 1000
MAX_ITEMS = 50


def _item_view(item: CatalogueItem) -> dict[str, Any]:
    return {"id": item.id, "merchant_id": item.merchant_id, "name": item.name, "price": item.price,
            "active": item.active}


def _check_item_fields(name: Any, price: Any) -> None:
    if name is not None and (not isinstance(name, str) or not 1 <= len(name.strip()) <= 120):
        raise DomainError(errors.VALIDATION_FAILED, "an item's name is 1 to 120 characters")
    if price is not None and (type(price) is not int or not 1 <= price <= 10**9):
        raise DomainError(errors.INVALID_AMOUNT, "a price is a whole number of beans from 1")


def add_item(books: Books, merchant_id: int, name: str, price: int, *, by: Principal) -> dict[str, Any]:
    policy.require_owner_of(by, merchant_id)
    _check_item_fields(name, price)

    def work(s: Session) -> dict[str, Any]:
        merchant_row(s, merchant_id)
        item = CatalogueItem(merchant_id=merchant_id, name=name.strip(), price=price, active=True,
                             created_at=books.now())
        s.add(item)
        s.flush()
        return _item_view(item)

    return books.run(work)


def update_item(books: Books, merchant_id: int, item_id: int, *, by: Principal, name: str | None = None,
                price: int | None = None, active: bool | None = None) -> dict[str, Any]:
    policy.require_owner_of(by, merchant_id)
    _check_item_fields(name, price)

    def work(s: Session) -> dict[str, Any]:
        item = s.get(CatalogueItem, item_id, with_for_update=True)
        if item is None or item.merchant_id != merchant_id:
            raise DomainError(errors.NOT_FOUND_ERR, item_id=item_id)
        if name is not None:
            item.name = name.strip()
        if price is not None:
            item.price = price
        if active is not None:
            item.active = bool(active)
        return _item_view(item)

    return books.run(work)


def list_items(books: Books, merchant_id: int, *, by: Principal | None = None) -> list[dict[str, Any]]:
    """The active items; with withdrawn ones too when ``by`` is the merchant's owner."""
    include_inactive = by is not None and policy.is_owner_of(by, merchant_id)

    def work(s: Session) -> list[dict[str, Any]]:
        q = select(CatalogueItem).where(CatalogueItem.merchant_id == merchant_id)
        if not include_inactive:
            q = q.where(CatalogueItem.active.is_(True))
        return [_item_view(i) for i in s.scalars(q.order_by(CatalogueItem.id))]

    return books.run(work, readonly=True)


def priced_items(s: Session, merchant_id: int, items: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """The total and the priced lines of ``items`` (active items of this merchant only: ``unknown_item``)."""
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise DomainError(errors.VALIDATION_FAILED, f"items: 1 to {MAX_ITEMS} lines")
    wanted: dict[int, int] = {}
    for line in items:
        item_id, qty = line.get("item_id"), line.get("qty", 1)
        if type(item_id) is not int or type(qty) is not int or not 1 <= qty <= MAX_QTY:
            raise DomainError(errors.VALIDATION_FAILED, f"each line is an item_id and a qty from 1 to {MAX_QTY}")
        wanted[item_id] = wanted.get(item_id, 0) + qty
    found = {i.id: i for i in s.scalars(select(CatalogueItem).where(
        CatalogueItem.id.in_(wanted), CatalogueItem.merchant_id == merchant_id, CatalogueItem.active.is_(True)))}
    lines = []
    for item_id, qty in sorted(wanted.items()):
        item = found.get(item_id)
        if item is None:
            raise DomainError(errors.UNKNOWN_ITEM, item_id=item_id)
        lines.append({"item_id": item.id, "name": item.name, "price": item.price, "qty": qty})
    return sum(line["price"] * line["qty"] for line in lines), lines
