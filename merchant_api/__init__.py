"""The versioned JSON REST API under ``/api/v1`` (flask-smorest), for tills, wallet apps and police
systems. Views are thin: parse, call one ``ledger`` use case with the acting user, map the result."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask) -> Api:
    app.config.setdefault("API_TITLE", "Gold Bean API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    # every operation needs a bearer token unless it says `security=[]` (public endpoints)
    app.config.setdefault("API_SPEC_OPTIONS", {"security": [{"bearerAuth": []}]})
    from . import docs as api_docs

    api_docs.configure(app)
    api = Api(app)
    api_docs.install(app, api)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                       "description": "POST /api/v1/auth/token; EdDSA JWT, typ gb-access+jwt, 15 minutes"})
    app.extensions["goldbean.api"] = api

    from . import errors, health

    app.register_blueprint(health.bp)
    for blueprint in _blueprints():
        api.register_blueprint(blueprint, url_prefix=f"/api/v1{blueprint.url_prefix or ''}")
    errors.install(app)
    return api


def _blueprints() -> list:
    """Every API blueprint, in one list, so the access-matrix test can see them all."""
    from . import auth_api, earning_api, ledger_api, till_api, wallet_api

    from . import audit_api
    from . import security_api
    from . import people_api

    return [ledger_api.blp, auth_api.blp, earning_api.blp, wallet_api.blp, wallet_api.cards_blp, till_api.blp,
            audit_api.blp, security_api.blp, people_api.blp]
