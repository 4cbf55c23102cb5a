"""Server-side sessions of the web pages (issue 5).

The browser holds only a random session id in an HttpOnly cookie; the table keeps the SHA-256 of that
id (a stolen database does not give usable cookies), who signed in, the session's data as JSON and
when it expires. Signing out deletes the row, so a replayed cookie names nothing; disabling a user
deletes every row of theirs.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, created_at_column


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"), index=True)
    data: Mapped[str] = mapped_column(Text, default="{}")
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[dt.datetime] = created_at_column()
