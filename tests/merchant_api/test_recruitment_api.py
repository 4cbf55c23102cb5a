"""Recruitment and accounts through the API, as a resident, the community's staff and an attacker would use
them: a public call, a sign-up answered with the plain question (202 pending), the approval, the first
sign-in by mobile number, changing the password, and a face-to-face reset code."""

from __future__ import annotations

import datetime as dt

import pytest

from doors import books_of
from ledger.schema import SignupChallenge
from tests.earning_world import build_world
from tests.merchant_api.test_earning_api import token


@pytest.fixture
def w(app):
    return build_world(books_of(app))


def challenge(client, w) -> dict[str, str]:
    made = client.post("/api/v1/signups/challenge")
    assert made.status_code == 201 and made.json["question"].endswith("等于几？")
    with w.books.session(readonly=True) as s:
        return {"challenge_id": made.json["challenge_id"],
                "challenge_answer": s.get(SignupChallenge, made.json["challenge_id"]).answer}


def body(client, w, **over):
    out = {"name": "王阿姨", "phone": "13912345678", "community_id": w.units["c1"], "building_id": w.units["b1"],
           "password": "jinsha-2026", "birth_date": "1958-03-01", "consent_version": "2026-11",
           **challenge(client, w)}
    out.update(over)
    return out


def test_from_a_public_call_to_the_first_sign_in(client, w) -> None:
    officer = token(w, "officerA2")
    call = client.post("/api/v1/recruitment", headers=officer, json={
        "org_unit_id": w.units["c1"], "title": "夜巡志愿者", "needed": 10, "starter_beans": 5,
        "closes_at": (w.books.now() + dt.timedelta(days=20)).isoformat()})
    assert call.status_code == 201, call.json
    listed = client.get("/api/v1/recruitment")
    assert listed.status_code == 200 and listed.json[0]["title"] == "夜巡志愿者"
    made = client.post("/api/v1/signups", json=body(client, w, recruitment_id=call.json["id"]))
    assert made.status_code == 202 and made.json["status"] == "pending"
    assert client.post("/api/v1/auth/token", json={"username": "13912345678", "password": "jinsha-2026"}
                       ).status_code == 401
    pending = client.get("/api/v1/signups", headers=officer).json
    assert [p["id"] for p in pending] == [made.json["id"]] and "password" not in pending[0]
    approved = client.post(f"/api/v1/signups/{made.json['id']}/approve", headers=officer, json={})
    assert approved.status_code == 200 and approved.json["status"] == "approved"
    signed_in = client.post("/api/v1/auth/token", json={"username": "13912345678", "password": "jinsha-2026"})
    assert signed_in.status_code == 200
    me = {"Authorization": f"Bearer {signed_in.json['access_token']}"}
    assert client.get("/api/v1/wallet", headers=me).json["available"] == 5

    changed = client.post("/api/v1/me/password", headers=me,
                          json={"current_password": "jinsha-2026", "new_password": "jinsha-2027"})
    assert changed.status_code == 200
    code = client.post(f"/api/v1/users/{approved.json['user_id']}/reset-code", headers=officer)
    assert code.status_code == 201 and code.headers["Cache-Control"] == "no-store"
    reset = client.post("/api/v1/auth/reset", json={"phone": "13912345678", "code": code.json["code"],
                                                    "new_password": "after-reset-1"})
    assert reset.status_code == 200 and reset.json == {"status": "password_set"}
    again = client.post("/api/v1/auth/reset", json={"phone": "13912345678", "code": code.json["code"],
                                                    "new_password": "after-reset-2"})
    assert again.status_code == 401 and again.json["error"] == "reset_code_invalid"


@pytest.mark.parametrize("over", [
    {"phone": "12345"}, {"password": "short"}, {"birth_date": "1958-13-01"}, {"challenge_answer": "x" * 11},
    {"community_id": "1"}, {"extra": True}, {"guardian_phone": "nope"},
])
def test_malformed_signups_are_refused_in_the_json_shape(client, w, over) -> None:
    response = client.post("/api/v1/signups", json=body(client, w, **over))
    assert response.status_code == 422 and "error" in response.json


def test_wrong_answer_and_unknown_consent_are_refused_and_change_nothing(client, w) -> None:
    wrong = client.post("/api/v1/signups", json=body(client, w, challenge_answer="99"))
    assert wrong.status_code == 422 and wrong.json["error"] == "challenge_failed"
    old = client.post("/api/v1/signups", json=body(client, w, consent_version="2019-01"))
    assert old.status_code == 422 and old.json["error"] == "consent_required"
    assert client.get("/api/v1/signups", headers=token(w, "officerA2")).json == []


def test_staff_only_routes_refuse_others(client, w) -> None:
    assert client.get("/api/v1/signups", headers=token(w, "v1")).status_code == 403
    assert client.get("/api/v1/signups").status_code == 401
    assert client.post(f"/api/v1/users/{w.users['v1']}/reset-code", headers=token(w, "officerB")).status_code == 403
