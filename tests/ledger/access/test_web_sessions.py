"""Server-side web sessions and the pages' read-only lookups (ledger.web_sessions, ledger.directory), on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from goldbean.seed import seed_demo
from ledger import errors
from ledger.access import web_sessions
from ledger.access.identity import load_actor
from ledger.errors import DomainError
from ledger.schema import User, WebSession
from ledger.views import directory


def _actor(books, username: str):
    with books.session(readonly=True) as s:
        return load_actor(s, s.scalar(select(User.id).where(User.username == username)))


@pytest.fixture
def demo(books):
    seed_demo(books)
    return books


def test_a_session_lives_until_idle_absolute_or_ended(demo, clock) -> None:
    volunteer = _actor(demo, "volunteer")
    token = web_sessions.start_session(demo, user_id=volunteer.user_id, data={"lang": "en"})
    loaded = web_sessions.load_session(demo, token)
    assert loaded.actor.user_id == volunteer.user_id and loaded.data == {"lang": "en"}
    with demo.session(readonly=True) as s:
        assert s.scalar(select(WebSession.token_hash)) != token  # only the hash is stored
    assert web_sessions.save_session(demo, token, {"lang": "zh_CN"})
    assert web_sessions.load_session(demo, token).data == {"lang": "zh_CN"}
    clock.advance(web_sessions.IDLE_TTL.total_seconds() - 60)
    assert web_sessions.load_session(demo, token) is not None  # a request keeps it alive
    clock.advance(web_sessions.IDLE_TTL.total_seconds() - 60)
    assert web_sessions.load_session(demo, token) is not None
    clock.advance(web_sessions.IDLE_TTL.total_seconds() + 1)
    assert web_sessions.load_session(demo, token) is None  # idle too long: gone for good
    token = web_sessions.start_session(demo, user_id=volunteer.user_id, data={})
    for _ in range(int(web_sessions.ABSOLUTE_TTL / web_sessions.IDLE_TTL) + 1):
        clock.advance(web_sessions.IDLE_TTL.total_seconds() - 60)
        web_sessions.load_session(demo, token)
    assert web_sessions.load_session(demo, token) is None  # absolute lifetime
    token = web_sessions.start_session(demo, user_id=None, data={"csrf": "x"})
    web_sessions.end_session(demo, token)
    assert web_sessions.load_session(demo, token) is None
    assert not web_sessions.save_session(demo, token, {"csrf": "y"})


def test_disabling_a_user_ends_every_session_of_theirs(demo) -> None:
    admin, volunteer, officer = (_actor(demo, u) for u in ("admin", "volunteer", "officer"))
    tokens = [web_sessions.start_session(demo, user_id=volunteer.user_id, data={}) for _ in range(2)]
    other = web_sessions.start_session(demo, user_id=admin.user_id, data={})
    with pytest.raises(DomainError) as refused:
        web_sessions.set_user_active(demo, officer, volunteer.user_id, False)
    assert refused.value.code == errors.PERMISSION_DENIED.code
    out = web_sessions.set_user_active(demo, admin, volunteer.user_id, False)
    assert out["sessions_ended"] == 2
    assert all(web_sessions.load_session(demo, t) is None for t in tokens)
    assert web_sessions.load_session(demo, other) is not None
    web_sessions.set_user_active(demo, admin, volunteer.user_id, True)
    assert all(web_sessions.load_session(demo, t) is None for t in tokens)  # enabling revives nothing


def test_directory_respects_roles_and_scope(demo) -> None:
    officer, volunteer, admin = (_actor(demo, u) for u in ("officer", "volunteer", "admin"))
    names = {v["name"] for v in directory.volunteers_in_scope(demo, officer)}
    assert {"赵志愿者", "张阿姨"} <= names
    with pytest.raises(DomainError):
        directory.volunteers_in_scope(demo, volunteer)
    with pytest.raises(DomainError):
        directory.people(demo, officer)
    assert {c["name"] for c in directory.communities(demo, officer)} == {"金沙社区", "王旗营社区"}
    assert len(directory.communities(demo, admin)) == 6
    tree = directory.org_tree(demo, admin)
    assert tree[0]["level"] == "district" and tree[0]["depth"] == 0
    assert directory.home_community(demo, volunteer)["name"] == "金沙社区"


@pytest.fixture
def demo_now(books, clock):
    """The demo district seeded at the real present: the dashboard files transfers by the week of the database
    server's own timestamp, and a test clock days away puts them in another district week (on a Sunday after
    16:00 UTC the district is already in the next one)."""
    clock.now = dt.datetime.now(dt.timezone.utc)
    seed_demo(books)
    return books


def test_dashboard_counts_posted_beans_per_week_and_street(demo_now) -> None:
    demo = demo_now
    data = directory.dashboard(demo, _actor(demo, "officer"), weeks=4)
    assert len(data["weeks"]) == 4
    this_week = data["weeks"][-1]
    assert this_week["donate"] == 100_000 and this_week["award"] > 0 and this_week["redeem"] == 12
    gulou = next(st for st in data["streets"] if st["name"] == "鼓楼街道")
    assert gulou["award"] > 0
    with pytest.raises(DomainError):
        directory.dashboard(demo, _actor(demo, "volunteer"))
    assert data["weeks"][0]["week"] == this_week["week"] - dt.timedelta(weeks=3)


def test_a_form_key_is_spent_once_per_person_even_at_the_same_instant(books) -> None:
    import threading

    assert web_sessions.spend_form_key(books, "user:1", "disable:7:abc")
    assert not web_sessions.spend_form_key(books, "user:1", "disable:7:abc")
    assert web_sessions.spend_form_key(books, "user:2", "disable:7:abc")  # another person's key is their own
    assert not web_sessions.spend_form_key(books, "user:1", "") and not web_sessions.spend_form_key(books, "", "k")
    assert not web_sessions.spend_form_key(books, "user:1", "x" * 101)
    results: list[bool] = []
    start = threading.Barrier(4)

    def tap() -> None:
        start.wait()
        results.append(web_sessions.spend_form_key(books, "user:1", "settle:2026-10:xyz"))

    threads = [threading.Thread(target=tap) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
