"""While no database server accepts connections (a failover under way), the API answers 503
``database_unavailable`` with ``Retry-After``, never a 500, and the pages say the same in Chinese."""

from __future__ import annotations

import socket

import pytest

from doors import books_of
from ledger.infra import db


@pytest.fixture
def dead_database(app, monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    books = books_of(app)
    live = books.engine
    books.engine = db.make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port},127.0.0.1:{port}/gb"
                                  "?target_session_attrs=read-write")
    monkeypatch.setattr(db, "RECONNECT_WAIT_S", 0.3)
    yield books
    books.engine.dispose()
    books.engine = live


def test_no_server_to_write_to_is_a_503_with_retry_after(client, dead_database) -> None:
    answer = client.post("/api/v1/auth/token", json={"username": "someone", "password": "whatever-1"})
    assert answer.status_code == 503
    assert answer.json["error"] == "database_unavailable"
    assert answer.headers["Retry-After"] == "2"


def test_the_pages_say_it_in_chinese(app, client, dead_database) -> None:
    """Even when it is the web session (loaded and saved around the view) that cannot reach the database."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: an error outside a view is handled
    page = client.get("/signin", headers={"Cookie": "gb_session=some-token"})
    assert page.status_code == 503
    assert "数据库正在切换到备用库" in page.get_data(as_text=True)
