"""Phones that sign offline codes (离线付款码) with a key of their own.

On first use the wallet app makes a key pair on the phone (WebCrypto: Ed25519, or ECDSA P-256 where a
browser lacks Ed25519; the private key is not extractable) and registers the public half here
(``register_device``). From then on the phone can show a valid code with no network: a compact JWT, ``typ
gb-offline+jwt``, ``kid`` = the device's ``kid``, with the claims of a wallet code (``iss``, ``aud``,
``sub`` = the wallet, ``jti``, ``iat``, ``exp`` at most ``OFFLINE_CODE_TTL_S`` after ``iat``), signed on
the phone.

The till redeems it as any code (``redeeming``): ``verify_offline_code`` runs in the redemption's own
transaction, reads the device row under a lock (a revoked phone's codes are refused at once:
``device_revoked``), checks the signature with that key only and that algorithm only, the times as for a
wallet code, and that ``sub`` is the device's own wallet. The ``jti`` is spent like a wallet code's,
namespaced by the device (``dev<id>:<jti>``), so a code pays once and one phone cannot burn another's.
What all of a wallet's offline codes may pay per local day (``offline_daily_codes`` codes and
``offline_daily_beans`` beans) is checked after posting, under the accounts' locks, as the daily limits are.

Who may: a volunteer registers, lists and revokes their own phones; admins and officers over the
volunteer's home units read and revoke them (``policy.require_device_holder_or_officer``); anyone else is
told ``not_found``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import wallet_account_id
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.redemption import codes
from ledger.redemption.common import iso
from ledger.redemption.models import WalletDevice

_CLAIMS = ("iss", "aud", "sub", "jti", "iat", "exp")
_CURVES = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256"}


def _b64(data: Any, size: int) -> bytes:
    if not isinstance(data, str) or len(data) > 2 * size or not data.replace("-", "").replace("_", "").isalnum():
        raise DomainError(errors.DEVICE_KEY_INVALID)
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except ValueError:
        raise DomainError(errors.DEVICE_KEY_INVALID) from None
    if len(raw) != size:
        raise DomainError(errors.DEVICE_KEY_INVALID)
    return raw


def parse_public_jwk(jwk: Any) -> tuple[str, Any, str]:
    """(alg, public key object, canonical JSON) of a public JWK: Ed25519 (``OKP``) or P-256 (``EC``), the point
    checked by ``cryptography``; a private member (``d``) or anything else is ``device_key_invalid``."""
    if not isinstance(jwk, dict) or "d" in jwk:
        raise DomainError(errors.DEVICE_KEY_INVALID)
    alg = _CURVES.get((jwk.get("kty"), jwk.get("crv")))
    if alg is None:
        raise DomainError(errors.DEVICE_KEY_INVALID)
    try:
        if alg == "EdDSA":
            x = _b64(jwk.get("x"), 32)
            key: Any = ed25519.Ed25519PublicKey.from_public_bytes(x)
            canonical = {"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]}
        else:
            x, y = _b64(jwk.get("x"), 32), _b64(jwk.get("y"), 32)
            key = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                                ec.SECP256R1()).public_key()
            canonical = {"crv": "P-256", "kty": "EC", "x": jwk["x"], "y": jwk["y"]}
    except ValueError:
        raise DomainError(errors.DEVICE_KEY_INVALID) from None
    return alg, key, json.dumps(canonical, separators=(",", ":"), sort_keys=True)


def _kid(canonical: str) -> str:
    """The RFC 7638 thumbprint of the public JWK (its canonical JSON), first 16 hex digits, prefixed ``dev-``."""
    return "dev-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _view(d: WalletDevice, books: Books | None = None) -> dict[str, Any]:
    out = {"id": d.id, "user_id": d.user_id, "wallet_account_id": d.wallet_account_id, "kid": d.kid,
           "alg": d.alg, "public_jwk": json.loads(d.public_jwk), "name": d.name, "status": d.status,
           "created_at": iso(d.created_at), "last_used_at": iso(d.last_used_at),
           "revoked_at": iso(d.revoked_at)}
    if books is not None:  # what the phone needs to sign codes the till accepts
        limits = books.settings.redemption
        out["signing"] = {"typ": codes.OFFLINE_TYP, "iss": books.settings.code_issuer, "aud": codes.AUDIENCE,
                          "sub": str(d.wallet_account_id), "ttl_s": codes.OFFLINE_CODE_TTL_S,
                          "server_time": int(books.now().timestamp()),
                          "daily_beans": limits.offline_daily_beans, "daily_codes": limits.offline_daily_codes}
    return out


def register_device(books: Books, actor: Any, *, jwk: Any, name: str = "") -> dict[str, Any]:
    """Register this phone's public key for the actor's own wallet (at most ``devices_per_user`` active)."""
    policy.require_role(actor, "volunteer", "leader")
    alg, _, canonical = parse_public_jwk(jwk)
    kid = _kid(canonical)
    name = (name or "").strip()[:60]

    def work(s: Session) -> dict[str, Any]:
        wallet = wallet_account_id(s, actor.user_id)
        if s.scalar(select(WalletDevice.id).where(WalletDevice.kid == kid)) is not None:
            raise DomainError(errors.DEVICE_ALREADY_REGISTERED)
        active = s.scalar(select(func.count()).select_from(WalletDevice).where(
            WalletDevice.user_id == actor.user_id, WalletDevice.status == "active"))
        if active >= books.settings.redemption.devices_per_user:
            raise DomainError(errors.TOO_MANY_DEVICES, limit=books.settings.redemption.devices_per_user)
        device = WalletDevice(user_id=actor.user_id, wallet_account_id=wallet, kid=kid, alg=alg,
                              public_jwk=canonical, name=name, status="active", created_at=books.now())
        s.add(device)
        s.flush()
        return _view(device, books)

    return books.run(work)


def _device_for(s: Session, actor: Any, device_id: int, *, lock: bool = False) -> WalletDevice:
    device = s.get(WalletDevice, device_id, with_for_update=lock)
    if device is None or not policy.may_see_device(s, actor, device.user_id):
        raise DomainError(errors.NOT_FOUND_ERR, device_id=device_id)
    policy.require_device_holder_or_officer(s, actor, device.user_id)  # an officer of another area: out_of_scope
    return device


def get_device(books: Books, actor: Any, device_id: int) -> dict[str, Any]:
    return books.run(lambda s: _view(_device_for(s, actor, device_id), books), readonly=True)


def list_devices(books: Books, actor: Any, *, user_id: int | None = None) -> list[dict[str, Any]]:
    """A volunteer's phones, newest first: the actor's own, or (admins, officers over them) another's."""
    def work(s: Session) -> list[dict[str, Any]]:
        whose = actor.user_id if user_id is None else user_id
        if whose != actor.user_id:
            policy.require_device_holder_or_officer(s, actor, whose)
        rows = s.scalars(select(WalletDevice).where(WalletDevice.user_id == whose)
                         .order_by(WalletDevice.id.desc())).all()
        return [_view(d) for d in rows]

    return books.run(work, readonly=True)


def revoke_device(books: Books, actor: Any, device_id: int) -> dict[str, Any]:
    """The phone's offline codes are refused from the next redemption on (``device_revoked``); revoking a revoked
    phone changes nothing."""
    def work(s: Session) -> dict[str, Any]:
        device = _device_for(s, actor, device_id, lock=True)
        if device.status != "revoked":
            device.status = "revoked"
            device.revoked_at = books.now()
            device.revoked_by = getattr(actor, "ref", None) or "system"
        return _view(device)

    return books.run(work)


def verify_offline_code(s: Session, books: Books, code: Any, now: dt.datetime) -> codes.VerifiedCode:
    """Check an offline code against its phone's key, in the redemption's transaction (see the module doc)."""
    header = codes.header_of(code)
    kid = header.get("kid")
    if header.get("typ") != codes.OFFLINE_TYP or header.get("alg") not in _CURVES.values() or not isinstance(kid, str):
        raise DomainError(errors.INVALID_CODE)
    device = s.scalars(select(WalletDevice).where(WalletDevice.kid == kid[:40]).with_for_update()).first()
    if device is None:
        raise DomainError(errors.UNKNOWN_KEY)
    if header["alg"] != device.alg:
        raise DomainError(errors.INVALID_CODE, "The code is not signed with this phone's algorithm.")
    _, key, _ = parse_public_jwk(json.loads(device.public_jwk))
    try:
        claims = jwt.decode(code, key, algorithms=[device.alg], audience=codes.AUDIENCE,
                            issuer=books.settings.code_issuer,
                            options={"require": list(_CLAIMS), "verify_exp": False, "verify_iat": False,
                                     "verify_nbf": False})
    except jwt.PyJWTError:
        raise DomainError(errors.INVALID_CODE) from None
    if device.status != "active":
        raise DomainError(errors.DEVICE_REVOKED)
    codes.check_times(books, claims, codes.OFFLINE_CODE_TTL_S)
    sub, jti = codes.subject_and_id(claims)
    if int(sub) != device.wallet_account_id or len(jti) > 43:
        raise DomainError(errors.INVALID_CODE, "The code names another wallet than its phone's.")
    device.last_used_at = now
    return codes.VerifiedCode(codes.OFFLINE_TYP, device.wallet_account_id, f"dev{device.id}:{jti}", kid,
                              device_id=device.id)
