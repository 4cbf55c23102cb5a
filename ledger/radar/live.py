"""Live delivery: which outbox events (``radar_events``) a reader may receive, after a cursor, and the
volunteers' preferences (kinds, quiet hours).

The outbox row is written in the use case's own transaction, so a reader sees an event only once it has
committed, on any app server. Rules: a notice event (``notice``, ``notice_closed``) goes to whoever may
see the notice *now* (a volunteer who moved away stops receiving at once), filtered by the reader's
kinds; in the reader's quiet hours (Beijing time) only 安全提示 is delivered. A ``payment`` event goes to
the paid volunteer only: a bounty paid to them (``notice_id`` set, ``source: radar``), or beans they paid at a
till (``notice_id`` null, ``source: till``), which the redemption room announces in its own transaction
(``ledger.infra.announce``; ``announce_in`` is the listener the composition root connects).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import Actor
from ledger.errors import DomainError
from ledger.infra.announce import Announcement
from ledger.infra.books import Books
from ledger.radar.models import NOTICE_KINDS, Event, Notice, Preference
from ledger.radar.notices import _event, area_of

ALWAYS = "安全提示"  # delivered in quiet hours too
MAX_BATCH = 50


def _pref(s: Session, user_id: int) -> Preference | None:
    return s.get(Preference, user_id)


def preferences(books: Books, actor: Actor) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        p = _pref(s, actor.user_id)
        kinds = [k for k in (p.kinds.split(",") if p and p.kinds else []) if k]
        return {"kinds": kinds or list(NOTICE_KINDS), "quiet_from": p.quiet_from if p else None,
                "quiet_to": p.quiet_to if p else None}

    return books.run(work, readonly=True)


def set_preferences(books: Books, actor: Actor, *, kinds: list[str], quiet_from: int | None = None,
                    quiet_to: int | None = None) -> dict[str, Any]:
    """Which kinds to receive live (安全提示 always) and quiet hours (minutes after midnight, Beijing)."""
    if not isinstance(kinds, list) or any(k not in NOTICE_KINDS for k in kinds):
        raise DomainError(errors.VALIDATION_FAILED, f"kinds are among {', '.join(NOTICE_KINDS)}")
    if (quiet_from is None) != (quiet_to is None) or any(
            q is not None and (type(q) is not int or not 0 <= q < 1440) for q in (quiet_from, quiet_to)):
        raise DomainError(errors.VALIDATION_FAILED, "quiet hours are two minutes of the day, or none")
    chosen = sorted(set(kinds) | {ALWAYS}, key=NOTICE_KINDS.index)

    def work(s: Session) -> None:
        p = _pref(s, actor.user_id) or Preference(user_id=actor.user_id)
        p.kinds = "" if len(chosen) == len(NOTICE_KINDS) else ",".join(chosen)
        p.quiet_from, p.quiet_to = quiet_from, quiet_to
        s.add(p)

    books.run(work)
    return preferences(books, actor)


def _quiet(p: Preference | None, now: dt.datetime, tz: dt.tzinfo) -> bool:
    if p is None or p.quiet_from is None or p.quiet_to is None:
        return False
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if p.quiet_from <= p.quiet_to:
        return p.quiet_from <= minute < p.quiet_to
    return minute >= p.quiet_from or minute < p.quiet_to  # across midnight, e.g. 22:00 to 07:00


def latest_event_id(books: Books) -> int:
    return books.run(lambda s: int(s.scalar(select(func.max(Event.id))) or 0), readonly=True)


def events_for(books: Books, actor: Actor, *, after: int, limit: int = MAX_BATCH) -> tuple[list[dict[str, Any]], int]:
    """The events after ``after`` this reader may receive now, and the cursor to resume from."""
    def work(s: Session) -> tuple[list[dict[str, Any]], int]:
        now = books.now()
        rows = s.scalars(select(Event).where(Event.id > after).order_by(Event.id).limit(max(1, min(limit, 200)))).all()
        pref = _pref(s, actor.user_id)
        kinds = set(pref.kinds.split(",")) if pref and pref.kinds else set(NOTICE_KINDS)
        quiet = _quiet(pref, now, books.calendar.tz)
        out: list[dict[str, Any]] = []
        seen: dict[int, Notice | None] = {}
        for e in rows:
            if e.user_id is not None and e.user_id != actor.user_id:
                continue
            if e.kind == "payment":
                out.append({"id": e.id, "event": "payment", "notice_id": e.notice_id, "amount": e.amount,
                            "source": "radar" if e.notice_id is not None else "till"})
                continue
            if e.notice_id not in seen:
                n = s.get(Notice, e.notice_id)
                seen[e.notice_id] = n if n is not None and policy.may_see(
                    s, actor, n.officer_id, area_of(s, n.id)) else None
            n = seen[e.notice_id]
            if n is None or n.kind not in kinds | {ALWAYS} or (quiet and n.kind != ALWAYS):
                continue
            out.append({"id": e.id, "event": e.kind, "notice_id": n.id, "kind": n.kind, "title": n.title,
                        "bounty_left": n.bounty - n.bounty_paid, "version": n.version})
        return out, (rows[-1].id if rows else after)

    return books.run(work, readonly=True)


def announce_in(s: Session, books: Books, what: Announcement) -> None:
    """An announcement from another room (a payment at a till) as an outbox row for its person, on the
    announcing use case's own session (so it commits with it)."""
    if what.kind == "payment":
        _event(s, books, "payment", None, user_id=what.user_id, amount=what.amount)  # type: ignore[arg-type]
