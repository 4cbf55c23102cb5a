"""Server-rendered web pages (Jinja), Chinese first: sign-in, the volunteer's wallet, the merchant's till,
the officer's desk, the fund and admin pages, the auditor's desk and the district dashboard.

Every page calls ``ledger`` use cases with the signed-in ``Actor``; none holds a rule of its own.
See docs/ui.md.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Blueprint, Flask, redirect, render_template, request, session, url_for
from flask_babel import Babel, format_date, format_datetime, format_decimal, gettext

from doors import current_books
from ledger.errors import DomainError

from . import web

HERE = Path(__file__).resolve().parent
bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/static/ui")


@bp.get("/")
def index():
    actor = web.current_actor()
    if actor is not None:
        return redirect(web.landing_for(actor))
    from doors import current_books
    from ledger.people import recruitment

    return render_template("index.html", calls=recruitment.open_calls(current_books()))


@bp.get("/favicon.ico")
@web.public
def favicon():
    """Browsers ask for it at the root; the icon lives with the others (``admin_ui/icons.py`` draws them)."""
    return redirect(url_for("ui.static", filename="icons/favicon-32.png"), 301)


@bp.post("/lang")
def switch_language():
    """The language switch (zh_CN / en), kept in the session."""
    lang = request.form.get("lang", "")
    if lang in web.LANGUAGES:
        session["lang"] = lang
    return web.back(url_for("ui.index"))


def _html_domain_error(exc: DomainError):
    from doors.errors import status_of

    from .messages import sentence_for

    return render_template("error.html", code=exc.code, message=sentence_for(exc)), status_of(exc)


def _html_http_error(exc):
    from .messages import sentence_for_code

    status = exc.code or 500
    if status == 400 and exc.description == "csrf":
        message = sentence_for_code("csrf")
    elif status == 404:
        message = gettext("This page does not exist.")
    elif status == 405:
        message = gettext("This address cannot be used like that.")
    elif status == 413:
        message = gettext("What you sent is too large.")
    else:
        message = gettext("Something went wrong. Go back and try again.")
    return render_template("error.html", code=status, message=message), status


def _locale() -> str:
    lang = session.get("lang") if not isinstance(session, web.NoSession) else None
    return lang if lang in web.LANGUAGES else "zh_CN"


def _timezone() -> dt.tzinfo:
    """Pages show the district's time from the one calendar (``LEDGER_SETTINGS["utc_offset_hours"]``)."""
    return current_books().calendar.tz


def _as_datetime(value):
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


def _fmt_datetime(value, fmt: str = "medium") -> str:
    if value is None or value == "":
        return ""
    return format_datetime(_as_datetime(value), fmt)


def _fmt_date(value, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return format_date(value, fmt)


def _fmt_beans(value) -> str:
    return format_decimal(int(value or 0))


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "zh_CN")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(HERE / "translations"))
    Babel(app, locale_selector=_locale, timezone_selector=_timezone)
    app.session_interface = web.DatabaseSessionInterface()
    app.extensions["goldbean.html_domain_error"] = _html_domain_error
    app.extensions["goldbean.html_http_error"] = _html_http_error
    app.before_request(web.check_csrf)
    app.after_request(web.security_headers)
    app.jinja_env.globals.update(csrf_token=web.csrf_token, once_key=web.once_key, current_actor=web.current_actor,
                                 current_locale=_locale)
    app.jinja_env.filters.update(when=_fmt_datetime, day=_fmt_date, beans=_fmt_beans)
    from . import labels

    labels.register(app)
    app.register_blueprint(bp)
    from . import admin, auditor, auth, dashboard, fund, officer, patrols, people, radar, surveys, till, wallet

    for module in (auth, wallet, till, officer, fund, admin, auditor, dashboard, surveys, people, patrols, radar):
        app.register_blueprint(module.bp)
    app.register_blueprint(radar.public_bp)
