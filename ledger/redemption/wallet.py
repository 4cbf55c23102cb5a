"""The volunteer's own view of their wallet: balance, available, on hold, holds waiting for their
confirmation and recent history. Only ever the principal's own wallet."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy, security
from ledger.access.identity import wallet_of
from ledger.access.policy import Principal
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.journal.models import Account, Transfer
from ledger.redemption import codes
from ledger.redemption.common import iso
from ledger.redemption.models import PayNumber, Redemption
from ledger.redemption.receipts import redemption_view
from ledger.redemption.redeeming import NUMBER_DIGITS


def wallet_overview(books: Books, by: Principal, *, history: int = 20) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        now = books.now()
        acc = s.get(Account, policy.own_wallet(s, by))
        if acc is None:
            raise DomainError(errors.ACCOUNT_NOT_FOUND)
        rows = s.scalars(select(Transfer).where(or_(Transfer.debit_account_id == acc.id,
                                                    Transfer.credit_account_id == acc.id))
                         .order_by(Transfer.id.desc()).limit(history)).all()
        awaiting = s.scalars(select(Redemption).where(Redemption.wallet_account_id == acc.id,
                                                      Redemption.status == "awaiting_confirmation",
                                                      Redemption.hold_expires_at > now)
                             .order_by(Redemption.id)).all()
        return {
            "wallet_account_id": acc.id,
            "status": acc.status,
            "balance": acc.credits_posted - acc.debits_posted,
            "available": acc.credits_posted - acc.debits_posted - acc.debits_pending,
            "on_hold": acc.debits_pending,
            "awaiting_confirmation": [redemption_view(s, r, now) for r in awaiting],
            "history": [{
                "transfer_id": t.id, "kind": t.kind, "phase": t.phase,
                "amount": t.amount if t.credit_account_id == acc.id else -t.amount,
                "reason": t.reason, "reference": t.reference, "time": iso(t.created_at),
            } for t in rows],
        }

    return books.run(work, readonly=True)


def issue_payment_code(books: Books, actor: Any, *, source: str | None = None) -> codes.WalletCode:
    """A fresh payment code for the actor's own wallet, behind the per-user rate limit (``code_per_user``
    a minute, ``rate_limited``): the one way both doors (the API and the wallet page) mint codes."""
    policy.require_role(actor, "volunteer", "leader")
    wallet = wallet_of(books, actor.user_id)
    security.take(books, "payment_code", f"code:user:{actor.user_id}", "code_per_user", source=source,
                  user_id=actor.user_id)
    issued = codes.issue_wallet_code(books, wallet)
    return dataclasses.replace(issued, number=_number_for(books, issued, wallet))


def luhn_digit(digits: str) -> str:
    """The Luhn check digit of ``digits`` (a mistyped digit or two swapped neighbours fail the check)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _number_for(books: Books, issued: codes.WalletCode, wallet: int) -> str:
    """A fresh 16-digit short number standing for ``issued`` until it is pruned: 15 random digits (the first
    not 0) and a Luhn check digit. ~10^15 numbers, so guessing a live one is hopeless."""
    body = str(secrets.randbelow(9 * 10 ** (NUMBER_DIGITS - 2)) + 10 ** (NUMBER_DIGITS - 2))
    number = body + luhn_digit(body)
    now = books.now()

    def work(s: Session) -> None:
        s.add(PayNumber(number=number, code=issued.code, wallet_account_id=wallet,
                        expires_at=now + dt.timedelta(seconds=issued.expires_in), created_at=now))

    books.run(work)
    return number
