"""Dead connections: the pool pings only connections that sat idle, and a transaction whose connection
died before COMMIT is run again on a fresh one (PostgreSQL: backends terminated under the pool)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from ledger import errors
from ledger.errors import DomainError
from ledger.infra import db
from ledger.journal import events
from ledger.journal.accounts import get_account, open_account, post
from ledger.journal.posting import transfer
from ledger.schema import Transfer
from tests.conftest import make_books


def _terminate_backends(url: str) -> int:
    """Terminate every other backend connected to ``url``'s database; returns how many."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            return len(c.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
    finally:
        admin.dispose()


@pytest.fixture
def pg_books(pg_url: str, tmp_path: Path):
    books = make_books(pg_url, tmp_path / "keys", pool_size=2, max_overflow=0)
    yield books
    books.engine.dispose()


def _accounts(books) -> tuple[int, int]:
    donations = open_account(books, "donations", "donations").id
    wallet = open_account(books, "wallet:1", "wallet").id
    return donations, wallet


@pytest.mark.postgres
def test_a_transfer_whose_connection_died_before_commit_is_posted_once(pg_books, pg_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)  # no ping: the dead connection reaches the posting
    donations, wallet = _accounts(pg_books)
    heard: list[object] = []
    events.on_posted(heard.extend)
    try:
        assert _terminate_backends(pg_url) >= 1
        posted = post(pg_books, transfer("t1", "donate", donations, wallet, 5))
    finally:
        events.remove_listener(heard.extend)
    assert [p.transfer_key for p in posted] == ["t1"] and not posted[0].replayed
    assert [p.transfer_key for p in heard] == ["t1"]
    assert get_account(pg_books, wallet).balance == 5
    with pg_books.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Transfer)) == 1


@pytest.mark.postgres
def test_a_session_use_case_whose_connection_died_is_run_again(pg_books, pg_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    _, wallet = _accounts(pg_books)
    _terminate_backends(pg_url)
    assert get_account(pg_books, wallet).balance == 0  # an ORM read through Books.run


@pytest.mark.postgres
def test_an_idle_connection_is_pinged_and_replaced_at_checkout(pg_books, pg_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _accounts(pg_books)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    _terminate_backends(pg_url)
    # a plain connection, outside run_in_transaction's retry: only the checkout ping can save it
    with pg_books.engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


@pytest.mark.postgres
def test_without_the_ping_or_the_retry_a_dead_connection_fails(pg_books, pg_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the two tests above: the failure they recover from is real."""
    _accounts(pg_books)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    _terminate_backends(pg_url)
    with pytest.raises(DBAPIError) as info:
        with pg_books.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    assert info.value.connection_invalidated


@pytest.mark.postgres
def test_a_disconnect_at_commit_is_not_retried(pg_books, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """COMMIT may or may not have reached the server: retrying could post twice, so it is refused as
    ``commit_outcome_unknown`` (503; the caller retries with the same key, which answers from the stored
    transfer)."""
    donations, wallet = _accounts(pg_books)
    calls = []

    def work(conn):
        calls.append(1)
        conn.execute(text("SELECT 1"))
        _terminate_backends(pg_url)  # dies between the last statement and COMMIT

    with pytest.raises(DomainError) as refused:
        pg_books.run_core(work)
    assert refused.value.code == "commit_outcome_unknown" and refused.value.category == "unavailable"
    assert calls == [1]
    assert post(pg_books, transfer("after", "donate", donations, wallet, 1))[0].amount == 1


# --- several servers (a failover cluster): the URL, and no server reachable ----------------------------------



def test_a_multi_host_url_is_what_libpq_and_sqlalchemy_both_read() -> None:
    from goldbean.config import normalise_url
    from goldbean.ops import libpq_args

    given = "postgresql://gb:s3cret@10.0.0.1:5432,10.0.0.2:5433/goldbean?target_session_attrs=read-write"
    url = normalise_url(given)
    engine = db.make_engine(url)
    try:
        _, params = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    assert params["host"] == "10.0.0.1,10.0.0.2" and params["port"] == "5432,5433"
    assert params["target_session_attrs"] == "read-write" and params["password"] == "s3cret"
    args: dict = {}
    db._pg_connect_args(url, args, read_only=False)  # what every new connection gets
    assert args["connect_timeout"] == db.PG_CONNECT_TIMEOUT_S  # a hung server cannot hold a connection for ever
    conninfo, env = libpq_args(url)  # pg_dump and psql get libpq's own form, the password apart
    assert conninfo == "postgresql://gb@10.0.0.1:5432,10.0.0.2:5433/goldbean?target_session_attrs=read-write"
    assert env["PGPASSWORD"] == "s3cret"
    assert db.sqlalchemy_url("postgresql+psycopg://gb@db1:5432/gb?sslmode=require") == \
        "postgresql+psycopg://gb@db1:5432/gb?sslmode=require"


def test_when_no_server_is_the_primary_a_use_case_waits_then_answers_unavailable(monkeypatch) -> None:
    """During a failover no server may accept a write for a few seconds: the use case tries again (nothing
    was sent) and, past RECONNECT_WAIT_S, refuses with database_unavailable (503), not a 500."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])  # closed again: nothing listens there
    engine = db.make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/x"
                            "?target_session_attrs=read-write")
    monkeypatch.setattr(db, "RECONNECT_WAIT_S", 0.5)
    tries = []
    try:
        with pytest.raises(DomainError) as refused:
            db.run_in_transaction(engine, lambda s: tries.append(1), core=True)
    finally:
        engine.dispose()
    assert refused.value.code == "database_unavailable" and refused.value.category == "unavailable"
    assert tries == []  # the work never ran: there was no connection to run it on


def _scratch_table(books) -> tuple[str, str]:
    """A table of this test's own (the PostgreSQL test database is shared) and its insert in the driver's style."""
    import uuid

    name = f"gb_at_commit_{uuid.uuid4().hex[:10]}"
    with books.engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {name} (v integer NOT NULL)"))
    style = "%(v)s" if books.engine.dialect.name == "postgresql" else ":v"
    return name, f"INSERT INTO {name} (v) VALUES ({style})"


def _values(books, name: str) -> list[int]:
    with books.engine.connect() as conn:
        return sorted(conn.execute(text(f"SELECT v FROM {name}")).scalars())


def test_a_write_sent_with_the_commit_commits_with_the_use_case_or_not_at_all(books) -> None:
    name, insert = _scratch_table(books)

    def kept(s) -> None:
        db.at_commit(s, insert, {"v": 1})

    def refused(s) -> None:
        db.at_commit(s, insert, {"v": 2})
        raise DomainError(errors.VALIDATION_FAILED, "refused after the write was queued")

    books.run(kept)
    with pytest.raises(DomainError):
        books.run(refused)
    assert _values(books, name) == [1]


def test_a_write_sent_with_the_commit_of_a_plain_transaction_is_not_lost(books) -> None:
    """``transaction`` does not send queued writes at its commit: ``at_commit`` runs them at once there."""
    name, insert = _scratch_table(books)
    with db.transaction(books.engine) as s:
        db.at_commit(s, insert, {"v": 3})
    with pytest.raises(RuntimeError), db.transaction(books.engine) as s:
        db.at_commit(s, insert, {"v": 4})
        raise RuntimeError("rolled back")
    assert _values(books, name) == [3]
