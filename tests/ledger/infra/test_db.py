"""Dead connections: the pool pings only connections that sat idle, and a transaction whose connection
died before COMMIT is run again on a fresh one (PostgreSQL: backends terminated under the pool)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from ledger.infra import db
from ledger.journal import events
from ledger.journal.accounts import get_account, open_account, post
from ledger.journal.posting import transfer
from ledger.schema import Transfer
from tests.conftest import make_books

pytestmark = pytest.mark.postgres


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


def test_a_session_use_case_whose_connection_died_is_run_again(pg_books, pg_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    _, wallet = _accounts(pg_books)
    _terminate_backends(pg_url)
    assert get_account(pg_books, wallet).balance == 0  # an ORM read through Books.run


def test_an_idle_connection_is_pinged_and_replaced_at_checkout(pg_books, pg_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _accounts(pg_books)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    _terminate_backends(pg_url)
    # a plain connection, outside run_in_transaction's retry: only the checkout ping can save it
    with pg_books.engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


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


def test_a_disconnect_at_commit_is_not_retried(pg_books, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """COMMIT may or may not have reached the server: retrying could post twice, so the error is raised
    (the caller retries with the same key, which answers from the stored transfer)."""
    donations, wallet = _accounts(pg_books)
    calls = []

    def work(conn):
        calls.append(1)
        conn.execute(text("SELECT 1"))
        _terminate_backends(pg_url)  # dies between the last statement and COMMIT

    with pytest.raises(DBAPIError):
        pg_books.run_core(work)
    assert calls == [1]
    assert post(pg_books, transfer("after", "donate", donations, wallet, 1))[0].amount == 1
