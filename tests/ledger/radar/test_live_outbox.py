"""The outbox as a bus for held streams (``ledger.radar.live``): many readers decided at once exactly as one
is, a reader never steps over an event whose transaction commits late, and the wake-ups (NOTIFY on
PostgreSQL, in-process callbacks) fire on commit only."""

from __future__ import annotations

import select as select_module

import psycopg
import pytest
from sqlalchemy.orm import Session

from ledger import earning, radar
from ledger.radar import live
from ledger.radar.models import Event
from ledger.schema import RoleGrant
from tests.conftest import make_books
from tests.ledger.radar.radar_world import build_world, publish


@pytest.fixture
def w(books):
    return build_world(books)


def _all_rows(books) -> list[live.EventRow]:
    return list(live.read_outbox(books, 0).rows)


def _same_as_one_by_one(w) -> dict[str, list[int]]:
    rows = _all_rows(w.books)
    many, gone = live.deliveries(w.books, list(w.users.values()), rows)
    assert gone == set()
    got = {}
    for name, uid in w.users.items():
        one, cursor = radar.events_for(w.books, w.actor(name), after=0, limit=200)
        assert many.get(uid, []) == one, name
        assert cursor == rows[-1].id
        got[name] = [e["notice_id"] for e in one if e["event"] == "notice"]
    return got


def test_many_readers_at_once_get_what_each_would_get_alone(w):
    from ledger.access.identity import create_user_in, grant_role_in

    with w.books.session() as s:  # neighbours of v1 (building 1): decided alike, unless their choices differ
        for name in ("v4", "v5"):
            w.users[name] = create_user_in(s, name, "x", name, password_hash="x").id
            grant_role_in(s, w.users[name], "volunteer", w.units["b1"])
    radar.set_preferences(w.books, w.actor("v5"), kinds=["寻物"])
    c1 = publish(w, area=("c1",), bounty=40)
    b1 = publish(w, area=("b1",), kind="寻物")
    street = publish(w, officer="officerB", area=("streetB",), kind="安全提示")
    c3 = publish(w, officer="officerB", area=("c3",), kind="协查")
    radar.close_notice(w.books, w.actor("officerA"), b1.id)
    answer = radar.answer_notice(w.books, w.actor("v1"), c1.id, text="在菜市场看到了")
    earning.verify_claim(w.books, w.actor("officerA"), answer.id, reason="核实", amount=20)  # an answer is a claim
    radar.set_preferences(w.books, w.actor("v2"), kinds=["寻人"])  # no 协查; 安全提示 always
    got = _same_as_one_by_one(w)
    assert got["v1"] == got["v4"] == [c1.id, b1.id] and got["v5"] == [b1.id]
    assert got["v2"] == [street.id] and got["v3"] == [] and got["leader"] == [c1.id]
    assert got["officerA2"] == [c1.id, b1.id] and got["officerB"] == [street.id, c3.id]
    assert got["cashier"] == [] and len(got["auditor"]) == 4

    # a volunteer who moves to another community: the old area's notices stop, the new area's come
    with w.books.session() as s:
        s.query(RoleGrant).filter_by(user_id=w.users["v1"], role="volunteer").one().org_unit_id = w.units["c3"]
    got = _same_as_one_by_one(w)
    assert got["v1"] == [street.id, c3.id]
    # a disabled reader is gone: their streams end
    with w.books.session() as s:
        from ledger.schema import User

        s.get(User, w.users["v3"]).active = False
    assert live.deliveries(w.books, [w.users["v3"], w.users["v1"]], _all_rows(w.books))[1] == {w.users["v3"]}
    assert live.readers_gone(w.books, [w.users["v3"], w.users["v1"]]) == {w.users["v3"]}


def test_a_reader_on_sqlite_takes_every_committed_row(sqlite_url, tmp_path, clock):
    """SQLite's writers take turns, so every committed row is final (PostgreSQL has its own test below)."""
    w = build_world(make_books(sqlite_url, tmp_path / "keys", clock))
    n = publish(w)
    h = live.Horizon(0)
    assert [r.notice_id for r in h.advance(live.read_outbox(w.books, 0))] == [n.id] and not h.waiting
    assert live.latest_event_id(w.books) == h.at


def _insert_event(books, notice_id: int) -> Session:
    """An event written in a transaction left open: the caller commits or rolls back."""
    s = Session(bind=books.engine)
    s.add(Event(kind="notice", notice_id=notice_id, at=books.now()))
    s.flush()
    return s


def _notifies(conn: psycopg.Connection, wait: float) -> int:
    if not select_module.select([conn.fileno()], [], [], wait)[0]:
        return 0
    return sum(1 for _ in conn.notifies(timeout=0.01))


@pytest.mark.postgres
def test_a_late_commit_is_never_stepped_over_and_notify_fires_on_commit_only(pg_url, tmp_path, clock):
    from tests.conftest import make_books

    books = make_books(pg_url, tmp_path / "keys", clock)
    try:
        w = build_world(books)
        n = publish(w)
        listener = psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
        listener.execute(f"LISTEN {live.CHANNEL}")
        h = live.Horizon(live.latest_event_id(books))
        start = h.at

        slow = _insert_event(books, n.id)  # draws the lower id, commits last
        fast = _insert_event(books, n.id)
        fast.commit()
        assert _notifies(listener, 2) == 1
        assert h.advance(live.read_outbox(books, h.at)) == [] and h.waiting  # the higher id waits
        assert h.at == start
        slow.commit()
        assert _notifies(listener, 2) == 1
        done = h.advance(live.read_outbox(books, h.at))
        assert [r.id for r in done] == [start + 1, start + 2] and not h.waiting

        # a writer that rolls back: no NOTIFY, and the id it drew is passed once it has ended
        lost = _insert_event(books, n.id)
        kept = _insert_event(books, n.id)
        kept.commit()
        assert _notifies(listener, 2) == 1
        assert h.advance(live.read_outbox(books, h.at)) == []
        lost.rollback()
        assert _notifies(listener, 0.3) == 0
        assert [r.id for r in h.advance(live.read_outbox(books, h.at))] == [start + 4] and not h.waiting
        for s in (slow, fast, lost, kept):
            s.close()

        # the short-poll reader (one stateless read) also stops below a transaction in flight
        slow = _insert_event(books, n.id)
        _insert_event(books, n.id).commit()
        events, cursor = radar.events_for(books, w.actor("v1"), after=h.at)
        assert events == [] and cursor == h.at
        slow.commit()
        events, cursor = radar.events_for(books, w.actor("v1"), after=h.at)
        assert [e["id"] for e in events] == [h.at + 1, h.at + 2] and cursor == h.at + 2
        slow.close()
        listener.close()
    finally:
        books.engine.dispose()


def test_in_process_callbacks_run_after_a_commit_that_wrote_an_event(w):
    calls = []
    stop = live.on_commit(lambda: calls.append(1))
    try:
        publish(w)
        assert calls == [1]
        with pytest.raises(Exception):
            publish(w, officer="officerA2", area=("c2",))  # refused: nothing written, nobody woken
        radar.set_preferences(w.books, w.actor("v1"), kinds=["寻人"])  # a commit without an event
        assert calls == [1]
    finally:
        stop()
    publish(w, days=1)
    assert calls == [1]
