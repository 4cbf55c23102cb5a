"""Announcements: a room tells a person that something happened to them (a payment at a till) without
importing the room that delivers it (the radar's live stream, ``ledger.radar.live``).

The use case calls ``books.announce(session, Announcement(...))`` inside its own transaction; each listener
connected by the composition root (``goldbean.app``) writes its outbox row on that session, so the
announcement commits with the use case or not at all, and no reader ever sees one whose transaction did not
commit. Without listeners (a bare ``Books`` in a test or a script) nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Announcement:
    kind: str  # "payment": beans left the person's wallet at a till
    user_id: int
    amount: int
    ref: str  # what it is about, e.g. "redemption:12"


Listener = Callable[[Session, Any, Announcement], None]  # (session, books, announcement)
