"""Refunds: ``refund`` transfers from the merchant's account back to the wallet (not reversals of the redeem
transfer), bounded by ``redemptions.refunded`` which is read and raised under the row lock: a refund is a
business event of its own, with its own window, and a reversal stays what it is, the correction of a mistake.

Only a till or cashier of the redemption's merchant refunds it; for anyone else it is ``not_found``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import Actor
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.infra.idempotency import Answer, idempotent
from ledger.journal.accounts import post_in
from ledger.journal.models import Account
from ledger.journal.posting import transfer
from ledger.redemption.common import iso, merchant_row
from ledger.redemption.core import setting
from ledger.redemption.models import Redemption, Refund
from ledger.redemption.preview import customer_name
from ledger.redemption.receipts import merchant_of_redemption, redemption_view, status_now
from ledger.redemption.tills import TillContext, acting_merchant


def _refunding_merchant(books: Books, ctx: TillContext, redemption_id: int) -> int:
    """The merchant this refund acts for. A cashier who names none acts for the redemption's merchant, if
    they serve there (a redemption they may not see is ``not_found``)."""
    if ctx.merchant_id is None and isinstance(ctx.principal, Actor):
        owner = merchant_of_redemption(books, redemption_id)
        if owner is None or not policy.may_serve_at(ctx.principal, owner):
            raise DomainError(errors.NOT_FOUND_ERR, redemption_id=redemption_id)
        ctx = TillContext(owner, ctx.principal)
    return acting_merchant(ctx)


def _refundable(books: Books, red: Redemption, amount: int | None, now: dt.datetime) -> int:
    """How many beans this refund gives back, or the refusal."""
    if red.status != "completed":
        raise DomainError(errors.NOT_REFUNDABLE, status=status_now(red, now))
    window = dt.timedelta(days=int(setting(books, "refund_window_days")))
    if utc_from_db(red.completed_at) + window < now:
        raise DomainError(errors.REFUND_WINDOW_CLOSED)
    remaining = red.amount - red.refunded
    wanted = remaining if amount is None else amount
    if remaining == 0 or wanted > remaining:
        raise DomainError(errors.EXCEEDS_REFUNDABLE, remaining=remaining)
    return wanted


def refund(books: Books, ctx: TillContext, redemption_id: int, *, idempotency_key: str, amount: int | None = None,
           reason: str = "") -> Answer:
    """Give back all (``amount=None``) or part of what remains of a redemption at the same merchant."""
    if amount is not None and (type(amount) is not int or amount < 1):
        raise DomainError(errors.INVALID_AMOUNT)
    if not isinstance(reason, str) or len(reason) > 500:
        raise DomainError(errors.VALIDATION_FAILED, "a reason is at most 500 characters")
    merchant_id = _refunding_merchant(books, ctx, redemption_id)
    actor = ctx.actor
    payload = {"op": "refund", "redemption": redemption_id, "amount": amount, "reason": reason}

    def work(s: Session) -> dict[str, Any]:
        now = books.now()
        red = s.get(Redemption, redemption_id, with_for_update=True)
        if red is None or red.merchant_id != merchant_id:
            raise DomainError(errors.NOT_FOUND_ERR, redemption_id=redemption_id)
        wanted = _refundable(books, red, amount, now)
        merchant = merchant_row(s, red.merchant_id)
        n = s.scalar(select(func.count()).select_from(Refund).where(Refund.redemption_id == red.id)) + 1
        key = f"{red.transfer_key}:refund:{n}"
        post_in(s, books, [transfer(key, "refund", merchant.account_id, red.wallet_account_id, wanted,
                                    actor=actor, reason=reason or "退还 refund", reference=f"redemption:{red.id}")])
        ref = Refund(redemption_id=red.id, merchant_id=red.merchant_id, amount=wanted, reason=reason,
                     transfer_key=key, actor=actor, refunded_at=now, created_at=now)
        s.add(ref)
        red.refunded += wanted
        s.flush()
        return {"refund_id": ref.id, "redemption_id": red.id, "amount": wanted, "refunded_total": red.refunded,
                     "remaining": red.amount - red.refunded, "time": iso(now)}

    return idempotent(books, f"merchant:{merchant_id}", idempotency_key, payload, work)


def sale_at_till(books: Books, ctx: TillContext, redemption_id: int) -> dict[str, Any]:
    """A sale as its till sees it (the receipt page, the refund step): the sale (``receipts.redemption_view``), the
    customer's masked name, what remains refundable, and ``refusal``: the code a refund of it would be
    refused with now (``None``: it can be refunded). Authorised like ``refund``; nothing is written."""
    merchant_id = _refunding_merchant(books, ctx, redemption_id)

    def work(s: Session) -> dict[str, Any]:
        now = books.now()
        red = s.get(Redemption, redemption_id)
        if red is None or red.merchant_id != merchant_id:
            raise DomainError(errors.NOT_FOUND_ERR, redemption_id=redemption_id)
        view = redemption_view(s, red, now)
        wallet = s.get(Account, red.wallet_account_id)
        view["customer"] = customer_name(s.connection(), wallet.owner_ref if wallet is not None else None)
        view["remaining"] = red.amount - red.refunded
        try:
            _refundable(books, red, None, now)
            view["refusal"] = None
        except DomainError as exc:
            view["refusal"] = exc.code
        return view

    return books.run(work, readonly=True)
