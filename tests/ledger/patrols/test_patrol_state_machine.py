"""Random histories of a shift (hypothesis): sign-ups, withdrawals, check-ins and check-outs by the leader's
code, by the post sign near or far, time moving across the boundaries (early check-in, the end, grace),
the officer closing the shift and verifying held attendances. After every step: the books balance, no
wallet is negative, every paid attendance is in the journal exactly once as rule × rounded time, refusals
change nothing, and ``verify`` passes; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from ledger import patrols
from ledger.errors import DomainError
from ledger.journal.verify import verify_books
from ledger.patrols.rules import beans_for
from ledger.schema import Account, PatrolSignup, ServiceRecord, Transfer
from tests.conftest import FakeClock, make_books, truncate_all
from tests.patrol_world import FAR, NEAR, build_patrol_world

VOLUNTEERS = ["v1", "v3", "v2"]
# refusals the rules may legitimately give; anything else is a bug
EXPECTED = {"shift_full", "already_signed_up", "not_signed_up", "withdraw_cutoff_passed", "signup_closed",
            "already_checked_in", "not_checked_in", "already_checked_out", "outside_shift_window",
            "outside_post_radius", "attendance_not_awaiting", "permission_denied", "code_expired"}


def snapshot(books) -> tuple:
    with books.session(readonly=True) as s:
        kinds = dict(s.execute(select(Account.kind, func.sum(Account.credits_posted - Account.debits_posted))
                               .group_by(Account.kind)).all())
        rows = tuple(s.execute(select(PatrolSignup.id, PatrolSignup.status, PatrolSignup.attendance,
                                      PatrolSignup.beans).order_by(PatrolSignup.id)).all())
        return kinds, rows


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
            # start shortly before the check-in window opens, so that histories reach the shift
            self.clock.now = self.pw.start - dt.timedelta(minutes=45)

        @initialize(who=st.lists(st.sampled_from(VOLUNTEERS), min_size=1, max_size=3, unique=True))
        def some_sign_up(self, who: list[str]) -> None:
            for name in who:
                self.attempt(patrols.sign_up, self.actors[name], self.pw.shift_id)

        def teardown(self) -> None:
            assert verify_books(self.books).ok
            self.books.engine.dispose()

        def attempt(self, fn, *args, **kwargs) -> None:
            before = snapshot(self.books)
            try:
                fn(self.books, *args, **kwargs)
            except DomainError as exc:
                assert exc.code in EXPECTED, exc
                assert snapshot(self.books) == before, "a refusal changed something"

        def proof(self, kind: str) -> patrols.Proof:
            try:
                if kind == "code":
                    return self.pw.by_code()
                return self.pw.by_sign(NEAR if kind == "near" else FAR)
            except DomainError:  # no current shift to show a code for
                return patrols.Proof()

        @rule(who=st.sampled_from(VOLUNTEERS))
        def sign_up(self, who: str) -> None:
            self.attempt(patrols.sign_up, self.actors[who], self.pw.shift_id)

        @rule(who=st.sampled_from(VOLUNTEERS))
        def withdraw(self, who: str) -> None:
            self.attempt(patrols.withdraw, self.actors[who], self.pw.shift_id)

        @rule(seconds=st.sampled_from([1, 7 * 60 + 29, 7 * 60 + 31, 20 * 60]))
        def a_little_time_passes(self, seconds: int) -> None:
            self.clock.advance(seconds)

        def move_to(self, moment: dt.datetime) -> None:
            """Time only moves forward: a rule may jump to a boundary still ahead, never back."""
            self.clock.now = max(self.clock.now, moment)

        @rule(who=st.sampled_from(VOLUNTEERS), kind=st.sampled_from(["code", "near", "far"]),
              at=st.sampled_from([None, -31, -30, -29, 0, 7, 8, 60, 119, 121]))
        def check_in(self, who: str, kind: str, at: int | None) -> None:
            if at is not None:
                self.move_to(self.pw.start + dt.timedelta(minutes=at))
            proof = self.proof(kind)
            if proof.code or proof.post_sign:
                self.attempt(patrols.check_in, self.actors[who], self.pw.shift_id, proof)

        @rule(who=st.sampled_from(VOLUNTEERS), kind=st.sampled_from(["code", "near", "far"]),
              at=st.sampled_from([None, -60, -1, 0, 7, 8, 29, 30, 31]))
        def check_out(self, who: str, kind: str, at: int | None) -> None:
            if at is not None:
                self.move_to(self.pw.end + dt.timedelta(minutes=at))
            proof = self.proof(kind)
            if proof.code or proof.post_sign:
                self.attempt(patrols.check_out, self.actors[who], self.pw.shift_id, proof)

        @rule(who=st.sampled_from(VOLUNTEERS), kinds=st.tuples(*[st.sampled_from(["code", "near", "far"])] * 2),
              in_at=st.sampled_from([-30, -29, 0, 8, 60]), out_at=st.sampled_from([-61, -1, 0, 7, 8, 29, 30]))
        def a_whole_attendance(self, who: str, kinds: tuple[str, str], in_at: int, out_at: int) -> None:
            """Sign up, in and out in one go (each step may be refused): deep histories come often."""
            self.attempt(patrols.sign_up, self.actors[who], self.pw.shift_id)
            self.check_in(who, kinds[0], in_at)
            self.check_out(who, kinds[1], out_at)

        @rule()
        def close(self) -> None:
            self.attempt(patrols.close_shift, self.actors["officerA2"], self.pw.shift_id)

        @rule(who=st.sampled_from(VOLUNTEERS))
        def verify(self, who: str) -> None:
            with self.books.session(readonly=True) as s:
                sid = s.scalar(select(PatrolSignup.id).where(PatrolSignup.volunteer_id == self.pw.w.users[who]))
            if sid is not None:
                self.attempt(patrols.verify_attendance, self.actors["officerA"], sid)

        @invariant()
        def books_balance_and_each_attendance_is_paid_once(self) -> None:
            with self.books.session(readonly=True) as s:
                kinds = dict(s.execute(select(Account.kind, func.sum(Account.credits_posted - Account.debits_posted))
                                       .group_by(Account.kind)).all())
                assert sum(kinds.values()) == 0
                assert kinds.get("wallet", 0) >= 0
                for row in s.scalars(select(PatrolSignup)):
                    paid = s.scalars(select(Transfer.amount).where(
                        Transfer.transfer_key == f"patrol:signup:{row.id}")).all()
                    records = s.scalar(select(func.count(ServiceRecord.id)).where(
                        ServiceRecord.source_ref == f"patrol_signup:{row.id}"))
                    if row.attendance == "paid":
                        assert paid == [beans_for(row.minutes, 12)] and records == 1
                        assert row.minutes % 15 == 0 and row.minutes <= 150
                    elif row.attendance == "recorded":
                        assert paid == [] and records == (1 if row.minutes else 0)
                    else:
                        assert paid == [] and records == 0
                wallets = kinds.get("wallet", 0)
                due = s.scalar(select(func.coalesce(func.sum(PatrolSignup.beans), 0)).where(
                    PatrolSignup.attendance == "paid"))
                assert wallets == due
            assert verify_books(self.books).ok

    run_state_machine_as_test(ShiftMachine, settings=settings(
        max_examples=10, stateful_step_count=30, deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
