"""Helpers for the radar tests: the earning world (two streets, three communities, officers, volunteers,
budgets of 10,000 beans) and a few readings of the books."""

from __future__ import annotations

import datetime as dt

from ledger import radar
from ledger.access.identity import budget_account_id, wallet_account_id
from ledger.journal.accounts import account_by_code
from ledger.schema import Account
from tests.earning_world import World, build_world

__all__ = ["World", "build_world", "publish", "budget", "wallet", "bounty_pending"]


def publish(w: World, *, officer: str = "officerA", area: tuple[str, ...] = ("c1",), bounty: int = 0,
            kind: str = "寻人", days: float = 2, **kw):
    return radar.publish_notice(w.books, w.actor(officer), kind=kind, title="寻找走失老人", body="蓝色外套,约75岁",
                                area=[w.units[a] for a in area],
                                ends_at=w.books.now() + dt.timedelta(days=days), bounty=bounty, **kw)


def budget(w: World, community: str = "c1") -> tuple[int, int]:
    """(balance, on hold) of a community's budget."""
    with w.books.session(readonly=True) as s:
        acc = s.get(Account, budget_account_id(s, w.units[community]))
        return acc.balance, acc.debits_pending


def wallet(w: World, who: str) -> int:
    with w.books.session(readonly=True) as s:
        return s.get(Account, wallet_account_id(s, w.users[who])).balance


def bounty_pending(w: World, community: str = "c1") -> int:
    with w.books.session(readonly=True) as s:
        try:
            acc = account_by_code(s, f"reserves:org:{w.units[community]}")
        except Exception:
            return 0
        assert acc.balance == 0, "the reserve account only ever holds pending credits"
        return acc.credits_pending
