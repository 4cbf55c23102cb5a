"""Surveys (社调) on SQLite and PostgreSQL: rewards held at publishing, each complete response paid once
from the hold, the rest released on closing or at the end; every refusal changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import select

from ledger import errors, surveys
from ledger.access.identity import budget_account_id, create_user_in, grant_role_in, wallet_account_id
from ledger.errors import DomainError
from ledger.journal.accounts import expire_holds, get_account
from ledger.journal.verify import verify_books
from ledger.schema import SurveyResponse
from tests.conftest import make_books
from tests.earning_world import World, build_world

QUESTIONS = [
    {"kind": "single", "text": "夜间照明够吗?", "options": ["够", "不够"]},
    {"kind": "multiple", "text": "最担心什么?", "options": ["盗窃", "诈骗", "交通"], "required": False},
    {"kind": "scale", "text": "安全感", "scale_max": 5},
    {"kind": "text", "text": "建议", "required": False},
]


def answers_for(view: surveys.SurveyView, **over: object) -> dict[str, object]:
    q = {x.kind: x.id for x in view.questions}
    out: dict[str, object] = {str(q["single"]): "够", str(q["multiple"]): ["盗窃"], str(q["scale"]): 4,
                              str(q["text"]): "多装路灯"}
    out.update({str(q[k]): v for k, v in over.items()})
    return out


def balance(w: World, account_id: int) -> tuple[int, int]:
    acc = get_account(w.books, account_id)
    return acc.balance, acc.available


def ids(w: World, community: str, volunteer: str) -> tuple[int, int]:
    with w.books.session(readonly=True) as s:
        return budget_account_id(s, w.units[community]), wallet_account_id(s, w.users[volunteer])


def add_volunteers(w: World, unit: str, n: int) -> list[str]:
    names = [f"r{unit}{i}" for i in range(n)]

    def work(s):
        for name in names:
            user = create_user_in(s, name, "pw", name)
            w.users[name] = user.id
            grant_role_in(s, user.id, "volunteer", w.units[unit])

    w.books.run(work)
    return names


def new_survey(w: World, *, reward: int = 5, max_responses: int = 3, targets: tuple[str, ...] = ("c1",),
               days: int = 7, **kw: object) -> surveys.SurveyView:
    return surveys.create_survey(
        w.books, w.actor("officerA2"), org_unit_id=w.units["c1"], title="社区安全调查", questions=QUESTIONS,
        target_org_unit_ids=[w.units[t] for t in targets], reward=reward, max_responses=max_responses,
        closes_at=w.books.now() + dt.timedelta(days=days), **kw)


def refused(code: errors.ErrorSpec, fn, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code.code, info.value
    return info.value


def test_publish_holds_rewards_and_each_response_is_paid_once(books) -> None:
    w = build_world(books)
    budget, wallet = ids(w, "c1", "v1")
    before = balance(w, budget)
    draft = new_survey(w, reward=5, max_responses=3)
    assert draft.status == "draft" and balance(w, budget) == before
    published = surveys.publish_survey(books, w.actor("officerA2"), draft.id)
    assert published.status == "published"
    assert balance(w, budget) == (before[0], before[1] - 15)  # held, not yet spent

    out = surveys.answer_survey(books, w.actor("v1"), draft.id, answers_for(draft))
    assert out["paid"] == 5
    assert balance(w, wallet)[0] == 5
    assert balance(w, budget) == (before[0] - 5, before[1] - 15)  # 5 paid, 10 still held
    refused(errors.SURVEY_ALREADY_ANSWERED, surveys.answer_survey, books, w.actor("v1"), draft.id,
            answers_for(draft))
    assert balance(w, wallet)[0] == 5

    closed = surveys.close_survey(books, w.actor("officerA2"), draft.id)
    assert closed.status == "closed" and closed.paid_responses == 1
    assert balance(w, budget) == (before[0] - 5, before[0] - 5)  # the unpaid 10 released
    refused(errors.SURVEY_NOT_OPEN, surveys.answer_survey, books, w.actor("leader"), draft.id,
            answers_for(draft))
    assert verify_books(books).ok


def test_refusals_change_nothing(books) -> None:
    w = build_world(books)
    view = new_survey(w)
    # a draft is not shown to residents at all
    refused(errors.SURVEY_NOT_FOUND, surveys.answer_survey, books, w.actor("v1"), view.id, answers_for(view))
    surveys.publish_survey(books, w.actor("officerA2"), view.id)
    budget, wallet = ids(w, "c1", "v1")
    before = balance(w, budget), balance(w, wallet)
    refused(errors.SURVEY_OUTSIDE_AREA, surveys.answer_survey, books, w.actor("v2"), view.id, answers_for(view))
    q = {x.kind: x.id for x in view.questions}
    missing = answers_for(view)
    del missing[str(q["scale"])]
    for bad in (missing, answers_for(view, single="也许"), answers_for(view, scale=6),
                answers_for(view, multiple=["盗窃", "盗窃"]), {**answers_for(view), "999999": "x"}, [], "x"):
        refused(errors.SURVEY_ANSWER_INVALID, surveys.answer_survey, books, w.actor("v1"), view.id, bad)
    refused(errors.SURVEY_NOT_FOUND, surveys.answer_survey, books, w.actor("v1"), 10**9, answers_for(view))
    assert (balance(w, budget), balance(w, wallet)) == before
    refused(errors.SURVEY_NOT_DRAFT, surveys.publish_survey, books, w.actor("officerA2"), view.id)
    refused(errors.OUT_OF_SCOPE, surveys.close_survey, books, w.actor("officerB"), view.id)
    refused(errors.PERMISSION_DENIED, surveys.close_survey, books, w.actor("v1"), view.id)
    assert surveys.get_survey(books, w.actor("v1"), view.id).answered is False
    refused(errors.SURVEY_NOT_FOUND, surveys.get_survey, books, w.actor("v2"), view.id)  # outside the area


def test_building_a_survey_is_checked(books) -> None:
    w = build_world(books)
    officer = w.actor("officerA2")
    now = books.now()
    base = {"org_unit_id": w.units["c1"], "title": "t", "questions": QUESTIONS,
            "target_org_unit_ids": [w.units["c1"]], "closes_at": now + dt.timedelta(days=3)}
    for bad in ({"questions": []}, {"questions": [{"kind": "single", "text": "q", "options": ["a"]}]},
                {"questions": [{"kind": "scale", "text": "q", "scale_max": 11}]},
                {"questions": [{"kind": "essay", "text": "q"}]}, {"reward": -1}, {"reward": surveys.MAX_REWARD + 1},
                {"max_responses": 0}, {"closes_at": now - dt.timedelta(hours=1)},
                {"closes_at": now + dt.timedelta(days=surveys.MAX_OPEN_DAYS + 1)},
                {"target_org_unit_ids": [w.units["c3"]]}, {"title": ""}):
        refused(errors.SURVEY_INVALID, surveys.create_survey, books, officer, **{**base, **bad})
    refused(errors.OUT_OF_SCOPE, surveys.create_survey, books, w.actor("officerB"), **base)
    refused(errors.NOT_A_COMMUNITY, surveys.create_survey, books, officer, **{**base, "org_unit_id": w.units["b1"]})


def test_a_full_survey_refuses_more_and_pays_at_most_the_maximum(books) -> None:
    w = build_world(books)
    names = add_volunteers(w, "c1", 3)
    view = new_survey(w, reward=2, max_responses=2)
    surveys.publish_survey(books, w.actor("officerA2"), view.id)
    for name in names[:2]:
        surveys.answer_survey(books, w.actor(name), view.id, answers_for(view))
    refused(errors.SURVEY_FULL, surveys.answer_survey, books, w.actor(names[2]), view.id, answers_for(view))
    budget, _ = ids(w, "c1", "v1")
    bal, avail = balance(w, budget)
    assert bal == avail  # nothing left on hold once the maximum is paid
    assert surveys.get_survey(books, w.actor("officerA2"), view.id).paid_responses == 2
    assert verify_books(books).ok


def test_the_hold_expires_at_the_end_and_late_answers_are_refused(books, clock) -> None:
    w = build_world(books)
    view = new_survey(w, reward=4, max_responses=5, days=2)
    surveys.publish_survey(books, w.actor("officerA2"), view.id)
    surveys.answer_survey(books, w.actor("v1"), view.id, answers_for(view))
    budget, _ = ids(w, "c1", "v1")
    clock.advance(2 * 86400 + 1)
    refused(errors.SURVEY_NOT_OPEN, surveys.answer_survey, books, w.actor("leader"), view.id, answers_for(view))
    expire_holds(books)
    bal, avail = balance(w, budget)
    assert bal == avail  # the unpaid 16 came back by themselves
    surveys.close_survey(books, w.actor("officerA2"), view.id)  # closing after the end needs no void
    assert verify_books(books).ok


def test_results_hide_small_groups_and_anonymous_answers_name_nobody(books) -> None:
    w = build_world(books)
    names = add_volunteers(w, "c1", 5) + add_volunteers(w, "c2", 2)
    view = surveys.create_survey(
        books, w.actor("officerA"), org_unit_id=w.units["c1"], title="t", questions=QUESTIONS,
        target_org_unit_ids=[w.units["c1"]], reward=0, max_responses=50,
        closes_at=books.now() + dt.timedelta(days=3))
    surveys.publish_survey(books, w.actor("officerA"), view.id)
    for name in names[:4]:
        surveys.answer_survey(books, w.actor(name), view.id, answers_for(view, single="不够"))
    early = surveys.survey_results(books, w.actor("officerA"), view.id)
    assert early["responses"] == 4 and early["questions"] == [] and early["communities"] == []
    surveys.answer_survey(books, w.actor(names[4]), view.id, answers_for(view, text="=HYPERLINK(1)"))
    results = surveys.survey_results(books, w.actor("officerA"), view.id)
    single = next(q for q in results["questions"] if q["kind"] == "single")
    assert single["counts"] == {"够": 1, "不够": 4}
    assert [c["org_unit_id"] for c in results["communities"]] == [w.units["c1"]]
    csv_text = surveys.results_csv(books, w.actor("officerA"), view.id).decode("utf-8")
    assert csv_text.startswith("\ufeff") and "'=HYPERLINK(1)" in csv_text and ",=HYPERLINK" not in csv_text
    with books.session(readonly=True) as s:
        rows = s.scalars(select(SurveyResponse)).all()
    assert len(rows) == 5 and all(r.user_id is None for r in rows)
    assert all(json.loads(r.answers) for r in rows)
    refused(errors.PERMISSION_DENIED, surveys.survey_results, books, w.actor(names[0]), view.id)


@pytest.mark.postgres
def test_two_sessions_answering_at_once_are_paid_once(pg_url, tmp_path) -> None:
    books = make_books(pg_url, tmp_path / "keys")
    try:
        w = build_world(books)
        view = new_survey(w, reward=7, max_responses=10)
        surveys.publish_survey(books, w.actor("officerA2"), view.id)
        actor = w.actor("v1")
        outcomes: list[str] = []
        barrier = threading.Barrier(6)

        def answer() -> None:
            barrier.wait()
            try:
                surveys.answer_survey(books, actor, view.id, answers_for(view))
                outcomes.append("paid")
            except DomainError as exc:
                outcomes.append(exc.code)

        threads = [threading.Thread(target=answer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["paid"] + ["survey_already_answered"] * 5
        _, wallet = ids(w, "c1", "v1")
        assert balance(w, wallet)[0] == 7
        assert verify_books(books).ok
    finally:
        books.engine.dispose()
