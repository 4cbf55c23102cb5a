"""Two app servers (separate gunicorn processes, one worker each) against one PostgreSQL database,
driven through both at once.

Awards of 10 beans to one volunteer go through both servers concurrently, each idempotency key sent to
both servers: the daily cap (300) must let exactly 30 through across the two processes and each key must
award at most once. At the same time every wallet code is presented at both servers at once: each must be
spent exactly once. Nothing may be lost, tokens issued by one server must work on the other, the balances
must add up and ``ledger verify`` must pass. (Server-side web sessions are issue 5's.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from goldbean.migrate import upgrade
from ledger.infra.keys import PURPOSES
from ledger.journal.accounts import get_account
from ledger.journal.verify import verify_books
from ledger.schema import Award, Redemption
from tests.conftest import create_pg_database, drop_pg_database, make_books

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

AWARD = 10
CAP = 300  # the default volunteer_daily_cap
SPEND = 7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, body: dict | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            raw, status, hdrs = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw, status, hdrs = exc.read(), exc.code, dict(exc.headers)
    try:
        payload = json.loads(raw) if raw else {}
    except ValueError:
        payload = {"text": raw.decode(errors="replace")}
    return status, payload, hdrs


def goldbean_command() -> list[str]:
    script = Path(sys.executable).parent / "goldbean"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from goldbean.cli import main; main()"]


@pytest.fixture
def district(pg_server: str, tmp_path: Path):
    from ledger import earning
    from ledger.access.identity import load_actor
    from tests.redemption_world import build_world

    url = create_pg_database(pg_server, prefix="gbmulti")
    upgrade(url)
    first = tmp_path / "server-a"
    books = make_books(url, first / "keys")
    for purpose in PURPOSES:
        books.keys.ensure(purpose)
    world = build_world(books)  # a volunteer with 1000 beans, merchants, cashiers, an officer, a fund manager
    with books.session(readonly=True) as s:
        fund_manager = load_actor(s, world.fund_manager)
    earning.allocate_budget(books, fund_manager, org_unit_id=world.community, amount=5_000, key="multi-budget")
    books.engine.dispose()
    # the second server gets a copy of the first one's instance/ (keys and secret key), as documented
    second = tmp_path / "server-b"
    shutil.copytree(first, second)
    yield url, world, [first, second]
    drop_pg_database(pg_server, url)


@pytest.fixture
def servers(district, tmp_path: Path):
    url, _, instances = district
    procs, bases = [], []
    for i, instance in enumerate(instances):
        port = free_port()
        env = {**os.environ, "GOLDBEAN_DATABASE_URL": url, "GOLDBEAN_INSTANCE_PATH": str(instance),
               "GOLDBEAN_BIND": f"127.0.0.1:{port}", "GOLDBEAN_WORKERS": "1", "GOLDBEAN_THREADS": "4",
               "GOLDBEAN_LOG_LEVEL": "info", "GOLDBEAN_PROXY_HOPS": "1" if i == 0 else "0"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log = open(tmp_path / f"server-{i}.log", "wb")
        # one through the command, one through the documented gunicorn line: the same configuration
        argv = goldbean_command() + ["serve"] if i == 0 else [sys.executable, "-m", "gunicorn", "-c",
                                                               "python:goldbean.serve", "goldbean.app:create_app()"]
        procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True))
        bases.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 20
        for proc, base in zip(procs, bases):
            while True:
                assert proc.poll() is None, (tmp_path / "server-0.log").read_text()[-3000:]
                try:
                    if call(base, "GET", "/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "the server did not become ready"
                time.sleep(0.1)
        yield bases, [tmp_path / f"server-{i}.log" for i in range(len(procs))]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGQUIT)  # quick shutdown: graceful stops are not tested here
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def login(base: str, username: str) -> dict[str, str]:
    from tests.redemption_world import PASSWORD

    status, body, _ = call(base, "POST", "/api/v1/auth/token", {"username": username, "password": PASSWORD})
    assert status == 200, body
    return {"Authorization": f"Bearer {body['access_token']}"}


def test_two_servers_one_database_no_double_spend_no_lost_writes(district, servers) -> None:
    url, world, instances = district
    servers, logs = servers
    a, b = servers
    officer = login(a, "officer")  # issued by A, used on both
    cashier = login(b, "cashier_a")  # issued by B, used on both
    volunteer = login(a, "vol")

    # awards: each key through one server, then (a client's retry) through the other
    award_keys = [f"multi-{i}" for i in range(45)]

    def award(i: int) -> list[tuple[str, int, dict, dict[str, str]]]:
        out = []
        for base in (servers[i % 2], servers[(i + 1) % 2]):
            status, payload, headers = call(base, "POST", "/api/v1/awards", {
                "volunteer_id": world.volunteer, "org_unit_id": world.community, "amount": AWARD,
                "reference": "multi-server", "key": award_keys[i]},
                {**officer, "X-Request-ID": f"{award_keys[i]}-{base[-5:]}"})
            out.append((award_keys[i], status, payload, headers))
        return out

    # redemptions: each wallet code presented at both servers at the same moment
    codes = []
    for i in range(10):
        status, payload, _ = call(servers[i % 2], "POST", "/api/v1/wallet/codes", headers=volunteer)
        assert status == 201, payload
        codes.append(payload["code"])

    def redeem(job: tuple[int, str]) -> tuple[int, int, dict]:
        i, base = job
        status, payload, _ = call(base, "POST", "/api/v1/redemptions", {"code": codes[i], "amount": SPEND},
                                  {**cashier, "Idempotency-Key": f"till-{i}-{base[-5:]}"})
        return i, status, payload

    with ThreadPoolExecutor(max_workers=12) as pool:
        award_futures = [pool.submit(award, i) for i in range(len(award_keys))]
        redeemed = list(pool.map(redeem, [(i, base) for i in range(len(codes)) for base in servers]))
        awards = [r for f in award_futures for r in f.result()]

    by_key: dict[str, set[int]] = {}
    refusals: dict[str, int] = {}
    for key, status, payload, headers in awards:
        assert headers.get("X-Request-ID", "").startswith(key)
        if status in (200, 201):
            by_key.setdefault(key, set()).add(payload["id"])
        else:
            assert status in (409, 422, 429), payload
            refusals[payload["error"]] = refusals.get(payload["error"], 0) + 1
    # each key awarded at most once, whichever server answered; exactly the cap's worth got through
    assert all(len(ids) == 1 for ids in by_key.values())
    assert len(by_key) == CAP // AWARD
    assert set(refusals) <= {"volunteer_daily_cap"}

    spent: dict[int, int] = {}
    for i, status, payload in redeemed:
        if status == 201:
            spent[i] = spent.get(i, 0) + 1
        else:
            assert status in (409, 422), payload  # the code was already used at the other server
    assert spent == dict.fromkeys(range(len(codes)), 1)  # every code spent exactly once: no double spend

    books = make_books(url, instances[0] / "keys")
    try:
        with books.session(readonly=True) as s:
            award_ids = set(s.scalars(select(Award.id).where(Award.reference == "multi-server")))
            redemptions = s.scalar(select(func.count()).select_from(Redemption))
        assert award_ids == set().union(*by_key.values())  # nothing lost, nothing extra
        assert redemptions == len(codes)
        assert get_account(books, world.wallet).balance == 1000 + CAP - SPEND * len(codes)
        assert get_account(books, world.merchant_a_account).balance == SPEND * len(codes)
        report = verify_books(books)
        assert report.ok, report.verdict()
    finally:
        books.engine.dispose()

    # both servers' metrics (gunicorn multiprocess mode) add up to what was posted
    posted = {"award": 0.0, "redeem": 0.0}
    refused = 0.0
    for base in servers:
        status, payload, _ = call(base, "GET", "/metrics")
        text = payload["text"]
        assert status == 200 and "goldbean_http_requests_total" in text
        for line in text.splitlines():
            for kind in posted:
                if line.startswith(f'goldbean_transfers_posted_total{{kind="{kind}",phase="single"}}'):
                    posted[kind] += float(line.split()[-1])
            if line.startswith('goldbean_redemptions_refused_total{code="code_already_used"}'):
                refused += float(line.split()[-1])
    assert posted == {"award": CAP // AWARD, "redeem": len(codes)}
    assert refused == len(codes)  # each code's second presentation

    # behind one proxy (A: GOLDBEAN_PROXY_HOPS=1) the client's address is the one the proxy appended;
    # without (B) a forged X-Forwarded-For is ignored
    for base in servers:
        call(base, "GET", "/healthz", headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9",
                                               "X-Request-ID": f"xff-{base[-5:]}"})
    for base, log, expected in zip(servers, logs, ("203.0.113.9", "127.0.0.1")):
        deadline = time.monotonic() + 20  # wait for the access line to be written (no fixed sleep)
        while True:
            lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
            access = [line for line in lines if line.get("request_id") == f"xff-{base[-5:]}"
                      and line["logger"] == "goldbean.access"]
            if access or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [line["remote_addr"] for line in access] == [expected]
