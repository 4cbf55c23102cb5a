"""Live delivery: which outbox events (``radar_events``) a reader may receive, after a cursor, and the
volunteers' preferences (kinds, quiet hours).

The outbox row is written in the use case's own transaction, so a reader sees an event only once it has
committed, on any app server. Rules: a notice event (``notice``, ``notice_closed``) goes to whoever may
see the notice *now* (a volunteer who moved away stops receiving at once), filtered by the reader's
kinds; in the reader's quiet hours (Beijing time) only 安全提示 is delivered. A ``payment`` event goes to
the paid volunteer only: a bounty paid to them (``notice_id`` set, ``source: radar``), or beans they paid at a
till (``notice_id`` null, ``source: till``), which the redemption room announces in its own transaction
(``ledger.infra.announce``; ``announce_in`` is the listener the composition root connects). ``events_for`` applies them for one reader, ``deliveries`` for many at once
(a held-stream server, ``goldbean.events``): one function decides both (``_delivery``).

The outbox as a bus (docs/radar.md, "Held streams"):

- **Wake-up**: inserting an event (through the ORM) sends ``NOTIFY radar_events`` on the same connection,
  in the same transaction, so PostgreSQL delivers it to every listening server only if and when that
  transaction commits; in this process, ``on_commit`` callbacks run after such a commit (one SQLite server).
- **No event stepped over**: PostgreSQL hands out ids when rows are inserted, not when they commit, so a
  reader may see id 11 committed while id 10 is still in flight. ``Horizon`` advances a cursor only over
  ids that are final: committed rows right after it, and every id below a *fence* (the outbox sequence's
  last value, read together with the transactions writing the outbox at that moment) once all those
  transactions have ended. A reader therefore delivers in id order, never skips a late commit and never
  delivers twice, and a client's ``Last-Event-ID`` is a complete cursor. On SQLite writers take turns
  (``BEGIN IMMEDIATE``), so committed ids are final as they are read.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.orm import Session, object_session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import Actor, Grant, active_user_ids, ancestors_in, grants_of, ids_among, org_parents
from ledger.errors import DomainError
from ledger.infra.announce import Announcement
from ledger.infra.books import Books
from ledger.infra.db import at_commit, bind_time
from ledger.radar.models import NOTICE_KINDS, Event, Notice, NoticeArea, Preference
from ledger.radar.notices import area_of

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


def _quiet(p: Any, now: dt.datetime, tz: dt.tzinfo) -> bool:
    if p is None or p.quiet_from is None or p.quiet_to is None:
        return False
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if p.quiet_from <= p.quiet_to:
        return p.quiet_from <= minute < p.quiet_to
    return minute >= p.quiet_from or minute < p.quiet_to  # across midnight, e.g. 22:00 to 07:00


# --- the outbox as a bus ------------------------------------------------------------------------------

CHANNEL = "radar_events"  # the PostgreSQL LISTEN/NOTIFY channel
_wakers: list[Callable[[], None]] = []
_wakers_lock = threading.Lock()


def on_commit(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` (in the committing thread) after every commit in this process that wrote an event:
    the in-process wake-up of a held-stream server beside the app (one SQLite server). Returns the
    function that stops it."""
    with _wakers_lock:
        _wakers.append(callback)

    def stop() -> None:
        with _wakers_lock:
            if callback in _wakers:
                _wakers.remove(callback)

    return stop


@event.listens_for(Event, "after_insert")
def _announce(_mapper: Any, connection: Connection, target: Event) -> None:
    """NOTIFY in the inserting transaction (once per transaction; PostgreSQL sends it on commit only)."""
    session = object_session(target)
    if session is not None:
        session.info["radar_wake"] = True
    if connection.dialect.name == "postgresql":
        tx = connection.get_transaction()
        if connection.info.get("radar_notified") is not tx:
            connection.info["radar_notified"] = tx
            connection.exec_driver_sql(f"NOTIFY {CHANNEL}")


@event.listens_for(Session, "after_commit")
def _wake_local(session: Session) -> None:
    if session.info.pop("radar_wake", False):
        with _wakers_lock:
            wakers = list(_wakers)
        for wake in wakers:
            try:
                wake()
            except Exception:  # a listener's trouble never touches a committed use case
                pass


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop("radar_wake", None)


@dataclass(frozen=True)
class EventRow:
    id: int
    kind: str
    notice_id: int | None
    user_id: int | None
    amount: int | None


@dataclass(frozen=True)
class OutboxRead:
    rows: tuple[EventRow, ...]  # committed events after the cursor, in id order
    assigned: int | None  # PostgreSQL: the outbox sequence's last value, read first
    writers: frozenset[str]  # PostgreSQL: the transactions holding a write lock on the outbox, read next
    full: bool  # the read stopped at its limit: more may follow


_ASSIGNED = text("SELECT pg_sequence_last_value(CAST(pg_get_serial_sequence('radar_events', 'id') AS regclass))")
_WRITERS = text("SELECT virtualtransaction FROM pg_locks WHERE locktype = 'relation' AND granted"
                " AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND relation = CAST('radar_events' AS regclass)")


def _read_in(conn: Connection, after: int, limit: int) -> OutboxRead:
    """In this order: the ids handed out, who may still hold one of them, what has committed. A writer
    takes its lock on the table before it draws an id, and a transaction is visible before it lets go."""
    assigned: int | None = None
    writers: frozenset[str] = frozenset()
    if conn.dialect.name == "postgresql":
        assigned = int(conn.scalar(_ASSIGNED) or 0)
        writers = frozenset(conn.scalars(_WRITERS))
    rows = conn.execute(select(Event.id, Event.kind, Event.notice_id, Event.user_id, Event.amount)
                        .where(Event.id > after).order_by(Event.id).limit(limit)).all()
    return OutboxRead(tuple(EventRow(*r) for r in rows), assigned, writers, len(rows) >= limit)


def read_outbox(books: Books, after: int, *, limit: int = 500) -> OutboxRead:
    """One read of the outbox after ``after`` for a whole server (feed it to a ``Horizon``)."""
    return books.run_core(lambda conn: _read_in(conn, after, limit), readonly=True)


@dataclass
class Horizon:
    """A reader's place in the outbox: every id at or below ``at`` is final (committed and read, or never
    to be). ``advance`` moves it over what a read proves final and returns those rows, in id order."""

    at: int
    fences: list[tuple[int, frozenset[str]]] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        """Ids below a fence may still commit: read again soon (a writer that rolls back sends no NOTIFY)."""
        return bool(self.fences)

    def advance(self, read: OutboxRead) -> list[EventRow]:
        rows = [r for r in read.rows if r.id > self.at]
        if read.assigned is None:  # SQLite: one writer at a time, so a committed id is final
            final = rows[-1].id if rows else self.at
        else:
            if not self.fences or self.fences[-1] != (read.assigned, read.writers):
                self.fences.append((read.assigned, read.writers))
            # a fence is passed when none of its writers is writing now: every id it covers is final
            final = max([self.at, *(a for a, w in self.fences if not w & read.writers)])
            if read.full and rows:
                final = min(final, rows[-1].id)
            for r in rows:  # committed rows right above are final too
                if r.id == final + 1:
                    final = r.id
                elif r.id > final:
                    break
            self.fences = [(a, w) for a, w in self.fences if a > final]
            if len(self.fences) > 64:  # a writer that stays open: dropping middle fences only delays
                del self.fences[1:-32]  # (a later fence covers their ids once its writers end)
        self.at = max(self.at, final)
        return [r for r in rows if r.id <= self.at]


def latest_event_id(books: Books) -> int:
    """Where a first connection starts (no history replayed): the newest id at or below which every event
    is final. On PostgreSQL it waits a moment for transactions writing the outbox to finish."""
    def work(conn: Connection) -> tuple[int, bool]:
        read = _read_in(conn, 2**62, 1)  # the sequence and the writers only
        top = int(conn.scalar(select(func.max(Event.id))) or 0)
        if read.assigned is None:
            return top, True
        return (read.assigned if not read.writers else top), not read.writers

    for _ in range(20):
        at, settled = books.run_core(work, readonly=True)
        if settled:
            return at
        time.sleep(0.025)
    return at


# --- who receives what ----------------------------------------------------------------------------------

def _reader_filter(pref: Any, now: dt.datetime, tz: dt.tzinfo) -> tuple[set[str], bool]:
    """The kinds a reader receives (安全提示 always) and whether it is their quiet time now."""
    kinds = set(pref.kinds.split(",")) if pref and pref.kinds else set(NOTICE_KINDS)
    return kinds | {ALWAYS}, _quiet(pref, now, tz)


def _delivery(user_id: int, row: EventRow, kinds: set[str], quiet: bool,
              seen: Callable[[int], Notice | None]) -> dict[str, Any] | None:
    """The one rule: what reader ``user_id`` receives of outbox row ``row`` (None: nothing). ``seen(notice_id)``
    is the notice if the reader may see it now, else None."""
    if row.user_id is not None and row.user_id != user_id:
        return None
    if row.kind == "payment":
        return {"id": row.id, "event": "payment", "notice_id": row.notice_id, "amount": row.amount,
                "source": "radar" if row.notice_id is not None else "till"}
    n = seen(row.notice_id) if row.notice_id is not None else None
    if n is None or n.kind not in kinds or (quiet and n.kind != ALWAYS):
        return None
    return {"id": row.id, "event": row.kind, "notice_id": n.id, "kind": n.kind, "title": n.title,
            "bounty_left": n.bounty - n.bounty_paid, "version": n.version}


def events_for(books: Books, actor: Actor, *, after: int, limit: int = MAX_BATCH,
               upto: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """The events after ``after`` this reader may receive now, and the cursor to resume from. ``upto``: a
    horizon the caller knows final (a held-stream server's); without it, the ``Horizon`` of this read."""
    def work(s: Session) -> tuple[list[dict[str, Any]], int]:
        now = books.now()
        read = _read_in(s.connection(), after, max(1, min(limit, 200)))
        if upto is not None:
            rows = [r for r in read.rows if r.id <= upto]
            cursor = rows[-1].id if read.full and rows and rows[-1].id < upto else upto
        else:
            horizon = Horizon(after)
            rows = horizon.advance(read)
            cursor = horizon.at
        kinds, quiet = _reader_filter(_pref(s, actor.user_id), now, books.calendar.tz)
        seen: dict[int, Notice | None] = {}

        def visible(notice_id: int) -> Notice | None:
            if notice_id not in seen:
                n = s.get(Notice, notice_id)
                seen[notice_id] = n if n is not None and policy.may_see(
                    s, actor, n.officer_id, area_of(s, n.id)) else None
            return seen[notice_id]

        out = [d for r in rows if (d := _delivery(actor.user_id, r, kinds, quiet, visible)) is not None]
        return out, max(after, cursor)

    return books.run(work, readonly=True)


@dataclass(frozen=True)
class _Pref:
    kinds: str
    quiet_from: int | None
    quiet_to: int | None


@dataclass
class _Board:
    """What a batch of decisions reads once: the notices of the rows, their areas, the org tree."""

    notices: dict[int, Notice]
    areas: dict[int, list[int]]
    parents: dict[int, int | None]
    above: dict[int, list[int]] = field(default_factory=dict)

    def up(self, unit: int) -> list[int]:
        if unit not in self.above:
            self.above[unit] = ancestors_in(self.parents, unit)
        return self.above[unit]

    def decide(self, actor: Actor, pref: _Pref | None, rows: Sequence[EventRow], now: dt.datetime,
               tz: dt.tzinfo) -> list[dict[str, Any]]:
        kinds, quiet = _reader_filter(pref, now, tz)

        def visible(nid: int) -> Notice | None:
            n = self.notices.get(nid)
            return n if n is not None and policy.sees_notice(
                actor, n.officer_id, self.areas.get(nid, []), ancestors_of=self.up) else None

        return [d for r in rows if (d := _delivery(actor.user_id, r, kinds, quiet, visible)) is not None]


def _board(s: Session, rows: Sequence[EventRow]) -> _Board:
    notice_ids = [r.notice_id for r in rows if r.kind != "payment" and r.notice_id is not None]
    notices = {n.id: n for where in ids_among(s, Notice.id, notice_ids) for n in s.scalars(select(Notice).where(where))}
    areas: dict[int, list[int]] = {}
    for where in ids_among(s, NoticeArea.notice_id, notices):
        for nid, unit in s.execute(select(NoticeArea.notice_id, NoticeArea.org_unit_id).where(where)
                                   .order_by(NoticeArea.org_unit_id)):
            areas.setdefault(nid, []).append(unit)
    return _Board(notices, areas, org_parents(s) if notices else {})


def deliveries(books: Books, user_ids: Collection[int], rows: Sequence[EventRow]
               ) -> tuple[dict[int, list[dict[str, Any]]], set[int]]:
    """``events_for`` for many readers at once (a held-stream server): what each of ``user_ids`` receives
    of ``rows`` (final outbox rows), in a few queries whatever their number: grants, preferences, the
    notices with their areas and the org tree, all read now. Readers whose grants and preferences are
    alike are decided once (a notice reads the same for all the volunteers of a building); a reader with
    a row of their own, or who published a notice of the rows, is decided alone. Also returns the readers
    who are gone (removed or disabled): their streams end."""
    broadcast = any(r.user_id is None for r in rows)
    readers = set(user_ids) if broadcast else set(user_ids) & {r.user_id for r in rows}
    own = {r.user_id for r in rows if r.user_id is not None}

    def work(s: Session) -> tuple[dict[int, list[dict[str, Any]]], set[int]]:
        now, tz = books.now(), books.calendar.tz
        grants = grants_of(s, readers)
        prefs = {uid: _Pref(kinds, qf, qt) for where in ids_among(s, Preference.user_id, grants)
                 for uid, kinds, qf, qt in s.execute(select(Preference.user_id, Preference.kinds, Preference.quiet_from,
                                                            Preference.quiet_to).where(where))}
        board = _board(s, rows)
        alone = own | {n.officer_id for n in board.notices.values()}
        alike: dict[tuple, list[dict[str, Any]]] = {}
        out: dict[int, list[dict[str, Any]]] = {}
        for uid, held in grants.items():
            pref = prefs.get(uid)
            if uid in alone:
                got = board.decide(Actor(uid, "", "", tuple(Grant(*g) for g in held)), pref, rows, now, tz)
            else:
                key = (held, pref)
                if key not in alike:  # user id 0 is nobody's: no row of its own, published nothing
                    alike[key] = board.decide(Actor(0, "", "", tuple(Grant(*g) for g in held)), pref, rows, now, tz)
                got = alike[key]
            if got:
                out[uid] = got
        return out, readers - set(grants)

    return books.run(work, readonly=True)


def readers_gone(books: Books, user_ids: Collection[int]) -> set[int]:
    """Which of these readers were removed or disabled since they connected (their streams end)."""
    return books.run(lambda s: set(user_ids) - active_user_ids(s, user_ids), readonly=True)


def announce_in(s: Session, books: Books, what: Announcement) -> None:
    """An announcement from another room (a payment at a till) as an outbox row for its person, on the
    announcing use case's own session (so it commits with it)."""
    if what.kind != "payment":
        return
    # the till's hot path: the row (and the wake-up) travel with the COMMIT, in the same pipeline
    conn = s.connection()
    at_commit(s, _INSERT_PAYMENT[conn.dialect.name], {
        "user_id": what.user_id, "amount": what.amount, "at": bind_time(conn, books.now())})
    if conn.dialect.name == "postgresql":
        at_commit(s, f"NOTIFY {CHANNEL}", ())
    s.info["radar_wake"] = True


_INSERT_PAYMENT = {
    "postgresql": "INSERT INTO radar_events (kind, user_id, amount, at) VALUES ('payment', %(user_id)s, %(amount)s, "
                  "%(at)s)",
    "sqlite": "INSERT INTO radar_events (kind, user_id, amount, at) VALUES ('payment', :user_id, :amount, :at)",
}
