"""The browsable API documentation at ``/api/v1/docs`` (Swagger UI), with its assets served from the
``swagger-ui-bundle`` package installed by pip: no page loads anything from another site."""

from __future__ import annotations

from flask import Blueprint, Flask, send_from_directory
from flask_smorest import Api

ASSETS_URL = "/api/v1/docs/assets/"


def configure(app: Flask) -> None:
    """Before ``Api(app)``: where the page lives and where its assets come from."""
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", ASSETS_URL)


def install(app: Flask, api: Api) -> None:
    """After ``Api(app)``: the asset route and the till key's security scheme."""
    import swagger_ui_bundle

    folder = swagger_ui_bundle.swagger_ui_path
    bp = Blueprint("api_docs_assets", __name__)

    @bp.get(f"{ASSETS_URL}<path:filename>")
    def asset(filename: str):
        return send_from_directory(folder, filename, max_age=3600)

    app.register_blueprint(bp)
    api.spec.components.security_scheme(
        "tillKey", {"type": "http", "scheme": "bearer", "bearerFormat": "gbtill_<id>_<secret>",
                    "description": "a till device key issued by the merchant owner (POST /merchants/<id>/tills)"})
