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

from flask import Flask, abort, flash, g, redirect, request, session, url_for
from flask.sessions import SessionInterface, SessionMixin
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
    """A one-time key for a form whose second submit must do nothing (issuing a card, rotating a key): the
    page puts it in a hidden ``once`` field, ``take_once`` accepts it once. Kept in the server-side session."""
    key = secrets.token_urlsafe(16)
    session["once"] = {**(session.get("once") or {}), form: key}
    return key


def take_once(form: str) -> bool:
    """Whether the submitted ``once`` field is the form's current key; it is used up either way."""
    keys = dict(session.get("once") or {})
    expected = keys.pop(form, None)
    session["once"] = keys
    return bool(expected) and hmac.compare_digest(str(expected), request.form.get("once") or "")


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
