"""The versioned JSON REST API under ``/api/v1`` (flask-smorest), for tills, wallet apps and police
systems. Views are thin: parse, call one ``ledger`` use case with the acting user, map the result."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api
from flask_smorest.spec.plugins import integerconverter2paramschema
from werkzeug.routing import IntegerConverter


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
    # ids in paths are 64-bit like the columns they name; a larger one is a 404, not an overflow
    app.url_map.converters["int"] = Int64Converter
    api = _Api(app)
    api.register_converter(Int64Converter, integerconverter2paramschema)
    api.ma_plugin.converter.add_attribute_function(int64_bounds)
    api_docs.install(app, api)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                       "description": "POST /api/v1/auth/token; EdDSA JWT, typ gb-access+jwt, 15 minutes"})
    app.extensions["goldbean.api"] = api

    from . import edge, errors

    edge.install(app)  # size limits and unknown query parameters, before any view
    for blueprint in _blueprints():
        api.register_blueprint(blueprint, url_prefix=f"/api/v1{blueprint.url_prefix or ''}")
    errors.install(app)
    from .schemas import document_extras

    document_extras(api.spec, api.ma_plugin.converter.refs)
    return api


INT64_MAX = 2**63 - 1


class Int64Converter(IntegerConverter):
    """``<int:...>`` bounded to a signed 64-bit id (SQLite's INTEGER, PostgreSQL's BIGINT)."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = INT64_MAX, signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)


def int64_bounds(self, field, ret, **kwargs):
    """Document every integer as the 64-bit integer the database stores (the API refuses larger ones)."""
    import marshmallow

    if not isinstance(field, marshmallow.fields.Integer):
        return {}
    out = {}
    if "maximum" not in ret:
        out["maximum"] = INT64_MAX
    if "minimum" not in ret:
        out["minimum"] = -INT64_MAX - 1
    return out


class _Api(Api):
    """flask-smorest's Api documenting our error body (``{"error", "message", ...}``) instead of its own."""

    from .schemas import ErrorBody as ERROR_SCHEMA


def _blueprints() -> list:
    """Every API blueprint, in one list, so the access-matrix test can see them all."""
    from . import (
        audit_api,
        auth_api,
        earning_api,
        inbox_api,
        ledger_api,
        patrols_api,
        people_api,
        privacy_api,
        radar_api,
        recruitment_api,
        security_api,
        surveys_api,
        till_api,
        wallet_api,
    )

    return [ledger_api.blp, auth_api.blp, earning_api.blp, wallet_api.blp, wallet_api.cards_blp, till_api.blp,
            audit_api.blp, security_api.blp, people_api.blp, surveys_api.blp,
            recruitment_api.blp, patrols_api.blp, radar_api.blp, privacy_api.blp, inbox_api.blp]
