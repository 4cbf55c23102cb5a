"""The access matrix, generated from the app's URL map: every API route must declare its policy
(``@requires_roles(...)``, a till's ``till_auth`` or ``@public`` from ``merchant_api.auth``), or be listed
in ``PUBLIC`` below; a new route that declares nothing fails here. Then, for every route and method:
an anonymous caller gets 401 and a signed-in caller holding none of the required roles gets 403, each
with its stable code, before anything is parsed or changed."""

from __future__ import annotations

import re

import pytest

from ledger.access.identity import create_user_in, grant_role_in
from merchant_api.auth import access_policy

from .conftest import all_balances, auth

# endpoints open to anyone that are not our views (flask-smorest's documents, health probes, assets)
PUBLIC = {
    "api-docs.openapi_json", "api-docs.openapi_swagger_ui", "api_docs_assets.asset", "keys.jwks",
    "health.healthz", "health.readyz", "static",
}
ROLES = ("volunteer", "leader", "officer", "cashier", "merchant_owner", "fund_manager", "auditor", "admin")


def api_routes(app) -> list[tuple[str, str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, re.sub(r"<(?:[^:>]+:)?([^>]+)>", "1", rule.rule)))
    return out


def undeclared_api_routes(app) -> list[tuple[str, str, str]]:
    return [(endpoint, method, path) for endpoint, method, path in api_routes(app)
            if endpoint not in PUBLIC and access_policy(app.view_functions[endpoint]) is None]


def test_every_api_route_declares_a_policy(app):
    assert not undeclared_api_routes(app), \
        f"routes without an access policy (use requires_roles or public): {undeclared_api_routes(app)}"
    assert len(api_routes(app)) > 40


# pages and endpoints outside /api/ that anyone may open (the pages declare their roles with
# admin_ui's ``web.requires``, which sets ``required_roles`` like the API's decorator)
PUBLIC_PAGES = {
    "ui.static", "ui.index", "ui.switch_language", "ui_auth.sign_in", "ui_auth.sign_in_post", "ui_auth.sign_out",
    "prometheus_metrics",  # operators scrape it on the private network (docs/operations.md)
}


def test_every_page_declares_a_policy_too(app):
    undeclared = sorted(
        (rule.endpoint, rule.rule) for rule in app.url_map.iter_rules()
        if not rule.rule.startswith("/api/") and rule.endpoint not in PUBLIC | PUBLIC_PAGES
        and access_policy(app.view_functions[rule.endpoint]) is None)
    assert not undeclared, f"pages without an access policy (use web.requires or list them as public): {undeclared}"


def test_the_matrix_catches_a_route_without_policy(app_config):
    from doors import books_of
    from goldbean.app import create_app
    from merchant_api.auth import public, requires_roles

    fresh = create_app(app_config)
    fresh.add_url_rule("/api/v1/oops", "oops", lambda: "open to all by mistake")
    fresh.add_url_rule("/api/v1/fine", "fine", requires_roles("admin")(lambda: "admins"))
    fresh.add_url_rule("/api/v1/open", "open", public(lambda: "declared open"))
    assert [e for e, _, _ in undeclared_api_routes(fresh)] == ["oops"]
    books_of(fresh).engine.dispose()


@pytest.fixture
def role_users(books):
    """One user per role, granted district-wide (no org unit or merchant), plus one with no role."""

    def work(s):
        ids = {"nobody": create_user_in(s, "nobody", "pw", "nobody").id}
        for role in ROLES:
            ids[role] = create_user_in(s, f"only_{role}", "pw", role).id
            grant_role_in(s, ids[role], role)
        return ids

    return books.run(work)


def test_anonymous_and_wrong_role_callers_are_refused_everywhere(app, client, books, world, role_users):
    before = all_balances(books)
    headers = {name: auth(books, uid) for name, uid in role_users.items()}
    checked = 0
    for endpoint, method, path in api_routes(app):
        view = app.view_functions[endpoint]
        if endpoint in PUBLIC or access_policy(view) == "public":
            continue
        r = client.open(path, method=method, json={})
        assert r.status_code == 401 and r.json["error"] == "not_authenticated", (method, path, r.status_code, r.json)
        required = getattr(view, "required_roles", ())
        outsiders = ["nobody"] + [role for role in ROLES if role not in required]
        if not required:
            outsiders = []  # any signed-in user may call it; scope is the use case's business
        for who in outsiders:
            r = client.open(path, method=method, json={}, headers=headers[who])
            assert r.status_code == 403 and r.json["error"] == "permission_denied", (who, method, path, r.json)
            checked += 1
    assert checked > 100
    assert all_balances(books) == before


# --- the doors name the principal; the rules live in ledger/access/policy.py --------------------------

def test_the_doors_hold_no_merchant_or_scope_rules():
    """Which merchant, org unit, card or wallet a principal may act on is decided by the use case with
    ``ledger.access.policy``; a door that reads grants itself would be a second, drifting copy of a rule.
    Only the decorators that refuse a caller holding none of a route's roles look at roles."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    role_gates = {"merchant_api/auth.py", "admin_ui/web.py", "merchant_api/till_api.py"}
    found = []
    for door in ("merchant_api", "admin_ui", "doors"):
        for path in sorted((root / door).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            text = path.read_text(encoding="utf-8")
            for needle in ("merchant_ids_for", "is_district_wide", "in_scope", "scope_units", "org_units_for"):
                if re.search(rf"\b{needle}\(", text):
                    found.append((name, needle))
            if re.search(r"\bhas_role\(", text) and name not in role_gates:
                found.append((name, "has_role("))
    assert not found, f"authorisation in a door (move it into ledger/access/policy.py): {found}"


def test_till_roles_are_the_policys():
    import admin_ui.till
    import merchant_api.till_api
    from ledger.access import policy

    assert merchant_api.till_api.TILL_ROLES is policy.TILL_ROLES
    assert admin_ui.till.TILL_ROLES is policy.TILL_ROLES
