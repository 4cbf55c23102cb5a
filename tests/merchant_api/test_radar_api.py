"""The radar API: every route by every role, in and out of scope; refusals answer a stable code in JSON and
change nothing; hidden notices are 404 (``notice_not_found``), not 403; the public report form."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from doors import books_of
from ledger import radar
from ledger.access.tokens import issue_access_token
from ledger.schema import Answer, Claim, Notice, NoticeVersion, Report, Transfer
from tests.earning_world import build_world

ACTORS = ("anon", "v1", "v2", "leader", "officerA", "officerB", "fund", "auditor", "admin", "cashier")


@pytest.fixture
def w(app):
    return build_world(books_of(app))


def token(w, name: str) -> dict[str, str]:
    if name == "anon":
        return {}
    tok, _ = issue_access_token(w.books, w.actor(name))
    return {"Authorization": f"Bearer {tok}"}


def snapshot(books) -> tuple:
    with books.session(readonly=True) as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Transfer, Notice, NoticeVersion,
                                                                             Answer, Report)) + tuple(
            s.execute(select(Notice.status, Claim.status).join(Answer, Answer.notice_id == Notice.id, isouter=True)
                      .join(Claim, Claim.id == Answer.claim_id, isouter=True)).all())


def _notice(w, bounty: int = 50):
    return radar.publish_notice(w.books, w.actor("officerA"), kind="寻物", title="丢失的电动车", body="黑色",
                                area=[w.units["c1"]], ends_at=w.books.now() + dt.timedelta(days=2), bounty=bounty)


def _body(w) -> dict:
    return {"kind": "寻人", "title": "寻找走失儿童", "body": "红色书包", "area": [w.units["c1"]],
            "ends_at": (w.books.now() + dt.timedelta(days=1)).isoformat(), "bounty": 30}


# (method, path maker, body maker, who may (status when allowed), expected refusals by actor)
def cases(w):
    n = _notice(w)
    a = radar.answer_notice(w.books, w.actor("v1"), n.id, text="在1栋楼下")
    rep = radar.submit_report(w.books, category="missing", text="家中老人走失", source="198.51.100.1",
                              org_unit_id=w.units["c1"], consent=True)
    convert = {"kind": "寻人", "title": "寻找走失老人", "body": "灰色上衣",
               "ends_at": (w.books.now() + dt.timedelta(days=1)).isoformat()}
    return [
        ("POST", f"/api/v1/reports/{rep.id}/notice", convert, {"officerA": 201},
         {"officerB": "report_not_found", "v1": "permission_denied", "auditor": "permission_denied"}),
        ("POST", "/api/v1/notices", _body(w), {"officerA": 201},
         {"officerB": "out_of_scope", "v1": "permission_denied", "fund": "permission_denied"}),
        ("GET", f"/api/v1/notices/{n.id}", None, {"officerA": 200, "v1": 200, "leader": 200, "auditor": 200,
                                                   "admin": 200},
         {"officerB": "notice_not_found", "v2": "notice_not_found", "fund": "notice_not_found",
          "cashier": "notice_not_found"}),
        ("GET", f"/api/v1/notices/{n.id}/history", None, {"v1": 200, "officerA": 200},
         {"v2": "notice_not_found", "officerB": "notice_not_found"}),
        ("POST", f"/api/v1/notices/{n.id}/amend", {"body": "黑色,车筐有贴纸"}, {"officerA": 200},
         {"officerB": "notice_not_found", "v1": "permission_denied", "auditor": "permission_denied"}),
        ("GET", f"/api/v1/notices/{n.id}/answers", None, {"officerA": 200, "v1": 200},
         {"officerB": "notice_not_found", "v2": "notice_not_found"}),
        ("POST", f"/api/v1/notices/{n.id}/answers", {"text": "看到了"}, {"leader": 201},
         {"v2": "notice_not_found", "v1": "already_answered", "officerA": "permission_denied",
          "fund": "permission_denied"}),
        # an answer is a claim: decided with the claim routes
        ("POST", f"/api/v1/claims/{a.id}/verify", {"reason": "核实", "amount": 20}, {"officerA": 200},
         {"officerB": "out_of_scope", "v1": "permission_denied", "admin": "permission_denied"}),
        ("POST", f"/api/v1/claims/{a.id}/reject", {"reason": "不符"}, {},
         {"officerB": "out_of_scope", "v1": "permission_denied", "officerA": "claim_already_decided"}),
        ("POST", f"/api/v1/notices/{n.id}/close", {"reason": "找到了"}, {"officerA": 200},
         {"officerB": "notice_not_found", "v1": "permission_denied"}),
        ("GET", "/api/v1/reports", None, {"officerA": 200, "officerB": 200},
         {"v1": "permission_denied", "auditor": "permission_denied"}),
    ]


def call(client, method, path, body, headers):
    return client.open(path, method=method, json=body, headers=headers)


def test_every_radar_route_by_every_role(client, w):
    for method, path, body, allowed, refused in cases(w):
        for actor in ACTORS:
            if actor in allowed:
                continue
            before = snapshot(w.books)
            r = call(client, method, path, body, token(w, actor))
            want = "not_authenticated" if actor == "anon" else refused.get(actor)
            if want is None:
                continue  # only the listed refusals are asserted; the rest are in the matrix above
            assert r.is_json and r.get_json()["error"] == want, (method, path, actor, r.get_json())
            assert r.status_code == {"not_authenticated": 401, "notice_not_found": 404, "already_answered": 409,
                                     "claim_already_decided": 409, "report_not_found": 404}.get(want, 403), \
                (method, path, actor)
            assert snapshot(w.books) == before, (method, path, actor)
        for actor, status in allowed.items():
            r = call(client, method, path, body, token(w, actor))
            assert r.status_code == status, (method, path, actor, r.get_json())


def test_a_volunteer_lists_only_the_notices_of_their_area(client, w):
    n = _notice(w, bounty=0)
    ids = lambda who: [x["id"] for x in client.get("/api/v1/notices", headers=token(w, who)).get_json()]
    assert ids("v1") == [n.id] and ids("v2") == [] and ids("officerB") == []
    r = client.get("/api/v1/notices?include_ended=1&oops=1", headers=token(w, "v1"))
    assert r.status_code == 422 and r.get_json()["error"] == "validation_failed"


def test_publish_answer_verify_pays_the_bounty_once(client, w):
    r = client.post("/api/v1/notices", json={**_body(w), "lat": 25.0712, "lng": 102.7224, "radius_m": 800},
                    headers=token(w, "officerA"))
    assert r.status_code == 201, r.get_json()
    notice = r.get_json()
    assert notice["circle"] == {"lat": 25.0712, "lng": 102.7224, "radius_m": 800}
    assert (notice["state"], notice["bounty_left"], notice["version"]) == ("open", 30, 1)
    r = client.post(f"/api/v1/notices/{notice['id']}/answers", json={"text": "孩子在公园", "place": "翠湖"},
                    headers=token(w, "v1"))
    assert r.status_code == 201 and r.get_json()["status"] == "submitted"
    answer = r.get_json()["id"]  # the claim's id
    claim = client.get(f"/api/v1/claims/{answer}", headers=token(w, "officerA")).get_json()
    assert (claim["category"], claim["details"]["description"]) == ("answer", "孩子在公园")
    board = client.get(f"/api/v1/notices/{notice['id']}/answers", headers=token(w, "officerA")).get_json()
    assert [(x["id"], x["text"], x["place"], x["paid_from_bounty"]) for x in board] == [(answer, "孩子在公园", "翠湖", True)]
    r = client.post(f"/api/v1/claims/{answer}/verify", json={"reason": "找到"}, headers=token(w, "officerA"))
    assert r.status_code == 200 and (r.get_json()["amount"], r.get_json()["award_status"]) == (30, "posted")
    again = client.post(f"/api/v1/claims/{answer}/verify", json={"reason": "再次"}, headers=token(w, "officerA"))
    assert again.status_code == 409 and again.get_json()["error"] == "claim_already_decided"
    closed = client.post(f"/api/v1/notices/{notice['id']}/close", json={}, headers=token(w, "officerA")).get_json()
    assert (closed["state"], closed["bounty_paid"], closed["bounty_left"]) == ("closed", 30, 0)
    late = client.post(f"/api/v1/notices/{notice['id']}/answers", json={"text": "x"}, headers=token(w, "leader"))
    assert late.status_code == 409 and late.get_json()["error"] == "notice_not_open"


def test_bad_notices_are_refused_with_stable_codes(client, w):
    h = token(w, "officerA")
    for change, code in [({"bounty": 10**6}, "validation_failed"), ({"bounty": 99_999}, "insufficient_funds"),
                         ({"kind": "通缉"}, "validation_failed"), ({"area": []}, "validation_failed"),
                         ({"ends_at": "2026-01-01T00:00:00"}, "validation_failed"),
                         ({"ends_at": "2020-01-01T00:00:00+08:00"}, "notice_end_invalid"),
                         ({"area": [10**6]}, "org_unit_not_found"), ({"extra": 1}, "validation_failed"),
                         ({"lat": 25.05}, "validation_failed"), ({"lat": 91, "lng": 1, "radius_m": 5}, "validation_failed")]:
        before = snapshot(w.books)
        r = client.post("/api/v1/notices", json={**_body(w), **change}, headers=h)
        assert r.is_json and r.get_json()["error"] == code, (change, r.get_json())
        assert snapshot(w.books) == before


def test_anyone_reports_without_an_account_within_limits(client, w):
    body = {"category": "theft", "text": "楼下有人撬车锁", "consent": True, "phone": "13800000000",
            "org_unit_id": w.units["c1"]}
    r = client.post("/api/v1/reports", json=body)
    assert r.status_code == 201 and set(r.get_json()) == {"id", "status", "submitted_at", "purge_after"}
    assert client.post("/api/v1/reports", json={**body, "consent": False}).get_json()["error"] == "consent_required"
    for _ in range(2):
        assert client.post("/api/v1/reports", json=body).status_code == 201
    flood = client.post("/api/v1/reports", json=body)  # the fourth from one phone within the hour
    assert flood.status_code == 429 and flood.get_json()["error"] == "rate_limited"
    listed = client.get("/api/v1/reports", headers=token(w, "officerA")).get_json()
    assert len(listed) == 3 and listed[0]["phone"] == "138****0000"  # masked in the list
    assert client.get("/api/v1/reports", headers=token(w, "officerB")).get_json() == []
    r = client.post(f"/api/v1/reports/{listed[0]['id']}/triage", json={"status": "closed", "note": "已处理"},
                    headers=token(w, "officerA"))
    assert r.status_code == 200 and r.get_json()["status"] == "closed"


def test_the_radar_routes_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/api/v1/notices", "/api/v1/notices/{notice_id}", "/api/v1/notices/{notice_id}/close",
                 "/api/v1/notices/{notice_id}/answers", "/api/v1/reports", "/api/v1/reports/{report_id}/notice",
                 "/api/v1/reports/{report_id}/phone"):
        assert path in paths, path


def _reveals(w) -> list:
    from ledger.schema import SecurityEvent

    with w.books.session(readonly=True) as s:
        return list(s.scalars(select(SecurityEvent).where(SecurityEvent.kind == "report_phone_revealed")))


def test_an_officer_of_the_community_reveals_a_call_back_number_once_logged(client, w):
    rep = radar.submit_report(w.books, category="theft", text="楼下有人撬车锁", source="198.51.100.1",
                              phone="13912345678", org_unit_id=w.units["c1"], consent=True)
    path = f"/api/v1/reports/{rep.id}/phone"
    for who, code in (("officerB", "report_not_found"), ("v1", "permission_denied"),
                      ("auditor", "permission_denied"), ("anon", "not_authenticated")):
        r = client.post(path, headers=token(w, who))
        assert r.get_json()["error"] == code and r.status_code == {"report_not_found": 404,
                                                                   "not_authenticated": 401}.get(code, 403), who
    assert client.post(path, json={"why": "x"}, headers=token(w, "officerA")).status_code == 422  # In: no fields
    assert _reveals(w) == []  # refusals log nothing
    r = client.post(path, headers=token(w, "officerA"))
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert r.get_json()["phone"] == "13912345678" and r.get_json()["report_id"] == rep.id
    assert client.post(path, json={}, headers=token(w, "officerA")).status_code == 200  # {} is nothing too
    [first, second] = _reveals(w)
    assert first.actor == f"user:{w.users['officerA']}" and "13912345678" not in first.detail
    listed = client.get("/api/v1/reports", headers=token(w, "officerA")).get_json()
    assert [x["phone"] for x in listed] == ["139****5678"]  # the list stays masked after a reveal
    silent = radar.submit_report(w.books, category="other", text="路灯坏了很久", source="198.51.100.2",
                                 org_unit_id=w.units["c1"], consent=True)
    r = client.post(f"/api/v1/reports/{silent.id}/phone", headers=token(w, "officerA"))
    assert r.status_code == 404 and r.get_json()["error"] == "report_has_no_phone"
    doc = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/reports/{report_id}/phone"]["post"]
    assert "PhoneOut" in str(doc["responses"]["200"]) and "Cache-Control" in doc["responses"]["200"]["headers"]


def test_the_event_stream_resumes_with_last_event_id(client, w):
    first = client.get("/api/v1/events", headers=token(w, "v1"))
    assert first.status_code == 200 and first.mimetype == "text/event-stream"
    assert "retry: " in first.text
    cursor = re.search(r"^id: (\d+)$", first.text, re.M).group(1)
    n = _notice(w, bounty=0)
    resumed = client.get("/api/v1/events", headers={**token(w, "v1"), "Last-Event-ID": cursor})
    assert "event: notice" in resumed.text and f'"notice_id": {n.id}' in resumed.text
    last = re.findall(r"^id: (\d+)$", resumed.text, re.M)[-1]
    again = client.get("/api/v1/events", headers={**token(w, "v1"), "Last-Event-ID": last})
    assert "event: notice" not in again.text
    hidden = client.get("/api/v1/events", headers={**token(w, "v2"), "Last-Event-ID": cursor})
    assert "event:" not in hidden.text
    assert client.get("/api/v1/events").status_code == 401


def test_preferences_by_api(client, w):
    r = client.put("/api/v1/radar/preferences", json={"kinds": ["寻人"], "quiet_from": 1320, "quiet_to": 420},
                   headers=token(w, "v1"))
    assert r.status_code == 200 and r.get_json()["kinds"] == ["寻人", "安全提示"]
    bad = client.put("/api/v1/radar/preferences", json={"kinds": ["x"]}, headers=token(w, "v1"))
    assert bad.status_code == 422


def test_photos_by_api_are_checked_stripped_and_served_in_scope(client, w):
    import base64

    from tests.ledger.radar.test_photos import jpeg_with_gps

    photo = base64.b64encode(jpeg_with_gps()).decode()
    r = client.post("/api/v1/notices", json={**_body(w), "photos": [photo, photo]}, headers=token(w, "officerA"))
    assert r.status_code == 201, r.get_json()
    notice = r.get_json()
    assert len(notice["photo_ids"]) == 2
    got = client.get(f"/api/v1/photos/{notice['photo_ids'][0]}", headers=token(w, "v1"))
    assert got.status_code == 200 and got.mimetype == "image/jpeg" and b"Exif" not in got.data
    hidden = client.get(f"/api/v1/photos/{notice['photo_ids'][0]}", headers=token(w, "v2"))
    assert hidden.status_code == 404 and hidden.get_json()["error"] == "not_found"
    fake = base64.b64encode("文本文件.jpg".encode()).decode()
    r = client.post(f"/api/v1/notices/{notice['id']}/answers", json={"text": "看到了", "photo": fake},
                    headers=token(w, "v1"))
    assert r.status_code == 422 and r.get_json()["error"] == "photo_invalid"
    r = client.post(f"/api/v1/notices/{notice['id']}/answers", json={"text": "看到了", "photo": photo},
                    headers=token(w, "v1"))
    assert r.status_code == 201 and len(r.get_json()["photo_ids"]) == 1
    r = client.post("/api/v1/notices", json={**_body(w), "photos": ["%%%"]}, headers=token(w, "officerA"))
    assert r.status_code == 422 and r.get_json()["error"] == "validation_failed"


@pytest.mark.postgres
def test_a_notice_published_through_one_server_reaches_a_stream_on_another(pg_url, tmp_path):
    """Two app instances (separate engines and pools) on one PostgreSQL database: the outbox is the bus."""
    from goldbean.app import create_app

    config = {"TESTING": True, "DATABASE_URL": pg_url, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "t",
              "SESSION_COOKIE_SECURE": False}
    one, two = create_app(dict(config)), create_app(dict(config))
    try:
        w = build_world(books_of(one))
        cursor = re.search(r"^id: (\d+)$", two.test_client().get("/api/v1/events", headers=token(w, "v1")).text,
                           re.M).group(1)
        r = one.test_client().post("/api/v1/notices", json=_body(w), headers=token(w, "officerA"))
        assert r.status_code == 201
        got = two.test_client().get("/api/v1/events", headers={**token(w, "v1"), "Last-Event-ID": cursor})
        assert f'"notice_id": {r.get_json()["id"]}' in got.text
    finally:
        books_of(one).engine.dispose()
        books_of(two).engine.dispose()
