"""The OpenAPI document is the truth about the API's edge: every response it lists has a schema, and
what the server does at the edge (status codes, headers, refusals) is what the document says."""

from __future__ import annotations

import inspect

from doors import books_of
from ledger.infra import idempotency
from ledger.redemption import redeeming, refunds
from tests.merchant_api.test_till_api import auth, build_world


def _responses(spec: dict):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            for status, response in op["responses"].items():
                yield f"{method.upper()} {path} {status}", response


def test_every_response_in_the_document_has_a_schema(client):
    spec = client.get("/api/v1/openapi.json").json
    missing = [name for name, r in _responses(spec)
               if "$ref" not in r and not any("schema" in c for c in r.get("content", {}).values())]
    assert not missing, f"responses without a schema: {missing}"


def test_every_operation_documents_its_success_and_its_errors(client):
    spec = client.get("/api/v1/openapi.json").json
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            statuses = set(op["responses"])
            assert "default" in statuses, f"{method} {path}"
            # 202: accepted and waiting (a volunteer sign-up waits for the community)
            assert statuses & {"200", "201", "202", "204"}, f"{method} {path}: {statuses}"


def test_the_domain_names_no_http_status():
    """The stored answer of an idempotent write is its body; the door names the status (201)."""
    fields = {f for f in idempotency.Answer.__dataclass_fields__}
    assert fields == {"body", "replayed"}
    assert all("201" not in inspect.getsource(m) for m in (idempotency, redeeming, refunds))


def _schema(spec: dict, name: str) -> dict:
    return spec["components"]["schemas"][name]


def test_the_document_says_what_the_parser_refuses(client):
    """Inputs the document allowed were refused by the domain: now the document names each rule."""
    spec = client.get("/api/v1/openapi.json").json
    claim = _schema(spec, "ClaimIn")["properties"]["category"]
    assert "theft" in claim["enum"]
    for name in ("AwardIn", "DonationIn", "AllocationIn"):
        assert _schema(spec, name)["properties"]["amount"]["minimum"] == 1, name
    assert _schema(spec, "RedeemIn")["oneOf"] == [{"required": ["amount"]}, {"required": ["items"]}]
    assert _schema(spec, "ProfileIn")["minProperties"] == 1
    params = {(p["name"], path): p for path, ops in spec["paths"].items() for op in ops.values()
              if isinstance(op, dict) for p in op.get("parameters", [])}
    assert "pattern" in params[("month", "/api/v1/leaderboards/volunteers")]["schema"]
    assert "pattern" in params[("at", "/api/v1/audit/trial-balance")]["schema"]
    assert params[("format", "/api/v1/cards/{card_id}/print")]["schema"]["enum"] == ["html", "png"]


def test_redeem_takes_exactly_one_of_amount_or_items_at_the_parser(client, app):
    books = books_of(app)
    world = build_world(books)
    headers = {**auth(books, world.cashier_a), "Idempotency-Key": "one-of"}
    for body in ({"code": "x"}, {"code": "x", "amount": 3, "items": [{"item_id": 1}]}):
        r = client.post("/api/v1/redemptions", json=body, headers=headers)
        assert r.status_code == 422 and r.json["details"]["json"]["_schema"], r.json
    r = client.get("/api/v1/leaderboards/volunteers?org_unit_id=1&month=2026-13", headers=auth(books, world.volunteer))
    assert r.status_code == 422 and "month" in r.json["details"]["query"]
    r = client.get("/api/v1/audit/trial-balance?at=yesterday", headers=auth(books, world.admin))
    assert r.status_code == 422 and "at" in r.json["details"]["query"]
