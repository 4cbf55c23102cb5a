"""The surveys API end to end: an officer builds and publishes a paid survey, a resident answers once and
is paid, a second answer and answers from outside the area are refused in the JSON error shape, results
and the CSV are for officers only, and the OpenAPI document describes every route."""

from __future__ import annotations

import datetime as dt

import pytest

from doors import books_of
from ledger.access.identity import wallet_account_id
from ledger.journal.accounts import get_account
from tests.earning_world import build_world
from tests.merchant_api.test_earning_api import token


@pytest.fixture
def w(app):
    return build_world(books_of(app))


def survey_body(w, **over):
    body = {"org_unit_id": w.units["c1"], "title": "楼道照明调查", "reward": 3, "max_responses": 10,
            "closes_at": (w.books.now() + dt.timedelta(days=5)).isoformat(),
            "questions": [{"kind": "single", "text": "照明够吗?", "options": ["够", "不够"]},
                          {"kind": "text", "text": "建议", "required": False}]}
    body.update(over)
    return body


def test_build_publish_answer_once_and_read_results(client, w) -> None:
    officer, resident = token(w, "officerA2"), token(w, "v1")
    made = client.post("/api/v1/surveys", json=survey_body(w, publish=False), headers=officer)
    assert made.status_code == 201, made.json
    sid = made.json["id"]
    assert made.json["status"] == "draft" and len(made.json["questions"]) == 2
    assert client.get(f"/api/v1/surveys/{sid}", headers=resident).status_code == 404  # drafts are staff-only
    assert client.post(f"/api/v1/surveys/{sid}/publish", headers=officer).json["status"] == "published"

    listed = client.get("/api/v1/surveys", headers=resident).json
    assert [s["id"] for s in listed] == [sid] and listed[0]["answered"] is False
    q1 = made.json["questions"][0]["id"]
    answered = client.post(f"/api/v1/surveys/{sid}/responses", json={"answers": {str(q1): "不够"}}, headers=resident)
    assert answered.status_code == 201 and answered.json["paid"] == 3
    with w.books.session(readonly=True) as s:
        wallet = wallet_account_id(s, w.users["v1"])
    assert get_account(w.books, wallet).balance == 3

    again = client.post(f"/api/v1/surveys/{sid}/responses", json={"answers": {str(q1): "够"}}, headers=resident)
    assert again.status_code == 409 and again.json["error"] == "survey_already_answered"
    outside = client.post(f"/api/v1/surveys/{sid}/responses", json={"answers": {str(q1): "够"}},
                          headers=token(w, "v2"))
    assert outside.status_code == 403 and outside.json["error"] == "survey_outside_area"
    assert get_account(w.books, wallet).balance == 3

    results = client.get(f"/api/v1/surveys/{sid}/results", headers=officer)
    assert results.status_code == 200 and results.json["responses"] == 1 and results.json["questions"] == []
    assert client.get(f"/api/v1/surveys/{sid}/results", headers=resident).status_code == 403
    csv = client.get(f"/api/v1/surveys/{sid}/results.csv", headers=officer)
    assert csv.status_code == 200 and csv.data.startswith("\ufeff".encode())
    closed = client.post(f"/api/v1/surveys/{sid}/close", headers=officer)
    assert closed.json["status"] == "closed"


@pytest.mark.parametrize("bad", [
    {"reward": -1}, {"reward": 101}, {"questions": []}, {"closes_at": "2026-11-30T10:00:00"},
    {"questions": [{"kind": "essay", "text": "q"}]}, {"unknown": 1}, {"max_responses": "5"},
])
def test_bad_surveys_are_refused_in_the_json_shape(client, w, bad) -> None:
    response = client.post("/api/v1/surveys", json=survey_body(w, **bad), headers=token(w, "officerA2"))
    assert response.status_code == 422 and "error" in response.json


def test_a_survey_is_published_at_once_by_default_with_its_rewards_held(client, w) -> None:
    from ledger.access.identity import budget_account_id

    with w.books.session(readonly=True) as s:
        budget = budget_account_id(s, w.units["c1"])
    before = get_account(w.books, budget)
    body = survey_body(w, reward=2, max_responses=5, target_org_unit_ids=[w.units["b1"]])
    del body["org_unit_id"], body["closes_at"]  # the community of the target; two weeks
    made = client.post("/api/v1/surveys", json=body, headers=token(w, "officerA2"))
    assert made.status_code == 201 and made.json["status"] == "published", made.json
    assert made.json["org_unit_id"] == w.units["c1"]
    after = get_account(w.books, budget)
    assert (after.balance, after.on_hold) == (before.balance, before.on_hold + 10)
    q1 = made.json["questions"][0]["id"]
    paid = client.post(f"/api/v1/surveys/{made.json['id']}/responses", json={"answers": {str(q1): "够"}},
                       headers=token(w, "v1"))
    assert paid.status_code == 201 and paid.json["paid"] == 2


def test_only_officers_build_surveys_and_anonymous_callers_are_refused(client, w) -> None:
    assert client.post("/api/v1/surveys", json=survey_body(w), headers=token(w, "v1")).status_code == 403
    assert client.post("/api/v1/surveys", json=survey_body(w), headers=token(w, "officerB")).status_code == 403
    assert client.get("/api/v1/surveys").status_code == 401


def test_the_openapi_document_describes_every_survey_route(client) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/api/v1/surveys", "/api/v1/surveys/{survey_id}", "/api/v1/surveys/{survey_id}/publish",
                 "/api/v1/surveys/{survey_id}/close", "/api/v1/surveys/{survey_id}/responses",
                 "/api/v1/surveys/{survey_id}/results", "/api/v1/surveys/{survey_id}/results.csv"):
        assert path in paths, path


def test_a_nul_in_an_answer_is_refused_at_the_edge_and_in_a_question_id_by_the_survey(client, w) -> None:
    """The document says what an answer may hold (no NUL in its strings): the edge refuses a NUL there. It
    cannot say what an object's keys hold, so a question id with a NUL is the survey's own refusal. Neither
    records or pays anything."""
    officer, resident = token(w, "officerA2"), token(w, "v1")
    made = client.post("/api/v1/surveys", json=survey_body(w), headers=officer).json
    sid, q1 = made["id"], made["questions"][0]["id"]
    in_value = client.post(f"/api/v1/surveys/{sid}/responses", json={"answers": {str(q1): "不\x00够"}},
                           headers=resident)
    assert in_value.status_code == 422 and in_value.json["error"] == "validation_failed", in_value.json
    in_list = client.post(f"/api/v1/surveys/{sid}/responses", json={"answers": {str(q1): ["\x00"]}},
                          headers=resident)
    assert in_list.status_code == 422 and in_list.json["error"] == "validation_failed", in_list.json
    in_id = client.post(f"/api/v1/surveys/{sid}/responses", json={"answers": {f"{q1}\x00": "够"}}, headers=resident)
    assert in_id.status_code == 422 and in_id.json["error"] == "survey_answer_invalid", in_id.json
    listed = client.get("/api/v1/surveys", headers=resident).json
    assert [s["answered"] for s in listed if s["id"] == sid] == [False]
    answers = client.get("/api/v1/openapi.json").json["components"]["schemas"]["AnswersIn"]["properties"]["answers"]
    assert {"type": "integer"} in answers["additionalProperties"]["anyOf"]
