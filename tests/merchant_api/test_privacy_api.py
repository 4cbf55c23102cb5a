"""GET /api/v1/me/export: one's own data as a JSON attachment (or a PDF), never another's; sign-in needed."""

from __future__ import annotations

import json

import pytest

from doors import books_of
from ledger import earning
from tests import needs
from tests.earning_world import build_world, tip
from tests.merchant_api.test_people_api import h


@pytest.fixture
def w(app):
    return build_world(books_of(app))


def test_a_volunteer_downloads_their_own_data_only(w, client) -> None:
    tip(w, "v1")
    tip(w, "v2")
    resp = client.get("/api/v1/me/export", headers=h(w, "v1"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert "attachment" in resp.headers["Content-Disposition"] and resp.headers["Cache-Control"] == "no-store"
    data = json.loads(resp.get_data(as_text=True))
    assert data["user_id"] == w.users["v1"] and len(data["claims"]) == 1
    assert all(c["volunteer_id"] == w.users["v1"] for c in data["claims"])
    assert client.get("/api/v1/me/export").status_code == 401
    bad = client.get("/api/v1/me/export?format=xml", headers=h(w, "v1"))
    assert bad.status_code == 422 and bad.json["error"]


def test_the_pdf_export(w, client) -> None:
    needs.cjk_font()
    resp = client.get("/api/v1/me/export?format=pdf", headers=h(w, "v1"))
    assert resp.status_code == 200 and resp.data.startswith(b"%PDF")


def test_a_volunteer_asks_for_erasure_and_their_community_staff_complete_it(w, client, runner) -> None:
    earning.award_directly(w.books, w.actor("officerA2"), volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                           amount=9, reference="duty-1")
    mine = h(w, "v1")
    asked = client.post("/api/v1/me/erasure", headers=mine)
    assert asked.status_code == 202, asked.json
    again = client.post("/api/v1/me/erasure", headers=h(w, "v1"))
    assert again.status_code == 409 and again.json["error"] == "erasure_already_requested"
    eid = asked.json["id"]
    assert client.post(f"/api/v1/erasures/{eid}/complete", headers=h(w, "v2")).status_code == 403
    assert client.post(f"/api/v1/erasures/{eid}/complete", headers=h(w, "officerB")).json["error"] == "out_of_scope"
    listed = client.get("/api/v1/erasures", headers=h(w, "officerA2")).json["erasures"]
    assert [e["id"] for e in listed] == [eid]
    hdr = h(w, "officerA2")
    done = client.post(f"/api/v1/erasures/{eid}/complete", headers=hdr)
    assert done.status_code == 200 and done.json["status"] == "completed", done.json
    assert done.json["returned_beans"] == 9
    assert client.post("/api/v1/erasures/999/complete", headers=hdr).json["error"] == "erasure_not_found"
    assert client.get("/api/v1/me/export", headers=mine).status_code in (401, 403)  # the old token is dead
    verified = runner.invoke(args=["ledger", "verify"])
    assert verified.exit_code == 0 and verified.output.startswith("OK:"), verified.output


def test_the_routes_are_in_the_openapi_document(client) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/api/v1/me/export", "/api/v1/me/erasure", "/api/v1/erasures",
                 "/api/v1/erasures/{erasure_id}/complete"):
        assert path in paths, path
