"""Answers: a volunteer's tip in answer to a notice, and the officer's board.

An answer IS an earning claim (kind ``tip``, category ``answer``): ``answer_notice`` writes the claim through
``ledger.earning`` in the same transaction as the row that links it to the notice (``radar_answers``, one per
volunteer and notice) and its photo. The claim is paid from the notice's reserve when the notice has a bounty
(``claims.reserve_id``), else by the ordinary tip tiers from the community's budget; it is verified, rejected
and (above the threshold) approved through earning's claim and award use cases and routes, like every other
claim, with the same caps and maker-checker. A verified answer also adds a service record (activity ``radar``,
``RadarRules.answer_service_minutes``): earning writes it, because the claim carries it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import earning, errors
from ledger.access import policy
from ledger.access.identity import Actor
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.radar.models import Answer, Notice
from ledger.radar.notices import area_of, state_of, visible_notice

CATEGORY = "answer"  # the claims' category for answers of notices (labelled 雷达线索 on the pages)


@dataclass(frozen=True)
class AnswerView:
    """An answer as its reader may see it: ``id`` is the claim's (verify it with ``/claims/{id}/verify``)."""

    id: int
    notice_id: int
    volunteer_id: int
    status: str  # the claim's: submitted, verified, rejected
    award_id: int | None
    award_status: str | None  # posted, pending_approval (a second officer), voided, reversed
    amount: int | None
    text: str | None  # the tip: for the officers who decide it and the volunteer who gave it
    place: str | None
    occurred_at: dt.datetime
    submitted_at: dt.datetime
    decided_by_id: int | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    paid_from_bounty: bool
    photo_ids: list[int]

    @classmethod
    def of(cls, a: Answer, s: Session, actor: Actor) -> AnswerView:
        from ledger.radar.photos import photo_ids

        c = earning.claim_view_in(s, actor, a.claim_id)
        details = c.details or {}
        return cls(c.id, a.notice_id, a.volunteer_id, c.status, c.award_id, c.award_status, c.amount,
                   details.get("description"), details.get("location"), c.occurred_at, c.submitted_at,
                   c.decided_by_id, c.decided_at, c.decision_reason, c.reserve_id is not None,
                   photo_ids(s, answer_id=a.id))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _paying_community(s: Session, actor: Actor, n: Notice) -> int:
    """The notice's paying community, or (a notice over several communities without a bounty) the
    volunteer's own."""
    if n.budget_org_unit_id is not None:
        return n.budget_org_unit_id
    for unit in policy.volunteer_units(s, actor.user_id):
        try:
            return earning.community_of(s, unit)
        except DomainError:
            continue
    raise DomainError(errors.NOT_A_COMMUNITY, "the volunteer belongs to no community")


def _check_answer(books: Books, text: Any, place: Any, occurred_at: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= 2000:
        raise DomainError(errors.VALIDATION_FAILED, "a tip of 1 to 2,000 characters")
    if place is not None and (not isinstance(place, str) or len(place) > 200):
        raise DomainError(errors.VALIDATION_FAILED, "a place of at most 200 characters")
    occurred = utc_from_db(occurred_at) if isinstance(occurred_at, dt.datetime) else None
    if occurred_at is not None and (occurred is None or occurred.tzinfo is None or occurred > books.now()):
        raise DomainError(errors.VALIDATION_FAILED, "when it happened: a moment with a time zone, not in the future")
    return occurred


def answer_notice(books: Books, actor: Actor, notice_id: Any, *, text: str, place: str | None = None,
                  occurred_at: dt.datetime | None = None, photo: bytes | None = None) -> AnswerView:
    """A volunteer of the area answers an open notice, once (with one optional photo): a claim."""
    from ledger.radar.photos import clean_image, store_in

    image = clean_image(photo) if photo else None
    occurred = _check_answer(books, text, place, occurred_at)

    def work(s: Session) -> AnswerView:
        n = visible_notice(s, actor, notice_id, lock=True)
        if not policy.may_answer(s, actor, n.officer_id, area_of(s, n.id)):
            raise DomainError(errors.PERMISSION_DENIED, "only volunteers of the area answer")
        if state_of(n, books.now()) != "open":
            raise DomainError(errors.NOTICE_NOT_OPEN)
        if s.scalar(select(Answer.id).where(Answer.notice_id == n.id, Answer.volunteer_id == actor.user_id)):
            raise DomainError(errors.ALREADY_ANSWERED)
        claim_id = earning.submit_tip_in(
            s, books, actor, community_id=_paying_community(s, actor, n), category=CATEGORY,
            description=text.strip(), location=place or None, occurred_at=occurred or books.now(),
            reserve_id=n.reserve_id, service=("radar", books.settings.radar.answer_service_minutes))
        a = Answer(notice_id=n.id, volunteer_id=actor.user_id, claim_id=claim_id)
        s.add(a)
        s.flush()
        if image is not None:
            store_in(s, image, answer_id=a.id)
        return AnswerView.of(a, s, actor)

    return books.run(work)


def list_answers(books: Books, actor: Actor, notice_id: Any) -> list[AnswerView]:
    """The board: every answer of a notice, for officers in scope of its area; a volunteer sees their own."""
    def work(s: Session) -> list[AnswerView]:
        n = visible_notice(s, actor, notice_id)
        q = select(Answer).where(Answer.notice_id == n.id)
        if not policy.may_decide(s, actor, area_of(s, n.id)) and not (
                actor.has_role("auditor") or actor.has_role("admin")):
            q = q.where(Answer.volunteer_id == actor.user_id)
        return [AnswerView.of(a, s, actor) for a in s.scalars(q.order_by(Answer.id))]

    return books.run(work, readonly=True)


def my_answers(books: Books, actor: Actor) -> list[AnswerView]:
    return books.run(lambda s: [AnswerView.of(a, s, actor) for a in s.scalars(
        select(Answer).where(Answer.volunteer_id == actor.user_id).order_by(Answer.id.desc()).limit(200))],
        readonly=True)
