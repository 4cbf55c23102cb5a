"""The outbox: ``send_in`` records a notification once (its ``dedupe_key``) in the sender's own transaction, with
one delivery row per channel; the worker's ``deliver_due`` delivers what is due and retries with backoff.

Channels:
- ``inbox``: the notification row is the inbox entry; its delivery is ``sent`` when it commits.
- ``live``: the live stream. The room that owns the stream gives the worker a ``LiveChannel`` whose
  ``publish_in`` writes the stream's outbox row in the same transaction that marks the delivery sent, so a
  notification reaches the stream exactly once.
- ``sms``: only when ``settings.notify.sms_url`` is set and the topic is in ``sms_topics``. The worker claims the
  due deliveries (a lease, committed), sends outside any transaction (``channels.SmsChannel``), then records the
  outcome; a worker that dies mid-send leaves a lease that runs out, and the send is tried again (the provider
  gets the delivery's id, so it can drop a duplicate). After ``max_attempts`` the delivery is ``failed``.

Retries: attempt n waits ``retry_base_s * 2**(n-1)`` seconds, at most ``retry_max_s``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access.identity import Actor
from ledger.access.models import User
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import at_commit, utc_from_db
from ledger.notify.models import Delivery, Notification

# what an SMS says, by topic: never the content of a tip, a place or an amount (docs/notifications.md)
NOTIFICATIONS, DELIVERIES = Notification.__table__, Delivery.__table__
CHUNK = 500  # notifications per statement (SQLite's limit on bound parameters)
SMS_TEXT = {"patrol_reminder": "巡逻提醒", "shift_changed": "班次变更", "award": "金豆到账",
            "claim_decided": "申报结果"}


@dataclass(frozen=True)
class Note:
    """A notification as the channels and the inbox see it."""

    id: int
    user_id: int
    topic: str
    title: str
    body: str
    link: str | None
    subject: str | None
    amount: int | None
    urgent: bool
    created_at: dt.datetime
    read_at: dt.datetime | None

    @classmethod
    def of(cls, n: Notification) -> Note:
        return cls(n.id, n.user_id, n.topic, n.title, n.body, n.link, n.subject, n.amount, n.urgent,
                   utc_from_db(n.created_at), utc_from_db(n.read_at))


class LiveChannel(Protocol):
    def publish_in(self, s: Session, books: Books, note: Note) -> None:
        """Put the notification on the live stream, inside the worker's transaction."""


class SmsSender(Protocol):
    def send(self, *, to: str, text: str, ref: str) -> None:
        """Send one SMS; raise ``channels.DeliveryFailed(code)`` when it was not accepted."""


def sms_text(topic: str) -> str:
    return f"【金豆】您有一条新消息（{SMS_TEXT.get(topic, '通知')}），请打开金豆查看。"


def _insert(s: Session) -> Any:
    return postgresql_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert


def _channels(books: Books, topic: str) -> list[tuple[str, str]]:
    """Which channels a notification of ``topic`` goes to, each with its first state."""
    rules = books.settings.notify
    return [("inbox", "sent"), ("live", "pending")] + (
        [("sms", "pending")] if rules.sms_url and topic in rules.sms_topics else [])


def _row(uid: int, topic: str, title: str, body: str, dedupe: str, link: str | None, subject: str | None,
         amount: int | None, urgent: bool, now: dt.datetime) -> dict[str, Any]:
    return {"user_id": uid, "topic": topic[:20], "title": title[:120], "body": body[:500], "link": link,
            "subject": subject[:60] if subject else None, "amount": amount, "urgent": urgent,
            "dedupe_key": f"{dedupe}:{uid}"[:120], "created_at": now}


def send_in(s: Session, books: Books, *, user_ids: Iterable[int], topic: str, title: str, body: str,
            dedupe: str, link: str | None = None, subject: str | None = None, amount: int | None = None,
            urgent: bool = False) -> int:
    """Record one notification per user (key ``<dedupe>:<user>``: a second send is a no-op, also when two
    senders race: ``ON CONFLICT DO NOTHING``) with its deliveries, in bulk. Returns how many were new."""
    now = books.now()
    channels = _channels(books, topic)
    made = 0
    users = sorted(set(user_ids))
    for i in range(0, len(users), CHUNK):
        rows = [_row(uid, topic, title, body, dedupe, link, subject, amount, urgent, now) for uid in users[i:i + CHUNK]]
        stmt = _insert(s)(NOTIFICATIONS).on_conflict_do_nothing(index_elements=["dedupe_key"])
        conn = s.connection()  # Core: one multi-row statement, not one per row
        new_ids = list(conn.execute(stmt.returning(NOTIFICATIONS.c.id), rows).scalars())
        if new_ids:
            conn.execute(insert(DELIVERIES), [
                {"notification_id": nid, "channel": channel, "state": state, "attempts": int(state == "sent"),
                 "sent_at": now if state == "sent" else None} for nid in new_ids for channel, state in channels])
        made += len(new_ids)
    return made


_NOTE_COLUMNS = ("user_id", "topic", "title", "body", "link", "subject", "amount", "urgent", "dedupe_key", "created_at")
_SEND_ONE_PG: dict[tuple[tuple[str, str], ...], str] = {}


def _send_one_sql(channels: list[tuple[str, str]]) -> str:
    """The notification and its deliveries as one statement (a data-modifying CTE), for PostgreSQL; the
    channels and states are the module's own words, never input."""
    key = tuple(channels)
    sql = _SEND_ONE_PG.get(key)
    if sql is None:
        values = ", ".join(f"('{channel}', '{state}', {int(state == 'sent')}, "
                           f"{'%(created_at)s::timestamptz' if state == 'sent' else 'NULL::timestamptz'})"
                           for channel, state in channels)
        sql = _SEND_ONE_PG[key] = (
            f"WITH n AS (INSERT INTO notifications ({', '.join(_NOTE_COLUMNS)}) VALUES "
            f"({', '.join(f'%({c})s' for c in _NOTE_COLUMNS)}) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id) "
            "INSERT INTO notification_deliveries (notification_id, channel, state, attempts, sent_at) "
            f"SELECT n.id, c.channel, c.state, c.attempts, c.sent_at FROM n, (VALUES {values}) "
            "AS c(channel, state, attempts, sent_at)")
    return sql


def send_one_in(s: Session, books: Books, *, user_id: int, topic: str, title: str, body: str, dedupe: str,
                link: str | None = None, subject: str | None = None, amount: int | None = None,
                urgent: bool = False) -> None:
    """``send_in`` for one person, when the sender need not know whether it was new: on PostgreSQL one
    statement that travels with the sender's COMMIT (``ledger.infra.db.at_commit``; a hot path's award);
    elsewhere ``send_in``."""
    if s.get_bind().dialect.name != "postgresql":
        send_in(s, books, user_ids=[user_id], topic=topic, title=title, body=body, dedupe=dedupe, link=link,
                subject=subject, amount=amount, urgent=urgent)
        return
    row = _row(user_id, topic, title, body, dedupe, link, subject, amount, urgent, books.now())
    at_commit(s, _send_one_sql(_channels(books, topic)), row)


# --- the inbox --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Inbox:
    unread: int
    items: list[Note]


def inbox(books: Books, actor: Actor, *, unread_only: bool = False, limit: int = 50) -> Inbox:
    """The signed-in person's own notifications, newest first, and how many are unread."""
    def work(s: Session) -> Inbox:
        q = select(Notification).where(Notification.user_id == actor.user_id)
        if unread_only:
            q = q.where(Notification.read_at.is_(None))
        rows = s.scalars(q.order_by(Notification.id.desc()).limit(max(1, min(limit, 200))))
        unread = s.scalar(select(func.count()).select_from(Notification).where(
            Notification.user_id == actor.user_id, Notification.read_at.is_(None))) or 0
        return Inbox(int(unread), [Note.of(n) for n in rows])

    return books.run(work, readonly=True)


def mark_read(books: Books, actor: Actor, notification_id: Any) -> Note:
    """Mark one of one's own notifications read (again: no change); anyone else's: ``not_found``."""
    def work(s: Session) -> Note:
        n = s.get(Notification, notification_id) if type(notification_id) is int else None
        if n is None or n.user_id != actor.user_id:
            raise DomainError(errors.NOT_FOUND_ERR, "no such notification")
        if n.read_at is None:
            n.read_at = books.now()
        s.flush()
        return Note.of(n)

    return books.run(work)


def mark_all_read(books: Books, actor: Actor) -> int:
    def work(s: Session) -> int:
        done = s.execute(update(Notification).where(Notification.user_id == actor.user_id,
                                                    Notification.read_at.is_(None)).values(read_at=books.now()))
        return done.rowcount or 0

    return books.run(work)


def note_in(s: Session, notification_id: int) -> Note | None:
    n = s.get(Notification, notification_id)
    return Note.of(n) if n is not None else None


# --- the worker ---------------------------------------------------------------------------------------------

def _backoff(books: Books, attempts: int) -> dt.timedelta:
    rules = books.settings.notify
    return dt.timedelta(seconds=min(rules.retry_max_s, rules.retry_base_s * 2 ** max(0, attempts - 1)))


def _due(books: Books, channel: str, limit: int) -> Any:
    now = books.now()
    return (select(Delivery).where(Delivery.channel == channel, Delivery.state == "pending",
                                   or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now))
            .order_by(Delivery.id).limit(limit).with_for_update(skip_locked=True))


def _channels_due(books: Books) -> set[str]:
    now = books.now()
    return books.run(lambda s: set(s.scalars(select(Delivery.channel).where(
        Delivery.state == "pending", or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now))
        .group_by(Delivery.channel))), readonly=True)


def _deliver_live(books: Books, live: LiveChannel, limit: int) -> int:
    """Every due live delivery, in one transaction with the stream's rows: exactly once."""
    def work(s: Session) -> int:
        due = s.execute(_due(books, "live", limit).with_only_columns(Delivery.id, Delivery.notification_id)).all()
        if not due:
            return 0
        notes = {n.id: Note.of(n) for n in s.scalars(select(Notification).where(
            Notification.id.in_([nid for _, nid in due])))}
        for _, nid in due:
            live.publish_in(s, books, notes[nid])
        s.execute(update(Delivery).where(Delivery.id.in_([did for did, _ in due])).values(
            state="sent", attempts=Delivery.attempts + 1, sent_at=books.now(), next_attempt_at=None))
        return len(due)

    return books.run(work)


def _claim_sms(books: Books, limit: int) -> list[tuple[int, str | None, str]]:
    """Take a lease on the due SMS deliveries: (delivery id, phone, text); committed before any send."""
    def work(s: Session) -> list[tuple[int, str | None, str]]:
        out = []
        lease = books.now() + dt.timedelta(seconds=books.settings.notify.lease_s)
        for d in s.scalars(_due(books, "sms", limit)).all():
            n = s.get(Notification, d.notification_id)
            phone = s.scalar(select(User.phone).where(User.id == n.user_id, User.active.is_(True)))
            d.attempts, d.next_attempt_at = d.attempts + 1, lease
            out.append((d.id, phone, sms_text(n.topic)))
        return out

    return books.run(work)


def _record(books: Books, delivery_id: int, error: str | None) -> str:
    """The outcome of one send: sent; pending again after the backoff; failed after the last attempt;
    skipped (no phone: nothing to retry)."""
    def work(s: Session) -> str:
        d = s.get(Delivery, delivery_id, with_for_update=True)
        now = books.now()
        if error is None:
            d.state, d.sent_at, d.next_attempt_at, d.last_error = "sent", now, None, None
        elif error == "no_phone":
            d.state, d.next_attempt_at, d.last_error = "skipped", None, error
        elif d.attempts >= books.settings.notify.max_attempts:
            d.state, d.next_attempt_at, d.last_error = "failed", None, error[:60]
        else:
            d.state, d.next_attempt_at, d.last_error = "pending", now + _backoff(books, d.attempts), error[:60]
        return d.state

    return books.run(work)


def deliver_due(books: Books, *, live: LiveChannel | None = None, sms: SmsSender | None = None,
                limit: int = 200) -> dict[str, int]:
    """Deliver what is due on the live stream and by SMS (the worker's ``notify`` job); counts by outcome."""
    from ledger.notify.channels import DeliveryFailed

    counts = {"live": 0, "sms_sent": 0, "sms_retry": 0, "sms_failed": 0, "sms_skipped": 0}
    due = _channels_due(books)  # a read first: an idle outbox takes no write lock (SQLite) every few seconds
    if live is not None and "live" in due:
        counts["live"] = _deliver_live(books, live, limit)
    if sms is None or not books.settings.notify.sms_url or "sms" not in due:
        return counts
    for delivery_id, phone, text in _claim_sms(books, limit):
        error = None
        if not phone:
            error = "no_phone"
        else:
            try:
                sms.send(to=phone, text=text, ref=f"gb-{delivery_id}")
            except DeliveryFailed as exc:
                error = exc.code
        state = _record(books, delivery_id, error)
        key = {"sent": "sms_sent", "pending": "sms_retry", "failed": "sms_failed", "skipped": "sms_skipped"}[state]
        counts[key] += 1
    return counts


def purge(books: Books) -> int:
    """Delete notifications (and their delivery records) older than ``retention_days``; how many."""
    cutoff = books.now() - dt.timedelta(days=books.settings.notify.retention_days)

    def work(s: Session) -> int:
        old = list(s.scalars(select(Notification.id).where(Notification.created_at < cutoff).limit(5000)))
        if old:
            s.execute(delete(Delivery).where(Delivery.notification_id.in_(old)))
            s.execute(delete(Notification).where(Notification.id.in_(old)))
        return len(old)

    return books.run(work)


def delivery_states(books: Books, notification_id: int) -> dict[str, tuple[str, int, str | None]]:
    """channel -> (state, attempts, last error) of one notification (operators and tests)."""
    return books.run(lambda s: {d.channel: (d.state, d.attempts, d.last_error) for d in s.scalars(
        select(Delivery).where(Delivery.notification_id == notification_id))}, readonly=True)
