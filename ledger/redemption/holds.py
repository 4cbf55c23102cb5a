"""The volunteer confirms or declines a redemption held above the threshold, in their own wallet only: a
hold in anyone else's wallet is ``not_found`` (``policy.holds_wallet``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.policy import Principal
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.journal.accounts import post_in
from ledger.journal.posting import post_hold, void_hold
from ledger.redemption.models import Redemption
from ledger.redemption.receipts import redemption_view, status_now


def _resolve_hold(books: Books, by: Principal, redemption_id: int, confirm: bool) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        now = books.now()
        red = s.get(Redemption, redemption_id, with_for_update=True)
        if red is None or not policy.holds_wallet(s, by, red.wallet_account_id):
            raise DomainError(errors.NOT_FOUND_ERR, redemption_id=redemption_id)
        if status_now(red, now) != "awaiting_confirmation":
            raise DomainError(errors.HOLD_NOT_AWAITING, status=status_now(red, now))
        reference = f"redemption:{red.id}"
        if confirm:
            post_in(s, books, [post_hold(f"{red.transfer_key}:post", red.transfer_key, actor=by.ref,
                                         reason="volunteer confirmed", reference=reference)])
            red.status, red.completed_at = "completed", now
        else:
            post_in(s, books, [void_hold(f"{red.transfer_key}:void", red.transfer_key, actor=by.ref,
                                         reason="volunteer declined", reference=reference)])
            red.status = "declined"
        return redemption_view(s, red, now)

    return books.run(work)


def confirm_hold(books: Books, by: Principal, redemption_id: int) -> dict[str, Any]:
    """The held beans go to the merchant."""
    return _resolve_hold(books, by, redemption_id, True)


def decline_hold(books: Books, by: Principal, redemption_id: int) -> dict[str, Any]:
    """The held beans are released at once."""
    return _resolve_hold(books, by, redemption_id, False)
