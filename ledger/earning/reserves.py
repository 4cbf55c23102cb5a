"""Reserves: beans of a community budget set aside for claims to be paid from (``models.Reserve``).

The room above (the radar) opens a reserve for a notice's bounty, changes it when the bounty or the end
changes and releases it when the notice closes; earning pays claims from it (``core.verify_claim``) and
gives back to it an award a second officer refused. Every change replaces the reserve's hold in ONE linked
batch: release the current hold, (pay,) hold what is left until ``expires_at``. So the books never show the
same beans both held and paid, and the journal's expiry releases an unpaid rest at ``expires_at`` with no
one asking.

The other side of the hold is the community's reserve account (``reserves:org:<community>``, kind
``budget``): a hold needs two accounts and the payee is not known when the beans are set aside. That
account only ever carries pending credits; its posted balance stays 0.

Locks: a reserve row is locked (``FOR UPDATE``) after the claim or award row and the users' rows and before
the journal locks the accounts; the room above locks its own row (the notice) before the reserve.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access.identity import Actor, budget_account_id
from ledger.access.models import OrgUnit
from ledger.earning.models import Reserve
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.journal.accounts import open_account_in, post_in
from ledger.journal.models import Account, Transfer
from ledger.journal.posting import MAX_HOLD_TIMEOUT_S, TransferRequest, hold, void_hold

MAX_RESERVE = 100_000


@dataclass(frozen=True)
class ReserveView:
    id: int
    org_unit_id: int
    amount: int
    paid: int
    left: int
    status: str  # open, released (an open reserve past its end is released by the clock: ``live`` is False)
    live: bool
    expires_at: dt.datetime


def view_in(s: Session, reserve_id: int, now: dt.datetime) -> ReserveView:
    r = s.get(Reserve, reserve_id)
    live = r.status == "open" and utc_from_db(r.expires_at) > now
    return ReserveView(r.id, r.org_unit_id, r.amount, r.paid, r.amount - r.paid, r.status, live,
                       utc_from_db(r.expires_at))


def lock_in(s: Session, reserve_id: int) -> Reserve:
    r = s.scalar(select(Reserve).where(Reserve.id == reserve_id).with_for_update())
    if r is None:
        raise DomainError(errors.NOT_FOUND_ERR, "no such reserve")
    return r


def _reserve_account(s: Session, community_id: int) -> int:
    code = f"reserves:org:{community_id}"
    acc = s.scalar(select(Account.id).where(Account.code == code))
    if acc is not None:
        return acc
    return open_account_in(s, code, "budget", name="悬赏预留", owner_ref=code).id


def _release_request(s: Session, r: Reserve, actor: Actor, now: dt.datetime, why: str) -> TransferRequest | None:
    """The request that ends the current hold: a void, or (past its timeout) the expiry the worker would post;
    none when the hold is already resolved (the worker expired it)."""
    if r.hold_key is None:
        return None
    held = s.scalar(select(Transfer).where(Transfer.transfer_key == r.hold_key))
    if held is None or s.scalar(select(Transfer.id).where(Transfer.pending_id == held.id)) is not None:
        return None
    if utc_from_db(held.expires_at) <= now:
        return TransferRequest(f"{r.hold_key}:expire", "", "expire", pending_key=r.hold_key, actor=actor.ref,
                               reason=why, reference=r.reference)
    return void_hold(f"reserve:{r.id}:release:{r.hold_seq}", r.hold_key, actor=actor.ref, reason=why,
                     reference=r.reference)


def rehold_in(s: Session, books: Books, actor: Actor, r: Reserve, middle: list[TransferRequest] | None = None,
              *, why: str = "reserve re-held") -> None:
    """Release the reserve's hold, post ``middle`` (a payment), hold what is left: one linked batch."""
    now = books.now()
    reqs: list[TransferRequest] = []
    release = _release_request(s, r, actor, now, why)
    if release is not None:
        reqs.append(release)
    r.hold_key = None
    reqs.extend(middle or [])
    left = r.amount - r.paid
    timeout = math.ceil((utc_from_db(r.expires_at) - now).total_seconds())
    if left > 0 and r.status == "open" and timeout > 0:
        r.hold_seq += 1
        r.hold_key = f"reserve:{r.id}:hold:{r.hold_seq}"
        reqs.append(hold(r.hold_key, "award", budget_account_id(s, r.org_unit_id),
                         _reserve_account(s, r.org_unit_id), left, min(timeout, MAX_HOLD_TIMEOUT_S),
                         actor=actor.ref, reason="bounty reserved", reference=r.reference))
    if reqs:
        post_in(s, books, reqs)


def _check(amount: object, expires_at: object, now: dt.datetime) -> tuple[int, dt.datetime]:
    if type(amount) is not int or not 0 <= amount <= MAX_RESERVE:
        raise DomainError(errors.INVALID_AMOUNT, f"a bounty is 0 to {MAX_RESERVE} beans")
    end = utc_from_db(expires_at) if isinstance(expires_at, dt.datetime) else None
    if end is None or end.tzinfo is None or end <= now or (end - now).total_seconds() > MAX_HOLD_TIMEOUT_S:
        raise DomainError(errors.VALIDATION_FAILED, "a reserve ends in the future, within the journal's hold limit")
    return amount, end


def open_reserve_in(s: Session, books: Books, actor: Actor, *, community_id: int, amount: int,
                    expires_at: dt.datetime, reference: str) -> int:
    """Set ``amount`` beans of the community's budget aside until ``expires_at`` (``insufficient_funds`` if the
    budget has not got them); returns the reserve's id."""
    amount, end = _check(amount, expires_at, books.now())
    if s.scalar(select(OrgUnit.level).where(OrgUnit.id == community_id)) != "community":
        raise DomainError(errors.NOT_A_COMMUNITY, org_unit_id=community_id)
    r = Reserve(org_unit_id=community_id, amount=amount, paid=0, status="open", hold_seq=0, expires_at=end,
                reference=reference[:120], created_by_id=actor.user_id)
    s.add(r)
    s.flush()
    rehold_in(s, books, actor, r, why="bounty reserved")
    return r.id


def change_reserve_in(s: Session, books: Books, actor: Actor, reserve_id: int, *, amount: int | None = None,
                      expires_at: dt.datetime | None = None) -> None:
    """A new amount (never below what was paid or awaits approval: ``exceeds_bounty``) or a new end."""
    r = lock_in(s, reserve_id)
    if r.status != "open":
        raise DomainError(errors.RESERVE_RELEASED)
    new_amount, new_end = _check(r.amount if amount is None else amount,
                                 utc_from_db(r.expires_at) if expires_at is None else expires_at, books.now())
    if new_amount < r.paid:
        raise DomainError(errors.EXCEEDS_BOUNTY, "the bounty cannot fall below what is paid or promised",
                          paid=r.paid)
    if (new_amount, new_end) == (r.amount, utc_from_db(r.expires_at)):
        return
    r.amount, r.expires_at = new_amount, new_end
    rehold_in(s, books, actor, r, why="bounty changed")


def release_reserve_in(s: Session, books: Books, actor: Actor, reserve_id: int, *, why: str) -> None:
    """What is left goes back to the budget; nothing more is paid from the reserve (awards awaiting a second
    approval keep their own holds)."""
    r = lock_in(s, reserve_id)
    if r.status != "open":
        return
    r.status, r.released_at = "released", books.now()
    rehold_in(s, books, actor, r, why=why[:500])


def payable_in(r: Reserve, requested: int | None, now: dt.datetime) -> int:
    """How many beans a claim paid from ``r`` gets: ``requested``, or all that is left; 0 when nothing is left
    (or the reserve was released) and none was named: the claim is then verified without beans."""
    if r.status != "open" or utc_from_db(r.expires_at) <= now:
        if requested is None:
            return 0
        raise DomainError(errors.RESERVE_RELEASED)
    left = r.amount - r.paid
    if requested is None:
        return left
    if type(requested) is not int or requested < 1:
        raise DomainError(errors.INVALID_AMOUNT)
    if requested > left:
        raise DomainError(errors.EXCEEDS_BOUNTY, left=left)
    return requested
