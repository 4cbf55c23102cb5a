"""The radar's tables: notices and their versions and areas, answers (the link from a notice to the
earning claim each answer is), public reports, photos, volunteers' preferences and the event outbox the
live stream reads.

The journal holds the beans and earning the money-side rows: a notice's bounty is an earning reserve
(``reserve_id``: a hold on the paying community's budget), an answer is an earning claim paid from it
(``radar_answers.claim_id``), so verification, maker-checker, caps and "paid once" are earning's.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column

from ledger.earning.models import Reserve
from ledger.infra.base import Base, BigId, UTCDateTime, created_at_column, in_values

NOTICE_KINDS = ("寻人", "寻物", "协查", "求助", "安全提示")
NOTICE_STATUSES = ("open", "closed", "expired")
REPORT_STATUSES = ("new", "converted", "linked", "closed")
REPORT_CATEGORIES = ("theft", "fraud", "drugs", "fire_hazard", "traffic", "dispute", "suspicious", "missing",
                     "other")
EVENT_KINDS = ("notice", "notice_closed", "payment", "award", "notification")
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


class Notice(Base):
    __tablename__ = "radar_notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), default="open")
    version: Mapped[int] = mapped_column(Integer, default=1)  # the current version's number
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # the community whose budget pays (the bounty, or ordinary tip rewards); null: each answer's own community
    budget_org_unit_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_units.id"))
    bounty: Mapped[int] = mapped_column(BigInteger, default=0)  # as offered (the current version's)
    # the earning reserve holding the bounty (null without one); paying answers and releasing are earning's
    reserve_id: Mapped[Optional[int]] = mapped_column(ForeignKey("reserves.id"), unique=True)
    # paid or awaiting a second approval, read from the reserve (no copy to drift)
    bounty_paid: Mapped[int] = column_property(func.coalesce(
        select(Reserve.paid).where(Reserve.id == reserve_id).correlate_except(Reserve).scalar_subquery(), 0))
    # an optional circle, in micro-degrees (WGS-84) and metres; the org units stay the audience
    lat_e6: Mapped[Optional[int]] = mapped_column(Integer)
    lng_e6: Mapped[Optional[int]] = mapped_column(Integer)
    radius_m: Mapped[Optional[int]] = mapped_column(Integer)
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    closed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    close_reason: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("kind", NOTICE_KINDS), name="kind"),
        CheckConstraint(in_values("status", NOTICE_STATUSES), name="status"),
        CheckConstraint("bounty >= 0", name="bounty_nonneg"),
        CheckConstraint("bounty = 0 OR budget_org_unit_id IS NOT NULL", name="bounty_has_budget"),
        CheckConstraint("(lat_e6 IS NULL) = (lng_e6 IS NULL) AND (lat_e6 IS NULL) = (radius_m IS NULL)",
                        name="circle_whole"),
        CheckConstraint("radius_m IS NULL OR (radius_m > 0 AND radius_m <= 50000)", name="radius_range"),
    )


class NoticeVersion(Base):
    """Every version a notice had, the first included: an amendment adds one and keeps the rest."""

    __tablename__ = "radar_notice_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("radar_notices.id"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    bounty: Mapped[int] = mapped_column(BigInteger)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    edited_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    edited_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("notice_id", "version"),)


class NoticeArea(Base):
    __tablename__ = "radar_notice_areas"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("radar_notices.id"))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)

    __table_args__ = (UniqueConstraint("notice_id", "org_unit_id"),)


class Answer(Base):
    """A volunteer's tip in answer to a notice: one per volunteer and notice. The tip itself (text, place,
    time, status, decision, payment) is the earning claim ``claim_id``; this row says which notice it answers
    (and owns its photo)."""

    __tablename__ = "radar_answers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("radar_notices.id"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), unique=True)
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (UniqueConstraint("notice_id", "volunteer_id"),)


class Report(Base):
    """在线举报: a resident's report from the public page. Minimal personal data: no name, an optional
    phone for a call back, the address only as a keyed digest (for the rate limit), kept until
    ``purge_after``."""

    __tablename__ = "radar_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    place: Mapped[Optional[str]] = mapped_column(String(200))
    phone: Mapped[Optional[str]] = mapped_column(String(32))
    org_unit_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_units.id"), index=True)
    consent_version: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="new")
    notice_id: Mapped[Optional[int]] = mapped_column(ForeignKey("radar_notices.id"))
    case_ref: Mapped[Optional[str]] = mapped_column(String(60))
    triaged_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    triage_note: Mapped[Optional[str]] = mapped_column(Text)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    purge_after: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("category", REPORT_CATEGORIES), name="category"),
        CheckConstraint(in_values("status", REPORT_STATUSES), name="status"),
    )


class Photo(Base):
    """A re-encoded image (no EXIF), in the database so that it is never under the web root."""

    __tablename__ = "radar_photos"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notice_id: Mapped[Optional[int]] = mapped_column(ForeignKey("radar_notices.id"), index=True)
    answer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("radar_answers.id"), index=True)
    report_id: Mapped[Optional[int]] = mapped_column(ForeignKey("radar_reports.id"), index=True)
    content_type: Mapped[str] = mapped_column(String(20))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("content_type", PHOTO_TYPES), name="content_type"),
        CheckConstraint("(CASE WHEN notice_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN answer_id IS NULL THEN 0 "
                        "ELSE 1 END) + (CASE WHEN report_id IS NULL THEN 0 ELSE 1 END) = 1", name="one_owner"),
    )


class Preference(Base):
    """What a volunteer wants pushed live: kinds (comma-separated; empty: all) and quiet hours (minutes of
    the day, Beijing time). 安全提示 is delivered in quiet hours too."""

    __tablename__ = "radar_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    kinds: Mapped[str] = mapped_column(String(100), default="")
    quiet_from: Mapped[Optional[int]] = mapped_column(Integer)
    quiet_to: Mapped[Optional[int]] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("(quiet_from IS NULL) = (quiet_to IS NULL)", name="quiet_whole"),
        CheckConstraint("quiet_from IS NULL OR (quiet_from >= 0 AND quiet_from < 1440 AND quiet_to >= 0 "
                        "AND quiet_to < 1440)", name="quiet_range"),
    )


class Event(Base):
    """The outbox of the live stream: written in the use case's transaction, so a stream (which reads
    ids above the client's ``Last-Event-ID``) sees an event only after it committed. Ids, not bodies:
    the stream loads what the reader may see when it sends."""

    __tablename__ = "radar_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    notice_id: Mapped[Optional[int]] = mapped_column(ForeignKey("radar_notices.id"))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))  # set: for this user only
    amount: Mapped[Optional[int]] = mapped_column(BigInteger)
    # the inbox entry a personal event carries (ledger.notify's live channel); no foreign key: notifications
    # are purged after their retention, and the stream then skips the event
    notification_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(in_values("kind", EVENT_KINDS), name="kind"),
        Index("ix_radar_events_user", "user_id", "id"),
    )
