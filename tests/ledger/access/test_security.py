"""ledger.security on SQLite and PostgreSQL: the log is append-only in the database itself, rate counters
are shared upserts (also under concurrency), throttles count per address."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.access import security
from ledger.access.identity import create_user_in
from ledger.errors import DomainError


def test_the_log_refuses_update_and_delete(books):
    security.record(books, "unlock", source="10.0.0.1", actor="test")
    for statement in ("UPDATE security_events SET kind = 'forged'", "DELETE FROM security_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            with books.engine.begin() as conn:
                conn.execute(text(statement))
    with books.engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM security_events")).scalars().all() == ["unlock"]


def test_rate_counter_counts_every_request_once_under_concurrency(books):
    books.settings = books.settings.with_overrides({"rate_limits": {"code_per_user": 25}})

    def take(_: int) -> str:
        try:
            security.take(books, "test", "code:user:1", "code_per_user")
            return "ok"
        except DomainError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(take, range(40)))
    assert results.count("ok") == 25 and results.count("rate_limited") == 15


def test_sign_in_throttle_per_address(books):
    books.settings = books.settings.with_overrides({"rate_limits": {"failed_sign_ins_per_ip": 3}})
    books.run(lambda s: create_user_in(s, "alice", "correct horse", "Alice"))
    for name in ("a", "b", "c"):
        with pytest.raises(DomainError, match="invalid_credentials"):
            security.sign_in(books, name, "guess", "10.1.1.1")
    with pytest.raises(DomainError, match="too_many_attempts"):
        security.sign_in(books, "alice", "correct horse", "10.1.1.1")
    assert security.sign_in(books, "alice", "correct horse", "10.1.1.2").username == "alice"
