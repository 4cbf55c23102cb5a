"""The room's signed codes: the printed post sign and the leader's rotating code (the service certificate
is ``ledger.service``'s).

Each is a compact JWS signed with Ed25519 (``alg: EdDSA``) with its own ``typ`` and its own key purpose,
so that none can pass for another, nor for a payment code:

- post sign (``gb-post-sign+jwt``, keys ``post_sign``): the post's id and sign serial; no expiry (it is
  printed), so it proves nothing alone: a check-in by sign also needs the phone inside the radius, and
  reprinting the sign (a new serial) retires the old ones;
- leader code (``gb-patrol-code+jwt``, keys ``patrol_code``): the post, the shift and the leader; lives
  ``leader_code_ttl_s`` seconds; one volunteer per code (``patrol_used_codes``).

Verification order as for payment codes: header and ``typ`` (``invalid_code``),
key (``unknown_key``), signature and claims, then time (``code_not_yet_valid``, ``code_expired``).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any

import jwt

from ledger import errors
from ledger.errors import DomainError, ErrorSpec
from ledger.infra.books import Books
from ledger.infra.keys import unverified_header

ISSUER = "goldbean"
AUDIENCE = "goldbean-patrol"
SIGN_TYP = "gb-post-sign+jwt"
LEADER_TYP = "gb-patrol-code+jwt"
ALGORITHM = "EdDSA"
LEEWAY_S = 15

_PURPOSE = {SIGN_TYP: "post_sign", LEADER_TYP: "patrol_code"}
_CLAIMS = {SIGN_TYP: ("iss", "aud", "sub", "jti", "iat", "serial"),
           LEADER_TYP: ("iss", "aud", "sub", "jti", "iat", "exp", "shift", "leader")}


@dataclass(frozen=True)
class LeaderCode:
    code: str
    jti: str
    expires_in: int
    exp: int


def _sign(books: Books, typ: str, claims: dict[str, Any]) -> str:
    key = books.keys.ensure(_PURPOSE[typ])
    return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": typ})


def issue_post_sign(books: Books, post_id: int, serial: int) -> str:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(post_id), "jti": secrets.token_urlsafe(9),
              "iat": int(books.now().timestamp()), "serial": serial}
    return _sign(books, SIGN_TYP, claims)


def issue_leader_code(books: Books, post_id: int, shift_id: int, leader_id: int, ttl_s: int) -> LeaderCode:
    now = int(books.now().timestamp())
    jti = secrets.token_urlsafe(12)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(post_id), "jti": jti, "iat": now, "exp": now + ttl_s,
              "shift": shift_id, "leader": leader_id}
    return LeaderCode(_sign(books, LEADER_TYP, claims), jti, ttl_s, now + ttl_s)


def verify(books: Books, code: Any, typ: str, *, max_ttl_s: int | None = None) -> dict[str, Any]:
    """The verified claims of a code of kind ``typ`` (see the module doc for the order of checks)."""
    bad: ErrorSpec = errors.INVALID_CODE
    header = unverified_header(code) if isinstance(code, str) and 20 <= len(code) <= 4096 else None
    if header is None or header.get("alg") != ALGORITHM or header.get("typ") != typ:
        raise DomainError(bad)
    kid = header.get("kid")
    public = books.keys.verifying_key(_PURPOSE[typ], kid) if isinstance(kid, str) and typ in _PURPOSE else None
    if public is None:
        raise DomainError(errors.UNKNOWN_KEY)
    try:
        claims = jwt.decode(code, public, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                            options={"require": list(_CLAIMS[typ]), "verify_exp": False, "verify_iat": False,
                                     "verify_nbf": False})
    except jwt.PyJWTError:
        raise DomainError(bad) from None
    now = books.now().timestamp()
    iat, exp = claims.get("iat"), claims.get("exp")
    if type(iat) is not int or (exp is not None and type(exp) is not int):
        raise DomainError(bad)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.isdigit() or len(sub) > 18:
        raise DomainError(bad)
    if iat > now + LEEWAY_S:
        raise DomainError(errors.CODE_NOT_YET_VALID)
    if exp is not None:
        if max_ttl_s is not None and not 0 < exp - iat <= max_ttl_s:
            raise DomainError(errors.INVALID_CODE, "The code claims too long a life.")
        if exp <= now - LEEWAY_S:
            raise DomainError(errors.CODE_EXPIRED)
    return claims


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine on a 6,371 km sphere: within 0.5 % at these scales)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(min(1.0, math.sqrt(a)))
