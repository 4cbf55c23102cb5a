"""Patrols (卫星布防): posts on the org tree, shifts and their recurring definitions, sign-ups with their
attendance and the leader codes already used. Service records and certificates are the room
``ledger.service``'s (below this one): a paid or recorded attendance calls ``service.record_in``.

Beans live in the journal; these rows hold why: which shift, which proof of presence, how long, who
verified.

Privacy: no raw coordinates of a volunteer are stored, only the distance to the post (metres) and
the accuracy the phone claimed; a post's own place is public by design (it is printed on the sign).
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.infra.base import Base, BigId, UTCDateTime, created_at_column, in_values

SHIFT_STATUSES = ("open", "cancelled")
# signed_up → (withdrawn | checked_in | no_show); checked_in → checked_out; pending: held for an officer
# (insurance required and not yet confirmed)
SIGNUP_STATUSES = ("pending", "signed_up", "withdrawn", "checked_in", "checked_out", "no_show")
PROOFS = ("leader_code", "post_sign", "leader_manual")
# attendance after check-out: awaiting an officer, paid (beans posted), recorded (no beans due), refused
ATTENDANCE_STATUSES = ("awaiting_verification", "paid", "recorded", "refused")


class PatrolPost(Base):
    __tablename__ = "patrol_posts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # a community, resident group or building
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # microdegrees (WGS-84 as the phones report it): exact integers, ~0.1 m
    latitude_e6: Mapped[int] = mapped_column(Integer)
    longitude_e6: Mapped[int] = mapped_column(Integer)
    radius_m: Mapped[int] = mapped_column(Integer)
    # bumped to reprint the sign: signs of an older serial are refused
    sign_serial: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint("latitude_e6 BETWEEN -90000000 AND 90000000", name="latitude_range"),
        CheckConstraint("longitude_e6 BETWEEN -180000000 AND 180000000", name="longitude_range"),
        CheckConstraint("radius_m BETWEEN 10 AND 2000", name="radius_range"),
        CheckConstraint("sign_serial >= 1", name="sign_serial_positive"),
    )


class ShiftSeries(Base):
    """A recurring shift ("every evening 19:00–21:00"): expanded into ``patrol_shifts`` rows on demand,
    one per day, unique by (series, start), so expanding twice adds nothing."""

    __tablename__ = "patrol_series"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("patrol_posts.id"), index=True)
    # Beijing wall-clock minutes after midnight; a shift may cross midnight (counts on the day it starts)
    start_minute: Mapped[int] = mapped_column(Integer)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    # bit 0 = Monday … bit 6 = Sunday
    weekdays: Mapped[int] = mapped_column(Integer, default=127)
    first_day: Mapped[dt.date] = mapped_column(Date)
    last_day: Mapped[Optional[dt.date]] = mapped_column(Date)
    needed: Mapped[int] = mapped_column(Integer)
    beans_per_hour: Mapped[int] = mapped_column(Integer)
    insurance_required: Mapped[bool] = mapped_column(Boolean, default=False)
    leader_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint("start_minute BETWEEN 0 AND 1439", name="start_minute_range"),
        CheckConstraint("duration_minutes BETWEEN 15 AND 720", name="duration_range"),
        CheckConstraint("weekdays BETWEEN 1 AND 127", name="weekdays_range"),
        CheckConstraint("needed BETWEEN 1 AND 500", name="needed_range"),
        CheckConstraint("beans_per_hour >= 0", name="beans_per_hour_not_negative"),
    )


class PatrolShift(Base):
    __tablename__ = "patrol_shifts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("patrol_posts.id"), index=True)
    series_id: Mapped[Optional[int]] = mapped_column(ForeignKey("patrol_series.id"))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    needed: Mapped[int] = mapped_column(Integer)
    beans_per_hour: Mapped[int] = mapped_column(Integer)
    insurance_required: Mapped[bool] = mapped_column(Boolean, default=False)
    leader_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(12), default="open")
    # bumped by every edit; a sign-up remembers the version it saw, so volunteers can be told
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("status", SHIFT_STATUSES), name="status"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("needed BETWEEN 1 AND 500", name="needed_range"),
        CheckConstraint("beans_per_hour >= 0", name="beans_per_hour_not_negative"),
        UniqueConstraint("series_id", "starts_at"),
        Index("ix_patrol_shifts_starts_at", "starts_at"),
    )


class PatrolSignup(Base):
    """One volunteer on one shift, from sign-up to paid attendance. Unique per (shift, volunteer): a
    second sign-up reuses the row; the award's journal key is unique, so a shift is paid at most once."""

    __tablename__ = "patrol_signups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("patrol_shifts.id"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    signed_up_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    seen_version: Mapped[int] = mapped_column(Integer, default=1)
    withdrawn_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    checked_in_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    check_in_proof: Mapped[Optional[str]] = mapped_column(String(16))
    check_in_distance_m: Mapped[Optional[int]] = mapped_column(Integer)
    checked_out_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    check_out_proof: Mapped[Optional[str]] = mapped_column(String(16))
    check_out_distance_m: Mapped[Optional[int]] = mapped_column(Integer)
    # who checked the volunteer in or out when it was the leader (members without phones)
    recorded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    minutes: Mapped[Optional[int]] = mapped_column(Integer)  # rounded service time
    beans: Mapped[Optional[int]] = mapped_column(BigInteger)  # due for it
    attendance: Mapped[Optional[str]] = mapped_column(String(24))
    hold_reason: Mapped[Optional[str]] = mapped_column(String(40))
    verified_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    verified_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    transfer_key: Mapped[Optional[str]] = mapped_column(String(100), unique=True)

    __table_args__ = (
        CheckConstraint(in_values("status", SIGNUP_STATUSES), name="status"),
        CheckConstraint(f"check_in_proof IS NULL OR {in_values('check_in_proof', PROOFS)}", name="check_in_proof"),
        CheckConstraint(f"check_out_proof IS NULL OR {in_values('check_out_proof', PROOFS)}", name="check_out_proof"),
        CheckConstraint(f"attendance IS NULL OR {in_values('attendance', ATTENDANCE_STATUSES)}", name="attendance"),
        CheckConstraint("minutes IS NULL OR minutes >= 0", name="minutes_not_negative"),
        CheckConstraint("beans IS NULL OR beans >= 0", name="beans_not_negative"),
        UniqueConstraint("shift_id", "volunteer_id"),
    )


class UsedLeaderCode(Base):
    """A leader's rotating code, once scanned: the same code from another volunteer's phone is refused."""

    __tablename__ = "patrol_used_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("patrol_shifts.id"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
