"""The notification outbox: one row per notification (the in-app inbox entry itself) and one delivery row per
channel with its state, attempts and next try.

No phone number and no tip text is stored here: a notification's title and body are the short texts the
room that sent it wrote (never the content of a tip), the SMS channel looks the phone up when it sends, and a
failed delivery keeps only a short error code.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ledger.infra.base import Base, BigId, UTCDateTime, in_values

CHANNELS = ("inbox", "live", "sms")
STATES = ("pending", "sent", "failed", "skipped")


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    topic: Mapped[str] = mapped_column(String(20))  # award, claim_decided, patrol_reminder, shift_changed, ...
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(String(500))
    link: Mapped[Optional[str]] = mapped_column(String(200))  # a page of the app, e.g. /wallet
    subject: Mapped[Optional[str]] = mapped_column(String(60))  # what it is about, named by the sender
    amount: Mapped[Optional[int]] = mapped_column(BigInteger)  # beans, for awards
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    # recorded once: a second send with the same key is a no-op
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_notifications_user", "user_id", "id"),
        Index("ix_notifications_created_at", "created_at"),
    )


class Delivery(Base):
    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"))
    channel: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # pending: when to try (again); while a worker sends, its lease (a crashed worker's send is retried after it)
    next_attempt_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    sent_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    last_error: Mapped[Optional[str]] = mapped_column(String(60))

    __table_args__ = (
        UniqueConstraint("notification_id", "channel"),
        CheckConstraint(in_values("channel", CHANNELS), name="channel"),
        CheckConstraint(in_values("state", STATES), name="state"),
        Index("ix_notification_deliveries_due", "state", "next_attempt_at"),
    )
