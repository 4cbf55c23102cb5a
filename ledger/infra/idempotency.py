"""The idempotency store: a write sent with an ``Idempotency-Key`` runs once per (scope, key); a retry with
the same key and body gets the stored answer byte for byte, another body ``idempotency_conflict``.

The record is written in the same transaction as the write's effect (``idempotent`` opens it through
``Books.run``), so an answer is stored if and only if its effect committed. It is generic: any room may
use it with its own ``scope`` ("merchant:3", "user:7"); the housekeeping prunes records past their
retention by ``created_at`` (the books' clock).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.base import Base, BigId, created_at_column
from ledger.infra.books import Books


class IdempotencyRecord(Base):
    """The stored answer to a write sent with an ``Idempotency-Key``, written in the same transaction
    as its effect. ``scope`` keeps two callers' keys apart ("merchant:3", "user:7")."""

    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (UniqueConstraint("scope", "key"),)


@dataclass(frozen=True)
class Answer:
    """A stored answer: the exact JSON text, replayed byte for byte on a retry (the door names the status)."""

    body: str
    replayed: bool = False

    def json(self) -> Any:
        return json.loads(self.body)


_IDEMPOTENCY = IdempotencyRecord.__table__
_FIND_ANSWER = select(_IDEMPOTENCY.c.request_hash, _IDEMPOTENCY.c.status_code, _IDEMPOTENCY.c.body).where(
    _IDEMPOTENCY.c.scope == bindparam("scope"), _IDEMPOTENCY.c.key == bindparam("key"))
_STORE_ANSWER = update(_IDEMPOTENCY).where(_IDEMPOTENCY.c.id == bindparam("record_id")).values(
    status_code=bindparam("status_code"), body=bindparam("body"))
_FORGET_KEY = delete(_IDEMPOTENCY).where(_IDEMPOTENCY.c.id == bindparam("record_id"))


@functools.cache
def insert_if_new(dialect: str, table: Any, conflict: tuple[str, ...]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` (the key here, the spent codes in redemption)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=list(conflict)).returning(table.c.id)


def canonical_json(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= 100 or not key.isprintable():
        raise DomainError(errors.IDEMPOTENCY_KEY_REQUIRED)
    return key


def _claim_key(s: Session, scope: str, key: str, req_hash: str, now: dt.datetime) -> int | Answer:
    """Take ``key`` in ``scope`` for this request (returns the record's id), or return the answer stored
    under it.

    The INSERT waits on PostgreSQL while another transaction holds the same key uncommitted, then
    either finds it committed (a retry: its answer) or takes it (the other rolled back)."""
    conn = s.connection()
    new_id = conn.execute(insert_if_new(conn.dialect.name, _IDEMPOTENCY, ("scope", "key")), {
        "scope": scope, "key": key, "request_hash": req_hash, "status_code": 0, "body": "",
        "created_at": now}).scalar()  # the books' clock, which the retention (housekeeping) reads
    if new_id is None:
        row = conn.execute(_FIND_ANSWER, {"scope": scope, "key": key}).one()
        if row.request_hash != req_hash:
            raise DomainError(errors.IDEMPOTENCY_CONFLICT)
        return Answer(row.body, replayed=True)
    return int(new_id)


def idempotent(books: Books, scope: str, key: str, payload: dict[str, Any],
               work: Callable[[Session], dict[str, Any] | DomainError]) -> Answer:
    """Run ``work`` once per (scope, key); store and return its answer. ``work`` may *return* a
    ``DomainError`` to commit what it wrote (a failed PIN count) and refuse without storing an answer."""
    _check_key(key)
    req_hash = request_hash(payload)

    def unit(s: Session) -> Answer | DomainError:
        claimed = _claim_key(s, scope, key, req_hash, books.now())
        if isinstance(claimed, Answer):
            return claimed
        result = work(s)
        s.flush()  # the use case's own ORM rows first (the record's row is written below, in Core)
        if isinstance(result, DomainError):
            s.connection().execute(_FORGET_KEY, {"record_id": claimed})
            return result
        text = canonical_json(result)
        # status_code stays 0: the HTTP status is the door's to choose (older rows hold the one it chose)
        s.connection().execute(_STORE_ANSWER, {"record_id": claimed, "status_code": 0, "body": text})
        return Answer(text)

    answer = books.run(unit)
    if isinstance(answer, DomainError):
        raise answer
    return answer
