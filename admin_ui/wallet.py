"""The volunteer's wallet (phone first): balance, the payment QR with a countdown, history with the
running balance, claims for tips and patrols, the month's leaderboard, card status, confirming holds."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext

from doors import current_books
from ledger import earning, redemption
from ledger.access.identity import wallet_of
from ledger.audit import statements
from ledger.errors import DomainError
from ledger.redemption import codes
from ledger.views import directory

from . import web

bp = Blueprint("ui_wallet", __name__, url_prefix="/wallet")
ROLES = ("volunteer", "leader")


def _wallet_id() -> int:
    actor = g.actor
    return wallet_of(current_books(), actor.user_id)


def _fresh_code() -> dict:
    """A payment code through the same use case (and rate limit) as the API's."""
    issued = redemption.issue_payment_code(current_books(), g.actor, source=request.remote_addr)
    return {"code": issued.code, "qr_png": codes.qr_png_base64(issued.code), "expires_in": issued.expires_in}


@bp.get("")
@web.requires(*ROLES)
def page():
    books = current_books()
    actor = g.actor
    wallet = _wallet_id()
    overview = redemption.wallet_overview(books, actor, history=0)
    today = books.calendar.today(books.now())
    stmt = statements.account_statement(books, wallet, today - dt.timedelta(days=90), today)
    history = list(reversed(stmt.lines))[:30]
    claims = [c for c in earning.list_claims(books, actor, limit=20)
              if c.volunteer_id == actor.user_id or c.submitted_by_id == actor.user_id]
    home = directory.home_community(books, actor)
    board = earning.volunteer_leaderboard(books, actor, org_unit_id=home["id"], limit=10) if home else None
    return render_template("ui/wallet.html", overview=overview, history=history, code=_page_code(),
                           claims=claims, board=board, home=home, cards=directory.my_cards(books, actor),
                           categories=earning.rules_of(books).tip_categories,
                           led=directory.led_volunteers(books, actor),
                           names=directory.user_names(books, {c.volunteer_id for c in claims}),
                           now_local=books.calendar.format(books.now(), "%Y-%m-%dT%H:%M"))


def _page_code() -> dict:
    try:
        return _fresh_code()
    except DomainError as exc:
        if exc.code != "rate_limited":
            raise
        return {"code": "", "qr_png": "", "expires_in": 10}  # the page opens; its QR refreshes a bit later


@bp.post("/code")
@web.requires(*ROLES)
def new_code():
    """A fresh payment code for the page's QR (JSON, under the session and its CSRF token)."""
    try:
        return jsonify(_fresh_code())
    except DomainError as exc:
        from doors.errors import status_of

        return jsonify({"error": exc.code, "message": exc.message}), status_of(exc)


@bp.get("/status")
@web.requires(*ROLES)
def status():
    """Balance and the payments waiting for confirmation (the page polls this every few seconds)."""
    overview = redemption.wallet_overview(current_books(), g.actor, history=0)
    return jsonify({"available": overview["available"], "on_hold": overview["on_hold"],
                    "awaiting": [r["redemption_id"] for r in overview["awaiting_confirmation"]]})


def _local_moment(name: str, required: bool = True) -> dt.datetime | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        if required:
            raise DomainError(web.errors.VALIDATION_FAILED, field=name)
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise DomainError(web.errors.VALIDATION_FAILED, field=name) from None
    return current_books().calendar.parse_local(moment)  # a phone's datetime-local field names no zone


@bp.post("/claims")
@web.requires(*ROLES)
def submit_claim():
    actor = g.actor
    kind = request.form.get("kind")
    try:
        # a group or building leader may claim for a volunteer of their unit (the use case checks it)
        for_id = web.form_int("volunteer_id", required=False)
        # the volunteers they lead only tell the patrol's unit; whether they may claim for them is the use case's
        led = {v["id"]: v for v in directory.led_volunteers(current_books(), actor)} if for_id else {}
        volunteer_id = for_id if for_id is not None and for_id != actor.user_id else None
        if kind == "patrol":
            if volunteer_id is not None and volunteer_id in led:
                unit = led[volunteer_id]["unit_id"]
            else:
                home = directory.home_community(current_books(), actor)
                unit = home["id"] if home else None
            earning.submit_claim(current_books(), actor, kind="patrol", org_unit_id=unit, volunteer_id=volunteer_id,
                                 occurred_at=_local_moment("started_at"), ended_at=_local_moment("ended_at"),
                                 team=(request.form.get("team") or "").strip()[:100] or None)
        else:
            earning.submit_claim(current_books(), actor, kind="tip", category=request.form.get("category"),
                                 volunteer_id=volunteer_id,
                                 description=(request.form.get("description") or "").strip()[:2000],
                                 location=(request.form.get("location") or "").strip()[:200] or None,
                                 occurred_at=_local_moment("occurred_at"))
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(gettext("Thank you. Your claim was sent; an officer will check it."), "ok")
    return redirect(url_for("ui_wallet.page") + "#claims")


def _resolve(redemption_id: int, confirm: bool):
    books = current_books()
    try:
        if confirm:
            redemption.confirm_hold(books, g.actor, redemption_id)
            flash(gettext("Payment confirmed."), "ok")
        else:
            redemption.decline_hold(books, g.actor, redemption_id)
            flash(gettext("Payment declined; the beans are yours again."), "ok")
    except DomainError as exc:
        web.refuse(exc)
    return redirect(url_for("ui_wallet.page"))


@bp.post("/holds/<int:redemption_id>/confirm")
@web.requires(*ROLES)
def confirm(redemption_id: int):
    return _resolve(redemption_id, True)


@bp.post("/holds/<int:redemption_id>/decline")
@web.requires(*ROLES)
def decline(redemption_id: int):
    return _resolve(redemption_id, False)
