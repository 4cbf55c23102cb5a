"""The merchant's till (phone or tablet at the counter): scan a wallet or card QR with the camera or a
handheld scanner, an amount or catalogue items, the PIN pad for cards, a receipt, refunds of recent
redemptions and today's takings. Every refusal becomes a sentence telling the cashier what to do."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext

from doors import current_books
from ledger import errors, redemption
from ledger.access import policy
from ledger.errors import DomainError
from ledger.redemption import TillContext, codes
from ledger.views import directory

from . import web
from .messages import sentence_for

bp = Blueprint("ui_till", __name__, url_prefix="/till")
TILL_ROLES = policy.TILL_ROLES



def _merchant_id() -> int:
    """The merchant the page asks for (``merchant_id`` chooses when the cashier serves at several); whether
    they serve there is checked by the use cases the page calls."""
    raw = request.values.get("merchant_id") or ""
    if raw:
        if not raw.isdigit() or len(raw) > 18:
            raise DomainError(errors.PERMISSION_DENIED, "You do not serve at this merchant.")
        return int(raw)
    return policy.default_till_merchant(g.actor)


def _render(merchant_id: int, *, error: str | None = None, code: str = "", sale_key: str | None = None,
            needs_pin: bool = False, status: int = 200, amount: str = ""):
    books = current_books()
    return render_template(
        "ui/till.html", recent=redemption.list_redemptions(books, merchant_id, by=g.actor, limit=10),
        merchant=directory.merchant_of(books, merchant_id), merchants=policy.till_merchants(g.actor),
        items=redemption.list_items(books, merchant_id),
        takings=directory.takings_today(books, merchant_id, by=g.actor), error=error,
        code=code,
        sale_key=sale_key or uuid.uuid4().hex, needs_pin=needs_pin, amount=amount,
        refund_key=uuid.uuid4().hex, paused=redemption.paused_tills(books, g.actor, merchant_id),
        owner=policy.is_owner_of(g.actor, merchant_id)), status


@bp.get("")
@web.requires(*TILL_ROLES)
def page():
    return _render(_merchant_id())


def _is_card(code: str) -> bool:
    try:
        return codes.code_typ(code) == codes.CARD_TYP
    except DomainError:
        return False


@bp.post("/redeem")
@web.requires(*TILL_ROLES)
def redeem():
    merchant_id = _merchant_id()
    code = (request.form.get("code") or "").strip()
    pin = (request.form.get("pin") or "").strip() or None
    sale_key = (request.form.get("sale_key") or "")[:100]
    amount_raw = (request.form.get("amount") or "").strip()
    items = []
    for item in redemption.list_items(current_books(), merchant_id):
        qty = (request.form.get(f"qty_{item['id']}") or "").strip()
        if qty and qty != "0":
            if not qty.isdigit() or int(qty) > redemption.MAX_QTY:
                return _render(merchant_id, error=sentence_for(DomainError(errors.VALIDATION_FAILED)), code=code,
                               sale_key=sale_key, status=422, amount=amount_raw)
            items.append({"item_id": item["id"], "qty": int(qty)})
    try:
        if not code:
            raise DomainError(errors.INVALID_CODE)
        amount = None
        if not items:
            amount = web.form_int("amount", minimum=1)
        answer = redemption.redeem_at_till(current_books(), TillContext(merchant_id, g.actor), request.remote_addr,
                                           code=code, amount=amount, items=items or None, pin=pin,
                                           idempotency_key=sale_key)
    except DomainError as exc:
        if exc.code == errors.PERMISSION_DENIED.code:
            raise  # another merchant's till: the 403 page, not a sentence on this one
        keep = exc.code in ("pin_required", "wrong_pin", "insufficient_funds", "limit_exceeded", "invalid_amount",
                            "validation_failed", "unknown_item")
        status = 409 if exc.category == errors.CONFLICT else 422
        return _render(merchant_id, error=sentence_for(exc), code=code if keep else "", sale_key=sale_key,
                       needs_pin=_is_card(code) and keep, status=status, amount=amount_raw)
    return render_template("ui/receipt.html", receipt=answer.json(), replayed=answer.replayed), 201


@bp.post("/pin-throttle/lift")
@web.requires("merchant_owner")
def lift_pin_throttle():
    """The owner lets a till paused for wrong PINs on several cards take PINs again (logged)."""
    merchant_id = _merchant_id()
    try:
        redemption.lift_till_pin_throttle(current_books(), g.actor, merchant_id, request.form.get("till") or "",
                                          source=request.remote_addr)
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(gettext("The till takes PINs again."), "ok")
    return redirect(url_for("ui_till.page", merchant_id=merchant_id))


@bp.post("/redemptions/<int:redemption_id>/refund")
@web.requires(*TILL_ROLES)
def refund(redemption_id: int):
    merchant_id = _merchant_id()
    try:
        amount = web.form_int("amount", required=False, minimum=1)
        out = redemption.refund(current_books(), TillContext(merchant_id, g.actor), redemption_id, amount=amount,
                                reason=(request.form.get("reason") or "")[:500],
                                idempotency_key=(request.form.get("refund_key") or "")[:100]).json()
    except DomainError as exc:
        if exc.code == errors.PERMISSION_DENIED.code:
            raise  # another merchant's till: the 403 page, as before
        web.refuse(exc)
    else:
        flash(gettext("Refunded %(amount)s beans for sale No. %(id)s.", amount=out["amount"], id=redemption_id), "ok")
    return redirect(url_for("ui_till.page", merchant_id=merchant_id) + "#recent")
