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

from sqlalchemy import Integer, String, Text, UniqueConstraint, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.base import Base, BigId, created_at_column
from ledger.infra.books import Books
from ledger.infra.db import Alongside, at_commit, bind_time, driver_rows


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


# The hot path's statements, hand-written per driver (``ledger.infra.db.driver_rows``): the claim travels with
# the transaction's BEGIN, the answer with its COMMIT (``at_commit``).
_CLAIM_SQL = {
    "postgresql": "INSERT INTO idempotency_records (scope, key, request_hash, status_code, body, created_at) "
                  "VALUES (%(scope)s, %(key)s, %(hash)s, 0, '', %(now)s) ON CONFLICT (scope, key) DO NOTHING RETURNING id",
    "sqlite": "INSERT INTO idempotency_records (scope, key, request_hash, status_code, body, created_at) "
              "VALUES (:scope, :key, :hash, 0, '', :now) ON CONFLICT (scope, key) DO NOTHING RETURNING id",
}
_STORE_SQL = {  # status_code stays 0: the HTTP status is the door's to choose (older rows hold the one it chose)
    "postgresql": "UPDATE idempotency_records SET body = %(body)s WHERE id = %(id)s",
    "sqlite": "UPDATE idempotency_records SET body = :body WHERE id = :id",
}


def _claim_key(s: Session, scope: str, key: str, req_hash: str, now: dt.datetime,
               alongside: Alongside | None) -> int | Answer:
    """Take ``key`` in ``scope`` for this request (returns the record's id), or return the answer stored
    under it. On PostgreSQL the claim travels with the transaction's BEGIN and the caller's ``alongside``
    statement, in one round trip; on SQLite ``alongside`` runs after a successful claim only.

    The INSERT waits on PostgreSQL while another transaction holds the same key uncommitted, then
    either finds it committed (a retry: its answer) or takes it (the other rolled back)."""
    conn = s.connection()
    # created_at: the books' clock, which the retention (housekeeping) reads
    params = {"scope": scope, "key": key, "hash": req_hash, "now": bind_time(conn, now)}
    if alongside is not None and conn.dialect.name == "postgresql":
        rows = driver_rows(conn, _CLAIM_SQL["postgresql"], params, alongside=alongside)
    else:
        rows = driver_rows(conn, _CLAIM_SQL[conn.dialect.name], params)
        if rows and alongside is not None:
            alongside.rows = driver_rows(conn, alongside.sql, alongside.params)
    if not rows:
        row = conn.execute(_FIND_ANSWER, {"scope": scope, "key": key}).one()
        if row.request_hash != req_hash:
            raise DomainError(errors.IDEMPOTENCY_CONFLICT)
        return Answer(row.body, replayed=True)
    return int(rows[0][0])


class _Replayed(Exception):
    """A retry answered from the store after ``alongside`` was sent: leaves the transaction by rolling back."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer


def idempotent(books: Books, scope: str, key: str, payload: dict[str, Any],
               work: Callable[[Session], dict[str, Any] | DomainError], *,
               alongside: Alongside | None = None) -> Answer:
    """Run ``work`` once per (scope, key); store and return its answer. ``work`` may *return* a
    ``DomainError`` to commit what it wrote (a failed PIN count) and refuse without storing an answer.

    ``alongside``: the use case's first statement, sent with the claim (one round trip with BEGIN on
    PostgreSQL) and read by ``work`` from ``alongside.rows``. It must be harmless when the key turns out to
    be taken: a retry is then answered and the transaction rolled back, whatever the statement wrote."""
    _check_key(key)
    req_hash = request_hash(payload)

    def unit(s: Session) -> Answer | DomainError:
        claimed = _claim_key(s, scope, key, req_hash, books.now(), alongside)
        if isinstance(claimed, Answer):
            if alongside is not None:
                raise _Replayed(claimed)
            return claimed
        result = work(s)
        s.flush()  # the use case's own ORM rows first (the record's row is written below, in Core)
        if isinstance(result, DomainError):
            s.connection().execute(_FORGET_KEY, {"record_id": claimed})
            return result
        text = canonical_json(result)
        at_commit(s, _STORE_SQL[s.connection().dialect.name], {"id": claimed, "body": text})
        return Answer(text)

    try:
        answer = books.run(unit)
    except _Replayed as replayed:
        return replayed.answer
    if isinstance(answer, DomainError):
        raise answer
    return answer
