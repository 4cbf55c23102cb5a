"""API access tokens: short-lived EdDSA JWTs signed with the ``access`` key.

Header ``typ`` is ``gb-access+jwt`` and ``kid`` names the key; claims ``iss`` goldbean, ``aud``
goldbean-api, ``sub`` the user id, ``jti``, ``iat``, ``exp`` (15 minutes). Verification pins the
algorithm to EdDSA, requires every claim, and refuses any other ``typ`` (wallet and card codes have
their own keys and types) and any unknown or retired key.
"""

from __future__ import annotations

import datetime as dt
import uuid

import jwt
from sqlalchemy import Connection

from ledger import errors
from ledger.access.identity import Actor, load_actor
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.keys import InvalidJws, unverified_header, verify_eddsa_jws

ACCESS_TYP = "gb-access+jwt"
ISSUER = "goldbean"
AUDIENCE = "goldbean-api"
ACCESS_TTL = dt.timedelta(minutes=15)
LEEWAY_S = 5


def issue_access_token(books: Books, actor: Actor) -> tuple[str, int]:
    """A bearer token for ``actor`` and its lifetime in seconds."""
    key = books.keys.ensure("access")
    now = books.now()
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(actor.user_id),
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int((now + ACCESS_TTL).timestamp()),
    }
    token = jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid, "typ": ACCESS_TYP})
    return token, int(ACCESS_TTL.total_seconds())


def verify_access_token(books: Books, token: str) -> int:
    """The user id the token was issued to; ``invalid_token`` or ``token_expired`` otherwise."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise DomainError(errors.INVALID_TOKEN)
    header = unverified_header(token)
    if header is None:
        raise DomainError(errors.INVALID_TOKEN)
    if header.get("alg") != "EdDSA" or header.get("typ") != ACCESS_TYP:
        raise DomainError(errors.INVALID_TOKEN)
    kid = header.get("kid")
    public = books.keys.verifying_key("access", kid) if isinstance(kid, str) else None
    if public is None:
        raise DomainError(errors.INVALID_TOKEN)
    try:
        claims = verify_eddsa_jws(token, public, audience=AUDIENCE, issuer=ISSUER,
                                  require=("exp", "iat", "sub", "jti", "iss", "aud"))
    except InvalidJws:
        raise DomainError(errors.INVALID_TOKEN) from None
    # every time is judged by the books' clock (the tests move it)
    now = books.now().timestamp()
    nbf = claims.get("nbf")
    if nbf is not None and (type(nbf) is not int or nbf > now + LEEWAY_S):
        raise DomainError(errors.INVALID_TOKEN)
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int):
        raise DomainError(errors.INVALID_TOKEN)
    if now > exp + LEEWAY_S:
        raise DomainError(errors.TOKEN_EXPIRED)
    if iat > now + LEEWAY_S or exp - iat > ACCESS_TTL.total_seconds():
        raise DomainError(errors.INVALID_TOKEN)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.isdigit():
        raise DomainError(errors.INVALID_TOKEN)
    return int(sub)


def actor_for_token(books: Books, token: str) -> Actor:
    """The acting user behind a bearer token, with their grants, in one read transaction; a user removed
    or disabled after the token was issued is ``invalid_token``."""
    user_id = verify_access_token(books, token)

    def work(conn: Connection) -> Actor:
        try:
            return load_actor(conn, user_id)
        except DomainError as exc:
            raise DomainError(errors.INVALID_TOKEN) from exc

    return books.run_core(work, readonly=True)  # one statement, no transaction around it
