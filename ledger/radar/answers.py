"""Answers: a volunteer's tip in answer to a notice; the officer's board; verify (pay), reject, approve.

Payment: the answer's transfer (key ``radar:answer:<id>``, kind ``award``, community budget → wallet) is
posted in one linked batch with the release of the notice's hold and the reservation of what is left, so
the books never show the bounty both reserved and paid. An answer is paid once: its row is locked and
must still be undecided, its ``transfer_key`` is unique, and the journal answers a repeated key with the
first transfer. A payment above the approval threshold waits for a second officer (maker-checker), the
beans staying reserved in the hold meanwhile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import Actor, budget_account_id, wallet_account_id
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.journal.accounts import post_in
from ledger.journal.posting import transfer
from ledger.radar.models import Answer, Event, Notice
from ledger.radar.notices import area_of, earmarked, grace, reserve_in, state_of, visible_notice


@dataclass(frozen=True)
class AnswerView:
    id: int
    notice_id: int
    volunteer_id: int
    status: str
    text: str
    place: str | None
    occurred_at: dt.datetime | None
    submitted_at: dt.datetime
    amount: int | None
    decided_by_id: int | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    approved_by_id: int | None
    transfer_key: str | None
    photo_ids: list[int]

    @classmethod
    def of(cls, a: Answer, s: Session) -> AnswerView:
        from ledger.radar.photos import photo_ids

        return cls(a.id, a.notice_id, a.volunteer_id, a.status, a.text, a.place, utc_from_db(a.occurred_at),
                   utc_from_db(a.submitted_at), a.amount, a.decided_by_id, utc_from_db(a.decided_at),
                   a.decision_reason, a.approved_by_id, a.transfer_key, photo_ids(s, answer_id=a.id))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def approval_threshold(books: Books) -> int:
    return books.settings.earning.approval_threshold  # as for other awards


def answer_notice(books: Books, actor: Actor, notice_id: Any, *, text: str, place: str | None = None,
                  occurred_at: dt.datetime | None = None, photo: bytes | None = None) -> AnswerView:
    """A volunteer of the area answers an open notice, once (with one optional photo)."""
    from ledger.radar.photos import clean_image, store_in

    image = clean_image(photo) if photo else None
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= 2000:
        raise DomainError(errors.VALIDATION_FAILED, "a tip of 1 to 2,000 characters")
    if place is not None and (not isinstance(place, str) or len(place) > 200):
        raise DomainError(errors.VALIDATION_FAILED, "a place of at most 200 characters")
    occurred = utc_from_db(occurred_at) if isinstance(occurred_at, dt.datetime) else None
    if occurred_at is not None and (occurred is None or occurred.tzinfo is None or occurred > books.now()):
        raise DomainError(errors.VALIDATION_FAILED, "when it happened: a moment with a time zone, not in the future")

    def work(s: Session) -> AnswerView:
        now = books.now()
        n = visible_notice(s, actor, notice_id, lock=True)
        if not policy.may_answer(s, actor, n.officer_id, area_of(s, n.id)):
            raise DomainError(errors.PERMISSION_DENIED, "only volunteers of the area answer")
        if state_of(n, now) != "open":
            raise DomainError(errors.NOTICE_NOT_OPEN)
        if s.scalar(select(Answer.id).where(Answer.notice_id == n.id, Answer.volunteer_id == actor.user_id)):
            raise DomainError(errors.ALREADY_ANSWERED)
        a = Answer(notice_id=n.id, volunteer_id=actor.user_id, status="submitted", text=text.strip(),
                   place=place or None, occurred_at=occurred, submitted_at=now)
        s.add(a)
        s.flush()
        if image is not None:
            store_in(s, image, answer_id=a.id)
        return AnswerView.of(a, s)

    return books.run(work)


def list_answers(books: Books, actor: Actor, notice_id: Any) -> list[AnswerView]:
    """The board: every answer of a notice, for officers in scope of its area; a volunteer sees their own."""
    def work(s: Session) -> list[AnswerView]:
        n = visible_notice(s, actor, notice_id)
        q = select(Answer).where(Answer.notice_id == n.id)
        if not policy.may_decide(s, actor, area_of(s, n.id)) and not (
                actor.has_role("auditor") or actor.has_role("admin")):
            q = q.where(Answer.volunteer_id == actor.user_id)
        return [AnswerView.of(a, s) for a in s.scalars(q.order_by(Answer.id))]

    return books.run(work, readonly=True)


def my_answers(books: Books, actor: Actor) -> list[AnswerView]:
    return books.run(lambda s: [AnswerView.of(a, s) for a in s.scalars(
        select(Answer).where(Answer.volunteer_id == actor.user_id).order_by(Answer.id.desc()).limit(200))],
        readonly=True)


def _decidable(s: Session, actor: Actor, answer_id: Any) -> tuple[Notice, Answer]:
    """Lock the notice, then the answer (always in this order), after the access checks."""
    if type(answer_id) is not int:
        raise DomainError(errors.ANSWER_NOT_FOUND)
    notice_id = s.scalar(select(Answer.notice_id).where(Answer.id == answer_id))
    if notice_id is None:
        raise DomainError(errors.ANSWER_NOT_FOUND)
    try:
        n = visible_notice(s, actor, notice_id, lock=True)
    except DomainError:
        raise DomainError(errors.ANSWER_NOT_FOUND) from None
    if not policy.may_decide(s, actor, area_of(s, n.id)):
        raise DomainError(errors.OUT_OF_SCOPE)
    a = s.scalar(select(Answer).where(Answer.id == answer_id).with_for_update())
    assert a is not None
    if a.volunteer_id == actor.user_id:
        raise DomainError(errors.SELF_DEALING)
    return n, a


def _pay(s: Session, books: Books, actor: Actor, n: Notice, a: Answer, amount: int) -> None:
    if n.budget_org_unit_id is None:
        raise DomainError(errors.NOT_A_COMMUNITY, "this notice has no paying community")
    key = f"radar:answer:{a.id}"
    pay = transfer(key, "award", budget_account_id(s, n.budget_org_unit_id), wallet_account_id(s, a.volunteer_id),
                   amount, actor=actor.ref, reason="radar answer verified", reference=f"notice:{n.id}")
    if n.bounty:
        n.bounty_paid += amount
        reserve_in(s, books, actor, n, [pay])
    else:  # an ordinary tip reward from the community's budget
        post_in(s, books, [pay])
    a.transfer_key = key
    s.add(Event(kind="payment", notice_id=n.id, user_id=a.volunteer_id, amount=amount, at=books.now()))


def verify_answer(books: Books, actor: Actor, answer_id: Any, *, amount: int | None = None,
                  reason: str = "") -> AnswerView:
    """Verify an answer and pay it: ``amount`` beans (default: all that is left of the bounty; a notice
    without a bounty pays only if an amount is named). Above the approval threshold it waits for a second
    officer. Verifying twice: ``answer_already_decided``."""
    def work(s: Session) -> AnswerView:
        now = books.now()
        n, a = _decidable(s, actor, answer_id)
        if a.status != "submitted":
            raise DomainError(errors.ANSWER_ALREADY_DECIDED)
        if n.status == "closed":
            raise DomainError(errors.NOTICE_NOT_OPEN)
        left = n.bounty - n.bounty_paid - earmarked(s, n.id)
        pay = (left if n.bounty else None) if amount is None else amount
        if pay is not None and (type(pay) is not int or pay < 1 or pay > 10**6):
            raise DomainError(errors.INVALID_AMOUNT)
        if pay is not None and n.bounty and pay > left:
            raise DomainError(errors.EXCEEDS_BOUNTY, left=left)
        if pay is not None and n.bounty and utc_from_db(n.ends_at) + grace(books) <= now:
            raise DomainError(errors.NOTICE_NOT_OPEN, "the bounty was released when the notice ended")
        a.decided_by_id, a.decided_at, a.decision_reason, a.amount = actor.user_id, now, reason[:500], pay
        if pay is not None and pay > approval_threshold(books):
            a.status = "pending_approval"
        else:
            a.status = "verified"
            if pay is not None:
                _pay(s, books, actor, n, a, pay)
        s.flush()
        return AnswerView.of(a, s)

    return books.run(work)


def approve_answer(books: Books, actor: Actor, answer_id: Any) -> AnswerView:
    """The second officer (not the one who verified, not the volunteer) approves a large payment."""
    def work(s: Session) -> AnswerView:
        n, a = _decidable(s, actor, answer_id)
        if a.status != "pending_approval":
            raise DomainError(errors.ANSWER_NOT_PENDING)
        if a.decided_by_id == actor.user_id:
            raise DomainError(errors.OWN_APPROVAL)
        a.status, a.approved_by_id = "verified", actor.user_id
        s.flush()  # the earmark is now a payment, not a promise
        _pay(s, books, actor, n, a, int(a.amount or 0))
        s.flush()
        return AnswerView.of(a, s)

    return books.run(work)


def reject_answer(books: Books, actor: Actor, answer_id: Any, *, reason: str) -> AnswerView:
    """Reject with a reason (also a large payment waiting for approval: its beans stay in the bounty)."""
    if not isinstance(reason, str) or not reason.strip():
        raise DomainError(errors.VALIDATION_FAILED, "say why the answer is rejected")

    def work(s: Session) -> AnswerView:
        n, a = _decidable(s, actor, answer_id)
        if a.status not in ("submitted", "pending_approval"):
            raise DomainError(errors.ANSWER_ALREADY_DECIDED)
        a.status, a.decided_by_id, a.decided_at = "rejected", actor.user_id, books.now()
        a.decision_reason, a.amount = reason.strip()[:500], None
        s.flush()
        return AnswerView.of(a, s)

    return books.run(work)
