"""Server-rendered web pages (Jinja): wallet, till, officer, admin, auditor."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

from ledger.errors import DomainError

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/static/ui")


@bp.get("/")
def index():  # noqa: ANN201
    return render_template("index.html")


def _html_domain_error(exc: DomainError):  # noqa: ANN202
    from merchant_api.errors import status_of

    return render_template("error.html", code=exc.code, message=exc.message), status_of(exc)


def _html_http_error(exc):  # noqa: ANN001, ANN202
    return render_template("error.html", code=exc.code, message=exc.description), exc.code or 500


def init_app(app: Flask) -> None:
    app.extensions["goldbean.html_domain_error"] = _html_domain_error
    app.extensions["goldbean.html_http_error"] = _html_http_error
    app.register_blueprint(bp)
