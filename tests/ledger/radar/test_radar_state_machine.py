"""Random histories of the radar (hypothesis): publish with or without a bounty, amend (bounty, end),
answer, verify (whole, part, or over the approval threshold; a tier without a bounty), approve or refuse the
held payment, reject, close, time passing with the worker's expiry. Answers are earning claims and bounties
earning reserves, decided through earning's use cases. After every step the beans add up: budgets +
wallets are what was allocated, every bean on hold on a budget is a pending credit of a reserve account or
of a wallet (a payment awaiting its second officer), what the wallets got is what the awards posted, each
reserve's paid is the awards made from it, and no claim was paid twice; and ``verify`` passes after every
step."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import func, select

from ledger import earning, radar
from ledger.errors import DomainError
from ledger.journal.accounts import expire_holds
from ledger.journal.verify import verify_books
from ledger.schema import Account, Award, Claim, Notice, Reserve
from tests.conftest import FakeClock, make_books
from tests.earning_world import build_world

EXPECTED = {"insufficient_funds", "exceeds_bounty", "notice_not_open", "already_answered", "claim_already_decided",
            "award_not_pending", "own_approval", "pending_transfer_expired", "not_a_community", "out_of_scope",
            "linked_transfer_failed", "reserve_released", "self_dealing", "volunteer_daily_cap",
            "volunteer_monthly_cap", "officer_daily_cap", "tier_required", "validation_failed"}
VOLUNTEERS = ["v1", "v3", "leader"]
OFFICERS = ["officerA", "officerA2", "officerA3"]
BUDGET = 500


def test_radar_books_always_balance(sqlite_template, tmp_path):
    class RadarMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            path = tmp_path / f"{uuid.uuid4().hex}.db"
            shutil.copyfile(sqlite_template, path)
            self.books = make_books(f"sqlite:///{path}", tmp_path / "keys", FakeClock())
            self.books.settings = self.books.settings.with_overrides({"earning": {"approval_threshold": 60}})
            self.w = build_world(self.books, budget=BUDGET, donated=10_000)
            self.actors = {n: self.w.actor(n) for n in OFFICERS + VOLUNTEERS}
            self.notices: list[int] = []
            self.answers: list[int] = []

        def attempt(self, call, *args, **kwargs):
            try:
                return call(*args, **kwargs)
            except DomainError as exc:
                assert exc.code in EXPECTED, exc
                return None

        @rule(officer=st.sampled_from(OFFICERS), bounty=st.sampled_from([0, 0, 30, 100, 450]),
              area=st.sampled_from(["c1", "c2", "streetA"]), days=st.integers(1, 5))
        def publish(self, officer, bounty, area, days):
            n = self.attempt(radar.publish_notice, self.books, self.actors[officer], kind="寻物", title="t", body="b",
                             area=[self.w.units[area]], ends_at=self.books.now() + dt.timedelta(days=days),
                             bounty=bounty, budget_org_unit_id=self.w.units["c1"] if area == "streetA" else None)
            if n is not None:
                self.notices.append(n.id)

        @precondition(lambda self: self.notices)
        @rule(data=st.data(), who=st.sampled_from(VOLUNTEERS))
        def answer(self, data, who):
            notice = data.draw(st.sampled_from(self.notices))
            try:
                a = radar.answer_notice(self.books, self.actors[who], notice, text="看到了")
                self.answers.append(a.id)
            except DomainError as exc:
                assert exc.code in EXPECTED | {"notice_not_found", "permission_denied"}, exc

        @precondition(lambda self: self.answers)
        @rule(data=st.data(), officer=st.sampled_from(OFFICERS), amount=st.sampled_from([None, 10, 25, 70]),
              tier=st.sampled_from([None, "low", "medium"]))
        def verify(self, data, officer, amount, tier):
            a = data.draw(st.sampled_from(self.answers))
            self.attempt(earning.verify_claim, self.books, self.actors[officer], a, reason="核实", amount=amount,
                         tier=tier)

        @precondition(lambda self: self.answers)
        @rule(data=st.data(), officer=st.sampled_from(OFFICERS), decision=st.sampled_from(["approve", "void",
                                                                                          "reject"]))
        def second_officer_or_reject(self, data, officer, decision):
            a = data.draw(st.sampled_from(self.answers))
            if decision == "reject":
                self.attempt(earning.reject_claim, self.books, self.actors[officer], a, reason="不符")
                return
            award = earning.get_claim(self.books, self.actors["officerA"], a).award_id
            if award is not None:
                call = earning.approve_award if decision == "approve" else earning.void_award
                self.attempt(call, self.books, self.actors[officer], award, reason="复核")

        @precondition(lambda self: self.notices)
        @rule(data=st.data(), officer=st.sampled_from(OFFICERS), bounty=st.sampled_from([None, 0, 60, 200]),
              extend=st.booleans())
        def amend(self, data, officer, bounty, extend):
            n = data.draw(st.sampled_from(self.notices))
            end = self.books.now() + dt.timedelta(days=6) if extend else None
            try:
                radar.amend_notice(self.books, self.actors[officer], n, bounty=bounty, ends_at=end)
            except DomainError as exc:
                assert exc.code in EXPECTED | {"notice_not_found"}, exc

        @precondition(lambda self: self.notices)
        @rule(data=st.data(), officer=st.sampled_from(OFFICERS))
        def close(self, data, officer):
            n = data.draw(st.sampled_from(self.notices))
            try:
                radar.close_notice(self.books, self.actors[officer], n)
            except DomainError as exc:
                assert exc.code in EXPECTED | {"notice_not_found"}, exc

        @rule(hours=st.sampled_from([1, 30, 100]))
        def time_passes(self, hours):
            self.books.clock.advance(hours * 3600)
            radar.expire_notices(self.books)
            expire_holds(self.books)

        @invariant()
        def beans_add_up(self):
            with self.books.session(readonly=True) as s:
                by_kind = dict(s.execute(select(Account.kind, func.sum(Account.credits_posted - Account.debits_posted))
                                         .group_by(Account.kind)).all())
                assert by_kind["budget"] + by_kind["wallet"] == 3 * BUDGET
                held = s.scalar(select(func.sum(Account.debits_pending)).where(Account.kind == "budget"))
                pots = s.scalar(select(func.sum(Account.credits_pending)).where(Account.code.like("reserves:%")))
                promised = s.scalar(select(func.sum(Account.credits_pending)).where(Account.kind == "wallet"))
                assert held == (pots or 0) + (promised or 0)
                posted = s.scalar(select(func.coalesce(func.sum(Award.amount), 0)).where(Award.status == "posted"))
                assert by_kind["wallet"] == posted
                awards_per_claim = s.execute(select(Award.claim_id, func.count()).group_by(Award.claim_id)).all()
                assert all(n == 1 for _, n in awards_per_claim)  # no claim paid twice
                for r in s.scalars(select(Reserve)):
                    made = s.scalar(select(func.coalesce(func.sum(Award.amount), 0)).join(
                        Claim, Claim.id == Award.claim_id).where(
                        Claim.reserve_id == r.id, Award.status.in_(("posted", "pending_approval"))))
                    assert 0 <= r.paid <= r.amount and r.paid == made
                for n in s.scalars(select(Notice).where(Notice.reserve_id.is_not(None))):
                    assert n.bounty == s.get(Reserve, n.reserve_id).amount and n.bounty_paid <= n.bounty
            report = verify_books(self.books)  # the chains and totals, after every step
            assert report.ok, report

        def teardown(self) -> None:
            self.books.engine.dispose()

    run_state_machine_as_test(RadarMachine, settings=settings(
        max_examples=25, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
