"""Security (issue 8): the append-only log of security events, and the counters behind rate limits and
guessing throttles. Both live in the database so that several app servers share them."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, created_at_column


class SecurityEvent(Base):
    """One security event: a sign-in (ok or refused), a wrong PIN, a throttle or rate-limit refusal, an
    unlock, a role change, a key rotation. Written in the transaction of what it records (or in its own
    when what it records was refused); never updated or deleted (triggers refuse both)."""

    __tablename__ = "security_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
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
    window_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("bucket", "window_start"),)
