"""The volunteer's wallet (payment codes, balance, confirming held redemptions) and bean cards.

Views are thin: parse, call one ``ledger`` use case with the signed-in actor, return its result.
"""

from __future__ import annotations

import base64
import html

from flask import Response, request
from marshmallow import fields, validate

from doors import current_books
from ledger import redemption
from ledger.access import policy, security
from ledger.access.identity import wallet_of
from ledger.redemption import codes

from .auth import current_actor, requires_roles
from .edge import Blueprint
from .schemas import BINARY, NO_STORE, NO_STORE_DOC, TEXT, Boolean, In, Out, RedemptionOut, String, iso

blp = Blueprint("wallet", __name__, url_prefix="/wallet", description="The volunteer's wallet and payment codes")
cards_blp = Blueprint("cards", __name__, url_prefix="/cards",
                      description="Bean cards (金豆卡) for volunteers without a phone: QR + PIN")



# the card's code is a bearer credential: never cached, never framed, the page loads nothing
PRINT_HEADERS = {**NO_STORE, "X-Frame-Options": "DENY", "Content-Security-Policy":
                 "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"}


def _my_wallet() -> int:
    actor = current_actor()
    return wallet_of(current_books(), actor.user_id)


class CodeOut(Out):
    code = fields.String(required=True, metadata={"description": "compact JWT, EdDSA, typ gb-wallet+jwt"})
    qr_png = fields.String(required=True, metadata={"description": "the code's QR image, PNG, base64"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds; refresh before it runs out"})
    number = fields.String(required=True, metadata={
        "description": "16 digits a cashier can type instead of scanning (the till sends them as `code`)"})


class HistoryLine(Out):
    transfer_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    phase = fields.String(required=True)
    amount = fields.Integer(required=True, metadata={"description": "in (+) or out (-) of the wallet"})
    reason = fields.String(required=True)
    reference = fields.String(required=True, allow_none=True)
    time = iso(required=True)


class WalletOut(Out):
    wallet_account_id = fields.Integer(required=True)
    status = fields.String(required=True)
    balance = fields.Integer(required=True)
    available = fields.Integer(required=True, metadata={"description": "balance less what is on hold"})
    on_hold = fields.Integer(required=True)
    awaiting_confirmation = fields.List(fields.Nested(RedemptionOut), required=True)
    history = fields.List(fields.Nested(HistoryLine), required=True, metadata={"description": "newest first"})


class CardOut(Out):
    id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    wallet_account_id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "active, locked or revoked"})
    failed_pins = fields.Integer(required=True)
    created_at = iso(required=True)
    revoked_at = iso(required=True, allow_none=True)


class IssuedCardOut(Out):
    card = fields.Nested(CardOut, required=True)
    code = fields.String(required=True, metadata={"description": "the card's signed code (printed as its QR)"})
    pin = fields.String(metadata={"description": "only when generated: shown this once"})
    qr_png = fields.String(required=True, metadata={"description": "PNG, base64"})
    print_url = fields.String(required=True)


@blp.route("/codes", methods=["POST"])
@requires_roles("volunteer")
@blp.response(201, CodeOut, headers=NO_STORE_DOC)
def new_code():
    """A fresh payment code (valid 60 seconds, one use) and its QR image (rate limited: `rate_limited`)."""
    issued = redemption.issue_payment_code(current_books(), current_actor(), source=request.remote_addr)
    body = {"code": issued.code, "qr_png": codes.qr_png_base64(issued.code), "expires_in": issued.expires_in,
            "number": issued.number}
    return body, NO_STORE


@blp.route("", methods=["GET"])
@requires_roles()
@blp.response(200, WalletOut)
def my_wallet():
    """Balance (available, on hold), redemptions waiting for your confirmation, recent history."""
    return redemption.wallet_overview(current_books(), current_actor())


@blp.route("/holds/<int:redemption_id>/confirm", methods=["POST"])
@requires_roles("volunteer")
@blp.response(200, RedemptionOut)
def confirm(redemption_id: int):
    """Confirm a redemption above the threshold: the held beans go to the merchant."""
    return redemption.confirm_hold(current_books(), current_actor(), redemption_id)


@blp.route("/holds/<int:redemption_id>/decline", methods=["POST"])
@requires_roles("volunteer")
@blp.response(200, RedemptionOut)
def decline(redemption_id: int):
    """Decline it: the held beans are released at once."""
    return redemption.decline_hold(current_books(), current_actor(), redemption_id)


# --- phones that sign offline codes ----------------------------------------------------------------

DEVICE_ROLES = ("volunteer", "leader", "officer", "admin")


class PublicJwk(In):
    kty = String(required=True, validate=validate.OneOf(["OKP", "EC"]))
    crv = String(required=True, validate=validate.OneOf(["Ed25519", "P-256"]))
    x = String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{43}$"),
               metadata={"description": "32 bytes, base64url without padding"})
    y = String(validate=validate.Regexp(r"^[A-Za-z0-9_-]{43}$"), metadata={"description": "P-256 only"})
    # what WebCrypto's exportKey("jwk") adds to a public key
    ext = Boolean(metadata={"description": "ignored"})
    key_ops = fields.List(fields.String(validate=validate.Length(max=20)), validate=validate.Length(max=8),
                          metadata={"description": "ignored"})
    alg = String(metadata={"description": "ignored (the curve decides: EdDSA or ES256)"})


class DeviceIn(In):
    public_jwk = fields.Nested(PublicJwk, required=True, metadata={
        "description": "the phone's public key: Ed25519 (OKP) or, where a browser lacks it, P-256 (EC)"})
    name = String(load_default="", validate=validate.Length(max=60), metadata={"description": "e.g. 我的手机"})


class JwkOut(Out):
    kty = fields.String(required=True)
    crv = fields.String(required=True)
    x = fields.String(required=True)
    y = fields.String()


class SigningOut(Out):
    typ = fields.String(required=True, metadata={"description": "the JWT typ of offline codes: gb-offline+jwt"})
    iss = fields.String(required=True)
    aud = fields.String(required=True)
    sub = fields.String(required=True, metadata={"description": "the wallet the codes name"})
    ttl_s = fields.Integer(required=True, metadata={"description": "exp - iat of each code, at most"})
    server_time = fields.Integer(required=True, metadata={
        "description": "the server's clock (Unix seconds): the phone signs with its offset corrected"})
    daily_beans = fields.Integer(required=True, metadata={"description": "all offline codes of a day pay at most"})
    daily_codes = fields.Integer(required=True, metadata={"description": "offline codes spent per day, at most"})


class DeviceOut(Out):
    id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    wallet_account_id = fields.Integer(required=True)
    kid = fields.String(required=True, metadata={"description": "the JWT kid of this phone's codes"})
    alg = fields.String(required=True, metadata={"description": "EdDSA or ES256"})
    public_jwk = fields.Nested(JwkOut, required=True)
    name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "active or revoked"})
    created_at = iso(required=True)
    last_used_at = iso(required=True, allow_none=True)
    revoked_at = iso(required=True, allow_none=True)
    signing = fields.Nested(SigningOut, metadata={"description": "on registration and on reading one's own"})


class DeviceQuery(In):
    user_id = fields.Integer(strict=False, load_default=None,
                             metadata={"description": "officers and admins: another volunteer's phones"})


@blp.route("/devices", methods=["POST"])
@requires_roles("volunteer", "leader")
@blp.arguments(DeviceIn())
@blp.response(201, DeviceOut)
def register_device(body: dict):
    """Register this phone's public key: from now on it may sign offline codes (`gb-offline+jwt`) for your
    wallet, within the daily offline limits (`too_many_devices`, `device_already_registered`,
    `device_key_invalid`)."""
    jwk = {k: v for k, v in body["public_jwk"].items() if k in ("kty", "crv", "x", "y")}
    return redemption.register_device(current_books(), current_actor(), jwk=jwk, name=body["name"])


@blp.route("/devices", methods=["GET"])
@requires_roles(*DEVICE_ROLES)
@blp.arguments(DeviceQuery(), location="query")
@blp.response(200, DeviceOut(many=True))
def list_devices(query: dict):
    """Your phones (or, for an officer over them or an admin, another volunteer's), newest first."""
    return redemption.list_devices(current_books(), current_actor(), user_id=query["user_id"])


@blp.route("/devices/<int:device_id>", methods=["GET"])
@requires_roles(*DEVICE_ROLES)
@blp.response(200, DeviceOut)
def show_device(device_id: int):
    """One phone (`not_found` for another volunteer's)."""
    return redemption.get_device(current_books(), current_actor(), device_id)


@blp.route("/devices/<int:device_id>", methods=["DELETE"])
@requires_roles(*DEVICE_ROLES)
@blp.response(200, DeviceOut)
def revoke_device(device_id: int):
    """Revoke a lost phone's key (the volunteer, an officer over them, an admin): its offline codes are refused
    from the next redemption on (`device_revoked`)."""
    return redemption.revoke_device(current_books(), current_actor(), device_id)


# --- bean cards ------------------------------------------------------------------------------------

class CardIn(In):
    user_id = fields.Integer(strict=True, required=True)
    pin = String(load_default=None, validate=validate.Regexp(r"^[0-9]{4,8}$"),
                        metadata={"description": "4 to 8 digits; omitted: a 6-digit PIN is generated and shown once"})


@cards_blp.route("", methods=["POST"])
@requires_roles(*policy.CARD_ROLES)
@cards_blp.arguments(CardIn())
@cards_blp.response(201, IssuedCardOut, headers=NO_STORE_DOC)
def issue(args):
    """Issue a card to a volunteer (revoking any earlier card of theirs). The PIN is shown only here."""
    actor = current_actor()
    out = redemption.issue_card(current_books(), args["user_id"], actor.ref, args["pin"], by=actor)
    out["qr_png"] = codes.qr_png_base64(out["code"])
    out["print_url"] = f"/api/v1/cards/{out['card']['id']}/print"
    return out, NO_STORE


@cards_blp.route("/<int:card_id>", methods=["GET"])
@requires_roles(*policy.CARD_ROLES)
@cards_blp.response(200, CardOut)
def show(card_id: int):
    return redemption.get_card(current_books(), card_id, by=current_actor())


class PrintQuery(In):
    format = String(load_default="html", validate=validate.OneOf(["html", "png"]),
                    metadata={"description": "html: the printable page; png: the bare QR image"})


@cards_blp.route("/<int:card_id>/print", methods=["GET"])
@requires_roles(*policy.CARD_ROLES)
@cards_blp.arguments(PrintQuery(), location="query")
@cards_blp.response(200, TEXT, content_type="text/html", description="format=html: the printable page")
@cards_blp.alt_response(200, schema=BINARY, content_type="image/png", description="format=png: the QR image",
                        success=True)
def print_card(query: dict, card_id: int):
    """The printable card: an HTML page with the QR, or the bare QR image with `?format=png`."""
    card = redemption.get_card(current_books(), card_id, with_code=True, by=current_actor())
    png = codes.qr_png(card["code"], box_size=5)
    if query["format"] == "png":
        return Response(png, mimetype="image/png", headers=PRINT_HEADERS)
    holder = html.escape(card["holder"])
    status = "" if card["status"] == "active" else f"<p class='void'>{html.escape(card['status'])}</p>"
    page = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>金豆卡 Bean card {card_id}</title>
<style>
 body {{ font-family: sans-serif; }}
 .card {{ width: 85.6mm; height: 54mm; border: 1px solid #333; border-radius: 3mm; padding: 3mm;
         box-sizing: border-box; display: flex; gap: 3mm; }}
 .card img {{ width: 46mm; height: 46mm; }}
 .void {{ color: #b00; font-weight: bold; }}
 @media print {{ .hint {{ display: none; }} }}
</style></head>
<body>
<div class="card">
 <img alt="QR" src="data:image/png;base64,{base64.b64encode(png).decode()}">
 <div><h3>金豆卡 Gold Bean card</h3><p>{holder}</p><p>No. {card_id}</p>
 <p><small>收银时出示本卡并输入密码。遗失请联系社区挂失。<br>Show at the till and type your PIN.
 Lost? Ask your community to revoke it.</small></p>{status}</div>
</div>
<p class="hint">Print at 100% scale. The PIN is never printed on the card.</p>
</body></html>"""
    return Response(page, mimetype="text/html", headers=PRINT_HEADERS)


@cards_blp.route("/<int:card_id>/revoke", methods=["POST"])
@requires_roles(*policy.CARD_ROLES)
@cards_blp.response(200, CardOut)
def revoke(card_id: int):
    """Revoke a lost card: its code is refused from now on."""
    return redemption.revoke_card(current_books(), card_id, by=current_actor())


@cards_blp.route("/<int:card_id>/unlock", methods=["POST"])
@requires_roles(*policy.CARD_ROLES)
@cards_blp.response(200, CardOut)
def unlock(card_id: int):
    """Unlock a card locked by five wrong PINs (recorded in the security log)."""
    actor = current_actor()
    out = redemption.unlock_card(current_books(), card_id, by=actor)
    security.record(current_books(), "unlock", actor=actor.ref, card_id=card_id, from_address=request.remote_addr)
    return out
