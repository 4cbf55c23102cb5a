"""PINs typed at a till: throttled per card (five wrong lock it) and per till (wrong PINs for several card
holders within the throttle window pause the till, which looks like someone trying found cards; one customer's
own mistakes never stop a shop), judged and counted in the redemption's own transaction under the till's
lock; every try logged. The merchant's owner lifts a paused till."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy, security
from ledger.access.models import RoleGrant, SecurityEvent
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.redemption.cards import verify_pin
from ledger.redemption.core import setting
from ledger.redemption.models import Card, Till
from ledger.redemption.tills import TillContext


def check_card_pin(s: Session, books: Books, now: dt.datetime, ctx: TillContext, card: Card, pin: Any,
                   source: str | None) -> DomainError | None:
    """The PIN typed for ``card`` at the till ``ctx``; a refusal is returned (its count must commit)."""
    refusal = security.guard_pin_in(s, books, now, ctx.actor, source)
    if refusal is not None:
        return refusal

    def note(ok: bool, **detail: Any) -> None:
        security.note_pin_in(s, now, ok, till=ctx.actor, source=source, holder=card.user_id, card_id=card.id,
                             merchant_id=ctx.merchant_id, **detail)

    if card.status == "locked":
        note(False, error=errors.CARD_LOCKED.code)
        return DomainError(errors.CARD_LOCKED)
    if not isinstance(pin, str) or not verify_pin(card.pin_hash, pin):
        card.failed_pins += 1
        note(False, error=errors.WRONG_PIN.code)
        tries_left = max(0, int(setting(books, "max_pin_tries")) - card.failed_pins)
        if tries_left == 0:
            card.status = "locked"
            return DomainError(errors.WRONG_PIN, "Wrong PIN; the card is now locked.", tries_left=0)
        return DomainError(errors.WRONG_PIN, tries_left=tries_left)
    card.failed_pins = 0
    note(True)
    return None


def _till_of_merchant(s: Session, merchant_id: int, till: str) -> bool:
    """Whether ``till`` (``till:<id>`` or the cashier ``user:<id>``) is one of this merchant's tills."""
    kind, _, ident = till.partition(":")
    if not ident.isdigit():
        return False
    if kind == "till":
        found = s.get(Till, int(ident))
        return found is not None and found.merchant_id == merchant_id
    if kind == "user":
        return s.scalar(select(RoleGrant.id).where(
            RoleGrant.user_id == int(ident), RoleGrant.merchant_id == merchant_id,
            RoleGrant.role.in_(policy.TILL_ROLES)).limit(1)) is not None
    return False


def lift_till_pin_throttle(books: Books, actor: Any, merchant_id: int, till: str, *,
                           source: str | None = None) -> dict[str, Any]:
    """The merchant's owner (or an admin) lets a paused till take PINs again; logged as
    ``pin_throttle_lifted`` with who, from where and which till. Cards stay locked until an officer unlocks
    them."""
    policy.require_owner_of(actor, merchant_id)
    now = books.now()

    def work(s: Session) -> dict[str, Any]:
        if not isinstance(till, str) or not _till_of_merchant(s, merchant_id, till):
            raise DomainError(errors.NOT_FOUND_ERR, "no such till at this merchant", till=str(till)[:40])
        security.lock_bucket_in(s, f"pin:till:{till}")
        was_paused = security.failing_cards_at(s, now, till) >= security.limit(books, "failed_pin_cards_per_till")
        # the detail is exactly {"till": ...}: that is how the till's last lift is found (till_lift_marker)
        security.record_in(s, "pin_throttle_lifted", at=now, source=source, actor=actor.ref, till=till)
        return {"merchant_id": merchant_id, "till": till, "was_paused": was_paused,
                "lifted_at": now.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")}

    return books.run(work)


def paused_tills(books: Books, actor: Any, merchant_id: int) -> list[str]:
    """The merchant's tills that refuse PINs now (``till:<id>``, ``user:<id>``); its cashiers, owner and
    admins may ask (the till page shows them, with a button for the owner)."""
    policy.require_reads_merchant(actor, merchant_id)
    now = books.now()
    cap = security.limit(books, "failed_pin_cards_per_till")

    def work(s: Session) -> list[str]:
        recent = s.scalars(select(SecurityEvent.actor).distinct().where(
            SecurityEvent.kind == "pin_failed", SecurityEvent.at >= now - security.THROTTLE_WINDOW,
            SecurityEvent.actor.is_not(None))).all()
        return sorted(till for till in recent if _till_of_merchant(s, merchant_id, till)
                      and security.failing_cards_at(s, now, till) >= cap)

    return books.run(work, readonly=True)
