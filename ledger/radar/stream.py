"""The live stream's side of the notification outbox: the radar owns the stream's outbox (``radar_events``),
so it gives the worker the ``LiveChannel`` that puts a notification on it, and reads those events back for
their one reader.

A notification with beans (an award) goes out as a ``payment`` event (``notice_id`` when it paid a notice's
bounty), which ``live.events_for`` already delivers to the paid person only; any other as a ``notification``
event (topic, title, link: the short texts the sender wrote, never a tip's content), which ``events_for``
here adds for its reader. Both carry the event id, so ``Last-Event-ID`` resumes them like any other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import notify
from ledger.access.identity import Actor
from ledger.infra.books import Books
from ledger.radar import live
from ledger.radar.models import Event


def _notice_of(subject: str | None) -> int | None:
    tail = (subject or "").removeprefix("notice:")
    return int(tail) if subject and subject.startswith("notice:") and tail.isdigit() and len(tail) < 18 else None


class LiveChannel:
    """``ledger.notify``'s live channel: one stream event per notification, in the worker's transaction."""

    def publish_in(self, s: Session, books: Books, note: notify.Note) -> None:
        paid = note.topic == "award" and note.amount
        s.add(Event(kind="payment" if paid else "notification", user_id=note.user_id, amount=note.amount,
                    notice_id=_notice_of(note.subject) if paid else None, notification_id=note.id, at=books.now()))


def _personal(s: Session, actor: Actor, after: int, upto: int) -> list[dict[str, Any]]:
    out = []
    for e in s.scalars(select(Event).where(Event.kind == "notification", Event.user_id == actor.user_id,
                                           Event.id > after, Event.id <= upto).order_by(Event.id)):
        note = notify.note_in(s, e.notification_id) if e.notification_id is not None else None
        if note is not None:
            out.append({"id": e.id, "event": "notification", "notification_id": note.id, "topic": note.topic,
                        "title": note.title, "link": note.link, "urgent": note.urgent})
    return out


def events_for(books: Books, actor: Actor, *, after: int, limit: int = live.MAX_BATCH, upto: int | None = None
               ) -> tuple[list[dict[str, Any]], int]:
    """What ``live.events_for`` gives this reader (``upto``: a horizon a held-stream server knows final), with
    their own notifications among them, by id."""
    events, cursor = live.events_for(books, actor, after=after, limit=limit, upto=upto)
    if cursor <= after:
        return events, cursor
    mine = books.run(lambda s: _personal(s, actor, after, cursor), readonly=True)
    return sorted(events + mine, key=lambda e: e["id"]), cursor
