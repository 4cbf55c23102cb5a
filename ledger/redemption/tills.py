"""Who is at the till: till device keys (issued, listed and revoked by the merchant's owner) and the
``TillContext`` every till use case gets: the principal the door named and the merchant it asks to act for.
Whether that principal may act for that merchant is ``ledger.access.policy``'s to say, asked by each use case.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.policy import Principal, TillDevice
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import driver_rows
from ledger.redemption.common import iso, merchant_row
from ledger.redemption.models import Till

TILL_KEY_PREFIX = "gbtill_"
_FIND_TILL = {"postgresql": "SELECT merchant_id, secret_hash, status FROM tills WHERE id = %(till_id)s",
              "sqlite": "SELECT merchant_id, secret_hash, status FROM tills WHERE id = :till_id"}


@dataclass(frozen=True)
class TillContext:
    """A till request: who sends it (a ``TillDevice``, a cashier's or owner's ``Actor``, or ``SYSTEM``) and
    the merchant it asks to act for (``None``: the principal's only merchant). Nothing here is trusted: each
    use case resolves it with ``acting_merchant``."""

    merchant_id: int | None
    principal: Principal

    @property
    def actor(self) -> str:
        """How the principal is written in the journal (``user:7``, ``till:3``)."""
        return self.principal.ref

    @property
    def till_id(self) -> int | None:
        return self.principal.till_id if isinstance(self.principal, TillDevice) else None


def acting_merchant(ctx: TillContext) -> int:
    """The merchant ``ctx`` may act for: ``permission_denied`` for another merchant's till or cashier."""
    if not isinstance(ctx, TillContext):
        raise DomainError(errors.PERMISSION_DENIED)
    return policy.till_merchant(ctx.principal, ctx.merchant_id)


def _hash_secret(secret: str) -> str:
    # a till secret is 256 random bits, not something a person chose: a plain digest is enough
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_till(books: Books, merchant_id: int, name: str, actor: str, *, by: Principal) -> tuple[dict[str, Any], str]:
    """A till key for the merchant (its owner only): ``gbtill_<id>_<secret>``, shown once; only its hash is kept."""
    policy.require_owner_of(by, merchant_id)
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 80:
        raise DomainError(errors.VALIDATION_FAILED, "a till needs a name of 1 to 80 characters")
    secret = secrets.token_urlsafe(32)

    def work(s: Session) -> tuple[dict[str, Any], str]:
        merchant_row(s, merchant_id)
        till = Till(merchant_id=merchant_id, name=name.strip(), secret_hash=_hash_secret(secret), status="active",
                    created_by=actor, created_at=books.now())
        s.add(till)
        s.flush()
        return _till_view(till), f"{TILL_KEY_PREFIX}{till.id}_{secret}"

    return books.run(work)


def revoke_till(books: Books, merchant_id: int, till_id: int, *, by: Principal) -> dict[str, Any]:
    policy.require_owner_of(by, merchant_id)

    def work(s: Session) -> dict[str, Any]:
        till = s.get(Till, till_id, with_for_update=True)
        if till is None or till.merchant_id != merchant_id:
            raise DomainError(errors.NOT_FOUND_ERR, till_id=till_id)
        if till.status != "revoked":
            till.status = "revoked"
            till.revoked_at = books.now()
        return _till_view(till)

    return books.run(work)


def list_tills(books: Books, merchant_id: int, *, by: Principal) -> list[dict[str, Any]]:
    policy.require_tills_reader(by, merchant_id)

    def work(s: Session) -> list[dict[str, Any]]:
        return [_till_view(t) for t in s.scalars(select(Till).where(Till.merchant_id == merchant_id).order_by(Till.id))]

    return books.run(work, readonly=True)


def _till_view(till: Till) -> dict[str, Any]:
    return {"id": till.id, "merchant_id": till.merchant_id, "name": till.name, "status": till.status,
            "created_at": iso(till.created_at), "revoked_at": iso(till.revoked_at)}


def is_till_key(value: str) -> bool:
    return value.startswith(TILL_KEY_PREFIX)


def authenticate_till(books: Books, key: str) -> TillContext:
    """The till a key belongs to, if the key is right and neither it nor its merchant is revoked."""
    match = re.fullmatch(rf"{TILL_KEY_PREFIX}([0-9]{{1,18}})_([A-Za-z0-9_-]{{20,100}})", key or "")
    if match is None:
        raise DomainError(errors.INVALID_TILL_KEY)
    till_id, secret = int(match.group(1)), match.group(2)

    def work(conn: Any) -> TillContext:
        rows = driver_rows(conn, _FIND_TILL[conn.dialect.name], {"till_id": till_id})
        merchant_id, secret_hash, status = rows[0] if rows else (None, _hash_secret("no such till"), None)
        ok = hmac.compare_digest(secret_hash, _hash_secret(secret))
        if not rows or not ok or status != "active":
            raise DomainError(errors.INVALID_TILL_KEY)
        return TillContext(merchant_id, TillDevice(till_id, merchant_id))

    return books.run_core(work, readonly=True)
