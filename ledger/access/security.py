"""Security use cases: the security event log, guessing throttles and rate limits (issue 8).

- Every sign-in attempt and every PIN typed at a till is logged (``security_events``), with the source
  address, whatever the outcome.
- Guessing is throttled per account (five wrong passwords lock the user for 15 minutes, five wrong PINs
  lock the card: ``ledger.identity``, ``ledger.redemption``) AND per source address: too many failures
  from one address in ``THROTTLE_WINDOW`` refuse it (``too_many_attempts``) until the window passes or an
  officer lifts it (``unlock``). An officer also lifts a user's lock.
- Token and payment-code issuance are rate limited per address and per user; the counters are rows of
  ``rate_counters`` (an upsert per request), so every app server counts in the same place.
- The log is append-only: no use case updates or deletes it, and database triggers refuse both.
  Auditors and admins read it (``list_events``).

Limits come from ``books.settings.rate_limits`` (``RateLimits`` in ``ledger.infra.settings``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import Actor, authenticate_in
from ledger.access.models import RateCounter, SecurityEvent, User
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.infra.settings import RateLimits

THROTTLE_WINDOW = dt.timedelta(minutes=15)
DEFAULT_LIMITS: dict[str, int] = dataclasses.asdict(RateLimits())
PRUNE_CHANCE = 0.01
EVENT_KINDS = (
    "sign_in_ok", "sign_in_failed", "sign_in_throttled", "pin_ok", "pin_failed", "pin_throttled", "rate_limited",
    "unlock", "pin_throttle_lifted", "role_granted", "role_revoked", "key_rotated", "key_retired", "user_enabled",
    "user_disabled", "signup_approved", "password_changed", "reset_code_issued", "password_reset",
    "password_reset_failed", "password_change_refused", "report_phone_revealed", "erasure_requested",
    "erasure_completed",
)


def limit(books: Books, name: str) -> int:
    return int(getattr(books.settings.rate_limits, name))


def record_in(s: Session, kind: str, *, at: dt.datetime | None = None, user_id: int | None = None,
              username: str | None = None, source: str | None = None, actor: str | None = None,
              **detail: Any) -> None:
    """Append one event to the security log, in the caller's transaction. ``kind`` is one of ``EVENT_KINDS``
    (what an auditor can filter the log by: a kind missing there could be written but never found)."""
    assert kind in EVENT_KINDS, f"security log kind {kind!r} is not in EVENT_KINDS"
    s.add(SecurityEvent(at=at or dt.datetime.now(dt.timezone.utc), kind=kind, user_id=user_id,
                        username=(username or None) and username[:80], source=(source or None) and source[:64],
                        actor=actor, detail=json.dumps(detail, sort_keys=True, ensure_ascii=False, default=str)))
    s.flush()


def record(books: Books, kind: str, **fields: Any) -> None:
    """Append one event in a transaction of its own (for refusals whose own transaction rolled back)."""
    books.run(lambda s: record_in(s, kind, at=books.now(), **fields))


def _upsert(s: Session) -> Any:
    return (postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert)(RateCounter.__table__)


def count_in(s: Session, now: dt.datetime, bucket: str, window_s: int = 60) -> int:
    """Add one use of ``bucket`` in the current window and return the window's count."""
    start = dt.datetime.fromtimestamp(int(now.timestamp()) // window_s * window_s, dt.timezone.utc)
    table = RateCounter.__table__
    stmt = _upsert(s).values(bucket=bucket[:120], window_start=start, count=1)
    stmt = stmt.on_conflict_do_update(index_elements=["bucket", "window_start"],
                                      set_={"count": table.c.count + 1}).returning(table.c.count)
    count = int(s.execute(stmt).scalar_one())
    if random.random() < PRUNE_CHANCE:  # now and then, forget windows long past (sprayed names add rows)
        s.execute(delete(RateCounter).where(RateCounter.window_start < start - dt.timedelta(hours=1)))
    return count


def _last_unlock_id(s: Session, source: str) -> int:
    return int(s.scalar(select(func.max(SecurityEvent.id)).where(
        SecurityEvent.kind == "unlock", SecurityEvent.source == source)) or 0)


def failures_from(s: Session, now: dt.datetime, source: str, kind: str) -> int:
    """Failures of ``kind`` from ``source`` in the throttle window, after the last unlock of the source."""
    return int(s.scalar(select(func.count()).select_from(SecurityEvent).where(
        SecurityEvent.kind == kind, SecurityEvent.source == source, SecurityEvent.at >= now - THROTTLE_WINDOW,
        SecurityEvent.id > _last_unlock_id(s, source))) or 0)


# --- signing in -------------------------------------------------------------------------------------

def sign_in(books: Books, username: str, password: str, source: str | None) -> Actor:
    """``ledger.identity.authenticate`` behind the per-address throttle and the token rate limits, with
    every attempt logged, in one transaction."""
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise DomainError(errors.INVALID_CREDENTIALS)
    source = source or "unknown"
    now = books.now()

    def work(s: Session) -> Actor | DomainError:
        def log(kind: str, user_id: int | None = None, **detail: Any) -> None:
            record_in(s, kind, at=now, user_id=user_id, username=username, source=source, **detail)

        if (count_in(s, now, f"token:ip:{source}") > limit(books, "token_per_ip")
                or count_in(s, now, f"token:user:{username.lower()}") > limit(books, "token_per_user")):
            log("rate_limited", what="access_token")
            return DomainError(errors.RATE_LIMITED, retry_after_s=60)
        if failures_from(s, now, source, "sign_in_failed") >= limit(books, "failed_sign_ins_per_ip"):
            log("sign_in_throttled")
            return DomainError(errors.TOO_MANY_ATTEMPTS)
        user_id = s.scalar(select(User.id).where((User.username == username) | (User.phone == username)))
        result = authenticate_in(s, now, username, password)
        if isinstance(result, DomainError):
            log("sign_in_failed", user_id, error=result.code)
        else:
            log("sign_in_ok", result.user_id)
        return result

    result = books.run(work)
    if isinstance(result, DomainError):
        raise result
    return result


# --- PINs typed at a till ------------------------------------------------------------------------------
#
# A till (``till:3`` or the cashier ``user:7`` at a web till) is paused when wrong PINs were typed there for
# ``failed_pin_cards_per_till`` different card holders within THROTTLE_WINDOW: that is someone trying a
# stack of cards, not a customer fumbling theirs (one card locks itself after five wrong PINs and can never
# pause a shop). The check and the count happen in the redemption's own transaction behind a lock on the
# till's row of ``rate_counters``, so parallel attempts are judged one after the other (no race past the
# limit). The merchant owner (or an admin) lifts a till's pause (``pin_throttle_lifted``).

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def lock_bucket_in(s: Session, bucket: str) -> None:
    """Take (creating it if need be) the row of ``bucket`` FOR UPDATE until the transaction ends: an atomic
    upsert, so concurrent transactions on PostgreSQL wait for each other (SQLite's writers are serial)."""
    table = RateCounter.__table__
    stmt = _upsert(s).values(bucket=bucket[:120], window_start=EPOCH, count=1)
    s.execute(stmt.on_conflict_do_update(index_elements=["bucket", "window_start"], set_={"count": table.c.count + 1}))


def till_lift_marker(till: str) -> str:
    """The exact ``detail`` of a ``pin_throttle_lifted`` event for ``till`` (how the last lift is found)."""
    return json.dumps({"till": till}, sort_keys=True, ensure_ascii=False)


def failing_cards_at(s: Session, now: dt.datetime, till: str) -> int:
    """Card holders with a wrong PIN at ``till`` in the window, since the till's last lift."""
    lifted = int(s.scalar(select(func.max(SecurityEvent.id)).where(
        SecurityEvent.kind == "pin_throttle_lifted", SecurityEvent.detail == till_lift_marker(till))) or 0)
    return int(s.scalar(select(func.count(func.distinct(SecurityEvent.user_id))).where(
        SecurityEvent.kind == "pin_failed", SecurityEvent.actor == till, SecurityEvent.at >= now - THROTTLE_WINDOW,
        SecurityEvent.id > lifted, SecurityEvent.user_id.is_not(None))) or 0)


def guard_pin_in(s: Session, books: Books, now: dt.datetime, till: str, source: str | None) -> DomainError | None:
    """Lock the till's throttle row, then refuse (logged) if the till is paused; the caller counts the
    attempt (``note_pin_in``) in the same transaction, before the lock is released."""
    lock_bucket_in(s, f"pin:till:{till}")
    if failing_cards_at(s, now, till) >= limit(books, "failed_pin_cards_per_till"):
        record_in(s, "pin_throttled", at=now, source=source or "unknown", actor=till)
        return DomainError(errors.TOO_MANY_ATTEMPTS)
    return None


def note_pin_in(s: Session, now: dt.datetime, ok: bool, *, till: str, source: str | None, holder: int,
                **detail: Any) -> None:
    """Log a PIN typed at ``till`` for the card of ``holder`` (a user id), in the redemption's transaction."""
    record_in(s, "pin_ok" if ok else "pin_failed", at=now, source=source or "unknown", actor=till, user_id=holder,
              **detail)


# --- rate limits ------------------------------------------------------------------------------------

def take(books: Books, what: str, bucket: str, limit_name: str, *, source: str | None = None,
         user_id: int | None = None) -> None:
    """Count one use of ``bucket``; over the limit: ``rate_limited`` (logged)."""
    now = books.now()

    def work(s: Session) -> DomainError | None:
        if count_in(s, now, bucket) > limit(books, limit_name):
            record_in(s, "rate_limited", at=now, source=source, user_id=user_id, what=what)
            return DomainError(errors.RATE_LIMITED, retry_after_s=60)
        return None

    refusal = books.run(work)
    if refusal is not None:
        raise refusal


# --- officers lift locks ----------------------------------------------------------------------------------

def unlock(books: Books, actor: Actor, *, user_id: int | None = None, source: str | None = None,
           reason: str = "") -> dict[str, Any]:
    """Lift a user's sign-in lock (an officer in the user's scope, or an admin) or an address's throttle
    (any officer or admin); logged as ``unlock``."""
    policy.require_role(actor, *policy.CARD_ROLES)
    if (user_id is None) == (source is None):
        raise DomainError(errors.VALIDATION_FAILED, "name either a user_id or a source address")
    now = books.now()

    def work(s: Session) -> dict[str, Any]:
        if user_id is not None:
            user = s.get(User, user_id, with_for_update=True)
            if user is None:
                raise DomainError(errors.USER_NOT_FOUND, user_id=user_id)
            policy.require_officer_over_user(s, actor, user_id)
            was_locked = utc_from_db(user.locked_until) is not None and utc_from_db(user.locked_until) > now
            user.locked_until = None
            user.failed_logins = 0
            record_in(s, "unlock", at=now, user_id=user_id, username=user.username, actor=actor.ref, reason=reason)
            return {"user_id": user_id, "was_locked": was_locked, "unlocked_at": now.isoformat()}
        record_in(s, "unlock", at=now, source=source, actor=actor.ref, reason=reason)
        return {"source": source, "unlocked_at": now.isoformat()}

    return books.run(work)


# --- reading the log ------------------------------------------------------------------------------------

def list_events(books: Books, actor: Actor, *, kind: str | None = None, limit: int = 100,
                before_id: int | None = None) -> list[dict[str, Any]]:
    """The security log, newest first (auditors and admins)."""
    policy.require_role(actor, "auditor", "admin")

    def work(s: Session) -> list[dict[str, Any]]:
        q = select(SecurityEvent).order_by(SecurityEvent.id.desc()).limit(max(1, min(int(limit), 500)))
        if kind:
            q = q.where(SecurityEvent.kind == kind)
        if before_id is not None:
            q = q.where(SecurityEvent.id < before_id)
        return [{"id": e.id, "at": utc_from_db(e.at).isoformat(), "kind": e.kind, "user_id": e.user_id,
                 "username": e.username, "source": e.source, "actor": e.actor, "detail": json.loads(e.detail or "{}")}
                for e in s.scalars(q)]

    return books.run(work, readonly=True)
