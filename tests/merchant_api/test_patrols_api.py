"""The patrols API: a whole evening over HTTP (post, shift, sign-up, check-in by the leader's code, check-out,
beans and hours), refusals with stable codes and no change, the board, and the public certificate check."""

from __future__ import annotations

import pytest

from doors import books_of
from ledger.access.tokens import issue_access_token
from ledger.journal.verify import verify_books
from tests import needs
from tests.patrol_world import FAR, LAT, LON, NEAR, build_patrol_world


@pytest.fixture
def pw(app):
    return build_patrol_world(books_of(app))


def token(pw, name: str) -> dict[str, str]:
    tok, _ = issue_access_token(pw.w.books, pw.w.actor(name))
    return {"Authorization": f"Bearer {tok}"}


def test_an_evening_patrol_over_http(client, pw, clock) -> None:
    r = client.post("/api/v1/posts", json={"org_unit_id": pw.w.units["g1"], "name": "一组岗",
                                                   "latitude": LAT, "longitude": LON, "radius_m": 80}, headers=token(pw, "officerA2"))
    assert r.status_code == 201 and r.json["radius_m"] == 80
    shifts = client.get("/api/v1/shifts", headers=token(pw, "v1")).json
    assert [s["id"] for s in shifts] == [pw.shift_id]
    assert client.post(f"/api/v1/shifts/{pw.shift_id}/signups", headers=token(pw, "v1")).status_code == 201
    clock.now = pw.start
    code = client.get(f"/api/v1/posts/{pw.post_id}/code", headers=token(pw, "leader")).json
    assert code["shift_id"] == pw.shift_id and code["expires_in"] == 30
    r = client.post(f"/api/v1/shifts/{pw.shift_id}/check-in", json={"code": code["code"]}, headers=token(pw, "v1"))
    assert r.status_code == 200 and r.json["status"] == "checked_in", r.json
    board = client.get("/api/v1/coverage", headers=token(pw, "officerA2")).json
    assert {b["post_id"]: b["state"] for b in board}[pw.post_id] == "short"
    clock.now = pw.end
    code = client.get(f"/api/v1/posts/{pw.post_id}/code", headers=token(pw, "leader")).json["code"]
    r = client.post(f"/api/v1/shifts/{pw.shift_id}/check-out", json={"code": code}, headers=token(pw, "v1"))
    assert r.status_code == 200 and (r.json["minutes"], r.json["beans"], r.json["attendance"]) == (120, 20, "paid")
    [record] = client.get("/api/v1/me/service-records", headers=token(pw, "v1")).json
    assert record["minutes"] == 120
    cert = client.post("/api/v1/me/certificates", json={"first_day": "2026-11-01", "last_day": "2026-11-30",
                                                               "format": "json"}, headers=token(pw, "v1")).json
    checked = client.get("/api/v1/certificates/verify", query_string={"code": cert["code"]})
    assert checked.status_code == 200 and checked.json["minutes"] == 120 and checked.json["hours"] == 2.0
    bad = client.get("/api/v1/certificates/verify", query_string={"code": cert["code"][:-3] + "AAA"})
    assert bad.status_code == 422 and bad.json["error"] == "invalid_certificate"
    assert verify_books(pw.w.books).ok


def test_refusals_have_stable_codes(client, pw, clock) -> None:
    client.post(f"/api/v1/shifts/{pw.shift_id}/signups", headers=token(pw, "v1"))
    sign = client.get(f"/api/v1/posts/{pw.post_id}/sign", headers=token(pw, "officerA2")).json["code"]
    clock.now = pw.start
    far = {"post_sign": sign, "latitude": FAR[0], "longitude": FAR[1], "accuracy_m": 10}
    r = client.post(f"/api/v1/shifts/{pw.shift_id}/check-in", json=far, headers=token(pw, "v1"))
    assert (r.status_code, r.json["error"]) == (409, "outside_post_radius")
    r = client.post(f"/api/v1/shifts/{pw.shift_id}/check-in", json={"code": "abc", "extra": 1}, headers=token(pw, "v1"))
    assert r.status_code == 422
    r = client.post(f"/api/v1/shifts/{pw.shift_id}/check-out", json={}, headers=token(pw, "v1"))
    assert r.json["error"] == "not_checked_in"
    near = {**far, "latitude": NEAR[0], "longitude": NEAR[1]}
    assert client.post(f"/api/v1/shifts/{pw.shift_id}/check-in", json=near, headers=token(pw, "v1")).status_code == 200
    r = client.post("/api/v1/shifts", json={"post_id": pw.post_id, "starts_at": pw.start.isoformat(),
                                                    "ends_at": pw.end.isoformat(), "needed": 1, "beans_per_hour": 99},
                    headers=token(pw, "officerA2"))
    assert r.json["error"] == "beans_per_hour_out_of_limits"
    r = client.get("/api/v1/coverage", headers=token(pw, "v1"))
    assert r.status_code == 403
    r = client.post("/api/v1/shifts/999999/signups", headers=token(pw, "v1"))
    assert (r.status_code, r.json["error"]) == (404, "shift_not_found")


def test_pdf_certificate_holds_the_hours(client, pw, clock) -> None:
    needs.cjk_font()
    r = client.post("/api/v1/me/certificates", json={"first_day": "2026-11-01", "last_day": "2026-11-30"},
                    headers=token(pw, "v1"))
    assert r.status_code == 201 and r.content_type == "application/pdf" and r.data.startswith(b"%PDF")


def test_series_and_the_openapi_document(client, pw) -> None:
    r = client.post("/api/v1/series", json={"post_id": pw.post_id, "start_time": "19:00",
                                                    "duration_minutes": 120, "first_day": "2026-11-28",
                                                    "last_day": "2026-11-30", "needed": 2}, headers=token(pw, "officerA2"))
    assert r.status_code == 201 and r.json["shifts_created"] == 3
    spec = client.get("/api/v1/openapi.json").json
    assert "/api/v1/shifts/{shift_id}/check-in" in spec["paths"]
    assert spec["paths"]["/api/v1/certificates/verify"]["get"]["security"] == []


def test_huge_or_malformed_input_is_refused_cleanly(client, pw, clock) -> None:
    huge = 2**70
    r = client.post("/api/v1/shifts", json={"post_id": huge, "starts_at": pw.start.isoformat(),
                                                    "ends_at": pw.end.isoformat(), "needed": 1},
                    headers=token(pw, "officerA2"))
    assert r.status_code in (404, 422) and r.is_json
    client.post(f"/api/v1/shifts/{pw.shift_id}/signups", headers=token(pw, "v1"))
    clock.now = pw.start
    for body in ({"code": "x" * 5000}, {"volunteer_id": huge}, {"post_sign": "a.b.c", "latitude": "north"},
                 {"post_sign": "a.b.c", "latitude": 1e308, "longitude": -1e308, "accuracy_m": 1}):
        r = client.post(f"/api/v1/shifts/{pw.shift_id}/check-in", json=body, headers=token(pw, "leader"))
        assert 400 <= r.status_code < 500 and r.is_json, (body, r.status_code, r.data[:200])
    r = client.get("/api/v1/certificates/verify", query_string={"code": "x" * 5000})
    assert r.status_code == 422 and r.is_json
