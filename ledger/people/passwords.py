"""Passwords: a person changes their own (every other session of theirs ends), and a forgotten one is reset
with a one-time code that community staff create and hand over face to face (no SMS gateway is assumed).

A reset code is eight digits, shown once to the staff member, stored only as a hash, valid for 30 minutes,
used once; attempts are rate-limited per address and per mobile number; issuing, using and failing are in
the security log (never the code itself).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy, security
from ledger.access.identity import Actor, hash_password, verify_password
from ledger.access.masking import mask_phone
from ledger.access.models import User, WebSession
from ledger.access.web_sessions import session_token_hash
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.people.models import ResetCode

MIN_PASSWORD = 8
RESET_CODE_TTL = dt.timedelta(minutes=30)


def _matches(hash_: str, secret: str) -> bool:
    return verify_password(hash_, secret)


def _check_new(password: Any) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= 200:
        raise DomainError(errors.WEAK_PASSWORD, field="new_password")


def _end_other_sessions(s: Session, user_id: int, keep_session: str | None) -> int:
    q = delete(WebSession).where(WebSession.user_id == user_id)
    if keep_session:
        q = q.where(WebSession.token_hash != session_token_hash(keep_session))
    return s.execute(q).rowcount or 0


def change_password(books: Books, actor: Actor, *, current_password: str, new_password: str,
                    keep_session: str | None = None, source: str | None = None) -> dict[str, int]:
    """The signed-in person's own password; every other web session of theirs ends (``keep_session``, the
    one they are using, stays). Access tokens already issued live out their 15 minutes."""
    _check_new(new_password)
    new_hash = hash_password(new_password)

    def work(s: Session) -> dict[str, int] | DomainError:
        user = s.get(User, actor.user_id, with_for_update=True)
        if user is None or not user.active:
            return DomainError(errors.USER_INACTIVE)
        if not isinstance(current_password, str) or not _matches(user.password_hash, current_password):
            security.record_in(s, "password_change_refused", at=books.now(), user_id=user.id, source=source)
            return DomainError(errors.WRONG_PASSWORD)
        user.password_hash = new_hash
        ended = _end_other_sessions(s, user.id, keep_session)
        security.record_in(s, "password_changed", at=books.now(), user_id=user.id, actor=actor.ref, source=source,
                           sessions_ended=ended)
        return {"sessions_ended": ended}

    result = books.run(work)
    if isinstance(result, DomainError):
        raise result
    return result


def issue_reset_code(books: Books, staff: Actor, user_id: int | None = None, *, phone: str | None = None,
                     source: str | None = None) -> dict[str, Any]:
    """A one-time code for the person (by id, or by mobile number at the office counter), returned once, to
    be given face to face; earlier codes stop working."""
    code = f"{secrets.randbelow(10**8):08d}"
    code_hash = hash_password(code)

    def work(s: Session) -> dict[str, Any]:
        if phone is not None:
            user = s.scalar(select(User).where(User.phone == phone)) if isinstance(phone, str) else None
        else:
            user = s.get(User, user_id) if type(user_id) is int else None
        if user is None:
            raise DomainError(errors.USER_NOT_FOUND, user_id=user_id)
        policy.require_reset_code_issuer(s, staff, user.id)
        now = books.now()
        for old in s.scalars(select(ResetCode).where(ResetCode.user_id == user.id, ResetCode.used_at.is_(None))):
            old.used_at = now  # a new code replaces any earlier one
        expires = now + RESET_CODE_TTL
        s.add(ResetCode(user_id=user.id, code_hash=code_hash, issued_by_id=staff.user_id, expires_at=expires))
        security.record_in(s, "reset_code_issued", at=now, user_id=user.id, actor=staff.ref, source=source)
        return {"user_id": user.id, "code": code, "expires_at": expires, "phone_hint": _hint(user.phone)}

    return books.run(work)


def _hint(phone: str | None) -> str | None:
    return mask_phone(phone) or None


def reset_password(books: Books, *, phone: str, code: str, new_password: str, source: str | None = None) -> None:
    """Set a new password with a reset code (public). Wrong, used or late codes: ``reset_code_invalid``."""
    _check_new(new_password)
    if not isinstance(phone, str) or not 5 <= len(phone) <= 32 or not isinstance(code, str) or len(code) > 20:
        raise DomainError(errors.RESET_CODE_INVALID)
    security.take(books, "password_reset", f"reset:ip:{source or 'unknown'}", "reset_per_ip", source=source)
    security.take(books, "password_reset", f"reset:phone:{phone}", "reset_per_phone", source=source)
    new_hash = hash_password(new_password)

    def work(s: Session) -> DomainError | None:
        now = books.now()
        user = s.scalar(select(User).where(User.phone == phone).with_for_update())
        rows = [] if user is None else s.scalars(select(ResetCode).where(
            ResetCode.user_id == user.id, ResetCode.used_at.is_(None)).with_for_update()).all()
        live = [r for r in rows if utc_from_db(r.expires_at) > now and _matches(r.code_hash, code.strip())]
        if user is None or not live:
            security.record_in(s, "password_reset_failed", at=now, user_id=user.id if user else None, source=source)
            return DomainError(errors.RESET_CODE_INVALID)
        for r in rows:
            r.used_at = now
        user.password_hash, user.failed_logins, user.locked_until = new_hash, 0, None
        ended = _end_other_sessions(s, user.id, None)
        security.record_in(s, "password_reset", at=now, user_id=user.id, source=source, sessions_ended=ended)
        return None

    refusal = books.run(work)
    if refusal is not None:
        raise refusal
