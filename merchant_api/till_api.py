"""The merchant's side: redeeming at the till, refunds, till keys, the catalogue, settlement.

A till request is authorised either by a signed-in cashier or owner (``Authorization: Bearer <access
token>``) or by a till device key the merchant owner issued (``Authorization: Bearer gbtill_<id>_<secret>``).
Writes that move beans need an ``Idempotency-Key`` header; a retry with the same key and body gets
the stored answer byte for byte.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Response, g, request
from marshmallow import ValidationError, fields, validate, validates_schema

from doors import current_books
from ledger import errors, redemption
from ledger.access import policy
from ledger.errors import DomainError
from ledger.redemption import Answer, TillContext, settlement

from .auth import current_actor, requires_roles
from .edge import Blueprint
from .schemas import NO_STORE, NO_STORE_DOC, Boolean, Change, In, MerchantRef, Out, Receipt, RedemptionOut, String, iso

blp = Blueprint("till", __name__, url_prefix="", description="Redeeming beans at merchants: tills, refunds, "
                "catalogue, settlement")

TILL_ROLES = policy.TILL_ROLES
TILL_SECURITY = [{"bearerAuth": []}, {"tillKey": []}]
IDEMPOTENCY_HEADER = {"name": "Idempotency-Key", "in": "header", "required": True,
                      "schema": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[ -~]+$"},
                      "description": "the same key and body replay the stored answer; another body: 422"}


def till_auth(view: Callable[..., Any] | None = None, *, readers: tuple[str, ...] = ()) -> Any:
    """Who is at the till: a till key, or a signed-in user holding a till role (or, for reads, one of
    ``readers``), refused before anything is parsed. Which merchant they may act for is the use case's to
    decide (``ledger.access.policy``)."""
    roles = TILL_ROLES + readers

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and redemption.is_till_key(token):
                g.goldbean_till = redemption.authenticate_till(current_books(), token)
            else:
                actor = current_actor()
                if not any(actor.has_role(r) for r in roles):
                    raise DomainError(errors.PERMISSION_DENIED, required_roles=list(roles))
            return fn(*args, **kwargs)

        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate(view) if view is not None else decorate


def _principal() -> Any:
    """The till device that sent this request, or the signed-in user."""
    ctx = g.get("goldbean_till")
    return ctx.principal if ctx is not None else current_actor()


def _till(merchant_id: int | None = None) -> TillContext:
    """The till request as sent: its principal and the merchant it names (checked by the use case)."""
    return TillContext(merchant_id, _principal())


def _idempotency_key() -> str:
    key = request.headers.get("Idempotency-Key")
    if not key:
        raise DomainError(errors.IDEMPOTENCY_KEY_REQUIRED)
    return key


def _answer(answer: Answer, status: int) -> Response:
    """The stored answer's exact text (a retry gets the same bytes); the HTTP status is the door's."""
    resp = Response(answer.body, status=status, mimetype="application/json")
    if answer.replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


class ItemLine(In):
    item_id = fields.Integer(strict=True, required=True)
    qty = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=redemption.MAX_QTY))


class RedeemIn(In):
    JSON_SCHEMA_EXTRA = {"oneOf": [{"required": ["amount"]}, {"required": ["items"]}]}

    @validates_schema
    def _amount_or_items(self, data: dict, **kwargs: Any) -> None:
        if ("amount" in data) == ("items" in data):
            raise ValidationError("Send either amount or items.")

    code = String(required=True, validate=validate.Length(min=1, max=4096),
                         metadata={"description": "the scanned wallet code or bean card code"})
    amount = fields.Integer(strict=True, validate=validate.Range(min=1),
                            metadata={"description": "beans; or send items (exactly one of the two)"})
    items = fields.List(fields.Nested(ItemLine), validate=validate.Length(min=1, max=redemption.MAX_ITEMS),
                        metadata={"description": "catalogue lines; or send amount (exactly one of the two)"})
    pin = String(load_default=None, validate=validate.Length(max=16),
                        metadata={"description": "bean cards only: the PIN the volunteer typed"})
    merchant_id = fields.Integer(strict=True, load_default=None,
                                 metadata={"description": "only for cashiers serving at several merchants"})


class PreviewIn(In):
    code = String(required=True, validate=validate.Length(min=1, max=4096),
                  metadata={"description": "the scanned wallet code or bean card code"})
    merchant_id = fields.Integer(strict=True, load_default=None,
                                 metadata={"description": "only for cashiers serving at several merchants"})


class PreviewOut(Out):
    kind = fields.String(required=True, metadata={"description": "wallet or card"})
    customer = fields.String(required=True, metadata={"description": "the holder's name, masked: 张*华"})
    available = fields.Integer(required=True, allow_none=True,
                               metadata={"description": "beans the wallet can pay now; null for a bean card "
                                                        "(a printed code: its balance is not shown to a till)"})
    pin_required = Boolean(required=True, metadata={"description": "a bean card: the holder types the PIN"})


class RefundIn(In):
    amount = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1),
                            metadata={"description": "omitted: all that remains"})
    reason = String(load_default="", validate=validate.Length(max=500))


class RefundOut(Out):
    refund_id = fields.Integer(required=True)
    redemption_id = fields.Integer(required=True)
    amount = fields.Integer(required=True)
    refunded_total = fields.Integer(required=True)
    remaining = fields.Integer(required=True)
    time = iso(required=True)


class TillOut(Out):
    id = fields.Integer(required=True)
    merchant_id = fields.Integer(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "active or revoked"})
    created_at = iso(required=True)
    revoked_at = iso(required=True, allow_none=True)


class TillKeyOut(TillOut):
    key = fields.String(required=True, metadata={"description": "gbtill_<id>_<secret>: shown this once"})


class ItemOut(Out):
    id = fields.Integer(required=True)
    merchant_id = fields.Integer(required=True)
    name = fields.String(required=True)
    price = fields.Integer(required=True)
    active = Boolean(required=True)


class SettlementOut(Out):
    settlement_id = fields.Integer(required=True)
    period = fields.String(required=True)
    merchant = fields.Nested(MerchantRef, required=True)
    redeemed = fields.Integer(required=True)
    refunded = fields.Integer(required=True)
    amount = fields.Integer(required=True)
    redemptions_count = fields.Integer(required=True)
    rmb_owed = fields.Integer(required=True)
    transfer_key = fields.String(required=True, allow_none=True, metadata={"description": "none when nothing was owed"})


class TillIn(In):
    name = String(required=True, validate=validate.Length(min=1, max=80))


class TillPinLiftIn(In):
    till = String(required=True, validate=validate.Regexp(r"^(till|user):[0-9]{1,18}$"),
                  metadata={"description": "the paused till: `till:<id>` (a till key) or `user:<id>` "
                                           "(a cashier's web till)"})


class TillPinLiftOut(Out):
    merchant_id = fields.Integer(required=True)
    till = fields.String(required=True)
    was_paused = Boolean(required=True, metadata={"description": "false: it was not paused (logged anyway)"})
    lifted_at = fields.String(required=True)


class ItemIn(In):
    name = String(required=True, validate=validate.Length(min=1, max=120))
    price = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=10**9))


class ItemPatch(Change):
    name = String(validate=validate.Length(min=1, max=120))
    price = fields.Integer(strict=True, validate=validate.Range(min=1, max=10**9))
    active = Boolean()


class ListQuery(In):
    limit = fields.Integer(strict=False, load_default=50, validate=validate.Range(min=1, max=200))
    before_id = fields.Integer(strict=False, load_default=None)


class PeriodIn(In):
    period = String(required=True, validate=validate.Regexp(r"^(19|20)\d{2}-(0[1-9]|1[0-2])$"),
                           metadata={"description": "a local calendar month, e.g. 2026-11"})


class PeriodQuery(In):
    period = String(load_default=None, validate=validate.Regexp(r"^(19|20)\d{2}-(0[1-9]|1[0-2])$"))


# --- redeeming and refunds ------------------------------------------------------------------------

@blp.route("/redemptions", methods=["POST"])
@till_auth
@blp.arguments(RedeemIn())
@blp.doc(security=TILL_SECURITY, parameters=[IDEMPOTENCY_HEADER])
@blp.response(201, Receipt, description="the receipt (a retry with the same key and body: the same bytes, "
              "with `Idempotent-Replayed: true`)")
def redeem(body: dict):
    """Redeem beans: a wallet code (or a bean card code and its PIN) and an amount or catalogue items."""
    ctx = _till(body.pop("merchant_id"))
    key = _idempotency_key()
    # a PIN typed at a till: throttled per card and per till, every try logged (ledger.access.security)
    return _answer(redemption.redeem_at_till(current_books(), ctx, request.remote_addr, code=body["code"],
                                             amount=body.get("amount"), items=body.get("items"), pin=body["pin"],
                                             idempotency_key=key), 201)


@blp.route("/redemptions/preview", methods=["POST"])
@till_auth
@blp.arguments(PreviewIn())
@blp.doc(security=TILL_SECURITY)
@blp.response(200, PreviewOut, headers=NO_STORE_DOC)
def preview(body: dict):
    """Before confirming: the customer's masked name and available beans behind a scanned code, checked as a
    redemption would check it (expired, used, revoked: the same refusals). Nothing is spent or written."""
    return redemption.preview_code(current_books(), _till(body["merchant_id"]), body["code"]), NO_STORE


@blp.route("/redemptions/<int:redemption_id>", methods=["GET"])
@till_auth(readers=policy.REDEMPTION_READERS)
@blp.doc(security=TILL_SECURITY)
@blp.response(200, RedemptionOut)
def get_redemption(redemption_id: int):
    """One redemption of your merchant, with its refunds."""
    return redemption.get_redemption(current_books(), _principal(), redemption_id)


@blp.route("/redemptions/<int:redemption_id>/refunds", methods=["POST"])
@till_auth
@blp.arguments(RefundIn(), required=False)
@blp.doc(security=TILL_SECURITY, parameters=[IDEMPOTENCY_HEADER])
@blp.response(201, RefundOut, description="the refund (replayed like a redemption)")
def refund(body: dict, redemption_id: int):
    """Refund all or part of a redemption of your merchant, within the refund window."""
    return _answer(redemption.refund(current_books(), _till(), redemption_id, amount=body["amount"],
                                     reason=body["reason"], idempotency_key=_idempotency_key()), 201)


@blp.route("/merchants/<int:merchant_id>/redemptions", methods=["GET"])
@till_auth(readers=policy.REDEMPTION_READERS)
@blp.arguments(ListQuery(), location="query")
@blp.doc(security=TILL_SECURITY)
@blp.response(200, RedemptionOut(many=True))
def list_redemptions(query: dict, merchant_id: int):
    """Your merchant's redemptions, newest first."""
    return redemption.list_redemptions(current_books(), merchant_id, by=_principal(), **query)


# --- till keys ---------------------------------------------------------------------------------------

@blp.route("/merchants/<int:merchant_id>/tills", methods=["POST"])
@requires_roles("merchant_owner")
@blp.arguments(TillIn())
@blp.response(201, TillKeyOut, headers=NO_STORE_DOC)
def issue_till(body: dict, merchant_id: int):
    """Issue a till device key (shown once; only its hash is kept)."""
    actor = current_actor()
    view, key = redemption.issue_till(current_books(), merchant_id, body["name"], actor.ref, by=actor)
    return {**view, "key": key}, NO_STORE


@blp.route("/merchants/<int:merchant_id>/tills", methods=["GET"])
@requires_roles("merchant_owner")
@blp.response(200, TillOut(many=True))
def list_tills(merchant_id: int):
    return redemption.list_tills(current_books(), merchant_id, by=current_actor())


@blp.route("/merchants/<int:merchant_id>/tills/<int:till_id>", methods=["DELETE"])
@requires_roles("merchant_owner")
@blp.response(200, TillOut)
def revoke_till(merchant_id: int, till_id: int):
    """Revoke a till key: it is refused from the next request on."""
    return redemption.revoke_till(current_books(), merchant_id, till_id, by=current_actor())


@blp.route("/merchants/<int:merchant_id>/tills/pin-throttle/lift", methods=["POST"])
@requires_roles("merchant_owner", "admin")
@blp.arguments(TillPinLiftIn())
@blp.response(200, TillPinLiftOut)
def lift_till_pin_throttle(body: dict, merchant_id: int):
    """Let a till paused for wrong PINs on several cards take PINs again (the owner; logged)."""
    return redemption.lift_till_pin_throttle(current_books(), current_actor(), merchant_id, body["till"],
                                             source=request.remote_addr)


# --- catalogue --------------------------------------------------------------------------------------

@blp.route("/merchants/<int:merchant_id>/items", methods=["GET"])
@requires_roles()
@blp.response(200, ItemOut(many=True))
def list_items(merchant_id: int):
    """The merchant's catalogue (active items; the owner also sees withdrawn ones)."""
    return redemption.list_items(current_books(), merchant_id, by=current_actor())


@blp.route("/merchants/<int:merchant_id>/items", methods=["POST"])
@requires_roles("merchant_owner")
@blp.arguments(ItemIn())
@blp.response(201, ItemOut)
def add_item(body: dict, merchant_id: int):
    return redemption.add_item(current_books(), merchant_id, body["name"], body["price"], by=current_actor())


@blp.route("/merchants/<int:merchant_id>/items/<int:item_id>", methods=["PATCH"])
@requires_roles("merchant_owner")
@blp.arguments(ItemPatch())
@blp.response(200, ItemOut)
def update_item(body: dict, merchant_id: int, item_id: int):
    return redemption.update_item(current_books(), merchant_id, item_id, by=current_actor(), **body)


@blp.route("/merchants/<int:merchant_id>/items/<int:item_id>", methods=["DELETE"])
@requires_roles("merchant_owner")
@blp.response(200, ItemOut)
def withdraw_item(merchant_id: int, item_id: int):
    """Withdraw an item (kept for the receipts that name it)."""
    return redemption.update_item(current_books(), merchant_id, item_id, by=current_actor(), active=False)


# --- settlement ---------------------------------------------------------------------------------------

@blp.route("/settlements", methods=["POST"])
@requires_roles("fund_manager")
@blp.arguments(PeriodIn())
@blp.response(200, SettlementOut(many=True))
def run_settlement(body: dict):
    """Settle every merchant for a period that has ended; running it again changes nothing."""
    actor = current_actor()
    return settlement.run_settlement(current_books(), body["period"], actor.ref, by=actor)


@blp.route("/settlements", methods=["GET"])
@requires_roles(*policy.SETTLEMENT_READERS)
@blp.arguments(PeriodQuery(), location="query")
@blp.response(200, SettlementOut(many=True))
def list_settlements(query: dict):
    return settlement.list_settlements(current_books(), period=query["period"], by=current_actor())


@blp.route("/merchants/<int:merchant_id>/settlements", methods=["GET"])
@requires_roles("merchant_owner", *policy.SETTLEMENT_READERS)
@blp.response(200, SettlementOut(many=True))
def merchant_settlements(merchant_id: int):
    """A merchant's settlement statements (its owner, fund managers and auditors)."""
    return settlement.list_settlements(current_books(), merchant_id=merchant_id, by=current_actor())
