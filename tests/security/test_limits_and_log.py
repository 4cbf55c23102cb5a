"""Request size limits, rate limits on token and code issuance (counted in the database, so shared by
every app server), and the security log: the auditor reads it, nobody edits it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from doors import books_of
from goldbean.app import create_app
from ledger.access import security
from tests.redemption_world import PASSWORD

from .conftest import all_balances, auth


def test_oversized_request_is_refused_with_json_413(client, books, world):
    big = "x" * (300 * 1024)
    r = client.post("/api/v1/auth/token", data=f'{{"username": "vol", "password": "{big}"}}',
                    content_type="application/json")
    assert r.status_code == 413 and r.json["error"] == "request_too_large"
    r = client.post("/api/v1/redemptions", data=big, content_type="application/json",
                    headers={**auth(books, world.cashier_a), "Idempotency-Key": "big"})
    assert r.status_code == 413 and r.json["error"] == "request_too_large"


def test_token_issuance_is_rate_limited_per_user(client, books, world):
    n = security.DEFAULT_LIMITS["token_per_user"]
    for i in range(n):
        r = client.post("/api/v1/auth/token", json={"username": "vol", "password": PASSWORD},
                        environ_base={"REMOTE_ADDR": f"10.3.0.{i}"})
        assert r.status_code == 200
    r = client.post("/api/v1/auth/token", json={"username": "vol", "password": PASSWORD},
                    environ_base={"REMOTE_ADDR": "10.3.1.1"})
    assert (r.status_code, r.json["error"]) == (429, "rate_limited")


def test_token_issuance_is_rate_limited_per_address(client, books, world, clock):
    n = security.DEFAULT_LIMITS["token_per_ip"]
    names = ["vol", "vol2", "owner_a", "cashier_a", "owner_b", "cashier_b", "officer", "fm", "admin"]
    for i in range(n):
        r = client.post("/api/v1/auth/token", json={"username": names[i % len(names)], "password": PASSWORD},
                        environ_base={"REMOTE_ADDR": "10.4.4.4"})
        assert r.status_code == 200, (i, r.json)
    r = client.post("/api/v1/auth/token", json={"username": "vol", "password": PASSWORD},
                    environ_base={"REMOTE_ADDR": "10.4.4.4"})
    assert (r.status_code, r.json["error"]) == (429, "rate_limited")
    clock.advance(61)  # the next minute's window
    r = client.post("/api/v1/auth/token", json={"username": "vol", "password": PASSWORD},
                    environ_base={"REMOTE_ADDR": "10.4.4.4"})
    assert r.status_code == 200


def test_payment_code_issuance_is_rate_limited_across_servers(app_config, books, world):
    """Two app instances on one database share the counter."""
    other = create_app(app_config)
    clients = [other.test_client(), other.test_client()]
    try:
        headers = auth(books, world.volunteer)
        n = security.DEFAULT_LIMITS["code_per_user"]
        for i in range(n):
            assert clients[i % 2].post("/api/v1/wallet/codes", headers=headers).status_code == 201
        r = clients[0].post("/api/v1/wallet/codes", headers=headers)
        assert (r.status_code, r.json["error"]) == (429, "rate_limited")
        # another volunteer is not affected
        assert clients[1].post("/api/v1/wallet/codes", headers=auth(books, world.other_volunteer)).status_code == 201
    finally:
        books_of(other).engine.dispose()


def test_the_auditor_reads_the_security_log(client, books, world):
    from ledger.access.identity import create_user_in, grant_role_in

    def work(s):
        uid = create_user_in(s, "aud", "pw", "审计员").id
        grant_role_in(s, uid, "auditor")
        return uid

    auditor = books.run(work)
    client.post("/api/v1/auth/token", json={"username": "vol", "password": "wrong"})
    client.post("/api/v1/auth/token", json={"username": "vol", "password": PASSWORD})
    r = client.get("/api/v1/security/events", headers=auth(books, auditor))
    assert r.status_code == 200
    kinds = [e["kind"] for e in r.json]
    assert kinds[:2] == ["sign_in_ok", "sign_in_failed"]  # newest first
    assert "role_granted" in kinds  # the auditor's own grant
    failed = r.json[1]
    assert failed["username"] == "vol" and failed["user_id"] == world.volunteer
    assert failed["detail"] == {"error": "invalid_credentials"} and failed["source"] == "127.0.0.1"
    only = client.get("/api/v1/security/events?kind=sign_in_ok", headers=auth(books, auditor)).json
    assert {e["kind"] for e in only} == {"sign_in_ok"}
    for who in (world.volunteer, world.officer, world.cashier_a, world.fund_manager):
        r = client.get("/api/v1/security/events", headers=auth(books, who))
        assert (r.status_code, r.json["error"]) == (403, "permission_denied")


def test_nobody_edits_the_security_log_through_the_app(app, client, books, world):
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/security/events")]
    assert rules and all(r.methods - {"HEAD", "OPTIONS"} == {"GET"} for r in rules)
    admin = auth(books, world.admin)
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        assert client.open("/api/v1/security/events", method=method, json={}, headers=admin).status_code == 405
        assert client.open("/api/v1/security/events/1", method=method, json={}, headers=admin).status_code in (404, 405)


def test_the_database_refuses_to_change_or_delete_an_event(books, world):
    security.record(books, "unlock", source="10.0.0.9", actor="test")
    for statement in ("UPDATE security_events SET kind = 'x'", "DELETE FROM security_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            with books.engine.begin() as conn:
                conn.execute(text(statement))
    with books.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM security_events WHERE kind = 'unlock'")).scalar() == 1


def test_key_rotation_is_logged(runner, books, world):
    from goldbean.cli import main

    result = runner.invoke(main, ["keys", "rotate", "--purpose", "wallet"])
    assert result.exit_code == 0, result.output
    with books.engine.connect() as conn:
        row = conn.execute(text("SELECT actor, detail FROM security_events WHERE kind = 'key_rotated'")).one()
    assert row.actor == "cli" and '"purpose": "wallet"' in row.detail


def test_attacks_change_no_balance(client, books, world):
    before = all_balances(books)
    for _ in range(3):
        client.post("/api/v1/auth/token", json={"username": "vol", "password": "x"})
        client.post("/api/v1/redemptions", json={"code": "x" * 30, "amount": 1},
                    headers={**auth(books, world.cashier_a), "Idempotency-Key": "k"})
    assert all_balances(books) == before


def test_old_rate_windows_are_pruned(books, world, clock, monkeypatch):
    from sqlalchemy import func, select

    from ledger.schema import RateCounter

    for i in range(5):
        security.take(books, "test", f"spray:{i}", "code_per_user")
    clock.advance(2 * 3600)
    monkeypatch.setattr(security, "PRUNE_CHANCE", 1.0)
    security.take(books, "test", "spray:new", "code_per_user")
    with books.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(RateCounter)) == 1


def test_admin_page_key_rotation_and_disabling_a_user_are_logged(client, books, world):
    from tests.admin_ui.conftest import csrf_of, post_confirmed

    page = client.get("/signin")
    r = client.post("/signin", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 302
    page = client.get("/admin")
    once = re.search(r'name="once" value="([^"]+)"', page.text).group(1)
    client.post("/admin/keys/rotate", data={"csrf_token": csrf_of(page.text), "purpose": "card", "once": once})
    post_confirmed(client, f"/admin/users/{world.volunteer}/active",  # disabling asks first, then acts once
                   {"csrf_token": csrf_of(page.text), "active": "0"})
    with books.engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, actor, user_id FROM security_events "
                                 "WHERE kind IN ('key_rotated', 'user_disabled') ORDER BY id")).all()
    assert [(r.kind, r.actor) for r in rows] == [("key_rotated", f"user:{world.admin}"),
                                                  ("user_disabled", f"user:{world.admin}")]
    assert rows[1].user_id == world.volunteer


def test_every_grant_and_revoke_is_logged_with_who_and_from_where(client, books, world):
    """Privilege changes through the API: a grant and a revoke each leave an event naming the admin and
    the address they came from; revoking a grant that is not there logs nothing."""
    admin = auth(books, world.admin)
    body = {"role": "officer", "org_unit_id": world.community}
    r = client.post(f"/api/v1/users/{world.other_volunteer}/grants", json=body, headers=admin,
                    environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert r.status_code == 200, r.json
    r = client.post(f"/api/v1/users/{world.other_volunteer}/grants/revoke", json=body, headers=admin,
                    environ_base={"REMOTE_ADDR": "10.9.8.6"})
    assert r.status_code == 200, r.json
    client.post(f"/api/v1/users/{world.other_volunteer}/grants/revoke", json=body, headers=admin)
    events = client.get("/api/v1/security/events", headers=admin).json
    changes = [e for e in events if e["kind"] in ("role_granted", "role_revoked")
               and e["user_id"] == world.other_volunteer and e["detail"]["role"] == "officer"]
    assert [(e["kind"], e["actor"], e["source"], e["detail"]["role"], e["detail"]["org_unit_id"])
            for e in changes] == [("role_revoked", f"user:{world.admin}", "10.9.8.6", "officer", world.community),
                                  ("role_granted", f"user:{world.admin}", "10.9.8.7", "officer", world.community)]
    assert all(e["username"] for e in changes)


def test_the_web_wallet_and_the_api_share_one_payment_code_limit(client, books, world):
    """Codes minted on the wallet page count against the same per-user limit as the API's (one use case)."""
    from tests.admin_ui.conftest import csrf_of

    n = security.DEFAULT_LIMITS["code_per_user"]
    headers = auth(books, world.volunteer)
    for _ in range(n - 10):
        assert client.post("/api/v1/wallet/codes", headers=headers).status_code == 201
    web = client.application.test_client()
    page = web.get("/signin")
    web.post("/signin", data={"username": "vol", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    page = web.get("/wallet")  # the page's own code is the (n - 9)th
    assert page.status_code == 200
    answers = [web.post("/wallet/code", headers={"X-CSRF-Token": csrf_of(page.text)}) for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 9 + [429]
    assert answers[-1].json["error"] == "rate_limited"
    r = client.post("/api/v1/wallet/codes", headers=headers)
    assert (r.status_code, r.json["error"]) == (429, "rate_limited")
    assert web.get("/wallet").status_code == 200  # the page still opens, without a code for now
