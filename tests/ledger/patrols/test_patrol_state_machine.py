"""Random histories of a shift (hypothesis): sign-ups, withdrawals, check-ins and check-outs by the leader's
code, by the post sign near or far, time moving across the boundaries (early check-in, the end, grace),
the officer closing the shift and verifying held attendances. After every step: the books balance, no
wallet is negative, every paid attendance is in the journal exactly once as rule × rounded time, refusals
change nothing, and ``verify`` passes; on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import uuid

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
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

        @rule(minutes=st.sampled_from([5, 15, 29, 31, 44, 60, 95]))
        def time_passes(self, minutes: int) -> None:
            self.clock.advance(minutes * 60)

        @rule(who=st.sampled_from(VOLUNTEERS), kind=st.sampled_from(["code", "near", "far"]))
        def check_in(self, who: str, kind: str) -> None:
            proof = self.proof(kind)
            if proof.code or proof.post_sign:
                self.attempt(patrols.check_in, self.actors[who], self.pw.shift_id, proof)

        @rule(who=st.sampled_from(VOLUNTEERS), kind=st.sampled_from(["code", "near", "far"]))
        def check_out(self, who: str, kind: str) -> None:
            proof = self.proof(kind)
            if proof.code or proof.post_sign:
                self.attempt(patrols.check_out, self.actors[who], self.pw.shift_id, proof)

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
        max_examples=6, stateful_step_count=25, deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
