"""Random histories of surveys (hypothesis), on SQLite and PostgreSQL: publish, answers (some twice, some
from outside the area, some incomplete), closing, time passing and holds expiring. After every step: what
the budget lost is exactly what the respondents' wallets gained plus what is still held; paid = reward x
paid responses, never above the maximum; refusals change nothing; ``ledger verify`` passes."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from ledger import surveys
from ledger.access.identity import budget_account_id, wallet_account_id
from ledger.errors import DomainError
from ledger.journal.accounts import expire_holds, get_account
from ledger.journal.verify import verify_books
from tests.conftest import FakeClock, make_books, truncate_all
from tests.earning_world import build_world
from tests.ledger.surveys.test_surveys import QUESTIONS, add_volunteers, answers_for

EXPECTED = {"survey_already_answered", "survey_outside_area", "survey_not_open", "survey_full",
            "survey_answer_invalid", "survey_not_draft", "survey_not_found"}
RESPONDENTS = ["v1", "leader", "rc10", "rc11", "v2"]  # v2 lives outside the area


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request, sqlite_template, tmp_path):
    if request.param == "sqlite":
        def make() -> str:
            path = tmp_path / f"{uuid.uuid4().hex}.db"
            shutil.copyfile(sqlite_template, path)
            return f"sqlite:///{path}"
        return make
    url = request.getfixturevalue("pg_database")

    def make_pg() -> str:
        truncate_all(url)
        return url
    return make_pg


def test_paid_equals_reward_times_responses_and_holds_balance(fresh_url, tmp_path):
    class SurveyMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.clock = FakeClock()
            self.books = make_books(fresh_url(), tmp_path / "keys", self.clock)
            self.w = build_world(self.books, budget=500)
            add_volunteers(self.w, "c1", 2)
            self.officer = self.w.actor("officerA2")
            with self.books.session(readonly=True) as s:
                self.budget = budget_account_id(s, self.w.units["c1"])
                self.wallets = {n: wallet_account_id(s, self.w.users[n]) for n in RESPONDENTS}
            self.start = get_account(self.books, self.budget).balance
            self.views: list[surveys.SurveyView] = []

        def teardown(self) -> None:
            assert verify_books(self.books).ok
            self.books.engine.dispose()

        def snapshot(self) -> tuple:
            return (get_account(self.books, self.budget), tuple(get_account(self.books, a)
                                                                 for a in self.wallets.values()))

        def attempt(self, fn, *args):
            before = self.snapshot()
            try:
                return fn(*args)
            except DomainError as exc:
                assert exc.code in EXPECTED, exc
                assert self.snapshot() == before, "a refusal changed something"
                return None

        @rule(reward=st.integers(0, 20), max_responses=st.integers(1, 4), days=st.integers(1, 3))
        def publish(self, reward: int, max_responses: int, days: int) -> None:
            view = surveys.create_survey(self.books, self.officer, org_unit_id=self.w.units["c1"], title="t",
                                         questions=QUESTIONS, target_org_unit_ids=[self.w.units["c1"]],
                                         reward=reward, max_responses=max_responses,
                                         closes_at=self.clock() + dt.timedelta(days=days))
            if self.attempt(surveys.publish_survey, self.books, self.officer, view.id) is not None:
                self.views.append(view)

        @rule(data=st.data(), who=st.sampled_from(RESPONDENTS), complete=st.booleans())
        def answer(self, data, who: str, complete: bool) -> None:
            if not self.views:
                return
            view = data.draw(st.sampled_from(self.views))
            answers = answers_for(view) if complete else {}
            self.attempt(surveys.answer_survey, self.books, self.w.actor(who), view.id, answers)

        @rule(data=st.data())
        def close(self, data) -> None:
            if self.views:
                self.attempt(surveys.close_survey, self.books, self.officer, data.draw(st.sampled_from(self.views)).id)

        @rule(hours=st.integers(1, 36))
        def time_passes(self, hours: int) -> None:
            self.clock.advance(hours * 3600)
            expire_holds(self.books)

        @invariant()
        def beans_are_where_they_should_be(self) -> None:
            budget = get_account(self.books, self.budget)
            paid_out = sum(get_account(self.books, a).balance for a in self.wallets.values())
            assert self.start - budget.balance == paid_out  # what left the budget reached a wallet
            paid_views = [surveys.get_survey(self.books, self.officer, v.id) for v in self.views]
            assert paid_out == sum(v.reward * v.paid_responses for v in paid_views)
            assert all(v.paid_responses <= v.max_responses for v in paid_views)
            held = sum(v.reward * (v.max_responses - v.paid_responses) for v in paid_views
                       if v.status == "published" and v.closes_at > self.clock())
            assert budget.on_hold == held
            assert budget.available >= 0

    run_state_machine_as_test(SurveyMachine, settings=settings(
        max_examples=6, stateful_step_count=14, deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
