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
ambiguous: it is refused as ``commit_outcome_unknown`` (503), never retried here; the caller's idempotency
key makes its own retry safe.

Failovers (docs/operations.md, "High availability"): the URL may name several servers, libpq's multi-host
form ``postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write``; a new connection goes to the
one that is the primary now. While none is (the manager is promoting a standby), a use case keeps trying
for up to ``RECONNECT_WAIT_S`` with nothing sent, then answers ``database_unavailable`` (503); a server
that turned read-only under a connection (SQLSTATE 25006) is treated like a dead connection. Each server
gets ``PG_CONNECT_TIMEOUT_S`` to answer a new connection unless the URL sets ``connect_timeout``: a server
that hangs (paused, cut off) must not hold the connection attempt for ever (psycopg would wait 130 s).
TCP keepalives and ``tcp_user_timeout`` (``PG_TCP_ARGS``, each overridable in the URL) break a pooled
connection to a server that vanished from the network; a server that hangs with its kernel still answering
(a paused process) is only cut off by gunicorn's worker timeout.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import re
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs

from sqlalchemy import Connection, Engine, create_engine, event, text
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
LOST_PRIMARY_PG_STATES = {"25006"}  # read_only_sql_transaction: the server is no longer the primary
PG_CONNECT_TIMEOUT_S = 2  # per server tried (libpq's and psycopg's minimum); psycopg's own default is 130
RECONNECT_WAIT_S = 3.0  # then 503: shorter than a till's own timeout, so that it hears the refusal and retries
# a server that vanished from the network (no RST): TCP keepalives and a send timeout break its connections
PG_TCP_ARGS = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
               "tcp_user_timeout": 10_000}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def utc_from_db(value: dt.datetime | None) -> dt.datetime | None:
    """A stored timestamp made timezone-aware: SQLite hands back naive datetimes, all of them UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def sqlalchemy_url(url: str) -> str:
    """libpq's multi-host URL (``postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write``) in the
    form SQLAlchemy parses (``postgresql://u@/db?host=h1:5432&host=h2:5433&target_session_attrs=...``);
    every other URL unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        return url
    netloc, _, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if "," not in hosts:
        return url
    database, _, query = tail.partition("?")
    params = [f"host={h}" for h in hosts.split(",") if h]
    if query:
        params.append(query)
    return f"{scheme}://{userinfo}{at}/{database}?" + "&".join(params)


def make_engine(url: str, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the pragmas and BEGIN handling the ledger relies on.

    ``read_only`` (PostgreSQL): the reports' engine on a standby (``Books.read_engine``). Its sessions are
    read-only even if it lands on the primary, and show as ``goldbean-read`` in ``pg_stat_activity``."""
    url = sqlalchemy_url(url)
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
    if url.startswith("postgres"):
        _pg_connect_args(url, kwargs.setdefault("connect_args", {}), read_only)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _install_idle_ping(engine)
    return engine


def _pg_connect_args(url: str, args: dict[str, Any], read_only: bool) -> None:
    given = parse_qs(url.partition("?")[2])
    if read_only and "read-write" in given.get("target_session_attrs", []):
        raise ValueError("the reports' database URL (GOLDBEAN_READ_DATABASE_URL) asks for target_session_attrs="
                         "read-write, which its read-only sessions never are: use prefer-standby, standby or any")
    if "connect_timeout" not in given:
        args.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)
    for name, value in PG_TCP_ARGS.items():
        if name not in given:
            args.setdefault(name, value)
    if "application_name" not in given:
        args.setdefault("application_name", "goldbean-read" if read_only else "goldbean")
    if read_only:
        args["options"] = (args.get("options", "") + " -c default_transaction_read_only=on").strip()


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


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        if _sqlstate(exc) in RETRYABLE_PG_STATES:
            return True
        if isinstance(exc, OperationalError):
            text = str(exc.orig).lower()
            if "database is locked" in text or "database is busy" in text:
                return True
    return False


def _connection_lost(exc: DBAPIError, readonly: bool) -> bool:
    """The connection is dead, or (for a write) its server is no longer the primary: nothing more can
    happen on it. A read-only transaction that tried to write is a defect, not a failover: raised."""
    return exc.connection_invalidated or (not readonly and _sqlstate(exc) in LOST_PRIMARY_PG_STATES)


# --- where a read was served, and as of when ---------------------------------------------------------

@dataclass(frozen=True)
class ReadPoint:
    """Where a report read the books and as of which moment.

    ``source`` is ``primary`` or ``standby``. On the primary (and SQLite) ``as_of`` is the moment of the
    read: every committed transaction is in it. On a standby it is the commit time of the last transaction
    the standby had replayed: every transaction committed up to ``as_of`` is in the report, later ones may
    not be (``None``: the standby has replayed none since it started). ``read_at`` is the server's clock."""

    source: str
    as_of: dt.datetime | None
    read_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "as_of": self.as_of.isoformat() if self.as_of else None,
                "read_at": self.read_at.isoformat()}


_READ_POINT_SQL = text("SELECT pg_is_in_recovery(), now(), pg_last_xact_replay_timestamp()")


def read_point_in(session_or_conn: Session | Connection) -> ReadPoint:
    """The ``ReadPoint`` of the transaction ``session_or_conn`` is in."""
    if session_or_conn.get_bind().dialect.name != "postgresql":
        now = utcnow()
        return ReadPoint("primary", now, now)
    standby, now, replayed = session_or_conn.execute(_READ_POINT_SQL).one()
    now = utc_from_db(now)
    if not standby:
        return ReadPoint("primary", now, now)  # type: ignore[arg-type]
    return ReadPoint("standby", utc_from_db(replayed), now)  # type: ignore[arg-type]


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
    """Carries a failure to connect, or a disconnect raised before COMMIT was sent: nothing can have been
    committed, so the whole transaction may run again."""

    def __init__(self, exc: DBAPIError) -> None:
        self.exc = exc


class _AtCommit(Exception):
    """Carries a disconnect raised by COMMIT: it may or may not have been committed."""

    def __init__(self, exc: DBAPIError) -> None:
        self.exc = exc


def _commit(commit: Callable[[], None], readonly: bool) -> None:
    try:
        commit()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        if readonly:  # a read has nothing to lose: run it again
            raise _BeforeCommit(exc) from exc
        raise _AtCommit(exc) from exc


def _connect(connect: Callable[[], T], engine: Engine) -> T:
    """A connection, or ``_BeforeCommit`` when the server cannot be reached (PostgreSQL: during a failover
    no server may be the primary yet). A SQLite file that cannot be opened is not waited for."""
    try:
        return connect()
    except DBAPIError as exc:
        if is_sqlite(engine):
            raise
        raise _BeforeCommit(exc) from exc


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
            alongside.rows = _fetch_all(extra)  # type: ignore[union-attr]
        return _fetch_all(cur)
    except Exception as exc:
        raise_as_sqlalchemy(conn, exc)
        raise
    finally:
        cur.close()
        if extra is not None:
            extra.close()


def _fetch_all(cur: Any) -> list[Any]:
    """The statement's rows, ``[]`` if it returns none. psycopg's ``description`` builds a column object per
    column on every look (9 % of a transfer's time in cProfile): its result's status says the same."""
    result = getattr(cur, "pgresult", _NO_PGRESULT)
    if result is _NO_PGRESULT:  # sqlite3
        return cur.fetchall() if cur.description is not None else []
    return cur.fetchall() if result is not None and result.status == _TUPLES_OK else []


_NO_PGRESULT = object()
_TUPLES_OK = 2  # libpq's PGRES_TUPLES_OK (psycopg.pq.ExecStatus.TUPLES_OK): the statement returned rows


@dataclass
class Alongside:
    """One read a use case sends in the same round trip as a statement of a lower room (``post_in(...,
    alongside=...)`` sends it right after the accounts' lock is granted: it sees every transaction that
    committed before, as a statement of its own after the lock would). ``sql`` is in the driver's parameter
    style; ``rows`` holds its result once sent."""

    sql: str
    params: Any
    rows: list[Any] | None = None


def driver_sql(postgresql: str) -> dict[str, str]:
    """One hand-written statement for ``driver_rows`` in both dialects: written for PostgreSQL (``%(name)s``
    parameters), it is rewritten for SQLite with ``:name`` parameters and without ``FOR UPDATE`` (SQLite's
    ``BEGIN IMMEDIATE`` already gives the writer the whole database)."""
    sqlite = re.sub(r"%\((\w+)\)s", r":\1", postgresql).replace(" FOR UPDATE", "")
    return {"postgresql": postgresql, "sqlite": sqlite}


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
_PIPELINED = "goldbean_pipelined"  # the session is run by ``run_in_transaction``, which sends ``at_commit``'s writes


def at_commit(session: Session, sql: str, params: Any) -> None:
    """Send one more write (no result) with this transaction's COMMIT: on PostgreSQL both travel in one
    pipeline, one round trip (a failure of either rolls both back and is raised); on SQLite it runs just
    before the commit. For what a use case writes last, whatever happens: the idempotency store's answer."""
    if not session.info.get(_PIPELINED):  # a session of its own (``transaction``): nothing sends them later
        driver_rows(session.connection(), sql, params)
        return
    session.info.setdefault(_AT_COMMIT, []).append((sql, params))


def _commit_session(session: Session) -> None:
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
    session.info[_PIPELINED] = True
    try:
        session.begin()
        _connect(lambda: session.connection(), engine)  # connect first: a failure here has sent nothing
        try:
            result = work(session)
            session.flush()
        except DBAPIError as exc:
            if _connection_lost(exc, readonly):
                raise _BeforeCommit(exc) from exc
            raise
        _commit(lambda: _commit_session(session), readonly)
        return result
    finally:
        session.close()


def _core_attempt(engine: Engine, work: Callable[[Connection], T], readonly: bool) -> T:
    conn = _connect(_bind(engine, readonly).connect, engine)
    with conn:
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
            if _connection_lost(exc, readonly):
                raise _BeforeCommit(exc) from exc
            raise
        finally:
            if driver is not None and not driver.closed:
                driver.autocommit = False
        if driver is None:
            _commit(conn.commit, readonly)
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
    started = time.monotonic()
    reconnects = 0
    attempt = 0
    while True:
        attempt += 1
        try:
            return attempt_once(engine, work, readonly)  # type: ignore[arg-type]
        except DomainError:
            raise
        except DataError as exc:  # a value the database cannot hold: a number past 64 bits, a NUL in text
            raise DomainError(errors.VALIDATION_FAILED, "A value is out of range or not storable (64-bit "
                              "integers; text without NUL characters).") from exc
        except _AtCommit as lost:
            engine.dispose(close=False)
            raise DomainError(errors.COMMIT_OUTCOME_UNKNOWN) from lost.exc
        except _BeforeCommit as dead:
            engine.dispose(close=False)  # every pooled connection may be dead too (a restarted server)
            reconnects += 1
            if time.monotonic() - started >= RECONNECT_WAIT_S:
                raise DomainError(errors.DATABASE_UNAVAILABLE) from dead.exc
            if reconnects > 1:  # the first retry at once (one dead connection); then back off
                time.sleep(min(1.0, 0.05 * 2**reconnects) * (0.5 + random.random() / 2))
        except DBAPIError as exc:
            if not _is_retryable(exc) or attempt >= attempts:
                if _is_retryable(exc):
                    raise DomainError(errors.BUSY) from exc
                raise
            time.sleep(min(0.5, 0.005 * (2**attempt)) * random.random())
