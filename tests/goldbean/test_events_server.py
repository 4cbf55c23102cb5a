"""The held-stream server (``goldbean.events``) in front of the app (SQLite, one process): streams are held and
fed as notices commit, resumed with ``Last-Event-ID``, refused exactly as the app refuses, closed when the
reader's right ends; every other request passes through to the app."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from doors import books_of
from goldbean import events
from ledger import radar
from ledger.access import web_sessions
from ledger.access.tokens import issue_access_token
from ledger.schema import RoleGrant
from tests.earning_world import build_world
from tests.sse_client import SSE

API, PAGE = "/api/v1/events", "/radar/events"


@pytest.fixture
def w(app):
    return build_world(books_of(app))


@pytest.fixture
def front(app, w):
    """The app under werkzeug (the upstream, as gunicorn is under ``goldbean serve``) and the events server."""
    from werkzeug.serving import make_server

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    running = events.start_in_thread(app, upstream=f"127.0.0.1:{httpd.server_port}",
                                     options=events.Options(heartbeat_s=0.4))
    try:
        yield running
    finally:
        running.stop()
        httpd.shutdown()
        thread.join(5)


def bearer(w, name: str) -> dict[str, str]:
    tok, _ = issue_access_token(w.books, w.actor(name))
    return {"Authorization": f"Bearer {tok}"}


def publish(w, unit: str = "c1", officer: str = "officerA", kind: str = "寻人"):
    return radar.publish_notice(w.books, w.actor(officer), kind=kind, title="寻找走失老人", body="蓝色外套",
                                area=[w.units[unit]], ends_at=w.books.now() + dt.timedelta(days=2))


def test_a_held_stream_gets_what_commits_resumes_with_last_event_id_and_beats(front, w):
    mine = SSE(front.port, API, bearer(w, "v1"))
    other = SSE(front.port, API, bearer(w, "v2"))  # 金星社区: not the area
    assert mine.status == 200 and mine.held and mine.headers["content-type"].startswith("text/event-stream")
    assert mine.events(0.3) == [] and mine.ids  # the first connection is told where it stands
    first = publish(w)
    got = mine.events(3, until=1)
    assert [(e["event"], e["notice_id"], e["kind"]) for e in got] == [("notice", first.id, "寻人")]
    assert other.events(1.0) == [] and "hb" in other.comments  # heartbeats, nothing else
    mine.close()

    missed = publish(w)  # while the phone is away
    back = SSE(front.port, API, {**bearer(w, "v1"), "Last-Event-ID": str(got[-1]["id"])})
    assert back.held and [e["notice_id"] for e in back.events(1, until=1)] == [missed.id]
    later = publish(w)
    assert [e["notice_id"] for e in back.events(3, until=1)] == [later.id]
    again = SSE(front.port, API, {**bearer(w, "v1"), "Last-Event-ID": str(back.last_id)})
    assert again.events(0.5) == []  # nothing twice
    assert other.events(0.5) == []
    for s in (back, again, other):
        s.close()


def test_refusals_are_the_apps_own(front, w, client):
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic x"}):
        held = SSE(front.port, API, headers)
        direct = client.get(API, headers=headers)
        assert not held.held and held.status == direct.status_code == 401
        body = json.loads(held.body())
        assert body["error"] == direct.get_json()["error"] and set(body) == {"error", "message", "request_id"}
    page = SSE(front.port, PAGE)
    assert page.status == 302 and "/signin" in page.headers["location"] and not page.held


def test_a_volunteer_who_moves_stops_getting_the_old_area_at_once(front, w):
    s = SSE(front.port, API, bearer(w, "v1"))
    with w.books.session() as sess:
        sess.query(RoleGrant).filter_by(user_id=w.users["v1"], role="volunteer").one().org_unit_id = w.units["c3"]
    publish(w, "c1")
    new_home = publish(w, "c3", officer="officerB")
    assert [e["notice_id"] for e in s.events(3, until=1)] == [new_home.id]
    assert s.events(0.5) == []
    s.close()


def test_a_stream_ends_with_its_session_or_token(front, w, app):
    token = web_sessions.start_session(w.books, user_id=w.users["v1"], data={})
    page = SSE(front.port, PAGE, {"Cookie": f"gb_session={token}"})
    api = SSE(front.port, API, bearer(w, "v3"))
    assert page.held and api.held
    n = publish(w)
    assert [e["notice_id"] for e in page.events(3, until=1)] == [n.id]
    web_sessions.end_session(w.books, token)  # signed out in another tab
    assert page.wait_closed(3)
    assert not api.eof
    app.config["CLOCK"].advance(16 * 60)  # the bearer token (15 minutes) has expired
    assert api.wait_closed(3)
    again = SSE(front.port, API, bearer(w, "v3"))  # a fresh token: held again
    assert again.held
    again.close()


def test_everything_else_is_the_apps_and_a_full_server_answers_like_the_short_poll(front, w, client):
    via = SSE(front.port, "/api/v1/notices", bearer(w, "v1"))
    assert via.status == 200 and json.loads(via.body()) == client.get("/api/v1/notices",
                                                                       headers=bearer(w, "v1")).get_json()
    health = SSE(front.port, "/healthz")
    assert health.status == 200
    front.server.hub.max_streams = 1
    held = SSE(front.port, API, bearer(w, "v1"))
    full = SSE(front.port, API, bearer(w, "v1"))
    assert held.held and not full.held and full.status == 200
    retry = int(full.body().split("retry: ")[1].split("\n")[0])
    assert 5000 <= retry <= 10000
    held.close()


def test_forwarded_headers_are_believed_from_trusted_peers_only():
    head = events.parse_head(b"GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"
                             b"Connection: keep-alive\r\nCookie: a=b\r\n\r\n")
    untrusted = events.forward_head(head, "10.1.2.3", trusted=False).decode()
    assert "6.6.6.6" not in untrusted and "X-Forwarded-Proto" not in untrusted and "keep-alive" not in untrusted
    assert "X-Forwarded-For: 10.1.2.3\r\n" in untrusted and "Connection: close\r\n" in untrusted
    assert "Cookie: a=b\r\n" in untrusted
    trusted = events.forward_head(head, "127.0.0.1", trusted=True).decode()
    assert "X-Forwarded-For: 6.6.6.6, 127.0.0.1\r\n" in trusted and "X-Forwarded-Proto: https" in trusted
    assert events.parse_head(b"GARBAGE\r\n\r\n") is None
    assert events._trusted("10.0.0.7", ("10.0.0.0/8",)) and not events._trusted("11.0.0.1", ("10.0.0.0/8",))
