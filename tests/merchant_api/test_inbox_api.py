"""The inbox API: one's own notifications, newest first with the unread count; mark one or all read; anyone
else's is 404 ``not_found``; not signed in: 401; in the OpenAPI document."""

from __future__ import annotations

import pytest

from doors import books_of
from ledger import notify
from ledger.access.tokens import issue_access_token
from tests.earning_world import build_world


@pytest.fixture
def w(app):
    return build_world(books_of(app))


def token(w, name: str) -> dict[str, str]:
    tok, _ = issue_access_token(w.books, w.actor(name))
    return {"Authorization": f"Bearer {tok}"}


def _send(w, who: str, key: str) -> None:
    w.books.run(lambda s: notify.send_in(s, w.books, user_ids=[w.users[who]], topic="award", title="获得 30 金豆",
                                         body="申报已核实，金豆已到账。", dedupe=key, link="/wallet", amount=30))


def test_the_inbox_by_api(client, w):
    _send(w, "v1", "a")
    _send(w, "v1", "b")
    r = client.get("/api/v1/me/inbox", headers=token(w, "v1"))
    assert r.status_code == 200 and r.get_json()["unread"] == 2
    first = r.get_json()["items"][-1]
    assert (first["title"], first["amount"], first["read_at"]) == ("获得 30 金豆", 30, None)
    mine = client.post(f"/api/v1/me/inbox/{first['id']}/read", headers=token(w, "v1"))
    assert mine.status_code == 200 and mine.get_json()["read_at"] is not None
    theirs = client.post(f"/api/v1/me/inbox/{first['id']}/read", headers=token(w, "v3"))
    assert theirs.status_code == 404 and theirs.get_json()["error"] == "not_found"
    unread = client.get("/api/v1/me/inbox?unread_only=true", headers=token(w, "v1")).get_json()
    assert unread["unread"] == 1 and len(unread["items"]) == 1
    assert client.post("/api/v1/me/inbox/read-all", headers=token(w, "v1")).get_json() == {"marked": 1}
    assert client.get("/api/v1/me/inbox", headers=token(w, "v3")).get_json() == {"unread": 0, "items": []}
    assert client.get("/api/v1/me/inbox").status_code == 401
    bad = client.get("/api/v1/me/inbox?limit=0", headers=token(w, "v1"))
    assert bad.status_code == 422 and bad.get_json()["error"] == "validation_failed"


def test_the_inbox_routes_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/api/v1/me/inbox", "/api/v1/me/inbox/{notification_id}/read", "/api/v1/me/inbox/read-all"):
        assert path in paths, path
