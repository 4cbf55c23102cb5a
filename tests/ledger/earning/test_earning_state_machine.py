"""Random histories of the earning use cases (hypothesis): donations, allocations, patrol claims
verified or rejected, direct awards (some held for a second officer), approvals, voids, reversals,
redemptions and settlements. After every step the donated beans equal what sits in the fund, the
budgets, the wallets and the merchants' accounts plus what was paid out; refusals change nothing;
``verify`` passes at the end."""

from __future__ import annotations

import shutil
import uuid

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from ledger import earning
from ledger.access.identity import wallet_account_id
from ledger.errors import DomainError
from ledger.journal.accounts import account_by_code, post
from ledger.journal.posting import transfer
from ledger.journal.verify import verify_books
from ledger.schema import Account, Award, Transfer
from tests.conftest import FakeClock, make_books
from tests.earning_world import build_world, patrol

# refusals the rules may legitimately give; anything else is a bug
EXPECTED = {"insufficient_funds", "volunteer_daily_cap", "volunteer_monthly_cap", "officer_daily_cap",
            "award_not_pending", "beans_already_spent", "award_not_reversible", "own_approval",
            "linked_transfer_failed", "out_of_scope"}  # officerA2 serves 金沙 only
VOLUNTEERS = ["v1", "v3"]
UNIT_OF = {"v1": "c1", "v3": "c2"}
OFFICERS = ["officerA", "officerA2", "officerA3"]


def positions(books) -> dict[str, int]:
    with books.session(readonly=True) as s:
        rows = s.execute(select(Account.kind, func.sum(Account.credits_posted - Account.debits_posted))
                         .group_by(Account.kind)).all()
    return {k: int(v or 0) for k, v in rows}


def test_donated_equals_fund_budgets_wallets_merchants_payouts(sqlite_template, tmp_path):
    class EarningMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            path = tmp_path / f"{uuid.uuid4().hex}.db"
            shutil.copyfile(sqlite_template, path)
            self.clock = FakeClock()
            self.books = make_books(f"sqlite:///{path}", tmp_path / "keys", self.clock)
            self.books.settings = self.books.settings.with_overrides({"earning": {
                "volunteer_daily_cap": 250, "officer_daily_cap": 600, "approval_threshold": 60}})
            self.w = build_world(self.books, budget=300, donated=1_000)
            self.awards: list[int] = []
            self.actors = {n: self.w.actor(n) for n in OFFICERS + VOLUNTEERS + ["fund"]}
            with self.books.session(readonly=True) as s:
                self.shop = account_by_code(s, "merchant:shop").id
                self.payout = account_by_code(s, "payout").id
                self.wallets = {v: wallet_account_id(s, self.w.users[v]) for v in VOLUNTEERS}
            self.n = 0

        def teardown(self) -> None:
            assert verify_books(self.books).ok
            self.books.engine.dispose()

        def attempt(self, fn, *args, **kwargs):
            before = positions(self.books), self.awards_state()
            try:
                return fn(*args, **kwargs)
            except DomainError as exc:
                assert exc.code in EXPECTED, exc
                assert (positions(self.books), self.awards_state()) == before, "a refusal changed something"
                return None

        def awards_state(self) -> tuple:
            with self.books.session(readonly=True) as s:
                return tuple(s.execute(select(Award.id, Award.status, Award.reversed_amount)).all())

        def key(self) -> str:
            self.n += 1
            return f"k{self.n}"

        @rule(amount=st.integers(1, 500))
        def donate(self, amount: int) -> None:
            self.attempt(earning.record_donation, self.books, self.actors["fund"], amount=amount, donor="d",
                         key=self.key())

        @rule(unit=st.sampled_from(["c1", "c2"]), amount=st.integers(1, 600))
        def allocate(self, unit: str, amount: int) -> None:
            self.attempt(earning.allocate_budget, self.books, self.actors["fund"], org_unit_id=self.w.units[unit],
                         amount=amount, key=self.key())

        @rule(who=st.sampled_from(VOLUNTEERS), officer=st.sampled_from(OFFICERS), amount=st.integers(1, 120))
        def award(self, who: str, officer: str, amount: int) -> None:
            a = self.attempt(earning.award_directly, self.books, self.actors[officer], volunteer_id=self.w.users[who],
                             org_unit_id=self.w.units[UNIT_OF[who]], amount=amount, reference="r", key=self.key())
            if a is not None:
                self.awards.append(a.id)

        @rule(who=st.sampled_from(VOLUNTEERS), hours=st.integers(1, 5), verify=st.booleans())
        def claim(self, who: str, hours: int, verify: bool) -> None:
            c = patrol(self.w, who, UNIT_OF[who], hours)
            if verify:
                v = self.attempt(earning.verify_claim, self.books, self.actors["officerA"], c.id, reason="ok")
                if v is not None and v.award_id:
                    self.awards.append(v.award_id)
            else:
                earning.reject_claim(self.books, self.actors["officerA"], c.id, reason="no")

        @rule(i=st.integers(0, 50), officer=st.sampled_from(OFFICERS), approve=st.booleans())
        def second_approval(self, i: int, officer: str, approve: bool) -> None:
            if self.awards:
                aid = self.awards[i % len(self.awards)]
                if approve:
                    self.attempt(earning.approve_award, self.books, self.actors[officer], aid)
                else:
                    self.attempt(earning.void_award, self.books, self.actors[officer], aid, reason="no")

        @rule(i=st.integers(0, 50), partial=st.booleans())
        def reverse(self, i: int, partial: bool) -> None:
            if self.awards:
                self.attempt(earning.reverse_award, self.books, self.actors["officerA"],
                             self.awards[i % len(self.awards)], reason="x", partial=partial)

        def available(self, account_id: int) -> int:
            with self.books.session(readonly=True) as s:
                return s.get(Account, account_id).available

        @rule(who=st.sampled_from(VOLUNTEERS), amount=st.integers(1, 80))
        def redeem(self, who: str, amount: int) -> None:
            amount = min(amount, self.available(self.wallets[who]))
            if amount > 0:
                post(self.books, transfer(self.key(), "redeem", self.wallets[who], self.shop, amount))

        @rule(amount=st.integers(1, 100))
        def settle(self, amount: int) -> None:
            amount = min(amount, self.available(self.shop))
            if amount > 0:
                post(self.books, transfer(self.key(), "settle", self.shop, self.payout, amount))

        @rule()
        def next_day(self) -> None:
            self.clock.advance(24 * 3600)

        @invariant()
        def donated_is_all_accounted_for(self) -> None:
            p = positions(self.books)
            donated = -p.get("donations", 0)
            held = p.get("fund", 0) + p.get("budget", 0) + p.get("wallet", 0) + p.get("merchant", 0) + p.get(
                "payout", 0)
            assert donated == held
            assert all(v >= 0 for k, v in p.items() if k != "donations")
            with self.books.session(readonly=True) as s:
                # every posted award's net amount is in the journal as award transfers minus reversals
                awarded = s.scalar(select(func.coalesce(func.sum(Award.amount - Award.reversed_amount), 0))
                                   .where(Award.status.in_(["posted", "reversed"])))
                journal = s.scalar(select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                    Transfer.kind == "award", Transfer.phase.in_(["single", "post"])))
                reversed_ = s.scalar(select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                    Transfer.kind == "reverse"))
                assert awarded == journal - reversed_

    run_state_machine_as_test(EarningMachine, settings=settings(
        max_examples=5, stateful_step_count=12, deadline=None,
        # no shrinking: each step is a real transaction, and shrinking a failure took minutes
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
