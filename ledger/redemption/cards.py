"""Bean cards (金豆卡) for volunteers without a phone: a printed QR and a PIN. Admins manage every card, an
officer the cards of volunteers whose home unit they serve (``policy.require_officer_over_user``). The PIN is
hashed with the one hasher of ``ledger.access.passwords``; the card locks after ``max_pin_tries`` wrong PINs."""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import wallet_account_id
from ledger.access.models import User
from ledger.access.passwords import hash_secret, verify_secret
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.redemption import codes
from ledger.redemption.common import iso
from ledger.redemption.models import Card

PIN_RE = re.compile(r"^[0-9]{4,8}$")
# who may manage a user's cards: the one rule, in ledger.access.policy (kept under this name for callers)
authorize_card_admin = policy.require_officer_over_user


def _card_view(card: Card) -> dict[str, Any]:
    return {"id": card.id, "user_id": card.user_id, "wallet_account_id": card.wallet_account_id,
            "status": card.status, "failed_pins": card.failed_pins, "created_at": iso(card.created_at),
            "revoked_at": iso(card.revoked_at)}


def _check_pin(pin: Any) -> None:
    if not isinstance(pin, str) or not PIN_RE.match(pin):
        raise DomainError(errors.VALIDATION_FAILED, "a PIN is 4 to 8 digits")


def verify_pin(pin_hash: str, pin: str) -> bool:
    return verify_secret(pin_hash, pin)


def issue_card(books: Books, user_id: int, actor: str, pin: str | None = None, *, by: Any = None
               ) -> dict[str, Any]:
    """A new card for the user; any earlier card of theirs is revoked in the same transaction.

    Returns the card, its code and, when no PIN was given, the generated 6-digit PIN (shown once).
    ``by``: the principal (``None``: the programme itself, e.g. the seed)."""
    generated = pin is None
    if pin is None:
        pin = f"{secrets.randbelow(10**6):06d}"
    _check_pin(pin)
    pin_hash = hash_secret(pin)
    token_id = secrets.token_urlsafe(16)

    def work(s: Session) -> dict[str, Any]:
        if s.get(User, user_id) is None:
            raise DomainError(errors.NOT_FOUND_ERR, user_id=user_id)
        policy.require_officer_over_user(s, by, user_id)
        wallet = wallet_account_id(s, user_id)
        now = books.now()
        for old in s.scalars(select(Card).where(Card.user_id == user_id, Card.status != "revoked")
                             .with_for_update()):
            old.status = "revoked"
            old.revoked_at = now
        card = Card(user_id=user_id, wallet_account_id=wallet, token_id=token_id, code="", pin_hash=pin_hash,
                    failed_pins=0, status="active", issued_by=actor, created_at=now)
        s.add(card)
        s.flush()
        card.code = codes.issue_card_code(books, card.id, wallet, token_id)
        out = {"card": _card_view(card), "code": card.code}
        if generated:
            out["pin"] = pin
        return out

    return books.run(work)


def _set_card_status(books: Books, card_id: int, status: str, by: Any) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        card = s.get(Card, card_id, with_for_update=True)
        if card is None:
            raise DomainError(errors.NOT_FOUND_ERR, card_id=card_id)
        policy.require_officer_over_user(s, by, card.user_id)
        if card.status == "revoked":
            raise DomainError(errors.CARD_REVOKED)
        card.status = status
        card.failed_pins = 0
        if status == "revoked":
            card.revoked_at = books.now()
        return _card_view(card)

    return books.run(work)


def revoke_card(books: Books, card_id: int, *, by: Any = None) -> dict[str, Any]:
    """The card's code stops working at once (the status is checked in every redemption)."""
    return _set_card_status(books, card_id, "revoked", by)


def unlock_card(books: Books, card_id: int, *, by: Any = None) -> dict[str, Any]:
    return _set_card_status(books, card_id, "active", by)


def get_card(books: Books, card_id: int, *, with_code: bool = False, by: Any = None) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        card = s.get(Card, card_id)
        if card is None:
            raise DomainError(errors.NOT_FOUND_ERR, card_id=card_id)
        policy.require_officer_over_user(s, by, card.user_id)
        view = _card_view(card)
        if with_code:
            user = s.get(User, card.user_id)
            view["code"] = card.code
            view["holder"] = user.display_name if user else ""
        return view

    return books.run(work, readonly=True)
