"""Writing and reading service records. The room that verified the work writes the record in its own
transaction (``record_in``); a second call for the same ``source_ref`` writes nothing, so a retried or
repeated verification records the work once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access.identity import Actor
from ledger.access.models import OrgUnit
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.service.models import ACTIVITIES, ServiceRecord

# how a record's activity reads on the certificate and the records page (Chinese, as the 志愿服务记录 is)
LABELS = {"patrol": "治安巡逻", "radar": "警务雷达 · 线索核实"}


def describe(activity: str) -> str:
    return LABELS.get(activity, activity)


@dataclass(frozen=True)
class ServiceRecordView:
    id: int
    activity: str
    description: str
    organiser: str
    service_day: dt.date
    minutes: int
    verified_by: str
    verified_at: dt.datetime


def record_in(s: Session, *, volunteer_id: int, activity: str, source_ref: str, org_unit_id: int,
              description: str, service_day: dt.date, minutes: int, verified_by: str,
              verified_at: dt.datetime) -> bool:
    """Record ``minutes`` of verified service once per ``source_ref``; True when a record was written."""
    if activity not in ACTIVITIES:
        raise DomainError(errors.VALIDATION_FAILED, f"activity is one of {', '.join(ACTIVITIES)}")
    if type(minutes) is not int or minutes <= 0:
        return False  # no time served, nothing to record
    if s.scalar(select(ServiceRecord.id).where(ServiceRecord.source_ref == source_ref)) is not None:
        return False
    s.add(ServiceRecord(volunteer_id=volunteer_id, activity=activity, source_ref=source_ref[:60],
                        org_unit_id=org_unit_id, description=description[:200], service_day=service_day,
                        minutes=minutes, verified_by=verified_by[:80], verified_at=verified_at))
    s.flush()
    return True


def service_records_in(s: Session, volunteer_id: int, first_day: dt.date | None = None,
                       last_day: dt.date | None = None) -> list[ServiceRecordView]:
    q = select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer_id)
    if first_day is not None:
        q = q.where(ServiceRecord.service_day >= first_day)
    if last_day is not None:
        q = q.where(ServiceRecord.service_day <= last_day)
    out = []
    for r in s.scalars(q.order_by(ServiceRecord.service_day, ServiceRecord.id).limit(5000)):
        organiser = s.scalar(select(OrgUnit.name).where(OrgUnit.id == r.org_unit_id)) or ""
        out.append(ServiceRecordView(r.id, r.activity, r.description, organiser, r.service_day, r.minutes,
                                     r.verified_by, utc_from_db(r.verified_at)))
    return out


def my_service_records(books: Books, actor: Actor) -> list[ServiceRecordView]:
    return books.run(lambda s: service_records_in(s, actor.user_id), readonly=True)
