"""One calendar: changing ``utc_offset_hours`` moves every "today" of the programme together (earning caps,
redemption limits, till takings, leaderboards, the dashboard's weeks).

The moments: A = 2027-01-31 15:30 UTC and B = an hour later. In Kunming (UTC+8) A is Sunday 31 January
23:30 and B is Monday 1 February 00:30: another day, week and month. At UTC+0 both are Sunday afternoon:
the same day, week and month. Before the one ``Calendar`` the earning caps, the leaderboards and the
dashboard kept to Beijing time whatever ``utc_offset_hours`` said.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ledger import earning, errors, redemption
from ledger.access.identity import wallet_of
from ledger.errors import DomainError
from ledger.redemption import TillContext, codes
from ledger.schema import Merchant, Transfer
from ledger.views import directory
from tests.earning_world import build_world
from tests.ledger.audit.test_statements import stamp

A = dt.datetime(2027, 1, 31, 15, 30, tzinfo=dt.timezone.utc)
B = A + dt.timedelta(hours=1)


def _last_transfer(books) -> int:
    with books.session(readonly=True) as s:
        return int(s.scalar(select(func.max(Transfer.id))) or 0)


def _world_with_activity_at_a(books, clock):
    w = build_world(books)
    books.settings = books.settings.with_overrides(
        {"earning": {"volunteer_daily_cap": 50}, "volunteer_daily_limit": 20})
    with books.session(readonly=True) as s:
        shop = s.scalar(select(Merchant.id).where(Merchant.code == "shop"))
    till = TillContext(shop, w.actor("cashier"))
    wallet = wallet_of(books, w.users["v1"])
    before = _last_transfer(books)
    clock.now = A
    earning.award_directly(books, w.actor("officerA2"), volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                           amount=50, reference="roster 1")
    redemption.redeem(books, till, code=codes.issue_wallet_code(books, wallet).code, amount=20,
                      idempotency_key="at-a")
    with books.session(readonly=True) as s:
        made = list(s.scalars(select(Transfer.id).where(Transfer.id > before)))
    stamp(books, made, A)  # the journal's own timestamps are the database's clock: put them at A too
    clock.now = B
    return w, shop, till, wallet


def _todays(books, w, shop) -> dict:
    board = earning.volunteer_leaderboard(books, w.actor("officerA"), org_unit_id=w.units["c1"])
    week = directory.dashboard(books, w.actor("admin"), weeks=2)["weeks"][-1]
    return {"takings": directory.takings_today(books, shop, by=w.actor("cashier"))["redeemed"],
            "board": (board["month"], sum(e["beans"] for e in board["entries"])),
            "week": (week["week"], week["award"], week["redeem"]),
            "today": books.calendar.today(books.now())}


def test_changing_the_offset_moves_every_today_together(books, clock):
    w, shop, till, wallet = _world_with_activity_at_a(books, clock)

    # UTC+8 (the default): B is another day, week and month than A
    assert _todays(books, w, shop) == {"takings": 0, "board": ("2027-02", 0),
                                       "week": (dt.date(2027, 2, 1), 0, 0), "today": dt.date(2027, 2, 1)}

    books.settings = books.settings.with_overrides({"utc_offset_hours": 0})
    # UTC+0: A and B are the same Sunday, so A's award and redemption count "today", "this week", "this month"
    assert _todays(books, w, shop) == {"takings": 20, "board": ("2027-01", 50),
                                       "week": (dt.date(2027, 1, 25), 50, 20), "today": dt.date(2027, 1, 31)}
    with pytest.raises(DomainError) as cap:
        earning.award_directly(books, w.actor("officerA2"), volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                               amount=1, reference="roster 2")
    assert cap.value.code == errors.VOLUNTEER_DAILY_CAP.code
    with pytest.raises(DomainError) as limit:
        redemption.redeem(books, till, code=codes.issue_wallet_code(books, wallet).code, amount=1,
                          idempotency_key="at-b")
    assert limit.value.code == errors.LIMIT_EXCEEDED.code

    # and back at UTC+8 both limits start afresh on B's day
    books.settings = books.settings.with_overrides({"utc_offset_hours": 8})
    earning.award_directly(books, w.actor("officerA2"), volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                           amount=1, reference="roster 3")
    redemption.redeem(books, till, code=codes.issue_wallet_code(books, wallet).code, amount=1,
                      idempotency_key="at-b-2")
