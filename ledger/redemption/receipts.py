"""Reading redemptions: the receipt a till prints, one redemption with its refunds, a merchant's list.
A principal reads the redemptions of the merchants it serves at (auditors and fund managers: all of them,
``policy.readable_merchants``); another merchant's redemption is ``not_found``, never a hint that it exists."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.models import Merchant
from ledger.access.policy import Principal
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.redemption.common import iso
from ledger.redemption.models import Redemption, Refund


def receipt_body(redemption_id: int, status: str, amount: int, items: list[dict[str, Any]], merchant: Any,
                 requested_at: dt.datetime, method: str, hold_expires_at: dt.datetime | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "redemption_id": redemption_id,
        "status": status,
        "amount": amount,
        "items": items,
        "merchant": {"id": merchant.id, "code": merchant.code, "name": merchant.name},
        "time": iso(requested_at),
        "method": method,
    }
    if status == "awaiting_confirmation":
        body["confirm_by"] = iso(hold_expires_at)
    return body


def _receipt(red: Redemption, merchant: Merchant) -> dict[str, Any]:
    return receipt_body(red.id, red.status, red.amount, json.loads(red.items), merchant, red.requested_at,
                        red.method, red.hold_expires_at)


def status_now(red: Redemption, now: dt.datetime) -> str:
    """A hold that timed out is ``expired`` even before the expiry worker released it."""
    if red.status == "awaiting_confirmation":
        expires = utc_from_db(red.hold_expires_at)
        if expires is not None and expires <= now:
            return "expired"
    return red.status


def redemption_view(s: Session, red: Redemption, now: dt.datetime) -> dict[str, Any]:
    merchant = s.get(Merchant, red.merchant_id)
    assert merchant is not None
    view = _receipt(red, merchant)
    view.update(status=status_now(red, now), refunded=red.refunded, wallet_account_id=red.wallet_account_id,
                completed_at=iso(red.completed_at), actor=red.actor)
    view["refunds"] = [
        {"refund_id": r.id, "amount": r.amount, "time": iso(r.refunded_at), "reason": r.reason}
        for r in s.scalars(select(Refund).where(Refund.redemption_id == red.id).order_by(Refund.id))
    ]
    return view


def get_redemption(books: Books, by: Principal, redemption_id: int) -> dict[str, Any]:
    """A redemption, if ``by`` may read its merchant's redemptions (else ``not_found``)."""
    readable = policy.readable_merchants(by)

    def work(s: Session) -> dict[str, Any]:
        red = s.get(Redemption, redemption_id)
        if red is None or (readable is not None and red.merchant_id not in readable):
            raise DomainError(errors.NOT_FOUND_ERR, redemption_id=redemption_id)
        return redemption_view(s, red, books.now())

    return books.run(work, readonly=True)


def merchant_of_redemption(books: Books, redemption_id: int) -> int | None:
    """The merchant a redemption was made at, or None when there is no such redemption."""
    return books.run(lambda s: s.scalar(select(Redemption.merchant_id).where(Redemption.id == redemption_id)),
                     readonly=True)


def list_redemptions(books: Books, merchant_id: int, *, by: Principal, limit: int = 50,
                     before_id: int | None = None) -> list[dict[str, Any]]:
    """The merchant's redemptions, newest first (``permission_denied`` for who does not serve there)."""
    policy.require_reads_merchant(by, merchant_id)
    limit = max(1, min(int(limit), 200))

    def work(s: Session) -> list[dict[str, Any]]:
        q = select(Redemption).where(Redemption.merchant_id == merchant_id)
        if before_id is not None:
            q = q.where(Redemption.id < before_id)
        now = books.now()
        return [redemption_view(s, r, now) for r in s.scalars(q.order_by(Redemption.id.desc()).limit(limit))]

    return books.run(work, readonly=True)
