"""People API: profile and pseudonym, the org tree, admin-only registration and grants."""

from __future__ import annotations

import pytest

from doors import books_of
from ledger import earning
from ledger.access.tokens import issue_access_token
from tests.earning_world import build_world


@pytest.fixture
def w(app):
    return build_world(books_of(app))


def h(w, name):
    return {"Authorization": f"Bearer {issue_access_token(w.books, w.actor(name))[0]}"}


def test_pseudonym_is_the_volunteers_choice(w, client):
    earning.award_directly(w.books, w.actor("officerA"), volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                           amount=7, reference="r")
    board = lambda: client.get(f"/api/v1/leaderboards/volunteers?org_unit_id={w.units['c1']}",
                               headers=h(w, "v2")).json["entries"][0]["name"]
    assert board() == "V1"
    bad = client.patch("/api/v1/me", headers=h(w, "v1"), json={"show_pseudonym": True})
    assert bad.status_code == 422
    r = client.patch("/api/v1/me", headers=h(w, "v1"), json={"pseudonym": "金沙小蜜蜂", "show_pseudonym": True})
    assert r.status_code == 200 and r.json["show_pseudonym"] is True
    assert board() == "金沙小蜜蜂"
    me = client.get("/api/v1/me", headers=h(w, "v1")).json
    assert me["grants"] == [{"role": "volunteer", "org_unit_id": w.units["b1"], "merchant_id": None}]
    assert client.get("/api/v1/me").status_code == 401


def test_org_tree(w, client):
    units = client.get("/api/v1/org-units", headers=h(w, "v1")).json["org_units"]
    assert {u["level"] for u in units} == {"district", "street", "community", "group", "building"}


def test_admin_registers_and_grants_others_cannot(w, client):
    body = {"username": "newbie", "password": "long enough", "display_name": "新人", "phone": "13600000009"}
    for who in ("v1", "officerA", "fund", "auditor"):
        r = client.post("/api/v1/users", headers=h(w, who), json=body)
        assert r.status_code == 403 and r.json["error"] == "permission_denied"
        g = client.post(f"/api/v1/users/{w.users['v1']}/grants", headers=h(w, who),
                        json={"role": "officer", "org_unit_id": w.units["district"]})
        assert g.status_code == 403
    assert client.post("/api/v1/users", json=body).status_code == 401
    r = client.post("/api/v1/users", headers=h(w, "admin"), json=body)
    assert r.status_code == 201, r.json
    uid = r.json["id"]
    assert client.post("/api/v1/users", headers=h(w, "admin"), json=body).json["error"] == "username_taken"
    weak = client.post("/api/v1/users", headers=h(w, "admin"), json={**body, "username": "x2", "phone": None,
                                                                      "password": "short"})
    assert weak.json["error"] == "weak_password"
    bad = client.post(f"/api/v1/users/{uid}/grants", headers=h(w, "admin"), json={"role": "officer"})
    assert bad.status_code == 422
    ok = client.post(f"/api/v1/users/{uid}/grants", headers=h(w, "admin"),
                     json={"role": "officer", "org_unit_id": w.units["streetB"]})
    assert ok.status_code == 200
    tok = client.post("/api/v1/auth/token", json={"username": "13600000009", "password": "long enough"}).json
    hdr = {"Authorization": f"Bearer {tok['access_token']}"}
    assert client.get("/api/v1/fund/budgets", headers=hdr).status_code == 200
    client.post(f"/api/v1/users/{uid}/grants/revoke", headers=h(w, "admin"),
                json={"role": "officer", "org_unit_id": w.units["streetB"]})
    assert client.get("/api/v1/fund/budgets", headers=hdr).status_code == 403  # at once, same token


def test_only_volunteers_choose_a_leaderboard_name(w, client):
    for who in ("auditor", "officerA", "cashier"):
        r = client.patch("/api/v1/me", headers=h(w, who), json={"pseudonym": "x"})
        assert r.status_code == 403, who


def test_answers_about_another_user_show_their_number_masked_and_me_in_full(w, client):
    """PIPL, minimum necessary: /me is the caller's own number in full; registering a person and granting or
    revoking their roles answer with the same profile shape, but the number masked (138****5678)."""
    body = {"username": "caller", "password": "long enough", "display_name": "回电人", "phone": "13600000009"}
    made = client.post("/api/v1/users", headers=h(w, "admin"), json=body)
    assert made.status_code == 201 and made.json["phone"] == "136****0009"
    uid = made.json["id"]
    grant = {"role": "volunteer", "org_unit_id": w.units["c1"]}
    granted = client.post(f"/api/v1/users/{uid}/grants", headers=h(w, "admin"), json=grant)
    assert granted.status_code == 200 and granted.json["phone"] == "136****0009"
    revoked = client.post(f"/api/v1/users/{uid}/grants/revoke", headers=h(w, "admin"), json=grant)
    assert revoked.status_code == 200 and revoked.json["phone"] == "136****0009"
    for answer in (made, granted, revoked):
        assert "13600000009" not in answer.get_data(as_text=True)
    tok = client.post("/api/v1/auth/token", json={"username": "13600000009", "password": "long enough"}).json
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert me.status_code == 200 and me.json["phone"] == "13600000009"  # one's own number, in full
    # an admin changing their own grants sees their own number in full; a user without one stays null
    from ledger.schema import User

    with w.books.session() as s:
        s.get(User, w.users["admin"]).phone = "13700000001"
    admin = client.post(f"/api/v1/users/{w.users['admin']}/grants", headers=h(w, "admin"),
                        json={"role": "auditor"}).json
    assert admin["phone"] == "13700000001" and admin["id"] == w.users["admin"]
    nophone = client.post("/api/v1/users", headers=h(w, "admin"), json={**body, "username": "nophone", "phone": None})
    assert nophone.status_code == 201 and nophone.json["phone"] is None
