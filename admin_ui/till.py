"""The merchant's till (phone or tablet at the counter), made like the payment counters people use every day:
the camera stays on and scans customer after customer (or a handheld scanner types into the code field); after
a scan and before confirming the till shows the customer's masked name and available beans
(``redemption.preview_code``); quick-amount buttons; the confirm button on the first screen of a 1024x768
tablet; a 收款成功 screen that can speak ("金豆到账 15"). Refunds are a page of their own: the sale, the
customer, a reason, then a confirmation (``redemption.sale_at_till``). Every refusal becomes a sentence telling
the cashier what to do next.

With JavaScript (``static/till.js``) the preview and the sale go through ``fetch`` (the same routes answer JSON
when asked with ``Accept: application/json``), so the camera never stops; without it every step is a plain form
and a page."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext

from doors import current_books
from doors.errors import status_of
from ledger import errors, redemption
from ledger.access import policy
from ledger.errors import DomainError
from ledger.redemption import TillContext, codes
from ledger.views import directory

from . import web
from .messages import sentence_for, sentence_for_code

bp = Blueprint("ui_till", __name__, url_prefix="/till")
TILL_ROLES = policy.TILL_ROLES
QUICK_AMOUNTS = (5, 10, 15, 20, 30, 50)
# refusals after which the sale form keeps the code (the same customer tries again: a PIN, a smaller amount)
KEEP_CODE = ("pin_required", "wrong_pin", "insufficient_funds", "limit_exceeded", "invalid_amount", "validation_failed",
             "unknown_item")


def _merchant_id() -> int:
    """The merchant the page asks for (``merchant_id`` chooses when the cashier serves at several); whether
    they serve there is checked by the use cases the page calls."""
    raw = request.values.get("merchant_id") or ""
    if raw:
        if not raw.isdigit() or len(raw) > 18:
            raise DomainError(errors.PERMISSION_DENIED, "You do not serve at this merchant.")
        return int(raw)
    return policy.default_till_merchant(g.actor)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _sale_key() -> str:
    return (request.form.get("sale_key") or "")[:100] or uuid.uuid4().hex


def _recent(merchant_id: int) -> dict[str, Any]:
    books = current_books()
    return {"recent": redemption.list_redemptions(books, merchant_id, by=g.actor, limit=10),
            "takings": directory.takings_today(books, merchant_id, by=g.actor), "merchant_id": merchant_id}


def _till_names(merchant_id: int, paused: list[str], owner: bool) -> dict[str, str]:
    """How a paused till is named on the page: the cashier's name for a web till, the key's name for a till key
    (never its ``user:7`` reference)."""
    books = current_books()
    users = {int(ref[5:]) for ref in paused if ref.startswith("user:") and ref[5:].isdigit()}
    names = {f"user:{uid}": name for uid, name in directory.user_names(books, users).items()}
    if owner and any(ref.startswith("till:") for ref in paused):
        names.update({f"till:{t['id']}": t["name"] for t in redemption.list_tills(books, merchant_id, by=g.actor)})
    return {ref: names.get(ref) or gettext("a till") for ref in paused}


def _render(merchant_id: int, *, error: str | None = None, code: str = "", sale_key: str | None = None,
            needs_pin: bool = False, status: int = 200, amount: str = "", customer: dict | None = None):
    books = current_books()
    shops = [directory.merchant_of(books, m) for m in policy.till_merchants(g.actor)]
    paused, owner = redemption.paused_tills(books, g.actor, merchant_id), policy.is_owner_of(g.actor, merchant_id)
    return render_template(
        "ui/till.html", merchant=directory.merchant_of(books, merchant_id), merchants=shops,
        items=redemption.list_items(books, merchant_id), error=error, code=code,
        sale_key=sale_key or uuid.uuid4().hex, needs_pin=needs_pin, amount=amount, customer=customer,
        quick_amounts=QUICK_AMOUNTS, paused=paused, paused_names=_till_names(merchant_id, paused, owner),
        owner=owner, **_recent(merchant_id)), status


@bp.get("")
@web.requires(*TILL_ROLES)
def page():
    return _render(_merchant_id())


def _is_card(code: str) -> bool:
    try:
        return codes.code_typ(code) == codes.CARD_TYP
    except DomainError:
        return False


def _refusal(exc: DomainError) -> None:
    if exc.code == errors.PERMISSION_DENIED.code:
        raise exc  # another merchant's till: the 403 page, not a sentence on this one


@bp.post("/preview")
@web.requires(*TILL_ROLES)
def preview():
    """Who is paying: the masked name and available beans behind the scanned code; nothing is spent."""
    merchant_id = _merchant_id()
    code = (request.form.get("code") or "").strip()
    try:
        seen = redemption.preview_code(current_books(), TillContext(merchant_id, g.actor), code)
    except DomainError as exc:
        if _wants_json():
            return jsonify(ok=False, code=exc.code, error=sentence_for(exc)), status_of(exc)
        _refusal(exc)
        return _render(merchant_id, error=sentence_for(exc), sale_key=_sale_key(), status=status_of(exc),
                       amount=request.form.get("amount") or "")
    if _wants_json():
        return jsonify(ok=True, **seen)
    return _render(merchant_id, code=code, sale_key=_sale_key(), amount=request.form.get("amount") or "",
                   customer=seen, needs_pin=seen["pin_required"])


def _items(merchant_id: int) -> list[dict[str, int]]:
    items = []
    for item in redemption.list_items(current_books(), merchant_id):
        qty = (request.form.get(f"qty_{item['id']}") or "").strip()
        if qty and qty != "0":
            if not qty.isdigit() or int(qty) > redemption.MAX_QTY:
                raise DomainError(errors.VALIDATION_FAILED, field=f"qty_{item['id']}")
            items.append({"item_id": item["id"], "qty": int(qty)})
    return items


def _sale_json(merchant_id: int, answer: redemption.Answer, sale: dict[str, Any]):
    receipt = answer.json()
    extra = _recent(merchant_id)
    return jsonify(ok=True, receipt=receipt, replayed=answer.replayed, customer=sale.get("customer", ""),
                   spoken=gettext("Beans received: %(n)s", n=receipt["amount"]), sale_key=uuid.uuid4().hex,
                   status_url=url_for("ui_till.sale_status", redemption_id=receipt["redemption_id"]),
                   recent_html=render_template("ui/_till_recent.html", **extra)), 201


@bp.post("/redeem")
@web.requires(*TILL_ROLES)
def redeem():
    merchant_id = _merchant_id()
    ctx = TillContext(merchant_id, g.actor)
    code = (request.form.get("code") or "").strip()
    pin = (request.form.get("pin") or "").strip() or None
    sale_key, amount_raw = _sale_key(), (request.form.get("amount") or "").strip()
    try:
        items = _items(merchant_id)
        if not code:
            raise DomainError(errors.INVALID_CODE)
        amount = None if items else web.form_int("amount", minimum=1)
        answer = redemption.redeem_at_till(current_books(), ctx, request.remote_addr, code=code, amount=amount,
                                           items=items or None, pin=pin, idempotency_key=sale_key)
    except DomainError as exc:
        keep = exc.code in KEEP_CODE
        status = 409 if exc.category == errors.CONFLICT else 422
        if _wants_json():
            return jsonify(ok=False, code=exc.code, error=sentence_for(exc), keep_code=keep,
                           needs_pin=_is_card(code) and keep), status
        _refusal(exc)
        return _render(merchant_id, error=sentence_for(exc), code=code if keep else "", sale_key=sale_key,
                       needs_pin=_is_card(code) and keep, status=status, amount=amount_raw)
    sale = redemption.sale_at_till(current_books(), ctx, answer.json()["redemption_id"])
    if _wants_json():
        return _sale_json(merchant_id, answer, sale)
    return render_template("ui/receipt.html", receipt=answer.json(), replayed=answer.replayed,
                           customer=sale.get("customer", "")), 201


@bp.get("/redemptions/<int:redemption_id>/status")
@web.requires(*TILL_ROLES)
def sale_status(redemption_id: int):
    """A held sale's state, asked every few seconds by the till while the customer confirms on their phone."""
    try:
        sale = redemption.get_redemption(current_books(), g.actor, redemption_id)
    except DomainError as exc:
        return jsonify(ok=False, code=exc.code, error=sentence_for(exc)), status_of(exc)
    return jsonify(ok=True, status=sale["status"], amount=sale["amount"],
                   spoken=gettext("Beans received: %(n)s", n=sale["amount"]))


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


def _refund_page(merchant_id: int, redemption_id: int, *, error: str | None = None, status: int = 200):
    sale = redemption.sale_at_till(current_books(), TillContext(merchant_id, g.actor), redemption_id)
    refusal = sentence_for_code(sale["refusal"]) if sale["refusal"] else None
    return render_template("ui/till_refund.html", sale=sale, merchant_id=merchant_id, error=error, refusal=refusal,
                           amount=request.form.get("amount") or "", reason=request.form.get("reason") or "",
                           refund_key=(request.form.get("refund_key") or "")[:100] or uuid.uuid4().hex), status


@bp.get("/redemptions/<int:redemption_id>/refund")
@web.requires(*TILL_ROLES)
def refund_page(redemption_id: int):
    """The refund step: the sale and its customer, how many beans, the reason, then 确认退款."""
    return _refund_page(_merchant_id(), redemption_id)


@bp.post("/redemptions/<int:redemption_id>/refund")
@web.requires(*TILL_ROLES)
def refund(redemption_id: int):
    """Refund once confirmed on the refund page (a form without ``confirmed`` shows that page); the page's
    ``refund_key`` is the refund's idempotency key, so a second submit or a reload refunds nothing more."""
    merchant_id = _merchant_id()
    reason = (request.form.get("reason") or "").strip()[:500]
    if request.form.get("confirmed") != "1":
        return _refund_page(merchant_id, redemption_id)
    if not reason:
        return _refund_page(merchant_id, redemption_id, status=422,
                            error=gettext("Say why the beans go back (for example: goods returned)."))
    try:
        amount = web.form_int("amount", required=False, minimum=1)
        answer = redemption.refund(current_books(), TillContext(merchant_id, g.actor), redemption_id, amount=amount,
                                   reason=reason, idempotency_key=(request.form.get("refund_key") or "")[:100])
    except DomainError as exc:
        _refusal(exc)
        return _refund_page(merchant_id, redemption_id, error=sentence_for(exc), status=status_of(exc))
    out = answer.json()
    if answer.replayed:
        flash(gettext("This refund was already made (sale No. %(id)s); nothing more was refunded.", id=redemption_id),
              "message")
    else:
        flash(gettext("Refunded %(amount)s beans for sale No. %(id)s.", amount=out["amount"], id=redemption_id), "ok")
    return redirect(url_for("ui_till.page", merchant_id=merchant_id) + "#recent")
