"""Settlement: paying merchants from the fund for the beans redeemed at their tills.

A run for a period (a local calendar month, ``2026-11``) gives each merchant one statement:

- ``redeemed``: beans of redemptions completed in the period (a held redemption counts when confirmed);
- ``refunded``: beans refunded in the period;
- ``amount``: what moves from the merchant's account to the payout account (kind ``settle``), the net
  ``redeemed - refunded``, never more than the merchant's account holds and never below zero. One bean
  is one RMB owed from the Gold Bean Fund (``rmb_per_bean``).

The transfer key is ``settle:<merchant id>:<period>`` and a merchant has at most one statement per
period (a unique constraint), so running a period twice changes nothing and answers the same statements.
A period can be settled only once it has ended.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.models import Merchant
from ledger.access.policy import Principal
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.journal.accounts import open_account_in, post_in
from ledger.journal.models import Account
from ledger.journal.posting import transfer
from ledger.redemption.models import Redemption, Refund, Settlement

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
PAYOUT_CODE = "payout"


def period_bounds(books: Books, period: str) -> tuple[dt.datetime, dt.datetime]:
    """The period's start and end in UTC (the month is local: ``books.calendar``)."""
    match = PERIOD_RE.match(period or "")
    if match is None:
        raise DomainError(errors.VALIDATION_FAILED, "a period is written YYYY-MM")
    year, month = int(match.group(1)), int(match.group(2))
    return books.calendar.month_bounds(year, month)


def _payout_account(s: Session) -> int:
    acc = s.scalar(select(Account.id).where(Account.code == PAYOUT_CODE))
    if acc is None:
        acc = open_account_in(s, PAYOUT_CODE, "payout", name="商家结算 Merchant payouts").id
    return acc


def statement_view(books: Books, st: Settlement, merchant: Merchant) -> dict[str, Any]:
    rate = books.settings.rmb_per_bean
    return {
        "settlement_id": st.id, "period": st.period,
        "merchant": {"id": merchant.id, "code": merchant.code, "name": merchant.name},
        "redemptions_count": st.redemptions_count, "redeemed": st.redeemed, "refunded": st.refunded,
        "amount": st.amount, "rmb_owed": st.amount * rate, "transfer_key": st.transfer_key,
    }


def _due(s: Session, merchant: Merchant, start: dt.datetime, end: dt.datetime, *, lock: bool) -> tuple[int, int, int, int]:
    """What a merchant is owed for a period: (redeemed, redemptions, refunded, amount), the amount being the net
    never above what its account holds (``lock``: under the account's row lock, for the run itself)."""
    redeemed, count = s.execute(
        select(func.coalesce(func.sum(Redemption.amount), 0), func.count(Redemption.id)).where(
            Redemption.merchant_id == merchant.id, Redemption.status == "completed",
            Redemption.completed_at >= start, Redemption.completed_at < end)).one()
    refunded = s.scalar(select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.merchant_id == merchant.id, Refund.refunded_at >= start, Refund.refunded_at < end))
    q = select(Account).where(Account.id == merchant.account_id)
    acc = s.scalar(q.with_for_update() if lock else q)
    available = acc.credits_posted - acc.debits_posted - acc.debits_pending
    return int(redeemed), int(count), int(refunded), max(0, min(int(redeemed) - int(refunded), available))


def _ended(books: Books, period: str) -> tuple[dt.datetime, dt.datetime]:
    start, end = period_bounds(books, period)
    if books.now() < end:
        raise DomainError(errors.PERIOD_NOT_ENDED, period=period)
    return start, end


def preview_settlement(books: Books, period: str, *, by: Principal) -> dict[str, Any]:
    """What a run for ``period`` would pay, before the fund manager confirms it: per merchant not yet settled,
    the redeemed, refunded and net beans; ``merchants`` and ``amount`` sum it up, ``settled`` counts the
    merchants settled already (a run leaves them as they are). Refused like the run (``period_not_ended``)."""
    policy.require_settlement_runner(by)
    start, end = _ended(books, period)

    def work(s: Session) -> dict[str, Any]:
        done = set(s.scalars(select(Settlement.merchant_id).where(Settlement.period == period)))
        rows = []
        for merchant in s.scalars(select(Merchant).order_by(Merchant.id)):
            if merchant.id in done:
                continue
            redeemed, count, refunded, amount = _due(s, merchant, start, end, lock=False)
            rows.append({"merchant": {"id": merchant.id, "code": merchant.code, "name": merchant.name},
                         "redeemed": redeemed, "redemptions_count": count, "refunded": refunded, "amount": amount})
        return {"period": period, "rows": rows, "merchants": sum(1 for r in rows if r["amount"]),
                "amount": sum(r["amount"] for r in rows), "settled": len(done)}

    return books.run(work, readonly=True)


def run_settlement(books: Books, period: str, actor: str, *, merchant_ids: set[int] | None = None,
                   by: Principal | None = None) -> list[dict[str, Any]]:
    """Settle every merchant (or those in ``merchant_ids``) for ``period``; idempotent. ``by`` (when a door
    names it) must be a fund manager (the worker and the CLI run it as the programme)."""
    if by is not None:
        policy.require_settlement_runner(by)
    start, end = _ended(books, period)

    def work(s: Session) -> list[dict[str, Any]]:
        payout = _payout_account(s)
        # one run at a time: the payout account's row lock serializes concurrent runs
        s.execute(select(Account.id).where(Account.id == payout).with_for_update()).all()
        q = select(Merchant).order_by(Merchant.id)
        if merchant_ids is not None:
            q = q.where(Merchant.id.in_(merchant_ids))
        out = []
        for merchant in s.scalars(q).all():
            existing = s.scalar(select(Settlement).where(Settlement.merchant_id == merchant.id,
                                                         Settlement.period == period))
            if existing is not None:
                out.append(statement_view(books, existing, merchant))
                continue
            # the merchant's row lock (post_in locks it again); what it holds bounds what can move
            redeemed, count, refunded, amount = _due(s, merchant, start, end, lock=True)
            key = f"settle:{merchant.id}:{period}"
            if amount:
                post_in(s, books, [transfer(key, "settle", merchant.account_id, payout, amount, actor=actor,
                                            reason=f"结算 settlement {period}",
                                            reference=f"settlement:{merchant.id}:{period}")])
            st = Settlement(merchant_id=merchant.id, period=period, redeemed=redeemed, refunded=refunded,
                            amount=amount, redemptions_count=count, transfer_key=key if amount else None,
                            actor=actor, created_at=books.now())
            s.add(st)
            s.flush()
            out.append(statement_view(books, st, merchant))
        return out

    return books.run(work)


def list_settlements(books: Books, *, merchant_id: int | None = None, period: str | None = None,
                     by: Principal | None = None) -> list[dict[str, Any]]:
    """Statements, of one merchant or all; ``by`` (when a door names it) must be a fund manager or auditor, or
    the merchant's owner for its own (``policy.require_settlement_reader``)."""
    if by is not None:
        policy.require_settlement_reader(by, merchant_id)

    def work(s: Session) -> list[dict[str, Any]]:
        q = select(Settlement, Merchant).join(Merchant, Merchant.id == Settlement.merchant_id)
        if merchant_id is not None:
            q = q.where(Settlement.merchant_id == merchant_id)
        if period is not None:
            q = q.where(Settlement.period == period)
        return [statement_view(books, st, m) for st, m in s.execute(q.order_by(Settlement.period, Merchant.id))]

    return books.run(work, readonly=True)
