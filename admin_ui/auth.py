"""Sign-in and sign-out for every role; each person lands on their own page."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from doors import current_books
from ledger.access.security import sign_in as checked_sign_in
from ledger.errors import DomainError

from . import web
from .messages import sentence_for

bp = Blueprint("ui_auth", __name__)


@bp.get("/signin")
def sign_in():
    actor = web.current_actor()
    if actor is not None:
        return redirect(web.landing_for(actor))
    return render_template("ui/signin.html", next=web.safe_next(request.args.get("next")), error=None)


@bp.post("/signin")
def sign_in_post():
    username = (request.form.get("username") or "").strip()[:100]
    password = request.form.get("password") or ""
    target = web.safe_next(request.form.get("next"))
    try:
        # throttled per user and per address, every attempt in the security log (ledger.security)
        actor = checked_sign_in(current_books(), username, password[:200], request.remote_addr)
    except DomainError as exc:
        return render_template("ui/signin.html", next=target, error=sentence_for(exc), username=username), 401
    web.sign_in(actor)
    return redirect(target or web.landing_for(actor))


@bp.post("/signout")
def sign_out():
    web.sign_out()
    return redirect(url_for("ui_auth.sign_in"))
