"""What a till sees of a code before spending it: the customer's masked name and the beans they have.

The cashier scans, reads the name back (``张*华``), sees what the wallet can pay, and only then confirms.
``preview_code`` checks the code exactly as ``redeem`` would (signature, time, not yet spent, card status,
merchant and wallet open), for the merchant the till serves at (``tills.acting_merchant``), and spends nothing,
writes nothing.

What it reveals, and to whom:

- only to a till of an active merchant (a till key, or a cashier or owner serving there), and only for a code
  that would pay now: an expired, spent, revoked or forged code gets the same refusal ``redeem`` would give;
- only the masked name (``ledger.access.masking``) and, for a wallet code, the available beans: no user id,
  wallet id, phone, history or anything else. A wallet code lives a minute and is shown by its owner at the
  counter, so the till holding one is the till the customer stands at;
- a bean card's code is printed and lives as long as the card, so a till that scanned a card once could
  otherwise follow its balance for months: for a card the preview says a PIN is needed and shows no balance
  (``available`` is ``None``); the PIN, typed by the holder, is checked when the sale is made.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access.masking import mask_name
from ledger.access.models import Merchant, User
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.journal.models import Account
from ledger.redemption import codes
from ledger.redemption.models import Card, SpentCode
from ledger.redemption.redeeming import read_code
from ledger.redemption.tills import TillContext, acting_merchant

_ACC = Account.__table__
_FIND_WALLET = select(_ACC.c.kind, _ACC.c.status, _ACC.c.owner_ref, _ACC.c.credits_posted, _ACC.c.debits_posted,
                      _ACC.c.debits_pending)
_MERCHANT_STATUS = select(Merchant.__table__.c.status)
_SPENT = select(SpentCode.__table__.c.id)
_CARD = select(Card.__table__.c.status, Card.__table__.c.token_id, Card.__table__.c.wallet_account_id)


def customer_name(conn: Connection, owner_ref: str | None) -> str:
    """The masked display name of the person a wallet belongs to (``user:<id>``), or empty."""
    kind, _, ident = (owner_ref or "").partition(":")
    if kind != "user" or not ident.isdigit():
        return ""
    name = conn.execute(select(User.__table__.c.display_name).where(User.__table__.c.id == int(ident))).scalar()
    return mask_name(name)


def _check_card(conn: Connection, verified: codes.VerifiedCode) -> None:
    card = conn.execute(_CARD.where(Card.__table__.c.id == verified.card_id)).one_or_none()
    if card is None or card.token_id != verified.jti or card.wallet_account_id != verified.wallet_account_id:
        raise DomainError(errors.INVALID_CODE)
    if card.status == "revoked":
        raise DomainError(errors.CARD_REVOKED)
    if card.status == "locked":
        raise DomainError(errors.CARD_LOCKED)


def preview_code(books: Books, ctx: TillContext, code: Any) -> dict[str, Any]:
    """The masked name and available beans behind ``code``, for a till of ``ctx``'s merchant; nothing is
    spent. Refusals are the ones ``redeem`` would give for the same code now."""
    merchant_id = acting_merchant(ctx)

    def work(s: Session) -> dict[str, Any]:
        verified = read_code(s, books, code, books.now())  # every kind of code a till may take, as a sale reads it
        conn = s.connection()
        status = conn.execute(_MERCHANT_STATUS.where(Merchant.__table__.c.id == merchant_id)).scalar()
        if status is None:
            raise DomainError(errors.NOT_FOUND_ERR, merchant_id=merchant_id)
        wallet = conn.execute(_FIND_WALLET.where(_ACC.c.id == verified.wallet_account_id)).one_or_none()
        is_card = verified.typ == codes.CARD_TYP
        if is_card:
            _check_card(conn, verified)
        else:
            if wallet is None or wallet.kind != "wallet":
                raise DomainError(errors.INVALID_CODE)
            if conn.execute(_SPENT.where(SpentCode.__table__.c.jti == verified.jti)).first() is not None:
                raise DomainError(errors.CODE_ALREADY_USED)
        if status != "active":
            raise DomainError(errors.MERCHANT_SUSPENDED)
        if wallet is None or wallet.kind != "wallet":
            raise DomainError(errors.INVALID_CODE)
        if wallet.status != "open":
            raise DomainError(errors.WALLET_FROZEN)
        available = wallet.credits_posted - wallet.debits_posted - wallet.debits_pending
        return {"kind": "card" if is_card else "wallet", "customer": customer_name(conn, wallet.owner_ref),
                "available": None if is_card else available, "pin_required": is_card}

    return books.run(work, readonly=True)
