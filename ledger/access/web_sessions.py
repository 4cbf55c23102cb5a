"""Server-side sessions for the web pages (issue 5): the use cases behind the session cookie.

The cookie carries a random id (256 bits); the table keeps its SHA-256. A session lives at most
``ABSOLUTE_TTL`` and ends after ``IDLE_TTL`` without a request. Signing out deletes the row; disabling a
user (``set_user_active``) deletes every row of theirs in the same transaction, and ``load_session``
refuses a session whose user is no longer active, so nothing outlives the person's right to sign in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import Actor, load_actor
from ledger.access.models import User, WebSession
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.infra.idempotency import IdempotencyRecord, insert_if_new

ABSOLUTE_TTL = dt.timedelta(hours=12)
IDLE_TTL = dt.timedelta(hours=2)
TOUCH_EVERY = dt.timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_token_hash(token: str) -> str:
    """How a session token is stored (so a use case can keep "this session" while ending the others)."""
    return _hash(token)


@dataclass(frozen=True)
class LoadedSession:
    token: str
    user_id: int | None
    data: dict[str, Any]
    actor: Actor | None


def start_session(books: Books, *, user_id: int | None, data: dict[str, Any], replaces: str | None = None) -> str:
    """A new session (a new id: sign-in never keeps the id the browser had before); returns the raw id."""
    token = secrets.token_urlsafe(32)

    def work(s: Session) -> str:
        now = books.now()
        if replaces:
            s.execute(delete(WebSession).where(WebSession.token_hash == _hash(replaces)))
        s.execute(delete(WebSession).where(WebSession.expires_at < now))  # housekeeping, cheap with the index
        s.add(WebSession(token_hash=_hash(token), user_id=user_id, data=json.dumps(data, ensure_ascii=False),
                         last_seen_at=now, expires_at=now + ABSOLUTE_TTL))
        return token

    return books.run(work)


def load_session(books: Books, token: str) -> LoadedSession | None:
    """The session named by the cookie, with its actor, or ``None`` (unknown, expired, idle too long, or
    its user disabled: then the row is deleted)."""
    if not token or len(token) > 100:
        return None
    digest = _hash(token)

    def read(s: Session) -> tuple[str, LoadedSession | None]:
        row = s.scalar(select(WebSession).where(WebSession.token_hash == digest))
        if row is None:
            return "gone", None
        now = books.now()
        if utc_from_db(row.expires_at) <= now or utc_from_db(row.last_seen_at) + IDLE_TTL <= now:
            return "end", None
        actor = None
        if row.user_id is not None:
            try:
                actor = load_actor(s, row.user_id)
            except DomainError:
                return "end", None
        loaded = LoadedSession(token, row.user_id, json.loads(row.data or "{}"), actor)
        return ("touch" if utc_from_db(row.last_seen_at) + TOUCH_EVERY <= now else "ok"), loaded

    state, loaded = books.run(read, readonly=True)
    if state == "end":
        end_session(books, token)
    elif state == "touch":
        def touch(s: Session) -> None:
            row = s.scalar(select(WebSession).where(WebSession.token_hash == digest))
            if row is not None:
                row.last_seen_at = books.now()

        books.run(touch)
    return loaded


def sessions_alive(books: Books, digests: Iterable[str]) -> set[str]:
    """Which of these sessions (by ``session_token_hash``) are still open now: not signed out, within
    ``ABSOLUTE_TTL`` and ``IDLE_TTL``, their user active. For a server holding streams the sessions
    opened: a held stream is not a request and does not keep its session from idling out."""
    wanted = sorted(set(digests))
    alive: set[str] = set()

    def work(s: Session) -> None:
        now = books.now()
        for i in range(0, len(wanted), 500):
            rows = s.execute(select(WebSession.token_hash, WebSession.expires_at, WebSession.last_seen_at)
                             .join(User, User.id == WebSession.user_id)
                             .where(WebSession.token_hash.in_(wanted[i:i + 500]), User.active))
            alive.update(r.token_hash for r in rows if utc_from_db(r.expires_at) > now
                         and utc_from_db(r.last_seen_at) + IDLE_TTL > now)

    books.run(work, readonly=True)
    return alive


def save_session(books: Books, token: str, data: dict[str, Any]) -> bool:
    """Store the session's data; ``False`` if the session is gone (signed out meanwhile)."""

    def work(s: Session) -> bool:
        row = s.scalar(select(WebSession).where(WebSession.token_hash == _hash(token)))
        if row is None:
            return False
        row.data = json.dumps(data, ensure_ascii=False)
        row.last_seen_at = books.now()
        return True

    return books.run(work)


def end_session(books: Books, token: str) -> None:
    books.run(lambda s: s.execute(delete(WebSession).where(WebSession.token_hash == _hash(token))) and None)


def end_user_sessions_in(s: Session, user_id: int) -> int:
    return s.execute(delete(WebSession).where(WebSession.user_id == user_id)).rowcount or 0


def set_user_active(books: Books, actor: Actor, user_id: int, active: bool, *,
                    source: str | None = None) -> dict[str, Any]:
    """An admin enables or disables a user; disabling ends every session of theirs at once."""
    policy.require_admin(actor)
    if user_id == actor.user_id and not active:
        raise DomainError(errors.VALIDATION_FAILED, "you cannot disable yourself")

    def work(s: Session) -> dict[str, Any]:
        user = s.get(User, user_id, with_for_update=True)
        if user is None:
            raise DomainError(errors.USER_NOT_FOUND, user_id=user_id)
        user.active = active
        ended = 0 if active else end_user_sessions_in(s, user_id)
        from ledger.access.security import record_in  # the security log records who enabled or disabled whom

        record_in(s, "user_enabled" if active else "user_disabled", at=books.now(), user_id=user_id,
                  username=user.username, actor=actor.ref, source=source, sessions_ended=ended)
        return {"user_id": user_id, "active": active, "sessions_ended": ended}

    return books.run(work)


def spend_form_key(books: Books, owner: str, key: str) -> bool:
    """A page's one-time form key used up: ``True`` the first time ``owner`` (``user:7``) sends ``key``, ``False``
    ever after. One ``INSERT ... ON CONFLICT DO NOTHING`` into the idempotency store (scope ``form:<owner>``), so
    two copies of a form sent at the same instant (a double tap, two tabs) act once, whatever the session data
    says; the housekeeping prunes the keys with the other idempotency records."""
    if not key or len(key) > 100 or not owner:
        return False
    table = IdempotencyRecord.__table__

    def work(s: Session) -> bool:
        conn = s.connection()
        inserted = conn.execute(insert_if_new(conn.dialect.name, table, ("scope", "key")), {
            "scope": f"form:{owner}"[:80], "key": key, "request_hash": "", "status_code": 0, "body": "",
            "created_at": books.now()}).scalar()
        return inserted is not None

    return books.run(work)
