"""Engines, transactions and retries: one use case is one transaction, opened here.

SQLite: WAL, ``synchronous=FULL`` (an acknowledged commit survives power loss), a busy timeout, and
``BEGIN IMMEDIATE`` for every write transaction: a deferred ``BEGIN`` that reads and then writes fails
at once with "database is locked" under concurrency, whatever the busy timeout. SQLAlchemy's pysqlite
driver would emit its own deferred BEGIN, so we take over BEGIN (the documented recipe).

PostgreSQL: READ COMMITTED with row locks taken in account-id order by the posting code; a
serialization failure (40001) or deadlock (40P01) retries the whole transaction.

Dead connections (the server restarted, a backend was terminated): a connection that waited in the pool
for more than ``PING_AFTER_IDLE_S`` is pinged when it is checked out (SQLAlchemy's ``pool_pre_ping``
would ping every checkout: one more round trip on every transfer of the hot path). One that died while
busy fails its transaction's first statement; a disconnect raised *before* COMMIT was sent is retried
on a fresh connection, since the server cannot have committed anything. A disconnect during COMMIT is
ambiguous and is raised: the caller's idempotency key makes its retry safe.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session

from ledger import errors
from ledger.errors import DomainError

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
PING_AFTER_IDLE_S = 1.0
MAX_ATTEMPTS = 8
RETRYABLE_PG_STATES = {"40001", "40P01"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def utc_from_db(value: dt.datetime | None) -> dt.datetime | None:
    """A stored timestamp made timezone-aware: SQLite hands back naive datetimes, all of them UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


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
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _install_idle_ping(engine)
    return engine


def _install_idle_ping(engine: Engine) -> None:
    """Ping a connection on checkout only when it has been idle for a while (see the module doc)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["goldbean_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("goldbean_idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure to ping means: use another connection
            raise DisconnectionError(f"connection failed its ping: {exc}") from exc
        if alive is False:
            raise DisconnectionError("connection failed its ping")


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # autocommit at the driver level: we emit BEGIN ourselves in the "begin" hook
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA secure_delete=ON")  # an erasure leaves no old text in freed space
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


_READONLY: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _bind(engine: Engine, readonly: bool) -> Engine:
    """A read-only transaction is flagged for the SQLite hook (a deferred BEGIN instead of IMMEDIATE). The
    flagged engine is made once per engine, not per transaction."""
    if not readonly:
        return engine
    flagged = _READONLY.get(engine)
    if flagged is None:
        flagged = _READONLY[engine] = engine.execution_options(readonly=True)
    return flagged


def _session(engine: Engine, readonly: bool) -> Session:
    return Session(bind=_bind(engine, readonly), expire_on_commit=False, autoflush=True)


@contextlib.contextmanager
def transaction(engine: Engine, *, readonly: bool = False) -> Iterator[Session]:
    """One unit of work: commits when the block ends, rolls back on any exception."""
    session = _session(engine, readonly)
    try:
        with session.begin():
            yield session
    finally:
        session.close()


class _BeforeCommit(Exception):
    """Carries a disconnect raised before COMMIT was sent: nothing can have been committed."""

    def __init__(self, exc: DBAPIError) -> None:
        self.exc = exc


# --- the driver's own cursor, for the few statements of the hot paths ----------------------------------

def raise_as_sqlalchemy(conn: Connection, exc: Exception) -> None:
    """Raise a driver's error as ``Connection.execute`` would have (``IntegrityError``, ``OperationalError``,
    ...: a ``DBAPIError`` wrapping it), so that ``run_in_transaction`` still retries deadlocks and serialization
    failures and callers see the same exceptions as with SQLAlchemy's own statements. Other exceptions are
    left alone."""
    dbapi = conn.dialect.loaded_dbapi
    if not isinstance(exc, dbapi.Error):
        return
    invalidated = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
    wrapped = sa_exc.DBAPIError.instance(None, None, exc, dbapi.Error, connection_invalidated=invalidated,
                                         dialect=conn.dialect)
    if invalidated:
        conn.invalidate(wrapped)
    raise wrapped from exc


def driver_rows(conn: Connection, sql: str, params: Any = (), *, alongside: Alongside | None = None) -> list[Any]:
    """Run one hand-written statement on the driver's cursor and return its rows (``[]`` when it returns none).

    ``sql`` is in the driver's own parameter style (``%(name)s`` for psycopg, ``:name`` or ``?`` for sqlite3):
    no statement building, compiling or result wrapping per call; psycopg prepares it on the server after a
    few uses. On PostgreSQL the transaction's ``BEGIN`` travels with the first statement (one round trip,
    not two). Errors are raised as SQLAlchemy's (``raise_as_sqlalchemy``)."""
    cur = conn.connection.cursor()
    extra = conn.connection.cursor() if alongside is not None else None
    try:
        if conn.dialect.name == "postgresql":
            driver = conn.connection.driver_connection
            if extra is not None or (driver.info.transaction_status == 0 and not driver.autocommit):
                with driver.pipeline():  # BEGIN (if idle), this statement and the one alongside: one round trip
                    cur.execute(sql, params)
                    if extra is not None:
                        extra.execute(alongside.sql, alongside.params)  # type: ignore[union-attr]
            else:
                cur.execute(sql, params)
        else:
            cur.execute(sql, params)
            if extra is not None:
                extra.execute(alongside.sql, alongside.params)  # type: ignore[union-attr]
        if extra is not None:
            alongside.rows = extra.fetchall() if extra.description is not None else []  # type: ignore[union-attr]
        return cur.fetchall() if cur.description is not None else []
    except Exception as exc:
        raise_as_sqlalchemy(conn, exc)
        raise
    finally:
        cur.close()
        if extra is not None:
            extra.close()


@dataclass
class Alongside:
    """One read a use case sends in the same round trip as a statement of a lower room (``post_in(...,
    alongside=...)`` sends it right after the accounts' lock is granted: it sees every transaction that
    committed before, as a statement of its own after the lock would). ``sql`` is in the driver's parameter
    style; ``rows`` holds its result once sent."""

    sql: str
    params: Any
    rows: list[Any] | None = None


_TIME_BINDERS: dict[str, Callable[[Any], Any]] = {}


def bind_time(conn: Connection, value: dt.datetime | None) -> Any:
    """An instant as a ``UTCDateTime`` column stores it, for ``driver_rows`` (SQLite keeps UTC text)."""
    if value is None or conn.dialect.name != "sqlite":
        return value
    binder = _TIME_BINDERS.get("sqlite")
    if binder is None:
        from ledger.infra.base import UTCDateTime

        binder = _TIME_BINDERS["sqlite"] = UTCDateTime().bind_processor(conn.dialect)
    return binder(value)


_AT_COMMIT = "goldbean_at_commit"


def at_commit(session: Session, sql: str, params: Any) -> None:
    """Send one more write (no result) with this transaction's COMMIT: on PostgreSQL both travel in one
    pipeline, one round trip (a failure of either rolls both back and is raised); on SQLite it runs just
    before the commit. For what a use case writes last, whatever happens: the idempotency store's answer."""
    session.info.setdefault(_AT_COMMIT, []).append((sql, params))


def _commit(session: Session) -> None:
    pending = session.info.pop(_AT_COMMIT, None)
    if not pending:
        session.commit()
        return
    conn = session.connection()
    cur = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            driver = conn.connection.driver_connection
            with driver.pipeline():
                for sql, params in pending:
                    cur.execute(sql, params)
                driver.commit()  # queued in the pipeline; leaving the block sends it all and reads the results
        else:
            for sql, params in pending:
                cur.execute(sql, params)
    except Exception as exc:
        raise_as_sqlalchemy(conn, exc)
        raise
    finally:
        cur.close()
    session.commit()  # the session's own bookkeeping (on PostgreSQL the driver is idle: nothing is sent)


def _session_attempt(engine: Engine, work: Callable[[Session], T], readonly: bool) -> T:
    session = _session(engine, readonly)
    try:
        session.begin()
        try:
            result = work(session)
            session.flush()
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise _BeforeCommit(exc) from exc
            raise
        _commit(session)
        return result
    finally:
        session.close()


def _core_attempt(engine: Engine, work: Callable[[Connection], T], readonly: bool) -> T:
    with _bind(engine, readonly).connect() as conn:
        # PostgreSQL at READ COMMITTED gives every statement its own snapshot, in a transaction or not, so
        # a read needs no BEGIN and COMMIT: one round trip instead of three for a single SELECT. The driver
        # is switched to autocommit for it directly (SQLAlchemy's isolation_level option costs more than the
        # SELECT) and back before the connection returns to the pool.
        driver = conn.connection.driver_connection if readonly and conn.dialect.name == "postgresql" else None
        if driver is not None:
            driver.autocommit = True
        else:
            conn.begin()
        try:
            result = work(conn)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise _BeforeCommit(exc) from exc
            raise
        finally:
            if driver is not None and not driver.closed:
                driver.autocommit = False
        if driver is None:
            conn.commit()
        return result


def run_in_transaction(
    engine: Engine,
    work: Callable[[Any], T],
    *,
    readonly: bool = False,
    attempts: int = MAX_ATTEMPTS,
    core: bool = False,
) -> T:
    """Run ``work`` in one transaction, retrying it whole on serialization failures, deadlocks and
    connections found dead before anything was committed.

    ``work`` gets an ORM ``Session``, or with ``core=True`` a plain ``Connection`` (the posting hot path:
    no unit of work to set up and flush)."""
    attempt_once = _core_attempt if core else _session_attempt
    for attempt in range(1, attempts + 1):
        try:
            return attempt_once(engine, work, readonly)  # type: ignore[arg-type]
        except DomainError:
            raise
        except DataError as exc:  # a value the database cannot hold: a number past 64 bits, a NUL in text
            raise DomainError(errors.VALIDATION_FAILED, "A value is out of range or not storable (64-bit "
                              "integers; text without NUL characters).") from exc
        except _BeforeCommit as dead:
            if attempt == attempts:
                raise dead.exc from None
            engine.dispose(close=False)  # every pooled connection may be dead too (a restarted server)
        except DBAPIError as exc:
            if not _is_retryable(exc) or attempt == attempts:
                if _is_retryable(exc):
                    raise DomainError(errors.BUSY) from exc
                raise
            time.sleep(min(0.5, 0.005 * (2**attempt)) * random.random())
    raise AssertionError("unreachable")
