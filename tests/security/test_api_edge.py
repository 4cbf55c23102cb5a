"""Bad input at the API's edge: never a 500, never HTML, always the JSON error shape with a stable code;
limits below the server's own; the document is what the server does (bodies, query parameters, 405s,
headers)."""

from __future__ import annotations

import pytest

from goldbean import serve
from merchant_api import edge
from tests.redemption_world import PASSWORD
from tests.security.conftest import all_balances, auth

DEEP = ("[" * 1000 + "]" * 1000).encode()
SURROGATE = b'{"username": "\\ud800", "password": "x"}'
HUGE_INT = b'{"username": "a", "password": "x", "n": ' + b"9" * 5000 + b"}"


def refused(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.data[:300])
    assert resp.mimetype == "application/json", resp.data[:300]
    body = resp.get_json()
    assert body["error"] == code and body["message"], body
    return body


@pytest.mark.parametrize("body", [DEEP, SURROGATE, HUGE_INT, b'{"a": NaN}', b'{"a": "\xff"}'],
                         ids=["deep", "surrogate", "huge_int", "nan", "not_utf8"])
def test_malformed_json_is_a_400_in_the_json_shape_even_unauthenticated(client, books, world, body):
    before = all_balances(books)
    r = client.post("/api/v1/auth/token", data=body, content_type="application/json")
    assert refused(r, 400, "bad_request")["details"]["json"]
    headers = auth(books, world.volunteer)
    for method, path in (("PATCH", "/api/v1/me"), ("POST", "/api/v1/claims")):
        r = client.open(path, method=method, data=body, content_type="application/json", headers=headers)
        assert refused(r, 400, "bad_request")["details"]["json"], (method, path)
    assert all_balances(books) == before


def test_surrogate_in_a_nested_key_or_list_is_refused(client, books, world):
    body = b'{"code": "x", "items": [{"item_id": 1, "\\udfff": 2}]}'
    r = client.post("/api/v1/redemptions", data=body, content_type="application/json",
                    headers={**auth(books, world.cashier_a), "Idempotency-Key": "k-1"})
    refused(r, 400, "bad_request")


def test_a_nul_character_is_refused_naming_the_field(client, books, world):
    r = client.patch("/api/v1/me", json={"display_name": "a\x00b"}, headers=auth(books, world.volunteer))
    body = refused(r, 422, "validation_failed")
    assert "display_name" in body["details"]["json"]
    r = client.post("/api/v1/auth/token", json={"username": "volunteer\x00", "password": "pw"})
    assert "username" in refused(r, 422, "validation_failed")["details"]["json"]


def test_patch_me_needs_a_body_as_the_document_says(client, books, world):
    headers = auth(books, world.volunteer)
    assert refused(client.patch("/api/v1/me", headers=headers), 422, "validation_failed")
    assert refused(client.patch("/api/v1/me", json={}, headers=headers), 422, "validation_failed")
    assert client.patch("/api/v1/me", json={"pseudonym": "豆豆"}, headers=headers).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/wallet", "/api/v1/org-units", "/api/v1/keys",
                                  "/api/v1/claims", "/api/v1/audit/trial-balance"])
def test_unknown_query_parameters_are_refused_on_every_route(client, books, world, path):
    r = client.get(f"{path}?surprise=1", headers=auth(books, world.admin))
    assert refused(r, 422, "validation_failed")["details"] == {"query": {"surprise": ["Unknown field."]}}


def test_card_print_takes_only_the_documented_format(client, books, world, card_code):
    headers = auth(books, world.officer)
    refused(client.get("/api/v1/cards/1/print?format=gif", headers=headers), 422, "validation_failed")
    page = client.get("/api/v1/cards/1/print", headers=headers)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    png = client.get("/api/v1/cards/1/print?format=png", headers=headers)
    assert png.status_code == 200 and png.mimetype == "image/png"


def test_405_says_which_methods_are_allowed(client):
    r = client.delete("/api/v1/auth/token")
    refused(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]


def test_sizes_are_refused_in_json_below_the_servers_own_limits(client, books, world):
    headers = auth(books, world.cashier_a)
    r = client.post("/api/v1/redemptions", json={"code": "x", "amount": 1},
                    headers={**headers, "Idempotency-Key": "k" * 9000})
    assert refused(r, 422, "validation_failed")["details"]["headers"]["Idempotency-Key"]
    many = {f"X-Filler-{i}": "x" for i in range(120)}
    refused(client.get("/api/v1/keys", headers=many), 431, "headers_too_large")
    refused(client.get("/api/v1/keys", headers={"X-Big": "x" * 9000}), 431, "headers_too_large")
    refused(client.get("/api/v1/keys?" + "a" * 5000), 414, "uri_too_long")
    refused(client.get("/api/v1/keys", headers={"X-Nul": "a\x00b"}), 400, "bad_request")


def test_the_servers_limits_sit_above_the_apps():
    assert serve.limit_request_line > edge.MAX_URL_LENGTH
    assert serve.limit_request_fields > edge.MAX_HEADER_FIELDS
    assert serve.limit_request_field_size > max(edge.MAX_HEADER_BYTES, 9000 + len("Idempotency-Key: "))


def test_credentials_are_never_cached_and_the_docs_page_is_never_framed(client, books, world):
    r = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "wrong-password"})
    assert r.status_code == 401
    from ledger.access.identity import load_actor
    from ledger.access.tokens import issue_access_token

    with books.session(readonly=True) as s:
        token, _ = issue_access_token(books, load_actor(s, world.volunteer))
    code = client.post("/api/v1/wallet/codes", headers={"Authorization": f"Bearer {token}"})
    assert code.status_code == 201 and code.headers["Cache-Control"] == "no-store"
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and docs.headers["X-Frame-Options"] == "DENY"
    csp = docs.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "'sha256-" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]


def test_a_token_answer_is_not_stored_by_caches(client, books, world):
    username = client.get("/api/v1/me", headers=auth(books, world.volunteer)).json["username"]
    r = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"


def test_one_idempotency_mistake_one_answer(client, books, world):
    """A donation's key reused with another amount answers like a redemption's: 422 idempotency_conflict."""
    headers = auth(books, world.fund_manager)
    first = client.post("/api/v1/fund/donations", json={"amount": 50, "donor": "x", "key": "d-1"}, headers=headers)
    assert first.status_code == 201
    again = client.post("/api/v1/fund/donations", json={"amount": 50, "donor": "x", "key": "d-1"}, headers=headers)
    assert again.status_code == 201 and again.json["replayed"] is True
    other = client.post("/api/v1/fund/donations", json={"amount": 51, "donor": "x", "key": "d-1"}, headers=headers)
    refused(other, 422, "idempotency_conflict")


def test_a_route_that_takes_no_body_refuses_a_malformed_one_too(client, books, world):
    r = client.post("/api/v1/wallet/codes", data=DEEP, content_type="application/json",
                    headers=auth(books, world.volunteer))
    refused(r, 400, "bad_request")


def test_answers_that_show_a_secret_once_are_not_cached(client, books, world):
    """A till key and a card's generated PIN are shown once: no cache may keep them."""
    till = client.post(f"/api/v1/merchants/{world.merchant_a}/tills", json={"name": "front"},
                       headers=auth(books, world.owner_a))
    assert till.status_code == 201 and till.headers["Cache-Control"] == "no-store"
    card = client.post("/api/v1/cards", json={"user_id": world.volunteer}, headers=auth(books, world.officer))
    assert card.status_code == 201 and card.json["pin"] and card.headers["Cache-Control"] == "no-store"
