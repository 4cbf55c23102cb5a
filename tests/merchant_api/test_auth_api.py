"""POST /api/v1/auth/token and bearer authentication."""

from __future__ import annotations

from doors import books_of
from ledger.access.identity import create_user_in, grant_role_in


def _user(app) -> int:
    def work(s):
        u = create_user_in(s, "alice", "correct horse", "Alice")
        grant_role_in(s, u.id, "auditor")
        return u.id

    return books_of(app).run(work)


def test_token_endpoint(app, client):
    _user(app)
    r = client.post("/api/v1/auth/token", json={"username": "alice", "password": "correct horse"})
    assert r.status_code == 200, r.json
    assert r.json["token_type"] == "Bearer" and r.json["expires_in"] == 900
    bad = client.post("/api/v1/auth/token", json={"username": "alice", "password": "nope"})
    assert bad.status_code == 401 and bad.json["error"] == "invalid_credentials"
    extra = client.post("/api/v1/auth/token", json={"username": "alice", "password": "x", "admin": True})
    assert extra.status_code == 422
    spec = client.get("/api/v1/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "/api/v1/auth/token" in spec["paths"]


def test_current_actor(app, client):
    from merchant_api.auth import current_actor, requires_roles

    uid = _user(app)
    token = client.post("/api/v1/auth/token", json={"username": "alice", "password": "correct horse"}).json[
        "access_token"]

    @requires_roles("auditor")
    def audited():
        return current_actor().user_id

    @requires_roles("officer")
    def officers_only():
        return 1

    import pytest

    from ledger.errors import DomainError

    with app.test_request_context(headers={"Authorization": f"Bearer {token}"}):
        assert audited() == uid
        with pytest.raises(DomainError) as info:
            officers_only()
        assert info.value.code == "permission_denied"
    with app.test_request_context():
        with pytest.raises(DomainError) as info:
            audited()
        assert info.value.code == "not_authenticated"
    with app.test_request_context(headers={"Authorization": "Bearer abc.def.ghi"}):
        with pytest.raises(DomainError) as info:
            audited()
        assert info.value.code == "invalid_token"
