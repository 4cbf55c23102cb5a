"""Recruitment and accounts: calls for volunteers, sign-ups waiting for a community's approval, the consents
given (with the version of the notice read), sign-up challenges, and one-time password reset codes.

Minimum data: a sign-up keeps name, mobile number, community (and building), birth date (to know minors)
and the consents; an approved volunteer's user row keeps only the day they come of age, not the birth date.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.infra.base import Base, BigId, UTCDateTime, created_at_column, in_values

CALL_STATUSES = ("open", "closed")
SIGNUP_STATUSES = ("pending", "approved", "declined")
CONSENT_KINDS = ("privacy_notice", "guardian")


class RecruitmentCall(Base):
    """A community's call for volunteers (志愿者征集), shown on the public front page and its own page."""

    __tablename__ = "recruitment_calls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)  # a community
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    needed: Mapped[int] = mapped_column(Integer)
    min_age: Mapped[int] = mapped_column(Integer, default=14)
    training_required: Mapped[bool] = mapped_column(Boolean, default=False)
    insurance_required: Mapped[bool] = mapped_column(Boolean, default=False)
    starter_beans: Mapped[int] = mapped_column(BigInteger, default=0)  # from the community budget on approval
    closes_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("status", CALL_STATUSES), name="status"),
        CheckConstraint("needed >= 1", name="needed_positive"),
        CheckConstraint("min_age BETWEEN 0 AND 100", name="min_age_range"),
        CheckConstraint("starter_beans >= 0 AND starter_beans <= 100", name="starter_bounded"),
    )


class Signup(Base):
    """A resident's own sign-up, waiting for the community's staff."""

    __tablename__ = "signups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[Optional[int]] = mapped_column(ForeignKey("recruitment_calls.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    building_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_units.id"))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32), index=True)
    birth_date: Mapped[dt.date] = mapped_column(Date)
    password_hash: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    decision_reason: Mapped[Optional[str]] = mapped_column(String(500))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"), unique=True)  # once approved
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("status", SIGNUP_STATUSES), name="status"),
        CheckConstraint("status <> 'approved' OR user_id IS NOT NULL", name="approved_has_user"),
        # one sign-up waiting per mobile number (a partial unique index on both databases)
        Index("uq_signups_pending_phone", "phone", unique=True, sqlite_where=(status == "pending"),
              postgresql_where=(status == "pending")),
    )


class Consent(Base):
    """A consent as given: whose (the sign-up, later the user), what, which version of the text, when."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    signup_id: Mapped[Optional[int]] = mapped_column(ForeignKey("signups.id"), index=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    version: Mapped[str] = mapped_column(String(20))
    given_by: Mapped[Optional[str]] = mapped_column(String(100))  # the guardian's name, for a guardian's consent
    given_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint(in_values("kind", CONSENT_KINDS), name="kind"),)


class SignupChallenge(Base):
    """A plain question for people, answered once with the sign-up (no image puzzle for older eyes)."""

    __tablename__ = "signup_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    answer: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class ResetCode(Base):
    """A one-time password reset code, shown once to the staff member who gives it face to face."""

    __tablename__ = "reset_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = created_at_column()
