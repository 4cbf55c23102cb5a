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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs

from sqlalchemy import Connection, Engine, create_engine, event, text
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


def _bind(engine: Engine, readonly: bool) -> Engine:
    """A read-only transaction is flagged for the SQLite hook (a deferred BEGIN instead of IMMEDIATE)."""
    return engine.execution_options(readonly=True) if readonly else engine


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


def _session_attempt(engine: Engine, work: Callable[[Session], T], readonly: bool) -> T:
    session = _session(engine, readonly)
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
        _commit(session.commit, readonly)
        return result
    finally:
        session.close()


def _core_attempt(engine: Engine, work: Callable[[Connection], T], readonly: bool) -> T:
    conn = _connect(_bind(engine, readonly).connect, engine)
    with conn:
        # PostgreSQL at READ COMMITTED gives every statement its own snapshot, in a transaction or not, so
        # a read needs no BEGIN and COMMIT: one round trip instead of three for a single SELECT
        autocommit = readonly and conn.dialect.name == "postgresql"
        if autocommit:
            conn.execution_options(isolation_level="AUTOCOMMIT")
        else:
            conn.begin()
        try:
            result = work(conn)
        except DBAPIError as exc:
            if _connection_lost(exc, readonly):
                raise _BeforeCommit(exc) from exc
            raise
        if not autocommit:
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
