"""A highly available PostgreSQL (Patroni + etcd, three nodes, strict synchronous replication; docs/operations.md,
"High availability"): a write acknowledged just before the primary dies is on the new primary; the auditor's
reports read a standby when GOLDBEAN_READ_DATABASE_URL names one, and nothing can be written through it;
WAL archiving and point-in-time recovery give back the books as they were at a moment, and they verify.

The tests share one cluster (``ha_cluster`` in tests/conftest.py) and one migrated database, whose base backup
is taken first: the recovery test replays the archive across the failover of the test before it."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.errors import DomainError
from ledger.infra.db import make_engine
from ledger.journal.accounts import open_account, post
from ledger.journal.posting import transfer
from tests.conftest import make_books

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def ha_db(ha_cluster, ha_template, tmp_path_factory):
    """A migrated database on the cluster, its base backup, and a keys folder."""
    name = f"gbha_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = ha_cluster.create_database(name, template=ha_template)
    keys = tmp_path_factory.mktemp("ha-keys")
    books = make_books(url, keys)
    donations = open_account(books, "donations", "donations").id
    fund = open_account(books, "fund", "fund").id
    books.engine.dispose()
    base = ha_cluster.base_backup(ha_cluster.root / "base" / name)
    # the database goes with the cluster at the end of the session (ha_cluster)
    return {"name": name, "url": url, "keys": keys, "base": base, "accounts": (donations, fund)}


def _connect(cluster, node: str, db: str) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=cluster.node(node).pg_port, user="postgres", dbname=db,
                           autocommit=True, connect_timeout=5)


def test_the_auditors_reports_read_a_standby_and_cannot_write_there(ha_cluster, ha_db, tmp_path: Path) -> None:
    from doors import books_of
    from goldbean.app import create_app
    from ledger.access.identity import create_user_in, grant_role_in

    standby_url = ha_cluster.url(ha_db["name"], attrs="standby")
    instance = tmp_path / "instance"
    app = create_app({"TESTING": True, "DATABASE_URL": ha_db["url"], "READ_DATABASE_URL": standby_url,
                      "INSTANCE_PATH": str(instance), "SECRET_KEY": "test-secret-" + "x" * 32,
                      "SESSION_COOKIE_SECURE": False})
    books = books_of(app)
    try:
        books.run(lambda s: grant_role_in(s, create_user_in(s, "auditor1", "audit-pass-1", "审计").id, "auditor"))
        client = app.test_client()
        token = client.post("/api/v1/auth/token", json={"username": "auditor1", "password": "audit-pass-1"}).json
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        answer = client.get("/api/v1/audit/trial-balance", headers=auth)
        assert answer.status_code == 200, answer.json
        assert answer.json["read"]["source"] == "standby" and answer.headers["X-Read-From"] == "standby"
        assert answer.json["balanced"]
        statement = client.get("/api/v1/audit/statement?account=donations&from=2026-01-01&to=2026-12-31", headers=auth)
        assert statement.status_code == 200 and statement.json["read"]["source"] == "standby"

        # the standby served them: its connections show as goldbean-read; the primary has none of those
        leader = ha_cluster.wait_leader()
        by_node = {}
        for n in ha_cluster._st().nodes:
            with _connect(ha_cluster, n.name, "postgres") as conn:
                by_node[n.name] = conn.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND application_name = 'goldbean-read'",
                    (ha_db["name"],)).fetchone()[0]
        assert by_node[leader] == 0 and sum(by_node.values()) >= 1, by_node

        # nothing can be written through the reports' engine: not on the standby, nor if it lands on the primary
        def write(s):
            s.execute(text("UPDATE accounts SET name = name WHERE code = 'donations'"))

        with pytest.raises(DBAPIError) as refused:
            books.read(write)
        assert getattr(refused.value.orig, "sqlstate", None) == "25006"  # read_only_sql_transaction
        on_primary = make_engine(ha_cluster.url(ha_db["name"], attrs="primary"), read_only=True)
        try:
            with pytest.raises(DBAPIError) as refused, on_primary.begin() as conn:
                conn.execute(text("UPDATE accounts SET name = name WHERE code = 'donations'"))
            assert getattr(refused.value.orig, "sqlstate", None) == "25006"
        finally:
            on_primary.dispose()
        with pytest.raises(ValueError, match="read-write"):  # such a URL could never connect: said at start-up
            make_engine(ha_db["url"], read_only=True)
    finally:
        books.engine.dispose()
        books.read_engine.dispose()


def test_a_write_acknowledged_just_before_the_primary_is_killed_is_on_the_new_primary(ha_cluster, ha_db) -> None:
    """Writes go on in a thread while the primary's postmaster is SIGKILLed: every write post() returned for
    (acknowledged: on the synchronous standby's disk) is on the new primary exactly once, the last one before
    the kill included, and writes resume on the new primary by themselves (multi-host URL)."""
    books = make_books(ha_db["url"], ha_db["keys"])
    donations, fund = ha_db["accounts"]
    acked: list[tuple[str, float]] = []
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            key = f"ha-ack-{uuid.uuid4().hex[:12]}"
            try:
                post(books, transfer(key, "donate", donations, fund, 1))
            except DomainError:  # database_unavailable / commit_outcome_unknown while it fails over
                time.sleep(0.2)
                continue
            acked.append((key, time.time()))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        while len(acked) < 15:
            time.sleep(0.05)
        old = ha_cluster.wait_leader()
        killed_at = time.time()
        os.kill(ha_cluster.postmaster_pid(old), signal.SIGKILL)
        new = ha_cluster.wait_leader(other_than=old, timeout=60)
        deadline = time.time() + 60
        while not any(at > killed_at for _, at in acked) and time.time() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=30)
        books.engine.dispose()
    before = [k for k, at in acked if at <= killed_at]
    after = [k for k, at in acked if at > killed_at]
    assert before and after, "writes must resume on the new primary by themselves"
    with _connect(ha_cluster, new, ha_db["name"]) as conn:
        found = dict(conn.execute("SELECT transfer_key, COUNT(*) FROM transfers WHERE transfer_key = ANY(%s) "
                                  "GROUP BY transfer_key", ([k for k, _ in acked],)).fetchall())
    assert found.get(before[-1]) == 1, "the last write acknowledged before the kill is lost"
    assert all(found.get(k) == 1 for k, _ in acked), [k for k, _ in acked if found.get(k) != 1]
    ha_cluster.heal(timeout=120)  # the old primary rejoins as a standby


def test_point_in_time_recovery_gives_back_the_books_as_they_were(ha_cluster, ha_db) -> None:
    """The base backup (taken before the failover above) and the WAL archive recover the books to a moment:
    what was committed by then is there, what came after is not, and ledger verify passes."""
    from goldbean.ops import verify_url

    books = make_books(ha_db["url"], ha_db["keys"])
    donations, fund = ha_db["accounts"]
    try:
        post(books, transfer("pitr-before", "donate", donations, fund, 7))
        with books.engine.connect() as conn:
            moment = conn.execute(text("SELECT clock_timestamp()")).scalar()
        time.sleep(1.2)
        post(books, transfer("pitr-after", "donate", donations, fund, 9))
        with books.engine.connect() as conn:  # the failover test's writes, all committed before the moment
            acked_on_primary = conn.execute(text("SELECT COUNT(*) FROM transfers WHERE transfer_key LIKE 'ha-ack-%'"))\
                .scalar()
    finally:
        books.engine.dispose()
    ha_cluster.archive_now()
    url, _ = ha_cluster.restore(ha_db["base"], target_time=moment.isoformat(), name="pitr-test")
    try:
        restored_url = url.rsplit("/", 1)[0] + "/" + ha_db["name"]
        engine = make_engine(restored_url)
        try:
            with engine.connect() as conn:
                keys = set(conn.execute(text("SELECT transfer_key FROM transfers WHERE transfer_key LIKE 'pitr-%'"))
                           .scalars())
                acked_before = conn.execute(text("SELECT COUNT(*) FROM transfers WHERE transfer_key LIKE 'ha-ack-%'"))\
                    .scalar()
        finally:
            engine.dispose()
        assert keys == {"pitr-before"}
        report = verify_url(restored_url, ha_db["keys"])
        assert report.ok, report.verdict()
        assert acked_before == acked_on_primary  # across the failover above (timeline 2) when it ran first
    finally:
        ha_cluster.stop_restored("pitr-test")
