"""redeem-http: redemptions over HTTP (gunicorn, several workers, PostgreSQL), driven from another process.

``run_redeem_http(server_url, work, duration)`` builds a small district in a scratch database (one
merchant with a till key per till, one funded volunteer per till), starts ``gunicorn -c
python:goldbean.serve`` on it and runs the load generator (``python -m bench.redeem_http loadgen ...``) in
its own process. Each request is ``POST /api/v1/redemptions`` with a fresh wallet code (signed with
the instance's wallet key, as the volunteer's phone would show it), a till key and an
``Idempotency-Key``.

- closed loop: 32 tills, each sending its next redemption as soon as the last is answered, for
  ``duration`` seconds: redemptions/s;
- open loop: 200 redemptions/s offered on a fixed schedule (latency measured from the scheduled
  moment, so a slow server cannot hide queueing): p50 and p99 in ms.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TILLS = 32
MERCHANTS = 8  # a market morning: 8 stalls with 4 tills each
OPEN_RATE = 200
WORKERS = 4
WARMUP_S = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_district(url: str, instance: Path, tills: int) -> dict[str, Any]:
    """``MERCHANTS`` merchants sharing ``tills`` till keys, ``tills`` funded volunteers; returns what the load
    generator needs."""
    from sqlalchemy.orm import Session

    from ledger import redemption
    from ledger.access.identity import (
        create_org_unit_in,
        create_user_in,
        grant_role_in,
        hash_password,
        wallet_account_id,
    )
    from ledger.access.policy import SYSTEM
    from ledger.infra.books import Books
    from ledger.infra.db import make_engine
    from ledger.infra.keys import KeyStore
    from ledger.journal.accounts import open_account_in, post_in
    from ledger.journal.posting import transfer
    from ledger.redemption import codes
    from ledger.schema import Merchant

    books = Books(engine=make_engine(url), keys=KeyStore(instance / "keys"))
    pw = hash_password("bench password 1")

    def work(s: Session) -> dict[str, Any]:
        donations = open_account_in(s, "donations", "donations").id
        fund = open_account_in(s, "fund", "fund").id
        open_account_in(s, "payout", "payout")
        district = create_org_unit_in(s, "panlong", "盘龙区", "district")
        community = create_org_unit_in(s, "jinsha", "金沙社区", "community", district.id)
        merchants = []
        for j in range(MERCHANTS):
            acc = open_account_in(s, f"merchant:bench{j}", "merchant", owner_ref=f"merchant:bench{j}").id
            m = Merchant(code=f"bench{j}", name=f"摊位 {j}", org_unit_id=community.id, status="active", account_id=acc)
            s.add(m)
            s.flush()
            merchants.append(m.id)
        wallets = []
        for i in range(tills):
            uid = create_user_in(s, f"benchvol{i}", "unused", f"vol {i}", password_hash=pw).id
            grant_role_in(s, uid, "volunteer", community.id)
            wallets.append(wallet_account_id(s, uid))
        post_in(s, books, [transfer("bench:donate", "donate", donations, fund, 10**11)]
                + [transfer(f"bench:award:{w}", "award", fund, w, 10**8) for w in wallets])
        return {"merchants": merchants, "wallets": wallets}

    world = books.run(work)
    world["till_keys"] = [redemption.issue_till(books, world["merchants"][i % MERCHANTS], f"till {i}", "bench",
                                                  by=SYSTEM)[1]
                          for i in range(tills)]
    codes.issue_wallet_code(books, world["wallets"][0])  # creates the wallet key before the server starts
    books.engine.dispose()
    return world


def run_redeem_http(server_url: str, work: Path, duration: float) -> dict[str, Any]:
    """Returns {"closed_rate", "p50_ms", "p99_ms", "errors", "note"}; raises on set-up failure."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from goldbean.migrate import upgrade

    name = f"goldbean_bench_http_{os.getpid()}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    instance = work / "http-instance"
    instance.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        upgrade(url)
        world = build_district(url, instance, TILLS)
        world_file = work / "http-world.json"
        world_file.write_text(json.dumps({**world, "url": url, "instance": str(instance)}))
        port = _free_port()
        env = {**os.environ, "GOLDBEAN_DATABASE_URL": url, "GOLDBEAN_INSTANCE_PATH": str(instance),
               "GOLDBEAN_BIND": f"127.0.0.1:{port}", "GOLDBEAN_WORKERS": str(WORKERS), "GOLDBEAN_SECURE_COOKIES": "0",
               "GOLDBEAN_LOG_LEVEL": "WARNING", "GOLDBEAN_DEMO": "0"}
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:goldbean.serve",
                                   "goldbean.app:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=open(work / "gunicorn.log", "wb"))
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("gunicorn did not answer /healthz within 60 s: " + (work / "gunicorn.log").read_text()[-500:])
        proc = subprocess.run([sys.executable, "-m", "bench.redeem_http", "loadgen", str(world_file), str(port), str(duration)],
                              cwd=ROOT, capture_output=True, text=True, timeout=duration * 2 + 180)
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed: {proc.stderr.strip()[-500:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- the load generator (its own process) ---------------------------------------------------------

class _Codes:
    """Fresh wallet codes, signed ahead of time so that signing is not part of what is measured."""

    def __init__(self, world: dict[str, Any]) -> None:
        from ledger.infra.books import Books
        from ledger.infra.keys import KeyStore

        self.world = world
        self.books = Books(engine=None, keys=KeyStore(Path(world["instance"]) / "keys"))  # type: ignore[arg-type]

    def make(self, wallet: int, n: int) -> list[str]:
        from ledger.redemption import codes

        return [codes.issue_wallet_code(self.books, wallet).code for _ in range(n)]


def _post(conn: http.client.HTTPConnection, till_key: str, code: str) -> int:
    body = json.dumps({"code": code, "amount": 1})
    conn.request("POST", "/api/v1/redemptions", body=body, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {till_key}",
        "Idempotency-Key": uuid.uuid4().hex})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def loadgen(world_file: str, port: int, duration: float) -> dict[str, Any]:
    world = json.loads(Path(world_file).read_text())
    codes = _Codes(world)
    tills = list(zip(world["till_keys"], world["wallets"]))
    errors: list[str] = []

    # closed loop: every till sends its next redemption as soon as the last is answered
    per_till = int((duration + WARMUP_S) * 40) + 50
    stock = [codes.make(w, per_till) for _, w in tills]
    counts = [0] * len(tills)
    go = time.time() + 0.5
    start = go + WARMUP_S  # the first seconds warm the workers up (connections, prepared statements): not counted
    end = start + duration

    def till_loop(i: int) -> None:
        key, _ = tills[i]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.time() < go:
            time.sleep(0.001)
        n = 0
        while time.time() < end and n < len(stock[i]):
            status = _post(conn, key, stock[i][n])
            n += 1
            now = time.time()
            if status != 201:
                errors.append(f"closed: HTTP {status}")
            elif start <= now <= end:
                counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=till_loop, args=(i,)) for i in range(len(tills))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    closed_rate = sum(counts) / duration
    ran_out = any(c >= len(s) for c, s in zip(counts, stock))

    # open loop: OPEN_RATE/s on a fixed schedule, round robin over the tills
    total = int(OPEN_RATE * duration)
    schedule_codes = [codes.make(tills[i % len(tills)][1], 1)[0] for i in range(total)]
    latencies: list[float] = []
    lock = threading.Lock()
    nxt = [0]
    t0 = time.time() + 1.0
    give_up = t0 + duration + 5.0  # a server that falls this far behind does not sustain the rate

    def open_worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= total:
                break
            due = t0 + i / OPEN_RATE
            if time.time() > give_up:
                with lock:
                    latencies.append(float("inf"))
                continue
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            status = _post(conn, tills[i % len(tills)][0], schedule_codes[i])
            done = time.time()
            if status != 201:
                errors.append(f"open: HTTP {status}")
            with lock:
                latencies.append((done - due) * 1000)
        conn.close()

    workers = [threading.Thread(target=open_worker) for _ in range(64)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    latencies.sort()
    unsent = sum(1 for v in latencies if v == float("inf"))

    def pct(p: float) -> float | None:
        v = latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else None
        return None if v is None or v == float("inf") else v

    return {"closed_rate": closed_rate, "p50_ms": pct(0.50), "p99_ms": pct(0.99), "errors": len(errors),
            "first_error": errors[0] if errors else None, "ran_out_of_codes": ran_out,
            "open_unsent": unsent, "open_total": total}


if __name__ == "__main__":
    if sys.argv[1] == "loadgen":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(loadgen(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))))
