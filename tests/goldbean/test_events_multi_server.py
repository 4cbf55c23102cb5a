"""Two app servers (two ``goldbean serve`` processes: each the held-stream front and its gunicorn) on one
PostgreSQL database: a notice published through one reaches a stream held by the other (LISTEN/NOTIFY),
a reconnect with ``Last-Event-ID`` to either gets what was missed, a reader outside the area gets nothing,
and a volunteer moved to another community stops getting the old area's notices at once."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from goldbean.migrate import upgrade
from ledger.access.tokens import issue_access_token
from ledger.infra.keys import PURPOSES
from ledger.schema import RoleGrant
from tests.conftest import create_pg_database, drop_pg_database, make_books
from tests.goldbean.test_multi_server import call, free_port, goldbean_command
from tests.sse_client import SSE

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def two_servers(pg_server: str, tmp_path: Path):
    from tests.earning_world import build_world

    url = create_pg_database(pg_server, prefix="gbevents")
    upgrade(url)
    first, second = tmp_path / "a", tmp_path / "b"
    books = make_books(url, first / "keys")
    for purpose in PURPOSES:
        books.keys.ensure(purpose)
    w = build_world(books)
    shutil.copytree(first, second)  # the second server gets the first one's keys, as documented
    procs, ports = [], []
    for i, instance in enumerate((first, second)):
        port = free_port()
        env = {**os.environ, "GOLDBEAN_DATABASE_URL": url, "GOLDBEAN_INSTANCE_PATH": str(instance),
               "GOLDBEAN_BIND": f"127.0.0.1:{port}", "GOLDBEAN_WORKERS": "1", "GOLDBEAN_EVENTS_HEARTBEAT_S": "1",
               # no polling to speak of: within the test's waits only LISTEN/NOTIFY can wake a server
               "GOLDBEAN_EVENTS_POLL_S": "120"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log = open(tmp_path / f"server-{i}.log", "wb")
        procs.append(subprocess.Popen(goldbean_command() + ["serve"], env=env, stdout=log, stderr=log,
                                      start_new_session=True))
        ports.append(port)
    try:
        deadline = time.monotonic() + 90
        for proc, port in zip(procs, ports):
            while True:
                assert proc.poll() is None, (tmp_path / "server-0.log").read_text()[-3000:]
                try:
                    if call(f"http://127.0.0.1:{port}", "GET", "/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "the servers did not become ready"
                time.sleep(0.2)
        yield w, ports
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        books.engine.dispose()
        drop_pg_database(pg_server, url)


def bearer(w, name: str) -> dict[str, str]:
    tok, _ = issue_access_token(w.books, w.actor(name))
    return {"Authorization": f"Bearer {tok}"}


def publish_through(port: int, w, officer: str, unit: str) -> int:
    status, body, _ = call(f"http://127.0.0.1:{port}", "POST", "/api/v1/notices", {
        "kind": "寻人", "title": "寻找走失老人", "body": "蓝色外套", "area": [w.units[unit]],
        "ends_at": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).isoformat()}, bearer(w, officer))
    assert status == 201, body
    return body["id"]


def test_a_notice_through_one_server_reaches_a_stream_held_by_the_other(two_servers):
    w, (a, b) = two_servers
    mine = SSE(b, "/api/v1/events", bearer(w, "v1"))
    outside = SSE(b, "/api/v1/events", bearer(w, "v2"))  # 金星社区
    assert mine.held and outside.held
    first = publish_through(a, w, "officerA", "c1")
    got = mine.events(10, until=1)
    assert [e["notice_id"] for e in got] == [first]
    mine.close()

    missed = publish_through(a, w, "officerA", "c1")
    for port in (a, b):  # resume on either server
        back = SSE(port, "/api/v1/events", {**bearer(w, "v1"), "Last-Event-ID": str(got[-1]["id"])})
        assert back.held and [e["notice_id"] for e in back.events(5, until=1)] == [missed]
        back.close()

    again = SSE(b, "/api/v1/events", bearer(w, "v1"))
    with w.books.session() as s:  # v1 moves from 金沙 to 金星
        s.query(RoleGrant).filter_by(user_id=w.users["v1"], role="volunteer").one().org_unit_id = w.units["c3"]
    publish_through(a, w, "officerA", "c1")
    new_home = publish_through(a, w, "officerB", "c3")
    assert [e["notice_id"] for e in again.events(10, until=1)] == [new_home]
    assert [e["notice_id"] for e in outside.events(3, until=1)] == [new_home]  # v2 lives in 金星
    assert again.events(1.5) == [] and outside.events(0.1) == []
    assert "hb" in outside.comments
