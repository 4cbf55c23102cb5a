"""Erasure (PIPL art. 47): a person asks, the staff of their community complete it.

Completing, in one transaction: refused while beans of the wallet are on hold (``erasure_beans_on_hold``);
the wallet's remaining beans go back to the person's community budget (the fund when they have none) by a
recorded ``adjust`` transfer; then the personal data is overwritten in place: the user's name, phone,
username (a placeholder ``erased-<id>``), pseudonym and password hash; the user is deactivated and every web
session ended; tips' text, location, team and the officers' decision notes; the inbox (notifications and their
delivery records); sign-ups' name, phone and birth
date (a fixed placeholder date: the column is required); consents keep only kind, version and date; named
survey answers are unlinked from the person; service certificates lose their signed statement (it carried
the name); security-log rows about them keep only ids, kind and time; the wallet's account name becomes its
code.

The journal keeps verifying: its hash chains cover account id, code and kind (never the name) and each
transfer's key, actor, reason and reference. Keys, codes and actors carry ids only (``user:7``); reasons and
references are typed by officers for the work, not about the person, and stay as they were (see
docs/people.md, "Personal data", for this limitation). Every earlier signed journal export is a file of its
own and verifies as before. The security log records the request and its completion, by ids only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy, security
from ledger.access.identity import Actor, budget_account_id
from ledger.access.models import OrgUnit, RoleGrant, SecurityEvent, User, WebSession
from ledger.earning.models import Claim
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.journal.accounts import post_in
from ledger.journal.models import Account
from ledger.journal.posting import transfer
from ledger.notify.models import Delivery, Notification
from ledger.people.models import Consent, Signup
from ledger.privacy.models import ErasureRequest
from ledger.radar.models import Answer as RadarAnswer
from ledger.radar.models import Photo, Preference
from ledger.service.models import ServiceCertificate
from ledger.surveys.models import SurveyResponse

ERASED_NAME = "已删除用户"
ERASED_BIRTH_DATE = dt.date(1900, 1, 1)


@dataclass(frozen=True)
class ErasureView:
    id: int
    user_id: int
    status: str
    requested_at: dt.datetime
    completed_at: dt.datetime | None
    returned_beans: int


def _view(r: ErasureRequest) -> ErasureView:
    return ErasureView(r.id, r.user_id, r.status, r.requested_at, r.completed_at, r.returned_beans)


def request_erasure(books: Books, actor: Actor) -> ErasureView:
    """The signed-in person asks that their personal data be erased; recorded, nothing erased yet."""

    def work(s: Session) -> ErasureView:
        s.get(User, actor.user_id, with_for_update=True)  # one request at a time per person
        if s.scalar(select(ErasureRequest.id).where(ErasureRequest.user_id == actor.user_id,
                                                    ErasureRequest.status == "requested")) is not None:
            raise DomainError(errors.ERASURE_ALREADY_REQUESTED)
        req = ErasureRequest(user_id=actor.user_id, status="requested", requested_at=books.now())
        s.add(req)
        s.flush()
        security.record_in(s, "erasure_requested", at=books.now(), user_id=actor.user_id, actor=actor.ref,
                           erasure_id=req.id)
        return _view(req)

    return books.run(work)


def list_erasures(books: Books, actor: Actor) -> list[ErasureView]:
    """Open requests of the people the actor may erase (staff over their community, admins)."""

    def work(s: Session) -> list[ErasureView]:
        out = []
        for r in s.scalars(select(ErasureRequest).where(ErasureRequest.status == "requested")
                           .order_by(ErasureRequest.id)):
            try:
                policy.require_erasure_completer(s, actor, r.user_id)
            except DomainError:
                continue
            out.append(_view(r))
        return out

    return books.run(work, readonly=True)


def _home_budget(s: Session, user_id: int) -> int:
    """The budget of the community the person lives in (their volunteer unit or above it), else the fund."""
    for unit_id in s.scalars(select(RoleGrant.org_unit_id).where(RoleGrant.user_id == user_id,
                                                                 RoleGrant.org_unit_id.is_not(None))
                             .order_by(RoleGrant.id)):
        unit = s.get(OrgUnit, unit_id)
        while unit is not None and unit.level != "community":
            unit = s.get(OrgUnit, unit.parent_id) if unit.parent_id else None
        if unit is not None:
            return budget_account_id(s, unit.id)
    return s.scalar(select(Account.id).where(Account.kind == "fund").order_by(Account.id))


def _settle_wallet(s: Session, books: Books, actor: Actor, req: ErasureRequest) -> int:
    wallet = s.scalar(select(Account).where(Account.kind == "wallet", Account.owner_ref == f"user:{req.user_id}")
                      .with_for_update())
    if wallet is None:
        return 0
    if wallet.debits_pending or wallet.credits_pending:
        raise DomainError(errors.ERASURE_BEANS_ON_HOLD)
    rest = wallet.credits_posted - wallet.debits_posted
    if rest > 0:
        post_in(s, books, [transfer(f"erasure:{req.id}:return", "adjust", wallet.id, _home_budget(s, req.user_id),
                                    rest, actor=actor.ref, reason="erasure: beans returned",
                                    reference=f"erasure:{req.id}")])
    wallet.name = wallet.code
    return rest


def _destroy(s: Session, user_id: int) -> None:
    """Overwrite the person's data in every table that holds it (see the module's docstring)."""
    user = s.get(User, user_id)
    user.display_name, user.username, user.phone = ERASED_NAME, f"erased-{user_id}", None
    user.pseudonym, user.show_pseudonym, user.password_hash, user.active = None, False, "!", False
    user.adult_from = None  # derived from the birth date
    s.execute(delete(WebSession).where(WebSession.user_id == user_id))
    s.execute(update(Claim).where(or_(Claim.volunteer_id == user_id, Claim.submitted_by_id == user_id))
              .values(description=None, location=None, team=None, decision_reason=None))
    signup_ids = list(s.scalars(select(Signup.id).where(Signup.user_id == user_id)))
    s.execute(update(Signup).where(Signup.user_id == user_id)
              .values(name=ERASED_NAME, phone=f"erased-{user_id}", birth_date=ERASED_BIRTH_DATE,
                      password_hash="!", decision_reason=None))
    s.execute(update(Consent).where(or_(Consent.user_id == user_id, Consent.signup_id.in_(signup_ids)))
              .values(given_by=None))
    s.execute(update(SurveyResponse).where(SurveyResponse.user_id == user_id).values(user_id=None))
    answer_ids = list(s.scalars(select(RadarAnswer.id).where(RadarAnswer.volunteer_id == user_id)))
    s.execute(delete(Photo).where(Photo.answer_id.in_(answer_ids)))  # radar tips' photos: gone (their text is a claim's)
    s.execute(delete(Preference).where(Preference.user_id == user_id))
    notes = select(Notification.id).where(Notification.user_id == user_id).scalar_subquery()
    s.execute(delete(Delivery).where(Delivery.notification_id.in_(notes)))  # the inbox: gone
    s.execute(delete(Notification).where(Notification.user_id == user_id))
    s.execute(update(ServiceCertificate).where(ServiceCertificate.volunteer_id == user_id).values(statement=""))
    s.execute(update(SecurityEvent).where(SecurityEvent.user_id == user_id)
              .values(username=None, source=None, detail="{}"))


def complete_erasure(books: Books, actor: Actor, erasure_id: int) -> ErasureView:
    """Staff of the person's community settle the wallet and destroy the person's data, in one transaction."""

    def work(s: Session) -> ErasureView:
        req = s.get(ErasureRequest, erasure_id, with_for_update=True)
        if req is None:
            raise DomainError(errors.ERASURE_NOT_FOUND)
        policy.require_erasure_completer(s, actor, req.user_id)
        if req.status != "requested":
            raise DomainError(errors.ERASURE_COMPLETED)
        old = s.get(User, req.user_id, with_for_update=True)
        typed = [n for n in (old.username, old.phone) if n]
        req.returned_beans = _settle_wallet(s, books, actor, req)
        _destroy(s, req.user_id)
        if typed:  # sign-in attempts logged under the name as typed, before the account was known
            s.execute(update(SecurityEvent).where(SecurityEvent.username.in_(typed))
                      .values(username=None, source=None, detail="{}"))
        req.status, req.completed_at, req.completed_by_id = "completed", books.now(), actor.user_id
        security.record_in(s, "erasure_completed", at=books.now(), user_id=req.user_id, actor=actor.ref,
                           erasure_id=req.id, returned_beans=req.returned_beans)
        s.flush()
        return _view(req)

    view = books.run(work)
    _forget_old_pages(books)
    return view


def _forget_old_pages(books: Books) -> None:
    """SQLite keeps the rows' earlier versions in its write-ahead log until it is checkpointed: fold it into
    the database (whose freed space ``secure_delete`` zeroes) and empty it, so the files hold no erased text."""
    if books.engine.dialect.name == "sqlite":
        raw = books.engine.raw_connection()  # outside any transaction: a checkpoint cannot run inside one
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            raw.close()
