"""The demo district: the chart of accounts and a little history, so that a new user sees real books.

Running it twice changes nothing: every transfer has a fixed id, and accounts are opened only once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.access.identity import wallet_account_id
from ledger.infra.books import Books
from ledger.journal.accounts import make_checkpoint, open_account_in, post_in
from ledger.journal.posting import transfer
from ledger.schema import Account, Transfer

COMMUNITIES = ("金沙", "金星", "王旗营", "田园路")


def _account(s: Session, code: str, kind: str, name: str, owner_ref: str | None = None) -> int:
    existing = s.scalar(select(Account.id).where(Account.code == code))
    if existing is not None:
        return existing
    return open_account_in(s, code, kind, name=name, owner_ref=owner_ref).id


def seed_ledger(books: Books) -> dict[str, int]:
    """Open the district-wide accounts; returns their ids by code."""

    def work(s: Session) -> dict[str, int]:
        ids = {
            "donations": _account(s, "donations", "donations", "捐赠来源 Donations (outside world)"),
            "fund": _account(s, "fund", "fund", "金豆基金 Gold Bean Fund"),
            "payout": _account(s, "payout", "payout", "商家结算 Merchant payouts"),
            "expiry": _account(s, "expiry", "expiry", "过期金豆 Expired beans"),
            "adjustment": _account(s, "adjustment", "adjustment", "调整 Adjustments"),
        }
        return ids

    return books.run(work)


def seed_demo(books: Books) -> str:
    """Seed the demo district; on books that already have it, change nothing and say so."""
    from .seed_district import demo_users_text, seed_earning, seed_people

    with books.session(readonly=True) as s:
        if s.scalar(select(Transfer.id).where(Transfer.transfer_key == "demo:donation:1")) is not None:
            return f"demo district already there: nothing changed; {demo_users_text()}"
    ids = seed_ledger(books)
    district = seed_people(books)  # org tree, demo users, community budgets (owner_ref org:<id>), merchant

    def work(s: Session) -> str:
        for name in COMMUNITIES:
            ids[f"budget:{name}"] = _account(s, f"budget:{name}", "budget", f"{name}社区预算")
        ids["wallet:demo"] = wallet_account_id(s, district.users["volunteer"])
        ids["merchant:demo"] = district.merchant_account_id
        post_in(s, books, [transfer("demo:donation:1", "donate", ids["donations"], ids["fund"], 100_000,
                                    actor="demo", reason="金豆基金首笔捐赠")])
        post_in(s, books, [
            transfer(f"demo:allocate:{name}", "allocate", ids["fund"], ids[f"budget:{name}"], 10_000,
                     actor="demo", reason="社区预算下拨") for name in COMMUNITIES
        ])
        post_in(s, books, [transfer("demo:award:1", "award", ids["budget:金沙"], ids["wallet:demo"], 50,
                                    actor="demo", reason="巡逻两小时")])
        post_in(s, books, [transfer("demo:redeem:1", "redeem", ids["wallet:demo"], ids["merchant:demo"], 12,
                                    actor="demo", reason="兑换")])
        return "demo district seeded"

    summary = books.run(work)
    seed_earning(books, district)  # claims and awards through the real use cases
    from .seed_redemption import seed_redemption

    seed_redemption(books, district)  # the demo shop's catalogue
    from .seed_patrols import seed_patrols

    seed_patrols(books, district)  # posts around 金沙 and an evening patrol at each
    summary = f"{summary}; {demo_users_text()}"
    make_checkpoint(books)
    return summary
