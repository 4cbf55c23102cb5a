"""A bank-style fault test over HTTP: the service under gunicorn, simulated officers, wallets and tills,
faults injected while they work, and a checker that reads the final database.

    python -m tests.chaos --db postgres --duration 600      # make chaos DURATION=600
    python -m tests.chaos --db sqlite --duration 60
    python -m tests.chaos --db ha --duration 600 --min-failovers 5   # make chaos DB=ha DURATION=600

Every logical operation (an award, a redemption, a refund, a hold confirmed or declined, a second
approval) carries its own idempotency key and is retried with the same key and body while its outcome
is unknown. Its final outcome is

- ``ok``: some attempt got a 2xx answer (the effect was acknowledged);
- ``failed``: some attempt got a definite refusal (4xx) and no earlier attempt was in doubt (for the
  operations without an idempotency key), so the effect must be absent;
- ``unknown``: every attempt timed out, was reset, or got a 5xx: the effect may or may not be there.

Faults (PostgreSQL): SIGKILL of a worker, SIGKILL of the master (and a restart), SIGSTOP/SIGCONT of a
worker or the master, PostgreSQL stopped with ``-m immediate`` and restarted, and ``pg_terminate_backend``
of the app's connections. On SQLite, the process faults only. With ``--db ha`` the database is a local highly available cluster
(Patroni + etcd, a primary and two standbys, strict synchronous replication; ``tests/chaos/ha.py``) and the
faults add SIGKILL of the primary's postmaster, ``pg_ctl stop -m immediate`` of the primary, SIGSTOP of the
primary's whole machine, a standby stopped, and the manager killed (Patroni on the primary, or etcd); the
run also reads the auditor's trial balance from a standby throughout, reports every failover's time from
the fault to the first acknowledged write, and checks that no request was answered 500 and that every node
ends with the same books.

The checker then proves on the final database: debits equal credits (posted and pending); no account
that forbids it is negative; every acknowledged operation is present exactly once, every failed one is
absent, every unknown one at most once; the answers replayed for a repeated key equal the first; and
``goldbean ledger verify`` passes. It prints a summary and the process exits 1 on any violation.

All traffic stays on 127.0.0.1; the run is bounded in time (``--duration``) and count (``--max-ops``).
The PostgreSQL server is a throwaway cluster the harness creates (``pg_createcluster``, as root) on a free
port and drops at the end; the shared server on 5432 is never touched.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "chaos-password-1"
HTTP_TIMEOUT_S = 6.0
MAX_ATTEMPTS = 8


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- the throwaway PostgreSQL cluster ----------------------------------------------------------------

class PgCluster:
    """A PostgreSQL cluster of our own (``pg_createcluster VERSION NAME -p PORT``), or, when we cannot make
    one, a scratch database on ``fallback_url`` (then the stop/start fault is skipped, with a note)."""

    def __init__(self, name: str = "chaos", fallback_url: str | None = None) -> None:
        self.name = name
        self.fallback_url = fallback_url
        self.version: str | None = None
        self.port: int | None = None
        self.own = False
        self.note = ""
        self.admin_url = ""
        self.url = ""
        self.dbname = "chaos"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), check=check, capture_output=True, text=True, timeout=120)

    def can_own(self) -> tuple[bool, str]:
        if os.geteuid() != 0:
            return False, "not root: cannot create a PostgreSQL cluster of our own"
        for tool in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster"):
            if shutil.which(tool) is None:
                return False, f"{tool} not found"
        versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        if not versions:
            return False, "no /etc/postgresql/<version>"
        self.version = versions[-1]
        return True, ""

    def exists(self) -> bool:
        return self.version is not None and os.path.isdir(f"/etc/postgresql/{self.version}/{self.name}")

    def create(self) -> None:
        ok, why = self.can_own()
        if ok:
            try:
                self.drop()  # idempotent: a cluster left by a killed run goes first
                self.port = free_port()
                self._run("pg_createcluster", self.version, self.name, "-p", str(self.port),
                          "-o", "max_connections=300",
                          "-o", "fsync=on", "-o", "synchronous_commit=on",
                          "--", "--auth=trust")
                self.own = True
                self.start()
                self.admin_url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
                self._sql(f'CREATE DATABASE "{self.dbname}"')
                self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.dbname}"
                return
            except Exception as exc:
                why = f"pg_createcluster failed: {exc} {getattr(exc, 'stderr', '')}"
                self.drop()
                self.own = False
        if not self.fallback_url:
            raise RuntimeError(f"no PostgreSQL: {why}, and no fallback URL (GOLDBEAN_TEST_POSTGRES_URL)")
        self.note = f"PostgreSQL stop/start fault SKIPPED ({why}); using a scratch database on the shared server"
        from sqlalchemy.engine import make_url

        from goldbean.config import normalise_url

        self.admin_url = normalise_url(self.fallback_url)
        self.dbname = f"chaos_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._sql(f'CREATE DATABASE "{self.dbname}"')
        self.url = make_url(self.admin_url).set(database=self.dbname).render_as_string(hide_password=False)

    def _sql(self, statement: str) -> list[tuple]:
        import psycopg
        from sqlalchemy.engine import make_url

        u = make_url(self.admin_url)
        with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                             dbname=u.database, autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    def start(self) -> None:
        self._run("pg_ctlcluster", self.version, self.name, "start")
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-q", check=False)
            if r.returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError("PostgreSQL did not come back")

    def stop_immediate(self) -> None:
        self._run("pg_ctlcluster", self.version, self.name, "stop", "-m", "immediate", check=False)

    def is_up(self) -> bool:
        if not self.own:
            return True
        r = self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-q", check=False)
        return r.returncode == 0

    def terminate_backends(self) -> int:
        rows = self._sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         f"WHERE datname = '{self.dbname}' AND pid <> pg_backend_pid()")
        return len(rows)

    def drop(self) -> None:
        if self.own or (self.version and self.exists()):
            self._run("pg_dropcluster", "--stop", self.version, self.name, check=False)
        elif self.url and not self.own:
            with contextlib.suppress(Exception):
                self._sql(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


# --- the service under gunicorn -------------------------------------------------------------------------

class Server:
    def __init__(self, db_url: str, folder: Path, workers: int, read_url: str = "", threads: int = 1) -> None:
        self.db_url = db_url
        self.read_url = read_url
        self.threads = threads
        self.folder = folder
        self.workers = workers
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = folder / "gunicorn.log"
        self.starts = 0

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDBEAN_")}
        env.update({
            "GOLDBEAN_DATABASE_URL": self.db_url,
            "GOLDBEAN_INSTANCE_PATH": str(self.folder / "instance"),
            "GOLDBEAN_BIND": f"127.0.0.1:{self.port}",
            "GOLDBEAN_WORKERS": str(self.workers),
            "GOLDBEAN_THREADS": str(self.threads),
            "GOLDBEAN_TIMEOUT": "10",
            "GOLDBEAN_GRACEFUL_TIMEOUT": "3",
            "GOLDBEAN_LOG_LEVEL": os.environ.get("CHAOS_LOG_LEVEL", "warning"),
            "PROMETHEUS_MULTIPROC_DIR": str(self.folder / "metrics"),
            "PYTHONPATH": str(REPO),
        })
        if self.read_url:
            env["GOLDBEAN_READ_DATABASE_URL"] = self.read_url
        return env

    def start(self) -> None:
        out = open(self.log_path, "ab")  # handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:goldbean.serve", "tests.chaos.app:create_app()"],
            cwd=str(REPO), env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.starts += 1
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log_path}")
            try:
                status, _ = http_call(self.port, "GET", "/healthz", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready after {timeout}s; see {self.log_path}")

    @property
    def master(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.master:
                out.append(int(entry))
        return out

    def group_pids(self) -> list[int]:
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields_ = stat.rsplit(")", 1)[1].split()
            if int(fields_[3]) == self.master and int(entry) != self.master:  # process group id
                out.append(int(entry))
        return out

    def kill_master(self) -> None:
        """SIGKILL the master; its orphaned workers finish what they hold and leave (killed after 3 s),
        then a new master starts on the same port."""
        assert self.proc is not None
        orphans = self.group_pids()
        os.kill(self.master, signal.SIGKILL)
        self.proc.wait()
        deadline = time.time() + 3
        while time.time() < deadline and any(_alive(p) for p in orphans):
            time.sleep(0.1)
        for p in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGCONT)
                os.kill(p, signal.SIGKILL)
        time.sleep(0.2)
        self.start()

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.master
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGCONT)
            os.kill(self.master, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- HTTP ----------------------------------------------------------------------------------------------

class Unknown(Exception):
    """The request's outcome is not known (timeout, reset, refused, 5xx)."""


def http_call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              timeout: float = HTTP_TIMEOUT_S) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Connection": "close", **(headers or {})}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return resp.status, payload
    finally:
        conn.close()


# --- operations and their outcomes ------------------------------------------------------------------------

@dataclass
class Op:
    kind: str  # award, redeem, refund, confirm, decline, approve
    key: str
    actor: str
    args: dict[str, Any]
    keyed: bool = True  # retried with an idempotency key (a 4xx after a doubtful attempt is still definite)
    outcome: str = "pending"
    status: int | None = None
    answer: Any = None
    attempts: int = 0
    doubtful: bool = False  # some attempt's outcome was unknown
    first_answer_raw: Any = None
    acked_at: float | None = None  # when the acknowledging answer came
    acked_attempt_at: float | None = None  # when the attempt it answered was sent


@dataclass
class Run:
    db: str
    ops: list[Op] = field(default_factory=list)
    faults: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    checks: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    max_attempts: int = MAX_ATTEMPTS
    answers_5xx: Counter = field(default_factory=Counter)  # (status, error code) of every 5xx answer
    reads: Counter = field(default_factory=Counter)  # the auditor's reads by where they were served
    failovers: list[Any] = field(default_factory=list)
    attempts: list[tuple[float, float, str, str]] = field(default_factory=list)  # sent, answered, kind, result
    extra: list[str] = field(default_factory=list)  # summary lines of the HA run

    def add(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)

    def violate(self, msg: str) -> None:
        with self.lock:
            self.violations.append(msg)


class Client:
    """One simulated person with a bearer token, talking HTTP to the server."""

    def __init__(self, server: Server, username: str, stop: threading.Event, run: Run | None = None) -> None:
        self.server = server
        self.username = username
        self.stop = stop
        self.token: str | None = None
        self.run = run

    def _auth(self) -> None:
        for _ in range(60):
            try:
                status, body = http_call(self.server.port, "POST", "/api/v1/auth/token",
                                         {"username": self.username, "password": PASSWORD})
                if status == 200:
                    self.token = body["access_token"]
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.username} cannot sign in")

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
             ) -> tuple[int, Any]:
        """One attempt; raises ``Unknown`` when the outcome is not known."""
        if self.token is None:
            self._auth()
        hdrs = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        try:
            status, payload = http_call(self.server.port, method, path, body, hdrs)
        except (OSError, http.client.HTTPException) as exc:
            raise Unknown(type(exc).__name__) from exc
        if status == 401 and isinstance(payload, dict) and payload.get("error") in ("token_expired", "invalid_token"):
            self.token = None
            raise Unknown("token refreshed")  # refused before any effect; retried like any doubt
        if status >= 500:
            if self.run is not None:
                with self.run.lock:
                    self.run.answers_5xx[(status, payload.get("error") if isinstance(payload, dict) else None)] += 1
            raise Unknown(f"HTTP {status}")
        return status, payload


def perform(run: Run, client: Client, op: Op, method: str, path: str, body: Any,
            headers: dict[str, str] | None = None, *, deadline: float) -> Op:
    """Send ``op`` until its outcome is known (or attempts / time run out), same key and body each time."""
    run.add(op)
    delay = 0.2
    while op.attempts < run.max_attempts:
        op.attempts += 1
        sent = time.time()
        try:
            status, payload = client.call(method, path, body, headers)
        except Unknown as exc:
            run.attempts.append((sent, time.time(), op.kind, str(exc)))
            op.doubtful = True
            if time.time() > deadline + 20:
                break
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 3.0)
            continue
        op.status, op.answer = status, payload
        run.attempts.append((sent, time.time(), op.kind, str(status)))
        if 200 <= status < 300:
            op.outcome = "ok"
            op.acked_at, op.acked_attempt_at = time.time(), sent
        elif op.keyed or not op.doubtful:
            op.outcome = "failed"
        else:
            op.outcome = "unknown"  # e.g. hold_not_awaiting after a doubtful confirm: maybe it was ours
        return op
    op.outcome = "unknown"
    return op


# --- the world the clients act in -----------------------------------------------------------------------

@dataclass
class World:
    officers: list[tuple[str, int]]  # (username, user id)
    volunteers: list[tuple[str, int, int]]  # (username, user id, wallet account id)
    cashiers: list[tuple[str, int, int]]  # (username, user id, merchant id)
    community: int
    auditor: str = "auditor0"


def seed(db_url: str, instance: Path, volunteers: int = 12) -> World:
    from sqlalchemy import select

    from goldbean.config import normalise_url
    from goldbean.migrate import upgrade
    from goldbean.seed import seed_ledger
    from ledger.access.identity import (
        create_org_unit_in,
        create_user_in,
        grant_role_in,
        hash_password,
        wallet_account_id,
    )
    from ledger.earning.core import ensure_budget_account_in
    from ledger.infra.books import Books
    from ledger.infra.db import make_engine
    from ledger.infra.keys import KeyStore
    from ledger.journal.accounts import open_account_in, post_in
    from ledger.journal.posting import transfer
    from ledger.schema import Account, Merchant

    db_url = normalise_url(db_url)
    upgrade(db_url)
    books = Books(engine=make_engine(db_url), keys=KeyStore(instance / "keys"))
    ids = seed_ledger(books)
    pw = hash_password(PASSWORD)

    def work(s):
        district = create_org_unit_in(s, "chaos", "盘龙区", "district")
        street = create_org_unit_in(s, "chaos.s", "鼓楼街道", "street", district.id)
        community = create_org_unit_in(s, "chaos.s.c", "金沙社区", "community", street.id)
        budget = ensure_budget_account_in(s, community.id)
        officers = []
        for i in range(3):
            u = create_user_in(s, f"officer{i}", PASSWORD, f"民警{i}", password_hash=pw)
            grant_role_in(s, u.id, "officer", community.id)
            officers.append((u.username, u.id))
        vols = []
        for i in range(volunteers):
            u = create_user_in(s, f"vol{i}", PASSWORD, f"志愿者{i}", password_hash=pw)
            grant_role_in(s, u.id, "volunteer", community.id)
            vols.append((u.username, u.id, wallet_account_id(s, u.id)))
        cashiers = []
        for i in range(2):
            acc = open_account_in(s, f"merchant:chaos{i}", "merchant", owner_ref=f"merchant:chaos{i}").id
            m = Merchant(code=f"chaos{i}", name=f"小卖部{i}", org_unit_id=community.id, status="active",
                         account_id=acc)
            s.add(m)
            s.flush()
            u = create_user_in(s, f"cashier{i}", PASSWORD, f"收银员{i}", password_hash=pw)
            grant_role_in(s, u.id, "cashier", merchant_id=m.id)
            cashiers.append((u.username, u.id, m.id))
        auditor = create_user_in(s, "auditor0", PASSWORD, "审计员", password_hash=pw)
        grant_role_in(s, auditor.id, "auditor")
        reqs = [transfer("chaos:donate", "donate", ids["donations"], ids["fund"], 10**9),
                transfer("chaos:allocate", "allocate", ids["fund"], budget, 10**8)]
        reqs += [transfer(f"chaos:start:{v[1]}", "award", budget, v[2], 2000) for v in vols]
        post_in(s, books, reqs)
        assert s.scalar(select(Account.id).where(Account.id == budget)) is not None
        return World(officers, vols, cashiers, community.id)

    world = books.run(work)
    books.engine.dispose()
    return world


# --- the workload ----------------------------------------------------------------------------------------

class Workload:
    def __init__(self, run: Run, server: Server, world: World, *, clients: int, duration: float, max_ops: int,
                 seed_: int) -> None:
        self.run = run
        self.server = server
        self.world = world
        self.clients = clients
        self.deadline = time.time() + duration
        self.max_ops = max_ops
        self.stop = threading.Event()
        self.rng = random.Random(seed_)
        self.pending_awards: list[tuple[int, int]] = []  # (award id, the officer who made it)
        self.pending_lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.replays = 0

    def done(self) -> bool:
        return self.stop.is_set() or time.time() > self.deadline or len(self.run.ops) >= self.max_ops

    def start(self, auditor: bool = False) -> None:
        n_officers = max(2, self.clients // 4)
        targets = [self.officer_loop if i < n_officers else self.shopper_loop for i in range(self.clients)]
        if auditor:
            targets.append(self.auditor_loop)
        for i, target in enumerate(targets):
            t = threading.Thread(target=self._guard, args=(target, i), daemon=True, name=f"client{i}")
            t.start()
            self.threads.append(t)

    def auditor_loop(self, i: int, rng: random.Random) -> None:
        """The auditor reads the trial balance every few seconds (from a standby when one is configured):
        whatever it is served, the books it shows must balance."""
        client = Client(self.server, self.world.auditor, self.stop, self.run)
        while not self.done():
            time.sleep(1 + 2 * rng.random())
            try:
                status, body = client.call("GET", "/api/v1/audit/trial-balance")
            except Unknown:
                self.run.reads["unknown"] += 1
                continue
            if status != 200:
                self.run.violate(f"trial balance refused: {status} {body}")
                continue
            self.run.reads[(body.get("read") or {}).get("source", "?")] += 1
            if not body["balanced"] or body["total"] != 0:
                self.run.violate(f"trial balance read from {body.get('read')} does not balance: total {body['total']}")

    def _guard(self, target: Any, i: int) -> None:
        try:
            target(i, random.Random(self.rng.random()))
        except Exception as exc:  # a harness bug must show, not hang the run
            self.run.violate(f"client{i} crashed: {type(exc).__name__}: {exc}")

    def join(self) -> None:
        for t in self.threads:
            t.join(timeout=120)

    # officers: direct awards (some above the approval threshold: held for a second officer) and approvals
    def officer_loop(self, i: int, rng: random.Random) -> None:
        name, officer_id = self.world.officers[i % len(self.world.officers)]
        client = Client(self.server, name, self.stop, self.run)
        while not self.done():
            award_id = None
            with self.pending_lock:
                theirs = [p for p in self.pending_awards if p[1] != officer_id]
                if theirs and rng.random() < 0.5:
                    self.pending_awards.remove(theirs[0])
                    award_id = theirs[0][0]
            if award_id is not None:
                op = Op("approve", f"approve:{award_id}", name, {"award_id": award_id}, keyed=False)
                res = perform(self.run, client, op, "POST", f"/api/v1/awards/{award_id}/approve",
                              {"reason": "chaos"}, deadline=self.deadline)
                continue
            _, vol_id, _ = rng.choice(self.world.volunteers)
            key = uuid.uuid4().hex[:24]
            amount = rng.choice([rng.randint(1, 60), rng.randint(1, 60), rng.randint(101, 150)])
            body = {"volunteer_id": vol_id, "org_unit_id": self.world.community, "amount": amount,
                    "reference": f"chaos-{key}", "key": key}
            op = Op("award", f"award:direct:{officer_id}:{key}", name, body)
            res = perform(self.run, client, op, "POST", "/api/v1/awards", body, deadline=self.deadline)
            if res.outcome == "ok":
                self._maybe_replay(client, op, "POST", "/api/v1/awards", body, None, rng)
                if res.answer.get("status") == "pending_approval":
                    with self.pending_lock:
                        self.pending_awards.append((res.answer["id"], officer_id))

    # a volunteer shows a payment code, a cashier redeems it; refunds; confirms or declines held ones
    def shopper_loop(self, i: int, rng: random.Random) -> None:
        vols = [v for j, v in enumerate(self.world.volunteers) if j % max(1, self.clients - 1) == i % max(1, self.clients - 1)]
        vols = vols or self.world.volunteers
        wallets = {v[0]: Client(self.server, v[0], self.stop, self.run) for v in vols}
        tills = {c[2]: Client(self.server, c[0], self.stop, self.run) for c in self.world.cashiers}
        while not self.done():
            vname = rng.choice(vols)[0]
            wallet = wallets[vname]
            code = self._code(wallet)
            if code is None:
                continue
            merchant_id = rng.choice(list(tills))
            till = tills[merchant_id]
            key = uuid.uuid4().hex
            amount = rng.choice([rng.randint(1, 80), rng.randint(1, 80), rng.randint(201, 300)])
            body = {"code": code, "amount": amount}
            headers = {"Idempotency-Key": key}
            op = Op("redeem", key, till.username, {"merchant_id": merchant_id, "amount": amount,
                                                    "jti": _jti(code)})
            res = perform(self.run, till, op, "POST", "/api/v1/redemptions", body, headers, deadline=self.deadline)
            if res.outcome != "ok":
                continue
            self._maybe_replay(till, op, "POST", "/api/v1/redemptions", body, headers, rng)
            rid = res.answer["redemption_id"]
            if res.answer["status"] == "awaiting_confirmation":
                kind = "confirm" if rng.random() < 0.7 else "decline"
                op2 = Op(kind, f"{kind}:{rid}", vname, {"redemption_id": rid}, keyed=False)
                perform(self.run, wallet, op2, "POST", f"/api/v1/wallet/holds/{rid}/{kind}", None,
                        deadline=self.deadline)
            elif rng.random() < 0.35:
                rkey = uuid.uuid4().hex
                rbody = {"amount": rng.randint(1, amount), "reason": "chaos"}
                op3 = Op("refund", rkey, till.username, {"merchant_id": merchant_id, "redemption_id": rid,
                                                         "amount": rbody["amount"]})
                rh = {"Idempotency-Key": rkey}
                r3 = perform(self.run, till, op3, "POST", f"/api/v1/redemptions/{rid}/refunds", rbody, rh,
                             deadline=self.deadline)
                if r3.outcome == "ok":
                    self._maybe_replay(till, op3, "POST", f"/api/v1/redemptions/{rid}/refunds", rbody, rh, rng)

    def _code(self, wallet: Client) -> str | None:
        for _ in range(MAX_ATTEMPTS):
            if self.done():
                return None
            try:
                status, body = wallet.call("POST", "/api/v1/wallet/codes")
            except Unknown:
                time.sleep(0.3)
                continue
            if status == 201:
                return body["code"]
            self.run.violate(f"payment code refused to {wallet.username}: {status} {body}")
            return None
        return None

    def _maybe_replay(self, client: Client, op: Op, method: str, path: str, body: Any,
                      headers: dict[str, str] | None, rng: random.Random) -> None:
        """Sometimes send an acknowledged request again with the same key: the answer must be the same."""
        if rng.random() > 0.15:
            return
        for _ in range(4):
            try:
                status, payload = client.call(method, path, body, headers)
            except Unknown:
                time.sleep(0.3)
                continue
            self.replays += 1
            if status != op.status or _stable(payload) != _stable(op.answer):
                self.run.violate(f"{op.kind} {op.key}: replay answered {status} {payload}, first {op.status} {op.answer}")
            return


def _stable(payload: Any) -> Any:
    return json.dumps(payload, sort_keys=True)


def _jti(code: str) -> str:
    import jwt

    return jwt.decode(code, options={"verify_signature": False})["jti"]


# --- faults ------------------------------------------------------------------------------------------------

class Nemesis:
    def __init__(self, run: Run, server: Server, pg: PgCluster | None, interval: float, seed_: int,
                 ha: Any = None, kinds: list[str] | None = None) -> None:
        self.run = run
        self.server = server
        self.pg = pg
        self.interval = interval
        self.rng = random.Random(seed_)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="nemesis")
        default = ["kill_worker", "kill_master", "pause_worker", "pause_master"]
        if pg is not None:
            default.append("pg_terminate_backend")
            if pg.own:
                default.append("pg_stop_immediate")
        self.ha = None
        if ha is not None:
            from .ha import FAILOVER_KINDS, OTHER_HA_KINDS, HaFaults

            self.ha = HaFaults(ha, self.rng, log)
            default += [*FAILOVER_KINDS, *OTHER_HA_KINDS]
        self.kinds = kinds or default

    def __getattr__(self, name: str) -> Any:  # the cluster's faults (ha_*) live in tests/chaos/ha.py
        if name.startswith("ha_") and self.__dict__.get("ha") is not None:
            return getattr(self.__dict__["ha"], name)
        raise AttributeError(name)

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=120)

    def _loop(self) -> None:
        order: list[str] = []
        while not self.stop.wait(self.interval * (0.6 + 0.8 * self.rng.random())):
            if not order:  # every kind once per round, in a random order
                order = list(self.kinds)
                self.rng.shuffle(order)
            kind = order.pop()
            try:
                getattr(self, kind)()
                self.run.faults[kind] += 1
                log(f"fault {kind}")
            except Exception as exc:
                self.run.notes.append(f"fault {kind} failed to inject: {exc}")
                log(f"fault {kind} failed: {exc}")
            self._recover()

    def _recover(self) -> None:
        if self.ha is not None:
            self.ha.heal()
        if self.pg is not None and self.pg.own and not self.pg.is_up():
            self.pg.start()
        if self.server.proc is None or self.server.proc.poll() is not None:
            self.server.start()
        self.server.wait_ready()

    def kill_worker(self) -> None:
        workers = self.server.worker_pids()
        if not workers:
            raise RuntimeError("no worker to kill")
        os.kill(self.rng.choice(workers), signal.SIGKILL)

    def kill_master(self) -> None:
        self.server.kill_master()

    def _pause(self, pid: int) -> None:
        os.kill(pid, signal.SIGSTOP)
        time.sleep(1 + 3 * self.rng.random())
        os.kill(pid, signal.SIGCONT)

    def pause_worker(self) -> None:
        workers = self.server.worker_pids()
        if not workers:
            raise RuntimeError("no worker to pause")
        self._pause(self.rng.choice(workers))

    def pause_master(self) -> None:
        self._pause(self.server.master)

    def pg_stop_immediate(self) -> None:
        assert self.pg is not None
        self.pg.stop_immediate()
        time.sleep(1 + 3 * self.rng.random())
        self.pg.start()

    def pg_terminate_backend(self) -> None:
        assert self.pg is not None
        self.pg.terminate_backends()


# --- the checker -------------------------------------------------------------------------------------------

def check(run: Run, db_url: str, instance: Path) -> None:
    from sqlalchemy import create_engine, text

    from goldbean.config import normalise_url

    engine = create_engine(normalise_url(db_url))
    with engine.connect() as conn:
        def q(sql: str, **params: Any) -> list[Any]:
            return list(conn.execute(text(sql), params))

        # 1. debits equal credits, posted and pending, in the accounts and in the entries
        dp, cp, dpe, cpe = q("SELECT COALESCE(SUM(debits_posted),0), COALESCE(SUM(credits_posted),0), "
                             "COALESCE(SUM(debits_pending),0), COALESCE(SUM(credits_pending),0) FROM accounts")[0]
        ok = dp == cp and dpe == cpe
        sums = q("SELECT side, COALESCE(SUM(posted_delta),0), COALESCE(SUM(pending_delta),0) FROM entries GROUP BY side")
        by_side = {r[0]: (int(r[1]), int(r[2])) for r in sums}
        ok = ok and len({v for v in by_side.values()}) <= 1
        _result(run, "debits = credits", ok, f"accounts posted {dp}/{cp}, pending {dpe}/{cpe}; entries {by_side}")

        # 2. no forbidden negative
        neg = q("SELECT id, code, credits_posted - debits_posted - debits_pending FROM accounts "
                "WHERE no_negative AND credits_posted - debits_posted - debits_pending < 0")
        _result(run, "no forbidden negative", not neg, f"{len(neg)} negative: {neg[:5]}")

        # 3. each operation's effect present exactly once / absent / at most once
        bad: list[str] = []
        counted = Counter()
        for op in run.ops:
            counted[(op.kind, op.outcome)] += 1
            n = _presence(q, op)
            if op.outcome == "ok" and n != 1:
                bad.append(f"acknowledged {op.kind} {op.key} present {n} times")
            elif op.outcome == "failed" and n != 0:
                bad.append(f"failed {op.kind} {op.key} ({op.status} {op.answer}) present {n} times")
            elif op.outcome == "unknown" and n > 1:
                bad.append(f"unknown {op.kind} {op.key} present {n} times")
        _result(run, "acknowledged exactly once, failed absent, unknown at most once", not bad,
                f"{len(run.ops)} operations; " + "; ".join(bad[:5]))

        # 4. per redemption, refunds in the books match the acknowledged ones (no duplicate refund)
        refunds_ok: dict[int, list[int]] = {}
        refunds_unknown: dict[int, int] = Counter()
        for op in run.ops:
            if op.kind == "refund":
                rid = op.args["redemption_id"]
                if op.outcome == "ok":
                    refunds_ok.setdefault(rid, []).append(op.args["amount"])
                elif op.outcome == "unknown":
                    refunds_unknown[rid] += 1
        dup = []
        for rid in set(refunds_ok) | set(refunds_unknown):
            rows = q("SELECT COUNT(*), COALESCE(SUM(amount),0) FROM refunds WHERE redemption_id = :r", r=rid)[0]
            lo, hi = len(refunds_ok.get(rid, [])), len(refunds_ok.get(rid, [])) + refunds_unknown.get(rid, 0)
            if not lo <= rows[0] <= hi:
                dup.append(f"redemption {rid}: {rows[0]} refunds in the books, {lo}..{hi} possible")
            refunded = q("SELECT refunded FROM redemptions WHERE id = :r", r=rid)[0][0]
            if refunded != rows[1]:
                dup.append(f"redemption {rid}: refunded {refunded} but refund rows sum to {rows[1]}")
        _result(run, "refunds match acknowledgements", not dup, "; ".join(dup[:5]))
    engine.dispose()

    # 5. goldbean ledger verify
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDBEAN_")}
    env.update({"GOLDBEAN_DATABASE_URL": db_url, "GOLDBEAN_INSTANCE_PATH": str(instance),
                "PYTHONPATH": str(REPO)})
    script = Path(sys.executable).parent / "goldbean"
    argv = [str(script)] if script.exists() else [sys.executable, "-c", "from goldbean.cli import main; main()"]
    r = subprocess.run([*argv, "ledger", "verify"], cwd=str(REPO), env=env, capture_output=True, text=True,
                       timeout=600)
    out = (r.stdout + r.stderr).strip().splitlines()
    verdict = out[-1] if out else f"exit {r.returncode}"
    run.notes.append(f"ledger verify: {verdict}")
    _result(run, "goldbean ledger verify", r.returncode == 0, verdict)


def _presence(q: Any, op: Op) -> int:
    """How many times the operation's effect is in the books."""
    if op.kind == "award":
        n = q("SELECT COUNT(*) FROM awards WHERE transfer_key = :k OR hold_key = :h", k=op.key, h=f"{op.key}:hold")[0][0]
        t = q("SELECT COUNT(*) FROM transfers WHERE transfer_key IN (:k, :h)", k=op.key, h=f"{op.key}:hold")[0][0]
        return max(n, t)
    if op.kind == "redeem":
        n = q("SELECT COUNT(*) FROM redemptions WHERE code_jti = :j", j=op.args["jti"])[0][0]
        keyed = q("SELECT COUNT(*) FROM idempotency_records WHERE scope = :s AND key = :k",
                  s=f"merchant:{op.args['merchant_id']}", k=op.key)[0][0]
        if op.outcome == "ok":
            rid = op.answer["redemption_id"]
            same = q("SELECT COUNT(*) FROM redemptions WHERE id = :i AND code_jti = :j AND amount = :a",
                     i=rid, j=op.args["jti"], a=op.args["amount"])[0][0]
            t = q("SELECT COUNT(*) FROM transfers t JOIN redemptions r ON t.transfer_key = r.transfer_key "
                  "WHERE r.id = :i", i=rid)[0][0]
            return n if (same == 1 and keyed == 1 and t == 1) else -1 if n == 1 else n
        return max(n, keyed)
    if op.kind == "refund":
        keyed = q("SELECT COUNT(*) FROM idempotency_records WHERE scope = :s AND key = :k",
                  s=f"merchant:{op.args['merchant_id']}", k=op.key)[0][0]
        if op.outcome == "ok":
            n = q("SELECT COUNT(*) FROM refunds WHERE id = :i AND redemption_id = :r AND amount = :a",
                  i=op.answer["refund_id"], r=op.args["redemption_id"], a=op.args["amount"])[0][0]
            return n if keyed == 1 else -1
        return keyed
    if op.kind in ("confirm", "decline"):
        rid = op.args["redemption_id"]
        suffix = "post" if op.kind == "confirm" else "void"
        n = q("SELECT COUNT(*) FROM transfers t JOIN redemptions r ON t.transfer_key = r.transfer_key || :s "
              "WHERE r.id = :i", s=f":{suffix}", i=rid)[0][0]
        if op.outcome == "ok":
            status = q("SELECT status FROM redemptions WHERE id = :i", i=rid)[0][0]
            want = "completed" if op.kind == "confirm" else "declined"
            return n if status == want else -1
        return n
    if op.kind == "approve":
        aid = op.args["award_id"]
        n = q("SELECT COUNT(*) FROM transfers t JOIN awards a ON t.transfer_key = a.transfer_key "
              "WHERE a.id = :i AND a.hold_key IS NOT NULL", i=aid)[0][0]
        if op.outcome == "ok":
            status = q("SELECT status FROM awards WHERE id = :i", i=aid)[0][0]
            return n if status == "posted" else -1
        if op.outcome == "failed" and isinstance(op.answer, dict) and op.answer.get("error") == "own_approval":
            return 0
        return n
    raise AssertionError(op.kind)


def _result(run: Run, name: str, ok: bool, detail: str) -> None:
    run.checks[name] = "PASS" if ok else f"FAIL: {detail}"
    if not ok:
        run.violations.append(f"{name}: {detail}")


# --- one run ------------------------------------------------------------------------------------------------

def run_once(db: str, *, duration: float, clients: int, workers: int, fault_interval: float, max_ops: int,
             seed_: int, cluster_name: str = "chaos", keep: bool = False, min_faults: int = 0,
             min_failovers: int = 0, ha_cluster: Any = None, kinds: list[str] | None = None,
             ha_template: str | None = None) -> Run:
    """One run. ``db``: postgres (a throwaway cluster), sqlite, or ha (a local Patroni cluster: ``ha_cluster``
    if given, else one made and removed here); ``kinds`` limits the faults (default: all that apply)."""
    run = Run(db)
    folder = Path(tempfile.mkdtemp(prefix=f"goldbean-chaos-{db}-"))
    instance = folder / "instance"
    instance.mkdir()
    pg: PgCluster | None = None
    ha: Any = None
    server: Server | None = None
    nemesis: Nemesis | None = None
    try:
        read_url = ""
        if db == "ha":
            from .ha import HaDb

            folder.chmod(0o755)  # the cluster's processes run as the postgres user
            ha = HaDb(folder, dbname=f"chaos_{uuid.uuid4().hex[:6]}", cluster=ha_cluster, template=ha_template)
            ha.create()
            db_url, read_url = ha.url, ha.read_url
            run.max_attempts = 16  # a till keeps trying, same key, through a failover
            log(f"local HA cluster in {ha.cluster.root}: " + ", ".join(
                f"{m['name']} {m['role']}" for m in ha.cluster.members()))
        elif db == "postgres":
            pg = PgCluster(cluster_name, fallback_url=os.environ.get("GOLDBEAN_TEST_POSTGRES_URL"))
            pg.create()
            if pg.note:
                run.notes.append(pg.note)
                log(pg.note)
            db_url = pg.url
            log(f"PostgreSQL {'cluster ' + pg.name + ' on port ' + str(pg.port) if pg.own else 'scratch database'}")
        else:
            db_url = f"sqlite:///{folder / 'goldbean.db'}"
        world = seed(db_url, instance)
        # behind a failover manager: threaded workers (docs/operations.md), so that a request stuck on a primary
        # that stopped answering does not get its whole worker killed and booted again
        server = Server(db_url, folder, workers, read_url=read_url, threads=int(os.environ.get(
            "CHAOS_THREADS", "4" if db == "ha" else "1")))
        server.start()
        log(f"gunicorn master {server.master} with {workers} workers on 127.0.0.1:{server.port}; "
            f"{clients} clients for {duration:.0f}s")
        work = Workload(run, server, world, clients=clients, duration=duration, max_ops=max_ops, seed_=seed_)
        nemesis = Nemesis(run, server, pg, fault_interval, seed_ + 1, ha=ha, kinds=kinds)
        work.start(auditor=ha is not None)
        nemesis.start()
        _keep_going(run, work, nemesis, duration, min_faults, min_failovers)
        nemesis.finish()
        if pg is not None and pg.own and not pg.is_up():
            pg.start()
        if ha is not None:
            ha.cluster.heal(timeout=150)
        work.stop.set()
        work.join()
        run.notes.append(f"{work.replays} acknowledged requests repeated with the same key; "
                         f"gunicorn master started {server.starts} times")
        server.stop()
        check(run, db_url, instance)
        if ha is not None:
            _check_ha(run, ha, nemesis)
    except Exception as exc:
        run.violations.append(f"harness error: {type(exc).__name__}: {exc}")
        run.checks.setdefault("harness", f"FAIL: {exc}")
    finally:
        if server is not None:
            server.stop()
        if pg is not None:
            pg.drop()
        if ha is not None:
            if keep:  # the cluster's logs and every attempt's timing, before the cluster's folder goes
                with open(folder / "attempts.tsv", "w") as fh:
                    fh.writelines(f"{a:.2f}\t{b - a:.2f}\t{k}\t{r}\n" for a, b, k, r in sorted(run.attempts))
                with open(folder / "failovers.tsv", "w") as fh:
                    fh.writelines(f"{f.at:.2f}\t{f.kind}\t{f.old_leader}\t{f.new_leader}\t{f.promoted_s}\n"
                                  for f in run.failovers)
                for path in ha.cluster.root.glob("*/patroni.log"):
                    shutil.copyfile(path, folder / f"{path.parent.name}-patroni.log")
            ha.drop()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            run.notes.append(f"files kept in {folder}")
    return run


def _keep_going(run: Run, work: Workload, nemesis: Nemesis, duration: float, min_faults: int,
                min_failovers: int) -> None:
    """Wait for the traffic's end, keeping it going (up to 6x the duration: a loaded machine injects fewer in the same time) until the nemesis has done its
    minimum of faults and of failovers."""
    hard_stop = time.time() + 6 * duration
    while not work.done():
        failovers = sum(1 for f in nemesis.ha.failovers if f.failed_over) if nemesis.ha is not None else 0
        short = sum(run.faults.values()) < min_faults or failovers < min_failovers
        if work.deadline - time.time() < 1 and short and time.time() < hard_stop:
            work.deadline += 1
        time.sleep(0.5)


def _check_ha(run: Run, ha: Any, nemesis: Nemesis) -> None:
    from .ha import first_writes, rto_lines, standbys_agree

    faults = nemesis.ha
    acks = [(op.acked_attempt_at, op.acked_at) for op in run.ops if op.outcome == "ok" and op.acked_at]
    first_writes(faults.failovers, acks)
    run.failovers = faults.failovers
    run.extra.extend(rto_lines(faults.failovers))
    run.notes.extend(faults.notes)
    by_status = ", ".join(f"{st} {code or '-'}: {n}" for (st, code), n in sorted(run.answers_5xx.items(),
                                                                                  key=lambda kv: str(kv[0])))
    run.extra.append(f"5xx answers: {by_status or 'none'}")
    run.extra.append("auditor's trial balance reads: " + (", ".join(f"{k} {v}" for k, v in sorted(
        run.reads.items(), key=str)) or "none"))
    five_hundreds = sum(n for (st, _), n in run.answers_5xx.items() if st == 500)
    _result(run, "no request answered 500", five_hundreds == 0, f"{five_hundreds} answers were 500")
    ok, detail = standbys_agree(ha.cluster, ha.dbname)
    _result(run, "every node holds the same books", ok, detail)
    run.notes.append(f"nodes: {detail}" if ok else "")


def summary(run: Run) -> str:
    outcomes = Counter((op.kind, op.outcome) for op in run.ops)
    kinds = sorted({k for k, _ in outcomes})
    lines = [f"== chaos on {run.db}: {len(run.ops)} operations, {sum(run.faults.values())} faults =="]
    for kind in kinds:
        lines.append(f"  {kind:8s} " + "  ".join(f"{o} {outcomes[(kind, o)]}" for o in ("ok", "failed", "unknown")))
    refused = Counter(op.answer.get("error") for op in run.ops if op.outcome == "failed" and isinstance(op.answer, dict))
    if refused:
        lines.append("  refusals: " + ", ".join(f"{k} {v}" for k, v in refused.most_common()))
    doubtful = sum(1 for op in run.ops if op.doubtful)
    lines.append(f"  {doubtful} operations had at least one attempt in doubt (timeout, reset, 5xx) and were retried"
                 " with the same key")
    lines.append("  faults: " + (", ".join(f"{k} {v}" for k, v in sorted(run.faults.items())) or "none"))
    for line in run.extra:
        lines.append(f"  {line}")
    for name, result in run.checks.items():
        lines.append(f"  check {name}: {result}")
    for note in run.notes:
        if note:
            lines.append(f"  note: {note}")
    lines.append(f"  violations: {len(run.violations)}")
    lines.extend(f"    - {v}" for v in run.violations[:20])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["postgres", "sqlite", "both", "ha"], default="both",
                   help="ha: a local Patroni + etcd cluster (tests/chaos/ha.py)")
    p.add_argument("--duration", type=float, default=60, help="seconds of traffic per database (default 60)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    p.add_argument("--fault-interval", type=float, default=None,
                   help="mean seconds between faults (default: duration/30, between 2 and 15)")
    p.add_argument("--max-ops", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--cluster-name", default="chaos")
    p.add_argument("--keep", action="store_true", help="keep the run's folder (logs, SQLite file)")
    p.add_argument("--min-faults", type=int, default=0,
                   help="keep the traffic going (up to 3x the duration) until this many faults were injected")
    p.add_argument("--faults", default=None, help="comma-separated fault kinds (default: every kind that applies)")
    p.add_argument("--min-failovers", type=int, default=None,
                   help="--db ha: keep going until this many failovers (default: 1 per 2 minutes, at least 1)")
    args = p.parse_args(argv)
    seed_ = args.seed if args.seed is not None else random.randrange(10**6)
    interval = args.fault_interval or min(15.0, max(2.0, args.duration / 30))
    dbs = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    failed = False
    for db in dbs:
        log(f"seed {seed_}")
        if db == "ha":
            from .ha import ha_available

            ok, why = ha_available()
            if not ok:
                print(f"cannot run --db ha: {why}", file=sys.stderr)
                return 2
        min_failovers = args.min_failovers if args.min_failovers is not None else max(1, int(args.duration // 120))
        run = run_once(db, duration=args.duration, clients=args.clients, workers=args.workers,
                       fault_interval=interval, max_ops=args.max_ops, seed_=seed_, cluster_name=args.cluster_name,
                       keep=args.keep, min_faults=args.min_faults,
                       min_failovers=min_failovers if db == "ha" else 0,
                       kinds=args.faults.split(",") if args.faults else None)
        print(summary(run), flush=True)
        failed = failed or bool(run.violations)
    return 1 if failed else 0
