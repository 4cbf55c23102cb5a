"""Engines, transactions and retries: one use case is one transaction, opened here.

SQLite: WAL, ``synchronous=FULL`` (an acknowledged commit survives power loss), a busy timeout, and
``BEGIN IMMEDIATE`` for every write transaction: a deferred ``BEGIN`` that reads and then writes fails
at once with "database is locked" under concurrency, whatever the busy timeout. SQLAlchemy's pysqlite
driver would emit its own deferred BEGIN, so we take over BEGIN (the documented recipe).

PostgreSQL: READ COMMITTED with row locks taken in account-id order by the posting code; a
serialization failure (40001) or deadlock (40P01) retries the whole transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from . import errors
from .errors import DomainError

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
MAX_ATTEMPTS = 8
RETRYABLE_PG_STATES = {"40001", "40P01"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the pragmas and BEGIN handling the ledger relies on."""
    if url.startswith("sqlite"):
        if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite://"):
            raise ValueError("the ledger needs a file database: in-memory SQLite cannot be shared")
        kwargs.setdefault("connect_args", {})
        kwargs["connect_args"].setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        kwargs["connect_args"].setdefault("check_same_thread", False)
        engine = create_engine(url, **kwargs)
        _install_sqlite_hooks(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # autocommit at the driver level: we emit BEGIN ourselves in the "begin" hook
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_sqlite(engine_or_conn: Any) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if sqlstate in RETRYABLE_PG_STATES:
            return True
        if isinstance(exc, OperationalError):
            text = str(orig).lower()
            if "database is locked" in text or "database is busy" in text:
                return True
    return False


@contextlib.contextmanager
def transaction(engine: Engine, *, readonly: bool = False) -> Iterator[Session]:
    """One unit of work: commits when the block ends, rolls back on any exception."""
    bind = engine.execution_options(readonly=True) if readonly else engine
    session = Session(bind=bind, expire_on_commit=False, autoflush=True)
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def run_in_transaction(
    engine: Engine,
    work: Callable[[Session], T],
    *,
    readonly: bool = False,
    attempts: int = MAX_ATTEMPTS,
) -> T:
    """Run ``work`` in one transaction, retrying it whole on serialization failures and deadlocks."""
    for attempt in range(1, attempts + 1):
        try:
            with transaction(engine, readonly=readonly) as session:
                return work(session)
        except DomainError:
            raise
        except DBAPIError as exc:
            if not _is_retryable(exc) or attempt == attempts:
                if _is_retryable(exc):
                    raise DomainError(errors.BUSY) from exc
                raise
            time.sleep(min(0.5, 0.005 * (2**attempt)) * random.random())
    raise AssertionError("unreachable")
