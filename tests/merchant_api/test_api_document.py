"""The OpenAPI document is the truth about the API's edge: every response it lists has a schema, and
what the server does at the edge (status codes, headers, refusals) is what the document says."""

from __future__ import annotations

import inspect

from ledger.redemption import core as redemption_core


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
            assert statuses & {"200", "201", "204"}, f"{method} {path}: {statuses}"


def test_the_domain_names_no_http_status():
    """The stored answer of an idempotent write is its body; the door names the status (201)."""
    fields = {f for f in redemption_core.Answer.__dataclass_fields__}
    assert fields == {"body", "replayed"}
    assert "201" not in inspect.getsource(redemption_core)
