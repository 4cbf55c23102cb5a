"""The earning API: an access matrix of every endpoint by every role, in and out of scope.

A refused request changes nothing; an allowed one answers 2xx. Objects live in 金沙 (community c1,
street A): ``officerA`` serves street A (in scope), ``officerB`` street B (out of scope).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from doors import books_of
from ledger import earning
from ledger.access.tokens import issue_access_token
from ledger.schema import Award, Claim, Transfer
from tests.earning_world import build_world, patrol, tip

ACTORS = ("anon", "v1", "leader", "officerA", "officerB", "fund", "auditor", "admin", "cashier")
EVERYONE = set(ACTORS) - {"anon"}


@pytest.fixture
def w(app):
    books = books_of(app)
    # the matrix makes many awards to one volunteer: caps are tested in tests/ledger/test_earning.py
    books.settings = books.settings.with_overrides({"earning": {
        "volunteer_daily_cap": 10**6, "volunteer_monthly_cap": 10**6, "officer_daily_cap": 10**6}})
    return build_world(books)


def token(w, name: str) -> dict[str, str]:
    if name == "anon":
        return {}
    tok, _ = issue_access_token(w.books, w.actor(name))
    return {"Authorization": f"Bearer {tok}"}


def snapshot(books) -> tuple:
    with books.session(readonly=True) as s:
        return (s.scalar(select(Transfer.id).order_by(Transfer.id.desc()).limit(1)),
                tuple(s.execute(select(Award.id, Award.status, Award.reversed_amount).order_by(Award.id)).all()),
                tuple(s.execute(select(Claim.id, Claim.status).order_by(Claim.id)).all()))


def _times(w, hours: int = 2) -> dict[str, str]:
    end = w.books.now() - dt.timedelta(hours=1)
    return {"occurred_at": (end - dt.timedelta(hours=hours)).isoformat(), "ended_at": end.isoformat()}


def _big_award(w):
    return earning.award_directly(w.books, w.actor("officerA2"), volunteer_id=w.users["v1"],
                                  org_unit_id=w.units["c1"], amount=150, reference="r")


def _small_award(w):
    return earning.award_directly(w.books, w.actor("officerA2"), volunteer_id=w.users["v1"],
                                  org_unit_id=w.units["c1"], amount=5, reference="r")


# name -> (method, make(w) -> (path, json), roles allowed)
ENDPOINTS = {
    "submit_own_claim": ("POST", lambda w: ("/api/v1/claims", {"kind": "patrol", "org_unit_id": w.units["c1"],
                                                                **_times(w)}), {"v1", "leader"}),
    "submit_claim_for_v1": ("POST", lambda w: ("/api/v1/claims", {
        "kind": "patrol", "volunteer_id": w.users["v1"], "org_unit_id": w.units["c1"], **_times(w)}),
        {"v1", "leader"}),  # v1 naming themselves is their own claim
    "list_claims": ("GET", lambda w: ("/api/v1/claims", None), EVERYONE),
    "get_claim": ("GET", lambda w: (f"/api/v1/claims/{tip(w, 'v1').id}", None),
                  {"v1", "officerA", "auditor", "admin"}),
    "verify_claim": ("POST", lambda w: (f"/api/v1/claims/{patrol(w, 'v1', 'c1', 1).id}/verify",
                                        {"reason": "ok"}), {"officerA"}),
    "reject_claim": ("POST", lambda w: (f"/api/v1/claims/{patrol(w, 'v1', 'c1', 1).id}/reject",
                                        {"reason": "no"}), {"officerA"}),
    "direct_award": ("POST", lambda w: ("/api/v1/awards", {"volunteer_id": w.users["v1"],
                                                            "org_unit_id": w.units["c1"], "amount": 5,
                                                            "reference": "case 1"}), {"officerA"}),
    "list_awards": ("GET", lambda w: ("/api/v1/awards", None), EVERYONE),
    "get_award": ("GET", lambda w: (f"/api/v1/awards/{_small_award(w).id}", None),
                  {"v1", "officerA", "auditor", "admin", "fund"}),
    "approve_award": ("POST", lambda w: (f"/api/v1/awards/{_big_award(w).id}/approve", {}), {"officerA"}),
    "void_award": ("POST", lambda w: (f"/api/v1/awards/{_big_award(w).id}/void", {"reason": "no"}),
                   {"officerA"}),
    "reverse_award": ("POST", lambda w: (f"/api/v1/awards/{_small_award(w).id}/reverse", {"reason": "x"}),
                      {"officerA"}),
    "donation": ("POST", lambda w: ("/api/v1/fund/donations", {"amount": 100, "donor": "a shop"}), {"fund"}),
    "allocation": ("POST", lambda w: ("/api/v1/fund/allocations", {"org_unit_id": w.units["c1"], "amount": 100}),
                   {"fund"}),
    "fund_position": ("GET", lambda w: ("/api/v1/fund", None), {"fund", "auditor", "admin"}),
    "budgets": ("GET", lambda w: ("/api/v1/fund/budgets", None),
                {"fund", "auditor", "admin", "officerA", "officerB"}),
    "volunteer_board": ("GET", lambda w: (f"/api/v1/leaderboards/volunteers?org_unit_id={w.units['streetA']}",
                                          None), EVERYONE),
    "community_board": ("GET", lambda w: (f"/api/v1/leaderboards/communities?org_unit_id={w.units['district']}",
                                          None), EVERYONE),
}


def test_every_earning_endpoint_is_in_the_matrix(app):
    from merchant_api import earning_api

    rules = {(r.rule, m) for r in app.url_map.iter_rules() if r.endpoint.startswith(f"{earning_api.blp.name}.")
             for m in r.methods - {"HEAD", "OPTIONS"}}
    assert len(rules) == 17  # 17 routes; the matrix covers each (two claim submissions, one route)
    assert len(ENDPOINTS) == 18


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_access_matrix(w, client, name):
    method, make, allowed = ENDPOINTS[name]
    for actor in sorted(set(ACTORS) - allowed) + sorted(allowed):
        path, body = make(w)
        before = snapshot(w.books)
        resp = client.open(path, method=method, json=body, headers=token(w, actor))
        if actor in allowed:
            assert resp.status_code in (200, 201), (actor, resp.status_code, resp.json)
        else:
            assert resp.status_code in (401, 403, 404), (actor, resp.status_code, resp.json)
            assert resp.json["error"] in ("not_authenticated", "permission_denied", "out_of_scope",
                                          "claim_not_found", "award_not_found", "own_approval")
            assert snapshot(w.books) == before, actor


def test_lists_are_scoped(w, client):
    mine = tip(w, "v1")
    other = tip(w, "v2")
    ids = lambda who: {c["id"] for c in client.get("/api/v1/claims", headers=token(w, who)).json}
    assert ids("officerA") == {mine.id} and ids("officerB") == {other.id}
    assert ids("v1") == {mine.id} and ids("cashier") == set() and ids("auditor") == {mine.id, other.id}
    details = client.get(f"/api/v1/claims/{mine.id}", headers=token(w, "officerA")).json["details"]
    assert details["location"] == "building 1"
    assert client.get(f"/api/v1/claims/{mine.id}", headers=token(w, "auditor")).json["details"] is None


def test_end_to_end_over_http(w, client):
    def login(name: str) -> dict[str, str]:
        r = client.post("/api/v1/auth/token", json={"username": name, "password": "pw"})
        assert r.status_code == 200, r.json
        return {"Authorization": f"Bearer {r.json['access_token']}"}

    v1, officer, officer2 = login("v1"), login("officerA"), login("officerA2")
    c = client.post("/api/v1/claims", headers=v1, json={
        "kind": "tip", "category": "fraud", "description": "scam call centre", "location": "3号楼",
        "occurred_at": (w.books.now() - dt.timedelta(hours=2)).isoformat()})
    assert c.status_code == 201, c.json
    v = client.post(f"/api/v1/claims/{c.json['id']}/verify", headers=officer,
                    json={"reason": "confirmed", "tier": "critical"})
    assert v.status_code == 200 and v.json["award_status"] == "pending_approval"
    own = client.post(f"/api/v1/awards/{v.json['award_id']}/approve", headers=officer, json={})
    assert own.status_code == 403 and own.json["error"] == "own_approval"
    ok = client.post(f"/api/v1/awards/{v.json['award_id']}/approve", headers=officer2, json={})
    assert ok.status_code == 200 and ok.json["status"] == "posted" and ok.json["amount"] == 200
    board = client.get(f"/api/v1/leaderboards/volunteers?org_unit_id={w.units['c1']}", headers=v1).json
    assert board["entries"][0] == {"rank": 1, "name": "V1", "beans": 200, "awards": 1}
    # strict input: unknown fields and stringly integers are refused
    bad = client.post("/api/v1/awards", headers=officer, json={"volunteer_id": str(w.users["v1"]),
                                                                "org_unit_id": w.units["c1"], "amount": 5,
                                                                "reference": "r"})
    assert bad.status_code == 422
    extra = client.post("/api/v1/fund/donations", headers=login("fund"), json={"amount": 5, "donor": "x",
                                                                              "to": "me"})
    assert extra.status_code == 422
    spec = client.get("/api/v1/openapi.json").json
    assert "requestBody" in spec["paths"]["/api/v1/claims"]["post"]
