"""Erasure requests (PIPL art. 47): who asked, when, and who completed it. The row keeps only ids and times,
so it outlives the data it had erased."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.infra.base import Base, BigId, UTCDateTime, created_at_column, in_values

ERASURE_STATUSES = ("requested", "completed")


class ErasureRequest(Base):
    __tablename__ = "erasure_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="requested")
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    completed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    returned_beans: Mapped[int] = mapped_column(BigInteger, default=0)  # the wallet's rest, back to the budget
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("status", ERASURE_STATUSES), name="status"),
        CheckConstraint("returned_beans >= 0", name="returned_nonneg"),
    )
