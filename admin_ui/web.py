"""What every page shares: server-side sessions, CSRF tokens, the signed-in actor, role checks,
security headers, the language switch and turning a refusal into a sentence.

- Sessions: Flask's ``session`` is backed by ``ledger.web_sessions`` (the cookie holds only a random id;
  the data lives in the ``web_sessions`` table). API requests under ``/api/`` never touch it.
- CSRF: every POST/PUT/PATCH/DELETE outside ``/api/`` must carry the session's token as the form field
  ``csrf_token`` or the header ``X-CSRF-Token``; otherwise 400 and nothing runs.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.sessions import SessionInterface, SessionMixin
from flask_babel import gettext
from werkzeug.datastructures import CallbackDict

from doors import books_of
from ledger import errors
from ledger.access import web_sessions
from ledger.access.identity import Actor
from ledger.errors import DomainError

COOKIE_NAME = "gb_session"
SKIP_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics", "/static/")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
LANGUAGES = ("zh_CN", "en")



# --- server-side sessions ---------------------------------------------------------------------------

class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial: dict[str, Any] | None = None, token: str | None = None,
                 user_id: int | None = None, actor: Actor | None = None) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(initial or {}, on_update)
        self.token = token
        self.user_id = user_id
        self.actor = actor
        self.modified = False
        self.regenerate = False  # sign-in: a new id for the new identity
        self.ended = False  # sign-out: delete the row and the cookie


class NoSession(ServerSession):
    """API and static requests: no session at all (and no database round trip)."""


class DatabaseSessionInterface(SessionInterface):
    def open_session(self, app: Flask, request) -> ServerSession:
        if request.path.startswith(SKIP_PREFIXES):
            return NoSession()
        token = request.cookies.get(COOKIE_NAME)
        if token:
            loaded = web_sessions.load_session(books_of(app), token)
            if loaded is not None:
                return ServerSession(loaded.data, loaded.token, loaded.user_id, loaded.actor)
        return ServerSession()

    def save_session(self, app: Flask, sess: ServerSession, response) -> None:
        if isinstance(sess, NoSession):
            return
        books = books_of(app)
        secure = bool(app.config.get("SESSION_COOKIE_SECURE"))
        if sess.ended:
            if sess.token:
                web_sessions.end_session(books, sess.token)
            response.delete_cookie(COOKIE_NAME, path="/", secure=secure, httponly=True, samesite="Lax")
            return
        if sess.regenerate or (sess.token is None and (sess.modified and dict(sess))):
            sess.token = web_sessions.start_session(books, user_id=sess.user_id, data=dict(sess),
                                                    replaces=sess.token)
            response.set_cookie(COOKIE_NAME, sess.token, path="/", secure=secure, httponly=True, samesite="Lax")
            response.vary.add("Cookie")
        elif sess.token is not None and sess.modified:
            if not web_sessions.save_session(books, sess.token, dict(sess)):
                response.delete_cookie(COOKIE_NAME, path="/", secure=secure, httponly=True, samesite="Lax")


# --- the signed-in actor ------------------------------------------------------------------------------

def current_actor() -> Actor | None:
    return getattr(session, "actor", None)


def session_token() -> str | None:
    """This browser's session token (to keep this session when the others end)."""
    return getattr(session, "token", None)


def sign_in(actor: Actor) -> None:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session["csrf"] = secrets.token_urlsafe(32)
    session.user_id = actor.user_id  # type: ignore[attr-defined]
    session.actor = actor  # type: ignore[attr-defined]
    session.regenerate = True  # type: ignore[attr-defined]


def sign_out() -> None:
    session.ended = True  # type: ignore[attr-defined]
    session.actor = None  # type: ignore[attr-defined]


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Declare a page open to anyone, signed in or not (the access-matrix test refuses undeclared pages)."""
    view.access_policy = "public"  # type: ignore[attr-defined]
    return view


def requires(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The page needs a signed-in user holding one of ``roles`` (any role if none). Not signed in: the
    sign-in page; signed in without the role: 403 (scope is checked by the use case)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            actor = current_actor()
            if actor is None:
                return redirect(url_for("ui_auth.sign_in", next=request.full_path if request.method == "GET" else None))
            if roles and not any(actor.has_role(r) for r in roles):
                raise DomainError(errors.PERMISSION_DENIED, required_roles=list(roles))
            g.actor = actor
            return view(*args, **kwargs)

        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate


LANDING = (("cashier", "ui_till.page"), ("merchant_owner", "ui_till.page"), ("officer", "ui_officer.queue"),
           ("fund_manager", "ui_fund.page"), ("admin", "ui_admin.page"), ("auditor", "ui_auditor.page"),
           ("volunteer", "ui_wallet.page"), ("leader", "ui_wallet.page"))


def landing_for(actor: Actor) -> str:
    for role, endpoint in LANDING:
        if actor.has_role(role):
            return url_for(endpoint)
    return url_for("ui.index")


# --- CSRF ---------------------------------------------------------------------------------------------

def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    if request.method not in UNSAFE_METHODS or request.path.startswith(SKIP_PREFIXES):
        return
    expected = session.get("csrf")
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not expected or not hmac.compare_digest(str(expected), str(sent)):
        abort(400, description="csrf")


# --- security headers -----------------------------------------------------------------------------------

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


def security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path.startswith(("/api/", "/metrics")):
        return response
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(self), microphone=(), geolocation=(self)")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")  # pages and the wallet's code endpoint
    return response


# --- refusals as sentences --------------------------------------------------------------------------------

def refuse(exc: DomainError) -> None:
    """Flash the refusal as a plain sentence (see ``admin_ui.messages``)."""
    from .messages import sentence_for

    flash(sentence_for(exc), "error")


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site once a browser has normalised it, else None: the one check for
    every ``next`` (sign-in, the language switch, forms that return to their page).

    Browsers drop tabs and line breaks anywhere in a URL and read ``\\`` as ``/``, so ``/\\t/evil.example``
    and ``/\\evil.example`` are ``//evil.example``, another site; any control character or backslash is refused
    before parsing, and what is left must have no scheme and no host and start with one ``/``."""
    if not target or len(target) > 2000:
        return None
    if "\\" in target or any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in target):
        return None
    try:
        parts = urlsplit(target)
    except ValueError:
        return None
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return urlunsplit(("", "", parts.path, parts.query, parts.fragment))


def once_key(form: str) -> str:
    """A one-time key for a form whose second submit must do nothing (issuing a card, rotating a key, every
    confirmed destructive action): the page puts it in a hidden ``once`` field and ``take_once`` accepts it once.
    Random per page view, so two tabs each get their own; ``form`` only names what it is for."""
    return f"{form}:{secrets.token_urlsafe(16)}"[:100]


def take_once(form: str) -> bool:
    """Whether the submitted ``once`` field is a key for ``form`` that was never used before; it is used up by
    this call, atomically in the database (``web_sessions.spend_form_key``): a reload that resends the form, a
    double tap or the same form in two tabs acts once."""
    key = request.form.get("once") or ""
    actor = current_actor()
    if not key.startswith(f"{form}:") or actor is None:
        return False
    return web_sessions.spend_form_key(books_of(current_app), actor.ref, key)


def confirm_step(form: str, *, title: str, facts: list[tuple[str, Any]], button: str, cancel: str,
                 warning: str | None = None, reason_label: str | None = None, reason_value: str = "",
                 refusal: str | None = None) -> Any:
    """The confirmation every destructive staff action asks for, as a page (it works without JavaScript).

    A POST without ``confirmed=1`` (the first press of 停用, 撤销, 结算, ...) answers this page: what will be
    done to what (``facts``), a warning, a reason field when one is needed, the confirm button and a way back;
    nothing is done. Its form sends the same fields again with ``confirmed=1`` and a one-time ``once`` key. That
    second POST gets ``None`` from here and the caller acts, unless the key was used before (a reload, a double
    tap: then a redirect to ``cancel`` saying so) or the reason is missing (the page again, 422). ``refusal``: a
    sentence saying why it cannot be done now (the page then offers no button)."""
    confirmed = request.form.get("confirmed") == "1"
    missing_reason = bool(reason_label) and not (request.form.get("reason") or "").strip()
    if confirmed and not missing_reason and refusal is None:
        if take_once(form):
            return None
        flash(gettext("This was already done; it was not done again."), "message")
        return redirect(cancel)
    keep = [(k, v) for k, v in request.form.items(multi=True)
            if k not in ("csrf_token", "confirmed", "once", "reason", "next")]
    page = render_template("ui/confirm.html", title=title, facts=facts, button=button, cancel=cancel,
                           warning=warning, reason_label=reason_label, action=request.path, keep=keep,
                           reason=(request.form.get("reason") or reason_value).strip(), once=once_key(form),
                           refusal=refusal, error=confirmed and missing_reason)
    return page, (422 if confirmed and missing_reason else 200)


def back(default: str) -> Any:
    return redirect(safe_next(request.form.get("next")) or default)


def form_int(name: str, *, required: bool = True, minimum: int | None = None) -> int | None:
    """A whole number from the form, or a ``validation_failed`` refusal."""
    raw = (request.form.get(name) or "").strip()
    if not raw:
        if required:
            raise DomainError(errors.VALIDATION_FAILED, field=name)
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise DomainError(errors.VALIDATION_FAILED, field=name)
    value = int(raw)
    if minimum is not None and value < minimum:
        raise DomainError(errors.INVALID_AMOUNT if name == "amount" else errors.VALIDATION_FAILED, field=name)
    return value
