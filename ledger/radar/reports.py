"""在线举报: residents without an account report online; officers of the area triage the reports.

Privacy (PIPL): the reporter gives no name; a phone number only if they want a call back (lists show it
masked; an officer who may handle the report reveals it for one report at a time, each reveal written to the
security log: ``reveal_phone``); the page shows the consent text (version ``CONSENT_VERSION``) and the report
is refused without consent. The address is never stored with the report: it only names a rate-limit counter,
as a digest, and counters are forgotten within hours. Reports are kept ``RETENTION_DAYS``; ``purge_reports`` then erases their text, place, phone
and photos (the row stays, so the counts and the triage trail remain). Reports are never rewarded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import Actor, scope_units
from ledger.access.masking import mask_phone
from ledger.access.models import OrgUnit
from ledger.access.security import count_in, limit, record_in
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.radar.models import REPORT_CATEGORIES, Photo, Report
from ledger.radar.photos import PER_NOTICE, clean_image, photo_ids, store_in

CONSENT_VERSION = "2026-11"
RETENTION_DAYS = 180
ERASED = "（已按保留期限删除）"
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")


@dataclass(frozen=True)
class ReportView:
    id: int
    category: str
    text: str
    place: str | None
    phone: str | None  # masked (138****0000): a desk shows it in part; the number stays in the row
    org_unit_id: int | None
    status: str
    notice_id: int | None
    case_ref: str | None
    triage_note: str | None
    submitted_at: dt.datetime
    purge_after: dt.datetime
    photo_ids: list[int]

    @classmethod
    def of(cls, r: Report, s: Session) -> ReportView:
        return cls(r.id, r.category, r.text, r.place, mask_phone(r.phone) or None, r.org_unit_id, r.status, r.notice_id, r.case_ref,
                   r.triage_note, utc_from_db(r.submitted_at), utc_from_db(r.purge_after),
                   photo_ids(s, report_id=r.id))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _limits(books: Books) -> tuple[int, int]:
    return books.settings.radar.reports_per_address, books.settings.radar.reports_per_phone


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"radar-report:{kind}:{value}".encode()).hexdigest()[:40]


def _check_report(category: Any, text: Any, place: Any, phone: Any, consent: Any) -> str | None:
    if consent is not True:
        raise DomainError(errors.CONSENT_REQUIRED, consent_version=CONSENT_VERSION)
    if category not in REPORT_CATEGORIES:
        raise DomainError(errors.VALIDATION_FAILED, f"category is one of {', '.join(REPORT_CATEGORIES)}")
    if not isinstance(text, str) or not 5 <= len(text.strip()) <= 2000:
        raise DomainError(errors.VALIDATION_FAILED, "say what happened in 5 to 2,000 characters")
    if place is not None and (not isinstance(place, str) or len(place) > 200):
        raise DomainError(errors.VALIDATION_FAILED, "a place of at most 200 characters")
    if phone in (None, ""):
        return None
    cleaned = re.sub(r"[\s-]", "", phone) if isinstance(phone, str) else ""
    if not _PHONE.match(cleaned):
        raise DomainError(errors.VALIDATION_FAILED, "a phone number of 6 to 15 digits")
    return cleaned


def submit_report(books: Books, *, category: str, text: str, source: str | None, place: str | None = None,
                  phone: str | None = None, org_unit_id: int | None = None, consent: bool = False,
                  photo: bytes | None = None) -> ReportView:
    """A resident reports (with one optional photo); at most a few an hour per address and per phone
    (``rate_limited``)."""
    phone = _check_report(category, text, place, phone, consent)
    image = clean_image(photo) if photo else None
    per_address, per_phone = _limits(books)

    def work(s: Session) -> ReportView | DomainError:
        now = books.now()
        over = count_in(s, now, f"radar_report:ip:{_digest('ip', source or '-')}", 3600) > per_address
        if phone is not None:
            over = count_in(s, now, f"radar_report:phone:{_digest('phone', phone)}", 3600) > per_phone or over
        if over:
            record_in(s, "rate_limited", at=now, source=source, what="radar_report")
            return DomainError(errors.RATE_LIMITED, retry_after_s=3600)
        if org_unit_id is not None and (type(org_unit_id) is not int or s.get(OrgUnit, org_unit_id) is None):
            raise DomainError(errors.ORG_UNIT_NOT_FOUND, org_unit_id=org_unit_id)
        r = Report(category=category, text=text.strip(), place=place or None, phone=phone, org_unit_id=org_unit_id,
                   consent_version=CONSENT_VERSION, status="new", submitted_at=now,
                   purge_after=now + dt.timedelta(days=RETENTION_DAYS))
        s.add(r)
        s.flush()
        if image is not None:
            store_in(s, image, report_id=r.id)
        return ReportView.of(r, s)

    # the refusal is returned, not raised, so that the counters and the log commit with it
    result = books.run(work)
    if isinstance(result, DomainError):
        raise result
    return result


def report_places(books: Books) -> list[dict[str, Any]]:
    """The communities a resident may name on the public form (public information), by street office."""
    def work(s: Session) -> list[dict[str, Any]]:
        street = OrgUnit.__table__.alias("street")
        rows = s.execute(select(OrgUnit.id, OrgUnit.name, street.c.name).join(street, street.c.id == OrgUnit.parent_id)
                         .where(OrgUnit.level == "community").order_by(street.c.name, OrgUnit.name)).all()
        return [{"id": r[0], "name": r[1], "street": r[2]} for r in rows]

    return books.run(work, readonly=True)


def _reports_query(s: Session, actor: Actor) -> Any:
    policy.require_officer(actor)
    units = scope_units(s, actor, "officer")
    q = select(Report)
    if units is not None:  # reports that name no unit go to the district-wide officers only
        q = q.where(Report.org_unit_id.in_(units))
    return q


def _handled_report(s: Session, actor: Actor, report_id: Any, *, lock: bool = True) -> Report:
    """The report ``report_id`` if ``actor`` may handle it (an officer of its community; district-wide officers
    for an unplaced one); otherwise ``permission_denied`` (not an officer) or ``report_not_found`` (another
    community's report is not told to exist)."""
    q = _reports_query(s, actor)
    r = s.scalar((q.with_for_update() if lock else q).where(Report.id == report_id)) if type(report_id) is int else None
    if r is None:
        raise DomainError(errors.REPORT_NOT_FOUND)
    return r


def list_reports(books: Books, actor: Actor, *, status: str | None = "new", limit: int = 100) -> list[ReportView]:
    def work(s: Session) -> list[ReportView]:
        q = _reports_query(s, actor)
        if status is not None:
            q = q.where(Report.status == status)
        return [ReportView.of(r, s) for r in s.scalars(q.order_by(Report.id.desc()).limit(max(1, min(limit, 500))))]

    return books.run(work, readonly=True)


def triage_report(books: Books, actor: Actor, report_id: Any, *, status: str, note: str = "",
                  notice_id: int | None = None, case_ref: str | None = None) -> ReportView:
    """Close a report, link it to a case, or record the notice it became."""
    if status not in ("converted", "linked", "closed"):
        raise DomainError(errors.VALIDATION_FAILED, "status is converted, linked or closed")
    if status == "linked" and not (isinstance(case_ref, str) and 1 <= len(case_ref) <= 60):
        raise DomainError(errors.VALIDATION_FAILED, "name the case (1 to 60 characters)")

    def work(s: Session) -> ReportView:
        r = _handled_report(s, actor, report_id)
        if status == "converted":
            from ledger.radar.notices import visible_notice

            r.notice_id = visible_notice(s, actor, notice_id).id
        r.status, r.case_ref, r.triage_note, r.triaged_by_id = status, case_ref or r.case_ref, note[:500], actor.user_id
        s.flush()
        return ReportView.of(r, s)

    return books.run(work)


def convert_report(books: Books, actor: Actor, report_id: Any, *, kind: str, title: str, body: str,
                   ends_at: dt.datetime, area: list[int] | None = None, bounty: int = 0,
                   budget_org_unit_id: int | None = None, with_photos: bool = False, note: str = "") -> ReportView:
    """One step from a resident's report to a notice: publish it (to ``area``, by default the report's own
    community) and record the report ``converted`` with the notice's number, in one transaction. The officer
    writes the notice's text (the report's is not copied: it may name people); ``with_photos`` carries the
    report's photos (already stripped of EXIF) onto the notice, within its four."""
    from ledger.radar.notices import draft, publish_in

    d = draft(books, actor, kind=kind, title=title, body=body, ends_at=ends_at, bounty=bounty)

    def work(s: Session) -> ReportView:
        r = _handled_report(s, actor, report_id)
        if r.status not in ("new", "linked"):
            raise DomainError(errors.REPORT_NOT_OPEN)
        target = area if area else ([r.org_unit_id] if r.org_unit_id is not None else [])
        n = publish_in(s, books, actor, d, area=target, budget_org_unit_id=budget_org_unit_id)
        if with_photos:
            room = PER_NOTICE - len(d.images)
            for p in s.scalars(select(Photo).where(Photo.report_id == r.id).order_by(Photo.id).limit(room)):
                s.add(Photo(notice_id=n.id, content_type=p.content_type, width=p.width, height=p.height,
                            data=p.data, sha256=p.sha256))
        r.status, r.notice_id, r.triaged_by_id = "converted", n.id, actor.user_id
        r.triage_note = (note or f"已转为通知 {n.id} 号")[:500]
        s.flush()
        return ReportView.of(r, s)

    return books.run(work)


@dataclass(frozen=True)
class RevealedPhone:
    """A report's full call-back number, as revealed to one officer at ``revealed_at``."""

    report_id: int
    phone: str
    revealed_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reveal_phone(books: Books, actor: Actor, report_id: Any, *, source: str | None = None) -> RevealedPhone:
    """The full call-back number of ONE report, for an officer who may handle it (the check of triage and
    conversion: ``permission_denied`` for anyone but an officer, ``report_not_found`` for another community's
    report). Every reveal is written to the security log in the same transaction (``report_phone_revealed``:
    who, which report, when, from which address), never the number itself; a refusal logs nothing.
    ``report_has_no_phone``: the resident gave none, or it was erased after the retention period."""
    def work(s: Session) -> RevealedPhone | DomainError:
        r = _handled_report(s, actor, report_id, lock=False)
        if not r.phone:
            raise DomainError(errors.REPORT_HAS_NO_PHONE, report_id=r.id)
        now = books.now()
        # an officer reading numbers one after another is stopped (and it is logged), not only recorded
        if count_in(s, now, f"phone_reveal:user:{actor.user_id}", REVEAL_WINDOW_S) > limit(
                books, "phone_reveals_per_officer"):
            record_in(s, "rate_limited", at=now, user_id=actor.user_id, source=source, actor=actor.ref,
                      what="report_phone_revealed")
            return DomainError(errors.RATE_LIMITED, retry_after_s=REVEAL_WINDOW_S)
        record_in(s, "report_phone_revealed", at=now, user_id=actor.user_id, source=source, actor=actor.ref,
                  report_id=r.id, org_unit_id=r.org_unit_id)
        return RevealedPhone(r.id, r.phone, now)

    shown = books.run(work)
    if isinstance(shown, DomainError):  # the refusal's log entry and the count committed
        raise shown
    return shown


REVEAL_WINDOW_S = 3600  # ``RateLimits.phone_reveals_per_officer`` counts per hour


def purge_reports(books: Books, *, limit: int = 500) -> int:
    """Erase the personal content of reports past their retention (the worker). Returns how many."""
    def work(s: Session) -> int:
        now = books.now()
        found = s.scalars(select(Report).where(Report.purge_after <= now, Report.text != ERASED)
                          .order_by(Report.id).limit(limit).with_for_update()).all()
        for r in found:
            r.text, r.place, r.phone = ERASED, None, None
        if found:
            s.execute(delete(Photo).where(Photo.report_id.in_([r.id for r in found])))
        return len(found)

    return books.run(work)
