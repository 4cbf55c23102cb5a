"""The browsable API documentation at ``/api/v1/docs`` (Swagger UI), with its assets served from the
``swagger-ui-bundle`` package installed by pip: no page loads anything from another site."""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Blueprint, Flask, Response, request, send_from_directory
from flask_smorest import Api

ASSETS_URL = "/api/v1/docs/assets/"
DOCS_PATH = "/api/v1/docs"
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


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
    app.after_request(protect_docs_page)
    api.spec.components.security_scheme(
        "tillKey", {"type": "http", "scheme": "bearer", "bearerFormat": "gbtill_<id>_<secret>",
                    "description": "a till device key issued by the merchant owner (POST /merchants/<id>/tills)"})


def protect_docs_page(response: Response) -> Response:
    """``/api/v1/docs`` may not be framed (clickjacking) and runs only its own scripts: the assets from this
    site and the page's one inline script, allowed by its hash (the page is small and rendered once)."""
    if not request.path.startswith(DOCS_PATH) or request.path.startswith(ASSETS_URL):
        return response
    hashes = ""
    if response.mimetype == "text/html" and not response.is_streamed:
        hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(m).digest()).decode()}'"
                          for m in INLINE_SCRIPT.findall(response.get_data()))
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
