"""Signed codes a till scans: the short-lived wallet payment code and the long-lived bean card code.

Both are compact JWTs signed with Ed25519 (``alg: EdDSA``), each kind with its own ``typ`` and its own
signing keys (``wallet`` and ``card`` purposes of the ``KeyStore``), so that one kind can never pass for
another, nor an API access token (``gb-access+jwt``, ``access`` keys) for either.

Verification is strict and in this order, each failure with its own stable error code:

1. the header parses, ``alg`` is exactly ``EdDSA`` and ``typ`` is the kind expected (``invalid_code``);
2. ``kid`` names a key of that purpose that exists and is not retired (``unknown_key``);
3. the signature verifies with that key only, ``algorithms=["EdDSA"]`` pinned, and every claim is
   present with the right ``iss`` and ``aud`` (``invalid_code``);
4. the time, against the books' clock with ``LEEWAY_S`` of slack: ``iat`` not in the future
   (``code_not_yet_valid``), ``exp`` not past (``code_expired``), a wallet code lives at most
   ``WALLET_CODE_TTL_S``.

Single use (the ``jti``) and the card's status are checked by the redemption itself, in the same
transaction as the transfer.

A third kind, the offline code (``typ gb-offline+jwt``), is signed on a volunteer's phone with a key of the
phone's own; it is checked against the phone's registered public key in the redemption's transaction
(``ledger.redemption.devices``), with the same claims and the same time rules (``check_times``).
"""

from __future__ import annotations

import base64
import io
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
import qrcode
from qrcode.constants import ERROR_CORRECT_M

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.keys import InvalidJws, unverified_header, verify_eddsa_jws

ISSUER = "goldbean"
AUDIENCE = "goldbean-till"
WALLET_TYP = "gb-wallet+jwt"
CARD_TYP = "gb-card+jwt"
OFFLINE_TYP = "gb-offline+jwt"  # signed on a registered phone (ledger.redemption.devices)
ACCESS_TYP = "gb-access+jwt"  # issued by ledger.tokens; refused here
WALLET_CODE_TTL_S = 60
OFFLINE_CODE_TTL_S = 60  # a phone signs a fresh offline code every minute, like the server's
LEEWAY_S = 30
ALGORITHM = "EdDSA"

_WALLET_CLAIMS = ("iss", "aud", "sub", "jti", "iat", "exp")
_CARD_CLAIMS = ("iss", "aud", "sub", "jti", "iat", "card")


@dataclass(frozen=True)
class WalletCode:
    code: str
    jti: str
    expires_in: int
    exp: int
    number: str = ""  # the short number a cashier can type instead (``wallet.issue_payment_code``)


@dataclass(frozen=True)
class VerifiedCode:
    typ: str  # WALLET_TYP or CARD_TYP
    wallet_account_id: int
    jti: str
    kid: str
    card_id: int | None = None
    device_id: int | None = None  # an offline code: the phone that signed it


def _issuer(books: Books) -> str:
    return books.settings.code_issuer


def _sign(books: Books, purpose: str, typ: str, claims: dict[str, Any]) -> str:
    key = books.keys.ensure(purpose)
    return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": typ})


def issue_wallet_code(books: Books, wallet_account_id: int, ttl_s: int = WALLET_CODE_TTL_S) -> WalletCode:
    """A fresh payment code for the wallet; it lives ``ttl_s`` seconds (at most 60)."""
    ttl_s = max(1, min(int(ttl_s), WALLET_CODE_TTL_S))
    now = int(books.now().timestamp())
    jti = secrets.token_urlsafe(16)
    claims = {"iss": _issuer(books), "aud": AUDIENCE, "sub": str(wallet_account_id), "jti": jti, "iat": now,
              "exp": now + ttl_s}
    return WalletCode(_sign(books, "wallet", WALLET_TYP, claims), jti, ttl_s, now + ttl_s)


def issue_card_code(books: Books, card_id: int, wallet_account_id: int, token_id: str) -> str:
    """A bean card's code: no ``exp``; it stays valid while the card's row says ``active``."""
    claims = {"iss": _issuer(books), "aud": AUDIENCE, "sub": str(wallet_account_id), "jti": token_id,
              "iat": int(books.now().timestamp()), "card": card_id}
    return _sign(books, "card", CARD_TYP, claims)


def code_typ(code: Any) -> str:
    """The ``typ`` a code claims in its (unverified) header; ``invalid_code`` if it has no header."""
    return str(_header(code).get("typ", ""))


def header_of(code: Any) -> dict[str, Any]:
    """A code's unverified JOSE header (``invalid_code`` when it has none)."""
    return _header(code)


def _header(code: Any) -> dict[str, Any]:
    if not isinstance(code, str) or not 20 <= len(code) <= 4096:
        raise DomainError(errors.INVALID_CODE)
    header = unverified_header(code)
    if header is None:
        raise DomainError(errors.INVALID_CODE)
    return header


def verify_code(books: Books, code: Any, expected: tuple[str, ...] = (WALLET_TYP, CARD_TYP)) -> VerifiedCode:
    """Check a code's header, key, signature, claims and time (see the module doc)."""
    header = _header(code)
    typ = header.get("typ")
    if header.get("alg") != ALGORITHM:
        raise DomainError(errors.INVALID_CODE, "The code is not signed with EdDSA.")
    if typ not in expected:
        raise DomainError(errors.INVALID_CODE, "This is not a payment code.")
    purpose, required = ("wallet", _WALLET_CLAIMS) if typ == WALLET_TYP else ("card", _CARD_CLAIMS)
    kid = header.get("kid")
    public = books.keys.verifying_key(purpose, kid) if isinstance(kid, str) else None
    if public is None:
        raise DomainError(errors.UNKNOWN_KEY)
    try:
        claims = verify_eddsa_jws(code, public, audience=AUDIENCE, issuer=_issuer(books), require=required)
    except InvalidJws:
        raise DomainError(errors.INVALID_CODE) from None
    check_times(books, claims, WALLET_CODE_TTL_S if typ == WALLET_TYP else None)
    sub, jti = subject_and_id(claims)
    card_id = None
    if typ == CARD_TYP:
        card_id = claims.get("card")
        if not _is_int(card_id):
            raise DomainError(errors.INVALID_CODE, "The card id is malformed.")
    return VerifiedCode(typ, int(sub), jti, kid, card_id)


def check_times(books: Books, claims: dict[str, Any], ttl_s: int | None) -> None:
    """``iat`` (and ``nbf``) not in the future, ``exp`` not past, with ``LEEWAY_S`` of slack by the books' clock;
    with ``ttl_s``, an ``exp`` is required and the code may live at most that long."""
    now = books.now().timestamp()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not _is_int(iat) or (exp is not None and not _is_int(exp)) or (ttl_s is not None and exp is None):
        raise DomainError(errors.INVALID_CODE, "The code's times are malformed.")
    if iat > now + LEEWAY_S or ("nbf" in claims and (not _is_int(claims["nbf"]) or claims["nbf"] > now + LEEWAY_S)):
        raise DomainError(errors.CODE_NOT_YET_VALID)
    if ttl_s is not None:
        if exp - iat > ttl_s or exp < iat:
            raise DomainError(errors.INVALID_CODE, "The code claims too long a life.")
        if exp <= now - LEEWAY_S:
            raise DomainError(errors.CODE_EXPIRED)


def subject_and_id(claims: dict[str, Any]) -> tuple[str, str]:
    sub, jti = claims.get("sub"), claims.get("jti")
    if not isinstance(sub, str) or not sub.isdigit() or not isinstance(jti, str) or not 8 <= len(jti) <= 64:
        raise DomainError(errors.INVALID_CODE, "The code's subject or id is malformed.")
    return sub, jti


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is not a time


# --- QR images --------------------------------------------------------------------------------------

def qr_png(data: str, *, box_size: int = 6, border: int = 4) -> bytes:
    """The QR image (PNG) of ``data``: medium error correction, byte mode, a quiet zone of 4 modules."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=border)
    qr.add_data(data.encode("ascii"), optimize=0)
    qr.make(fit=True)
    image = qr.make_image(fill_color="black", back_color="white")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def qr_png_base64(data: str) -> str:
    return base64.b64encode(qr_png(data)).decode("ascii")
