"""The shared edge of every input (``merchant_api/schemas.py``): each API area declares its bodies and queries
on ``In`` with ``String``, so a NUL character in any string field of any route is refused at the edge with 422
``validation_failed`` naming the field (SQLite would store it; PostgreSQL cannot), and the document says so.

The routes and their string fields are read from the OpenAPI document, so a route added later is covered."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from doors import books_of
from ledger.access.identity import create_org_unit_in, create_user_in, grant_role_in, hash_password, load_actor
from ledger.access.tokens import issue_access_token
from merchant_api.schemas import NO_NUL_PATTERN

NUL = "\x00"
AREAS = ("radar", "patrols", "recruitment", "surveys", "privacy", "people")
ROLES = ("volunteer", "leader", "officer", "admin", "fund_manager", "auditor")


@pytest.fixture
def every_role(app) -> dict[str, str]:
    """One person holding every staff and volunteer role over a community, so that no route stops at the door."""
    books = books_of(app)
    with books.session() as s:
        district = create_org_unit_in(s, "panlong", "盘龙区", "district")
        community = create_org_unit_in(s, "panlong.jinsha", "金沙社区", "community", district.id)
        user = create_user_in(s, "edge-all", "", "边界", password_hash=hash_password("edge-all-pw"))
        where = {"volunteer": community.id, "leader": community.id, "officer": district.id}
        for role in ROLES:
            grant_role_in(s, user.id, role, where.get(role))
        s.flush()
        actor = load_actor(s, user.id)
    token, _ = issue_access_token(books, actor)
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": "nul-edge"}


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _is_string(schema: dict) -> bool:
    kind = schema.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def _nul_values(spec: dict, schema: dict, depth: int = 0):
    """(a value holding a NUL somewhere, where) for the string places of ``schema``."""
    schema = _resolve(spec, schema)
    if _is_string(schema) and "enum" not in schema:
        yield NUL, ""
    elif schema.get("type") == "array" and depth < 3:
        for value, where in _nul_values(spec, schema.get("items", {}), depth + 1):
            yield [value], f"[]{where}"
    elif schema.get("type") == "object" and depth < 3:
        for name, prop in schema.get("properties", {}).items():
            for value, where in _nul_values(spec, prop, depth + 1):
                yield {name: value}, f".{name}{where}"
        if isinstance(schema.get("additionalProperties"), dict):
            yield {"1": NUL}, ".*"


def _operations(spec: dict):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "parameters" or not set(op.get("tags", ())) & set(AREAS):
                continue
            yield method.upper(), path, re.sub(r"\{\w+\}", "1", path.replace("/api/v1", "", 1)), op


def _cases(spec: dict):
    for method, path, url, op in _operations(spec):
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body is not None:
            for value, where in _nul_values(spec, body):
                yield method, path, url, "json", value, where
        for param in op.get("parameters", []):
            if param["in"] == "query" and _is_string(param.get("schema", {})) and "enum" not in param["schema"]:
                yield method, path, url, "query", param["name"], param["name"]


def test_a_nul_character_in_any_string_of_these_areas_is_refused_at_the_edge(app, client, every_role) -> None:
    spec = client.get("/api/v1/openapi.json").json
    cases = list(_cases(spec))
    tried = {path for _, path, *_ in cases}
    for must in ("/api/v1/notices", "/api/v1/reports", "/api/v1/posts", "/api/v1/recruitment",
                 "/api/v1/signups", "/api/v1/surveys", "/api/v1/me/password"):
        assert must in tried, f"{must}: no string field found in the document"
    wrong = []
    for method, path, url, location, value, where in cases:
        if location == "json":
            r = client.open(f"/api/v1{url}", method=method, json=value, headers=every_role)
            field = next(iter(value))
        else:
            r = client.open(f"/api/v1{url}?{value}={quote(NUL)}", method=method, headers=every_role)
            field = value
        body = r.get_json(silent=True) or {}
        if r.status_code != 422 or body.get("error") != "validation_failed" \
                or field not in (body.get("details") or {}).get(location, {}):
            wrong.append(f"{method} {path} {location}{where}: {r.status_code} {body.get('error')}")
    assert not wrong, "a NUL went past the edge:\n" + "\n".join(wrong)


def test_the_document_says_no_nul_for_the_strings_of_these_areas(client) -> None:
    """The pattern is in the document, so no client is refused what the document allowed."""
    spec = client.get("/api/v1/openapi.json").json
    missing = []
    for method, path, _url, op in _operations(spec):
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body is None:
            continue
        schema = _resolve(spec, body)
        for name, prop in schema.get("properties", {}).items():
            prop = _resolve(spec, prop)
            if _is_string(prop) and "enum" not in prop and "pattern" not in prop and "format" not in prop:
                missing.append(f"{method} {path} {name}")
    assert not missing, f"strings without a pattern: {missing}"
    assert spec["components"]["schemas"]["ReportIn"]["properties"]["text"]["pattern"] == NO_NUL_PATTERN
