"""The district's people and places: the org tree, users, role grants and merchants.

A volunteer's wallet is an ``accounts`` row with ``kind='wallet'`` and ``owner_ref=f"user:{id}"``; a
community's budget is ``kind='budget'`` with ``owner_ref=f"org:{id}"``; a merchant's account is
``kind='merchant'`` and is named by ``merchants.account_id``.
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
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.infra.base import Base, BigId, UTCDateTime, created_at_column, in_values

ORG_LEVELS = ("district", "street", "community", "group", "building")
ROLES = ("volunteer", "leader", "officer", "fund_manager", "merchant_owner", "cashier", "auditor", "admin")
MERCHANT_STATUSES = ("active", "suspended", "closed")



class OrgUnit(Base):
    __tablename__ = "org_units"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_units.id"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(100))

    __table_args__ = (CheckConstraint(in_values("level", ORG_LEVELS), name="level"),)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    phone: Mapped[Optional[str]] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    pseudonym: Mapped[Optional[str]] = mapped_column(String(100))
    show_pseudonym: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    # the day a volunteer turns 18 (not the birth date): under 18 is marked and kept off night shifts
    adult_from: Mapped[Optional[dt.date]] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (CheckConstraint("failed_logins >= 0", name="failed_logins_not_negative"),)


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    daily_limit_beans: Mapped[Optional[int]] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("status", MERCHANT_STATUSES), name="status"),
        CheckConstraint("daily_limit_beans IS NULL OR daily_limit_beans > 0", name="daily_limit_positive"),
    )


class RoleGrant(Base):
    """One role held by one user, scoped to an org unit (officers, leaders, volunteers' home) or a
    merchant (owners, cashiers). A grant with neither is district-wide (admin, auditor, fund manager)."""

    __tablename__ = "role_grants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    org_unit_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_units.id"), index=True)
    merchant_id: Mapped[Optional[int]] = mapped_column(ForeignKey("merchants.id"), index=True)

    __table_args__ = (
        CheckConstraint(in_values("role", ROLES), name="role"),
        UniqueConstraint("user_id", "role", "org_unit_id", "merchant_id"),
    )


# --- Security (issue 8): the append-only log of security events, and the counters behind rate limits and

class SecurityEvent(Base):
    """One security event: a sign-in (ok or refused), a wrong PIN, a throttle or rate-limit refusal, an
    unlock, a role change, a key rotation. Written in the transaction of what it records (or in its own
    when what it records was refused); never updated or deleted (triggers refuse both)."""

    __tablename__ = "security_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[Optional[int]] = mapped_column(Integer)  # the account concerned, when known
    username: Mapped[Optional[str]] = mapped_column(String(80))  # as typed (sign-in attempts)
    source: Mapped[Optional[str]] = mapped_column(String(64))  # the client's IP address
    actor: Mapped[Optional[str]] = mapped_column(String(80))  # who acted ("user:3", "cli")
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        Index("ix_security_events_kind_at", "kind", "at"),
        Index("ix_security_events_source_at", "source", "at"),
        Index("ix_security_events_user_id_at", "user_id", "at"),
    )


class RateCounter(Base):
    """How many times ``bucket`` (e.g. ``token:ip:127.0.0.1``) was used in the window starting at
    ``window_start``; incremented with an upsert, so every server counts in the same row."""

    __tablename__ = "rate_counters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(120))
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("bucket", "window_start"),)


# --- Server-side sessions of the web pages (issue 5).

class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"), index=True)
    data: Mapped[str] = mapped_column(Text, default="{}")
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[dt.datetime] = created_at_column()
