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
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from doors import current_books
from ledger import errors, redemption
from ledger.errors import DomainError
from ledger.redemption import settlement
from ledger.redemption.core import Answer, TillContext

from .auth import current_actor, requires_roles

blp = Blueprint("till", __name__, url_prefix="", description="Redeeming beans at merchants: tills, refunds, "
                "catalogue, settlement")

TILL_ROLES = ("cashier", "merchant_owner")
TILL_SECURITY = [{"bearerAuth": []}, {"tillKey": []}]
IDEMPOTENCY_HEADER = {"name": "Idempotency-Key", "in": "header", "required": True,
                      "schema": {"type": "string", "maxLength": 100},
                      "description": "the same key and body replay the stored answer; another body: 422"}



def till_auth(view: Callable[..., Any] | None = None, *, readers: tuple[str, ...] = ()) -> Any:
    """A till key, or a signed-in cashier or merchant owner (or, for reads, one of ``readers``)."""
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


def _till(merchant_id: int | None = None) -> TillContext:
    """The merchant this till request acts for."""
    ctx = g.get("goldbean_till")
    if ctx is not None:
        if merchant_id is not None and merchant_id != ctx.merchant_id:
            raise DomainError(errors.PERMISSION_DENIED, "This till belongs to another merchant.")
        return ctx
    actor = current_actor()
    mine = actor.merchant_ids_for(*TILL_ROLES)
    if merchant_id is None:
        if len(mine) != 1:
            raise DomainError(errors.VALIDATION_FAILED, "Name the merchant_id you are serving at.")
        (merchant_id,) = mine
    if merchant_id not in mine:
        raise DomainError(errors.PERMISSION_DENIED, "You do not serve at this merchant.")
    return TillContext(merchant_id, actor.ref)


def _merchant_ids_readable() -> set[int] | None:
    """Which merchants' redemptions the caller may read; None: all (auditors, fund managers)."""
    ctx = g.get("goldbean_till")
    if ctx is not None:
        return {ctx.merchant_id}
    actor = current_actor()
    if actor.is_district_wide("auditor") or actor.is_district_wide("fund_manager"):
        return None
    return actor.merchant_ids_for(*TILL_ROLES)


def _owner_of(merchant_id: int) -> None:
    if merchant_id not in current_actor().merchant_ids_for("merchant_owner"):
        raise DomainError(errors.PERMISSION_DENIED, "Only this merchant's owner may do this.")


def _idempotency_key() -> str:
    key = request.headers.get("Idempotency-Key")
    if not key:
        raise DomainError(errors.IDEMPOTENCY_KEY_REQUIRED)
    return key


def _answer(answer: Answer) -> Response:
    resp = Response(answer.body, status=answer.status, mimetype="application/json")
    if answer.replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


class _In(Schema):
    class Meta:
        unknown = RAISE


class ItemLine(_In):
    item_id = fields.Integer(strict=True, required=True)
    qty = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=redemption.MAX_QTY))


class RedeemIn(_In):
    code = fields.String(required=True, validate=validate.Length(min=1, max=4096),
                         metadata={"description": "the scanned wallet code or bean card code"})
    amount = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1))
    items = fields.List(fields.Nested(ItemLine), load_default=None,
                        validate=validate.Length(min=1, max=redemption.MAX_ITEMS))
    pin = fields.String(load_default=None, validate=validate.Length(max=16),
                        metadata={"description": "bean cards only: the PIN the volunteer typed"})
    merchant_id = fields.Integer(strict=True, load_default=None,
                                 metadata={"description": "only for cashiers serving at several merchants"})


class Receipt(Schema):
    redemption_id = fields.Integer()
    status = fields.String(metadata={"description": "completed, or awaiting_confirmation above the threshold"})
    amount = fields.Integer()
    items = fields.List(fields.Dict())
    merchant = fields.Dict()
    time = fields.String()
    method = fields.String()
    confirm_by = fields.String()


class RefundIn(_In):
    amount = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1),
                            metadata={"description": "omitted: all that remains"})
    reason = fields.String(load_default="", validate=validate.Length(max=500))


class TillIn(_In):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))


class TillPinLiftIn(_In):
    till = fields.String(required=True, validate=validate.Regexp(r"^(till|user):[0-9]{1,18}$"),
                         metadata={"description": "the paused till: `till:<id>` (a till key) or `user:<id>` "
                                                  "(a cashier's web till)"})


class ItemIn(_In):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    price = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=10**9))


class ItemPatch(_In):
    name = fields.String(validate=validate.Length(min=1, max=120))
    price = fields.Integer(strict=True, validate=validate.Range(min=1, max=10**9))
    active = fields.Boolean()


class ListQuery(_In):
    limit = fields.Integer(strict=False, load_default=50, validate=validate.Range(min=1, max=200))
    before_id = fields.Integer(strict=False, load_default=None)


class PeriodIn(_In):
    period = fields.String(required=True, validate=validate.Regexp(r"^(19|20)\d{2}-(0[1-9]|1[0-2])$"),
                           metadata={"description": "a local calendar month, e.g. 2026-11"})


class PeriodQuery(_In):
    period = fields.String(load_default=None, validate=validate.Regexp(r"^(19|20)\d{2}-(0[1-9]|1[0-2])$"))


# --- redeeming and refunds ------------------------------------------------------------------------

@blp.route("/redemptions", methods=["POST"])
@till_auth
@blp.arguments(RedeemIn())
@blp.doc(security=TILL_SECURITY, parameters=[IDEMPOTENCY_HEADER])
@blp.alt_response(201, schema=Receipt, description="the receipt")
def redeem(body: dict):
    """Redeem beans: a wallet code (or a bean card code and its PIN) and an amount or catalogue items."""
    ctx = _till(body.pop("merchant_id"))
    key = _idempotency_key()
    # a PIN typed at a till: throttled per card and per till, every try logged (ledger.access.security)
    return _answer(redemption.redeem_at_till(current_books(), ctx, request.remote_addr, code=body["code"], amount=body["amount"],
                                   items=body["items"], pin=body["pin"], idempotency_key=key))


@blp.route("/redemptions/<int:redemption_id>", methods=["GET"])
@till_auth(readers=("auditor", "fund_manager"))
@blp.doc(security=TILL_SECURITY)
@blp.response(200)
def get_redemption(redemption_id: int):
    """One redemption of your merchant, with its refunds."""
    return redemption.get_redemption(current_books(), _merchant_ids_readable(), redemption_id)


@blp.route("/redemptions/<int:redemption_id>/refunds", methods=["POST"])
@till_auth
@blp.arguments(RefundIn())
@blp.doc(security=TILL_SECURITY, parameters=[IDEMPOTENCY_HEADER])
@blp.alt_response(201, description="the refund")
def refund(body: dict, redemption_id: int):
    """Refund all or part of a redemption of your merchant, within the refund window."""
    readable = _merchant_ids_readable()
    ctx = g.get("goldbean_till")
    if ctx is None:
        owner = redemption.merchant_of_redemption(current_books(), redemption_id)
        if owner is None or readable is not None and owner not in readable:
            raise DomainError(errors.NOT_FOUND_ERR, redemption_id=redemption_id)
        ctx = _till(owner)
    return _answer(redemption.refund(current_books(), ctx, redemption_id, amount=body["amount"], reason=body["reason"],
                                     idempotency_key=_idempotency_key()))


@blp.route("/merchants/<int:merchant_id>/redemptions", methods=["GET"])
@till_auth(readers=("auditor", "fund_manager"))
@blp.arguments(ListQuery(), location="query")
@blp.doc(security=TILL_SECURITY)
@blp.response(200)
def list_redemptions(query: dict, merchant_id: int):
    """Your merchant's redemptions, newest first."""
    readable = _merchant_ids_readable()
    if readable is not None and merchant_id not in readable:
        raise DomainError(errors.PERMISSION_DENIED, "You do not serve at this merchant.")
    return redemption.list_redemptions(current_books(), merchant_id, **query)


# --- till keys ---------------------------------------------------------------------------------------

@blp.route("/merchants/<int:merchant_id>/tills", methods=["POST"])
@requires_roles("merchant_owner")
@blp.arguments(TillIn())
@blp.response(201)
def issue_till(body: dict, merchant_id: int):
    """Issue a till device key (shown once; only its hash is kept)."""
    _owner_of(merchant_id)
    view, key = redemption.issue_till(current_books(), merchant_id, body["name"], current_actor().ref)
    return {**view, "key": key}


@blp.route("/merchants/<int:merchant_id>/tills", methods=["GET"])
@requires_roles("merchant_owner")
@blp.response(200)
def list_tills(merchant_id: int):
    _owner_of(merchant_id)
    return redemption.list_tills(current_books(), merchant_id)


@blp.route("/merchants/<int:merchant_id>/tills/<int:till_id>", methods=["DELETE"])
@requires_roles("merchant_owner")
@blp.response(200)
def revoke_till(merchant_id: int, till_id: int):
    """Revoke a till key: it is refused from the next request on."""
    _owner_of(merchant_id)
    return redemption.revoke_till(current_books(), merchant_id, till_id)


@blp.route("/merchants/<int:merchant_id>/tills/pin-throttle/lift", methods=["POST"])
@requires_roles("merchant_owner", "admin")
@blp.arguments(TillPinLiftIn())
@blp.response(200)
def lift_till_pin_throttle(body: dict, merchant_id: int):
    """Let a till paused for wrong PINs on several cards take PINs again (the owner; logged)."""
    return redemption.lift_till_pin_throttle(current_books(), current_actor(), merchant_id, body["till"],
                                             source=request.remote_addr)


# --- catalogue --------------------------------------------------------------------------------------

@blp.route("/merchants/<int:merchant_id>/items", methods=["GET"])
@requires_roles()
@blp.response(200)
def list_items(merchant_id: int):
    """The merchant's catalogue (active items; the owner also sees withdrawn ones)."""
    owner = merchant_id in current_actor().merchant_ids_for("merchant_owner")
    return redemption.list_items(current_books(), merchant_id, include_inactive=owner)


@blp.route("/merchants/<int:merchant_id>/items", methods=["POST"])
@requires_roles("merchant_owner")
@blp.arguments(ItemIn())
@blp.response(201)
def add_item(body: dict, merchant_id: int):
    _owner_of(merchant_id)
    return redemption.add_item(current_books(), merchant_id, body["name"], body["price"])


@blp.route("/merchants/<int:merchant_id>/items/<int:item_id>", methods=["PATCH"])
@requires_roles("merchant_owner")
@blp.arguments(ItemPatch())
@blp.response(200)
def update_item(body: dict, merchant_id: int, item_id: int):
    _owner_of(merchant_id)
    return redemption.update_item(current_books(), merchant_id, item_id, **body)


@blp.route("/merchants/<int:merchant_id>/items/<int:item_id>", methods=["DELETE"])
@requires_roles("merchant_owner")
@blp.response(200)
def withdraw_item(merchant_id: int, item_id: int):
    """Withdraw an item (kept for the receipts that name it)."""
    _owner_of(merchant_id)
    return redemption.update_item(current_books(), merchant_id, item_id, active=False)


# --- settlement ---------------------------------------------------------------------------------------

@blp.route("/settlements", methods=["POST"])
@requires_roles("fund_manager")
@blp.arguments(PeriodIn())
@blp.response(200)
def run_settlement(body: dict):
    """Settle every merchant for a period that has ended; running it again changes nothing."""
    return settlement.run_settlement(current_books(), body["period"], current_actor().ref)


@blp.route("/settlements", methods=["GET"])
@requires_roles("fund_manager", "auditor")
@blp.arguments(PeriodQuery(), location="query")
@blp.response(200)
def list_settlements(query: dict):
    return settlement.list_settlements(current_books(), period=query["period"])


@blp.route("/merchants/<int:merchant_id>/settlements", methods=["GET"])
@requires_roles("merchant_owner", "fund_manager", "auditor")
@blp.response(200)
def merchant_settlements(merchant_id: int):
    """A merchant's settlement statements (its owner, fund managers and auditors)."""
    actor = current_actor()
    if not (actor.has_role("fund_manager") or actor.has_role("auditor")):
        _owner_of(merchant_id)
    return settlement.list_settlements(current_books(), merchant_id=merchant_id)
