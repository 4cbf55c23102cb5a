"""Service records (志愿服务记录) and the certificates issued of them.

A record says that a volunteer served ``minutes`` on ``service_day`` for an organiser, verified by someone
(``user:7``) or by a rule (``rule:patrol``). ``source_ref`` names the work it records (``patrol_signup:12``,
``claim:40``) and is unique, so a piece of work is recorded once whatever retries happen. Records are kept
apart from beans: they carry no amount.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.infra.base import Base, BigId, UTCDateTime, in_values

ACTIVITIES = ("patrol", "radar")


class ServiceRecord(Base):
    """One entry of a volunteer's 志愿服务记录: verified service time, apart from beans."""

    __tablename__ = "service_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    activity: Mapped[str] = mapped_column(String(12))
    # what it records, e.g. "patrol_signup:12": recorded once
    source_ref: Mapped[str] = mapped_column(String(60), unique=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))  # the organiser
    description: Mapped[str] = mapped_column(String(200))
    service_day: Mapped[dt.date] = mapped_column(Date)  # Beijing date the service started
    minutes: Mapped[int] = mapped_column(Integer)
    verified_by: Mapped[str] = mapped_column(String(80))  # "user:7" or "rule:patrol"
    verified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(in_values("activity", ACTIVITIES), name="activity"),
        CheckConstraint("minutes > 0", name="minutes_positive"),
        Index("ix_service_records_volunteer_day", "volunteer_id", "service_day"),
    )


class ServiceCertificate(Base):
    """A 志愿服务记录证明 issued: the signed statement's id and what it says, kept for the record."""

    __tablename__ = "service_certificates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    first_day: Mapped[dt.date] = mapped_column(Date)
    last_day: Mapped[dt.date] = mapped_column(Date)
    minutes: Mapped[int] = mapped_column(Integer)
    records: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    statement: Mapped[str] = mapped_column(Text)
