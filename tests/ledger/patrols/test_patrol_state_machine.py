"""Random histories of a shift (hypothesis), on SQLite and PostgreSQL: an evening shift (19:00–21:00) or one
crossing midnight (23:00–01:00, insurance required, so sign-ups wait for an officer's approval); sign-ups,
withdrawals, the officer's edits (rate, start) and approvals, check-ins and check-outs by the leader's code
or the post sign near or far, time moving across the boundaries (early check-in, the end, the grace,
half a quarter hour to the second), closing the shift (no-shows), verifying (optionally lowering the
time) and refusing held attendances.

What the room should have computed is worked out here independently, at the moment of each check-out or
close, from the times the rows recorded: minutes = (min(out, end + grace) − max(in, start)) rounded half up
to the quarter hour, at most the shift plus grace; beans = minutes × the rate then ÷ 60. After every step:
the books balance, no wallet is negative, every paid attendance is one transfer of exactly those beans and
one service record on the day the shift started, nothing else is paid, refusals change nothing, and
``ledger verify`` passes."""

from __future__ import annotations

import datetime as dt
import math
import shutil
import uuid

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from ledger import patrols
from ledger.errors import DomainError
from ledger.infra.db import utc_from_db
from ledger.journal.verify import verify_books
from ledger.schema import Account, PatrolShift, PatrolSignup, ServiceRecord, Transfer
from tests.conftest import FakeClock, make_books, truncate_all
from tests.patrol_world import FAR, NEAR, build_patrol_world

VOLUNTEERS = ["v1", "v3", "v2"]
GRACE = dt.timedelta(minutes=30)
BEIJING = dt.timezone(dt.timedelta(hours=8))
# refusals the rules may legitimately give; anything else is a bug
EXPECTED = {"shift_full", "already_signed_up", "not_signed_up", "withdraw_cutoff_passed", "signup_closed",
            "already_checked_in", "not_checked_in", "already_checked_out", "outside_shift_window",
            "outside_post_radius", "attendance_not_awaiting", "permission_denied", "code_expired",
            "signup_pending"}


def snapshot(books) -> tuple:
    with books.session(readonly=True) as s:
        kinds = dict(s.execute(select(Account.kind, func.sum(Account.credits_posted - Account.debits_posted))
                               .group_by(Account.kind)).all())
        rows = tuple(s.execute(select(PatrolSignup.id, PatrolSignup.status, PatrolSignup.attendance,
                                      PatrolSignup.beans).order_by(PatrolSignup.id)).all())
        shifts = tuple(s.execute(select(PatrolShift.id, PatrolShift.version).order_by(PatrolShift.id)).all())
        return kinds, rows, shifts


def expected_minutes(checked_in: dt.datetime, out: dt.datetime, start: dt.datetime, end: dt.datetime) -> int:
    """The published rule, written independently of the room's code."""
    counted = (min(out, end + GRACE) - max(checked_in, start)).total_seconds()
    quarters = math.floor(max(0.0, counted) / 900 + 0.5)
    return min(quarters * 15, int((end - start).total_seconds() // 60) + 30)


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_shift_pays_rule_times_rounded_time_once(db, request, sqlite_template, tmp_path):
    pg = request.getfixturevalue("pg_database") if db == "postgres" else None

    class ShiftMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            if pg:
                truncate_all(pg)
                url = pg
            else:
                path = tmp_path / f"{uuid.uuid4().hex}.db"
                shutil.copyfile(sqlite_template, path)
                url = f"sqlite:///{path}"
            self.clock = FakeClock()
            self.books = make_books(url, tmp_path / "keys", self.clock)
            self.pw = build_patrol_world(self.books, needed=2, beans_per_hour=12)
            self.actors = {n: self.pw.w.actor(n) for n in VOLUNTEERS + ["leader", "officerA", "officerA2"]}
            # what the room owes each sign-up once closed: (minutes, beans), worked out here
            self.expected: dict[int, tuple[int, int]] = {}
            self.rate_at_close: dict[int, int] = {}

        @initialize(midnight=st.booleans(), who=st.lists(st.sampled_from(VOLUNTEERS), min_size=1, max_size=3,
                                                         unique=True))
        def choose_the_shift_and_sign_up(self, midnight: bool, who: list[str]) -> None:
            self.shift_id = self.pw.shift_id
            if midnight:  # 23:00–01:00 Beijing the same evening, insurance required
                start = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.timezone.utc)
                self.shift_id = patrols.publish_shift(
                    self.books, self.actors["officerA2"], post_id=self.pw.post_id, starts_at=start,
                    ends_at=start + dt.timedelta(hours=2), needed=2, beans_per_hour=12, insurance_required=True,
                    leader_id=self.pw.w.users["leader"]).id
            # start shortly before the check-in window opens, so that histories reach the shift
            self.clock.now = self.times()[0] - dt.timedelta(minutes=45)
            for name in who:
                self.attempt(patrols.sign_up, self.actors[name], self.shift_id)

        def teardown(self) -> None:
            assert verify_books(self.books).ok
            self.books.engine.dispose()

        def times(self) -> tuple[dt.datetime, dt.datetime, int]:
            with self.books.session(readonly=True) as s:
                shift = s.get(PatrolShift, self.shift_id)
                return utc_from_db(shift.starts_at), utc_from_db(shift.ends_at), shift.beans_per_hour

        def signup(self, who: str) -> PatrolSignup | None:
            with self.books.session(readonly=True) as s:
                return s.scalar(select(PatrolSignup).where(PatrolSignup.shift_id == self.shift_id,
                                                           PatrolSignup.volunteer_id == self.pw.w.users[who]))

        def attempt(self, fn, *args, **kwargs) -> bool:
            before = snapshot(self.books)
            try:
                fn(self.books, *args, **kwargs)
            except DomainError as exc:
                assert exc.code in EXPECTED, exc
                assert snapshot(self.books) == before, "a refusal changed something"
                return False
            return True

        def proof(self, kind: str) -> patrols.Proof:
            try:
                if kind == "code":
                    return self.pw.by_code()
                return self.pw.by_sign(NEAR if kind == "near" else FAR)
            except DomainError:  # no current shift to show a code for
                return patrols.Proof()

        def move_to(self, moment: dt.datetime) -> None:
            """Time only moves forward: a rule may jump to a boundary still ahead, never back."""
            self.clock.now = max(self.clock.now, moment)

        def owe(self, row: PatrolSignup, out: dt.datetime) -> None:
            start, end, rate = self.times()
            minutes = expected_minutes(utc_from_db(row.checked_in_at), out, start, end)
            self.expected[row.id] = (minutes, minutes * rate // 60)
            self.rate_at_close[row.id] = rate

        @rule(who=st.sampled_from(VOLUNTEERS))
        def sign_up(self, who: str) -> None:
            self.attempt(patrols.sign_up, self.actors[who], self.shift_id)

        @rule(who=st.sampled_from(VOLUNTEERS))
        def withdraw(self, who: str) -> None:
            self.attempt(patrols.withdraw, self.actors[who], self.shift_id)

        @rule(who=st.sampled_from(VOLUNTEERS))
        def officer_approves_the_insurance(self, who: str) -> None:
            row = self.signup(who)
            if row is not None:
                self.attempt(patrols.confirm_signup, self.actors["officerA2"], row.id)

        @rule(change=st.sampled_from(["rate_up", "rate_down", "later", "earlier"]))
        def officer_edits(self, change: str) -> None:
            start, end, rate = self.times()
            if change in ("rate_up", "rate_down"):
                kwargs = {"beans_per_hour": max(0, min(30, rate + (6 if change == "rate_up" else -6)))}
            else:
                kwargs = {"starts_at": start + dt.timedelta(minutes=15 if change == "later" else -15)}
            self.attempt(patrols.edit_shift, self.actors["officerA2"], self.shift_id, **kwargs)

        @rule(seconds=st.sampled_from([1, 7 * 60 + 29, 7 * 60 + 30, 7 * 60 + 31, 20 * 60]))
        def a_little_time_passes(self, seconds: int) -> None:
            self.clock.advance(seconds)

        # moments in seconds from the start (check-in) or the end (check-out): the window's edges, half a
        # quarter hour either side of a quarter (7 min 29 s, 30 s), the grace's edge
        @rule(who=st.sampled_from(VOLUNTEERS), kind=st.sampled_from(["code", "near", "far"]),
              at=st.sampled_from([None, -1860, -1800, -1740, 0, 449, 450, 480, 3600, 7140, 7260]))
        def check_in(self, who: str, kind: str, at: int | None) -> None:
            if at is not None:
                self.move_to(self.times()[0] + dt.timedelta(seconds=at))
            proof = self.proof(kind)
            if proof.code or proof.post_sign:
                self.attempt(patrols.check_in, self.actors[who], self.shift_id, proof)

        @rule(who=st.sampled_from(VOLUNTEERS), kind=st.sampled_from(["code", "near", "far"]),
              at=st.sampled_from([None, -3600, -451, -450, -449, 0, 449, 450, 1740, 1800, 1860]))
        def check_out(self, who: str, kind: str, at: int | None) -> None:
            if at is not None:
                self.move_to(self.times()[1] + dt.timedelta(seconds=at))
            proof = self.proof(kind)
            if proof.code or proof.post_sign:
                row = self.signup(who)
                if self.attempt(patrols.check_out, self.actors[who], self.shift_id, proof):
                    self.owe(row, self.clock.now)

        @rule(who=st.sampled_from(VOLUNTEERS), kinds=st.tuples(*[st.sampled_from(["code", "near", "far"])] * 2),
              in_at=st.sampled_from([-1800, -1740, 0, 449, 450, 3600]),
              out_at=st.sampled_from([-3660, -450, -449, 0, 449, 450, 1800]))
        def a_whole_attendance(self, who: str, kinds: tuple[str, str], in_at: int, out_at: int) -> None:
            """Sign up, in and out in one go (each step may be refused): deep histories come often."""
            self.attempt(patrols.sign_up, self.actors[who], self.shift_id)
            row = self.signup(who)
            if row is not None and row.status == "pending":
                self.attempt(patrols.confirm_signup, self.actors["officerA2"], row.id)
            self.check_in(who, kinds[0], in_at)
            self.check_out(who, kinds[1], out_at)

        @rule()
        def close(self) -> None:
            with self.books.session(readonly=True) as s:
                open_rows = s.scalars(select(PatrolSignup).where(PatrolSignup.shift_id == self.shift_id,
                                                                 PatrolSignup.status == "checked_in")).all()
            if self.attempt(patrols.close_shift, self.actors["officerA2"], self.shift_id):
                for row in open_rows:
                    self.owe(row, self.times()[1] + GRACE)

        @rule(who=st.sampled_from(VOLUNTEERS), lower=st.sampled_from([None, None, 0, 15, 60]))
        def verify(self, who: str, lower: int | None) -> None:
            row = self.signup(who)
            if row is None:
                return
            minutes = None if lower is None or row.minutes is None else min(lower, row.minutes)
            if self.attempt(patrols.verify_attendance, self.actors["officerA"], row.id, minutes=minutes) \
                    and minutes is not None:
                self.expected[row.id] = (minutes, minutes * self.rate_at_close[row.id] // 60)

        @rule(who=st.sampled_from(VOLUNTEERS))
        def refuse(self, who: str) -> None:
            row = self.signup(who)
            if row is not None:
                self.attempt(patrols.refuse_attendance, self.actors["officerA"], row.id, reason="not seen there")

        @invariant()
        def books_balance_and_each_attendance_is_paid_once(self) -> None:
            if not hasattr(self, "shift_id"):
                return
            start = self.times()[0]
            with self.books.session(readonly=True) as s:
                kinds = dict(s.execute(select(Account.kind, func.sum(Account.credits_posted - Account.debits_posted))
                                       .group_by(Account.kind)).all())
                assert sum(kinds.values()) == 0
                assert kinds.get("wallet", 0) >= 0
                due = 0
                for row in s.scalars(select(PatrolSignup)):
                    paid = s.scalars(select(Transfer.amount).where(
                        Transfer.transfer_key == f"patrol:signup:{row.id}")).all()
                    records = s.execute(select(ServiceRecord.minutes, ServiceRecord.service_day).where(
                        ServiceRecord.source_ref == f"patrol_signup:{row.id}")).all()
                    if row.attendance is not None:
                        assert (row.minutes, row.beans) == self.expected[row.id], (row.id, row.attendance)
                    if row.attendance == "paid":
                        assert paid == [row.beans] and row.beans > 0
                        assert records == [(row.minutes, start.astimezone(BEIJING).date())]
                        due += row.beans
                    elif row.attendance == "recorded":  # nothing due in beans: the hours still count
                        assert paid == [] and row.beans == 0
                        assert records == ([(row.minutes, start.astimezone(BEIJING).date())] if row.minutes else [])
                    else:
                        assert paid == [] and records == []
                assert kinds.get("wallet", 0) == due
            assert verify_books(self.books).ok

    run_state_machine_as_test(ShiftMachine, settings=settings(
        max_examples=8, stateful_step_count=30, deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
