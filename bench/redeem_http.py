"""redeem-http: redemptions over HTTP (gunicorn, several workers, PostgreSQL), driven from another process.

``HttpBench(server_url, work, kind)`` builds a small district in a scratch database, starts ``gunicorn -c
python:goldbean.serve`` on it and the load generator (``python -m bench.redeem_http rounds ...``) in its
own process, a round child (``bench.peers``) that ``bench.run`` drives alternately with post-pg-16.

- ``redeem``: 8 merchants with 4 tills each (till keys), one funded volunteer per till; each request is
  ``POST /api/v1/redemptions`` with a fresh wallet code (signed with the instance's wallet key, as the
  volunteer's phone would show it), a till key and an ``Idempotency-Key``;
- ``award``: ``bench.award_http``'s district; each request is an officer's ``POST
  /api/v1/claims/{id}/verify`` of a submitted patrol claim (an access token per officer).

- closed loop: 32 clients, each sending its next request as soon as the last is answered: requests/s;
- open loop: 200 requests/s offered on a fixed schedule (latency measured from the scheduled moment,
  so a slow server cannot hide queueing): p50 and p99 in ms.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.http_burst import free_port, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
TILLS = 32
MERCHANTS = 8  # a market morning: 8 stalls with 4 tills each
OPEN_RATE = 200
WORKERS = 4
WARMUP_S = 1.0  # each closed round's first second (pools, prepared statements) is not counted


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


class HttpBench:
    """One kind of request served by gunicorn on its own scratch database, and the load generator as a
    round child (``bench.peers``): ``closed(duration)`` and ``open_loop(duration)`` are rounds."""

    def __init__(self, server_url: str, work: Path, kind: str, closed_round_s: float, rounds: int,
                 open_s: float) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        from bench.peers import RoundChild
        from goldbean.migrate import upgrade

        self.server_url, self.kind = server_url, kind
        self.name = f"goldbean_bench_{kind}_http_{os.getpid()}"
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        url = make_url(server_url).set(database=self.name).render_as_string(hide_password=False)
        instance = work / f"http-{kind}"
        instance.mkdir(parents=True, exist_ok=True)
        self.server: subprocess.Popen[bytes] | None = None
        self.loadgen: Any = None
        env = {**os.environ, "GOLDBEAN_DATABASE_URL": url, "GOLDBEAN_INSTANCE_PATH": str(instance),
               "GOLDBEAN_WORKERS": str(WORKERS), "GOLDBEAN_SECURE_COOKIES": "0", "GOLDBEAN_LOG_LEVEL": "WARNING",
               "GOLDBEAN_DEMO": "0"}
        try:
            upgrade(url)
            if kind == "redeem":
                world = build_district(url, instance, TILLS)
            else:
                from bench.award_http import build_award_world, write_settings

                # enough claims for every closed round (45/s per officer at most) and the open loop
                per_round = int((closed_round_s + WARMUP_S) * 45) + 20
                world = build_award_world(url, instance, TILLS, per_round * (rounds + 4) + int(OPEN_RATE * open_s) // TILLS + 10)
                env["GOLDBEAN_LEDGER_SETTINGS"] = str(write_settings(instance))
            world_file = work / f"http-{kind}-world.json"
            world_file.write_text(json.dumps({**world, "url": url, "instance": str(instance), "kind": kind}))
            port = free_port()
            env["GOLDBEAN_BIND"] = f"127.0.0.1:{port}"
            self.server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:goldbean.serve",
                                            "goldbean.app:create_app()"], cwd=ROOT, env=env,
                                           stdout=subprocess.DEVNULL, stderr=open(work / f"gunicorn-{kind}.log", "wb"))
            wait_healthy(port, work / f"gunicorn-{kind}.log")
            self.loadgen = RoundChild([sys.executable, "-m", "bench.redeem_http", "rounds", str(world_file), str(port),
                                       str(closed_round_s), str(open_s)], cwd=ROOT, stderr=work / f"loadgen-{kind}.log")
        except BaseException:
            self.close()
            raise

    def closed(self, duration: float) -> tuple[Any, dict[str, Any]]:
        """TILLS clients in a closed loop (after WARMUP_S not counted): the Round and the loadgen's answer."""
        return self.loadgen.round(duration, "closed", lead=WARMUP_S + 0.5)

    def open_loop(self, duration: float) -> dict[str, Any]:
        return self.loadgen.round(duration, "open", lead=0.5)[1]

    def close(self) -> None:
        from sqlalchemy import create_engine, text

        if self.loadgen is not None:
            self.loadgen.close()
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
        admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


# --- the load generator (its own process, a round child) -------------------------------------------

class _Requests:
    """What each client sends next: fresh wallet codes (redeem) or the next claim to verify (award), made
    before a round starts so that signing is not part of what is measured."""

    def __init__(self, world: dict[str, Any]) -> None:
        from ledger.infra.books import Books
        from ledger.infra.keys import KeyStore

        self.world, self.kind = world, world["kind"]
        self.books = Books(engine=None, keys=KeyStore(Path(world["instance"]) / "keys"))  # type: ignore[arg-type]
        self.next_claim = [0] * len(world.get("claims", []))
        self.tokens: list[str] = []

    def clients(self) -> int:
        return len(self.world["till_keys"] if self.kind == "redeem" else self.world["officers"])

    def refresh(self) -> None:
        if self.kind == "award":  # access tokens live 15 minutes: new ones every round
            from bench.award_http import access_tokens

            self.tokens = access_tokens(Path(self.world["instance"]), self.world["officers"])

    def make(self, client: int, n: int) -> list[tuple[str, str, dict[str, str], int]]:
        """(path, body, headers, expected status) for the client's next ``n`` requests."""
        if self.kind == "redeem":
            from ledger.redemption import codes

            key, wallet = self.world["till_keys"][client], self.world["wallets"][client]
            return [("/api/v1/redemptions", json.dumps({"code": codes.issue_wallet_code(self.books, wallet).code,
                                                         "amount": 1}),
                     {"Content-Type": "application/json", "Authorization": f"Bearer {key}",
                      "Idempotency-Key": uuid.uuid4().hex}, 201) for _ in range(n)]
        claims = self.world["claims"][client]
        start = self.next_claim[client]
        self.next_claim[client] = min(len(claims), start + n)
        return [(f"/api/v1/claims/{c}/verify", '{"reason": "patrol seen"}',
                 {"Content-Type": "application/json", "Authorization": f"Bearer {self.tokens[client]}"}, 200)
                for c in claims[start:start + n]]

    def unused(self, client: int, n_made: int, n_sent: int) -> None:
        if self.kind == "award":  # claims made but not sent are verified in a later round
            self.next_claim[client] -= n_made - n_sent


def _send(conn: http.client.HTTPConnection, req: tuple[str, str, dict[str, str], int]) -> bool:
    path, body, headers, status = req
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status == status


def closed_stock(reqs: _Requests, duration: float) -> list[list[tuple[str, str, dict[str, str], int]]]:
    """Each client's requests for one closed round, made before the round is asked for."""
    per_client = int((duration + WARMUP_S) * 45) + 20  # 32 clients at 45/s each: 1,440/s
    return [reqs.make(i, per_client) for i in range(reqs.clients())]


LOADGEN_PROCS = 4  # the clients are spread over this many processes (tills are separate devices)


def _clients_loop(clients: list[int], stock: list[list[Any]], start: float, duration: float, out: Any) -> None:
    """One process's share of the clients, a thread each; puts (client, counted, sent, errors, cpu) per client."""
    go, end = start - WARMUP_S, start + duration
    results: dict[int, list[Any]] = {i: [0, 0, []] for i in clients}

    def client_loop(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", PORT[0], timeout=30)
        while time.time() < go:
            time.sleep(0.001)
        for req in stock[i]:
            if time.time() >= end:
                break
            ok = _send(conn, req)
            results[i][1] += 1
            if not ok:
                results[i][2].append(f"HTTP error on {req[0]}")
            elif start <= time.time() <= end:
                results[i][0] += 1
        conn.close()

    cpu0 = time.process_time()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(([(i, *results[i]) for i in clients], time.process_time() - cpu0))


def closed_round(reqs: _Requests, stock: list[list[Any]], start: float, duration: float) -> dict[str, Any]:
    """Every client sends its next request as soon as the last is answered; the first WARMUP_S are not counted.
    The clients are spread over LOADGEN_PROCS processes (forked with the requests already made), so that the
    load generator is never the one process the scheduler keeps waiting on a busy machine."""
    import multiprocessing as mp

    n = reqs.clients()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    groups = [list(range(k, n, LOADGEN_PROCS)) for k in range(min(LOADGEN_PROCS, n))]
    procs = [ctx.Process(target=_clients_loop, args=(g, stock, start, duration, q)) for g in groups]
    for p in procs:
        p.start()
    answers = [q.get(timeout=duration + WARMUP_S + 120) for _ in procs]
    for p in procs:
        p.join()
    counted, sent, errors = [0] * n, [0] * n, []
    for rows, _cpu in answers:
        for i, c, s_, errs in rows:
            counted[i], sent[i] = c, s_
            errors.extend(errs)
    for i in range(n):
        reqs.unused(i, len(stock[i]), sent[i])
    cpu = sum(a[1] for a in answers)
    return {"rate": sum(counted) / duration, "errors": len(errors), "first_error": errors[0] if errors else None,
            "ran_out": any(s_ >= len(st) for s_, st in zip(sent, stock)),
            "loadgen_cpu_ms": round(cpu / max(1, sum(sent)) * 1000, 3)}


def open_schedule(reqs: _Requests, duration: float) -> list[Any]:
    """The open loop's requests, round robin over the clients, made before the round is asked for."""
    n = reqs.clients()
    total = int(OPEN_RATE * duration)
    made = [reqs.make(i, total // n + 1) for i in range(n)]
    return [made[i % n][i // n] for i in range(total)]


def _open_part(part: int, schedule: list[Any], start: float, duration: float, out: Any) -> None:
    """Every LOADGEN_PROCS-th scheduled request from ``part`` on, 16 threads; puts (latencies, errors)."""
    total = len(schedule)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    nxt = [part]
    give_up = start + duration + 5.0  # a server that falls this far behind does not sustain the rate

    def open_worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", PORT[0], timeout=30)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += LOADGEN_PROCS
            if i >= total:
                break
            due = start + i / OPEN_RATE
            if time.time() > give_up:
                with lock:
                    latencies.append(float("inf"))
                continue
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            ok = _send(conn, schedule[i])
            done = time.time()
            with lock:
                if not ok:
                    errors.append("HTTP error")
                latencies.append((done - due) * 1000)
        conn.close()

    workers = [threading.Thread(target=open_worker) for _ in range(64 // LOADGEN_PROCS)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    out.put((latencies, errors))


def open_round(reqs: _Requests, schedule: list[Any], start: float, duration: float) -> dict[str, Any]:
    """OPEN_RATE requests/s on a fixed schedule, round robin over the clients, sent from LOADGEN_PROCS
    processes; latency from the scheduled moment, so a slow server cannot hide queueing: p50 and p99 in ms."""
    import multiprocessing as mp

    schedule = schedule[:int(OPEN_RATE * duration)]
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_open_part, args=(k, schedule, start, duration, q)) for k in range(LOADGEN_PROCS)]
    for p in procs:
        p.start()
    parts = [q.get(timeout=duration + 120) for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(v for lat, _ in parts for v in lat)
    errors = [e for _, errs in parts for e in errs]
    unsent = sum(1 for v in latencies if v == float("inf"))

    def pct(p: float) -> float | None:
        v = latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else None
        return None if v is None or v == float("inf") else v

    return {"p50_ms": pct(0.50), "p99_ms": pct(0.99), "errors": len(errors), "open_unsent": unsent,
            "open_total": len(schedule)}


PORT = [0]
STALE_S = 20.0  # requests made longer ago than this are made again before a round (codes live 60 s)


def rounds(world_file: str, port: int, closed_s: float, open_s: float) -> None:
    """The round child: ``round START DURATION closed|open`` lines in, one JSON line out for each. The
    requests of the next closed round (``closed_s`` long) and of the open loop are made ahead, never while a
    round is waited for."""
    PORT[0] = port
    reqs = _Requests(json.loads(Path(world_file).read_text()))
    reqs.refresh()
    stock, made_at = closed_stock(reqs, closed_s), time.time()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] != "round":
            break
        start, duration, mode = float(parts[1]), float(parts[2]), parts[3]
        if time.time() - made_at > STALE_S:  # wallet codes live a minute: older ones are made again
            reqs.refresh()
            stock, made_at = (closed_stock(reqs, closed_s) if mode == "closed" else open_schedule(reqs, open_s),
                              time.time())
        elif mode == "open":
            stock = open_schedule(reqs, open_s)
        start = max(start, time.time() + (WARMUP_S if mode == "closed" else 0.2))  # never a round already begun
        out = closed_round(reqs, stock, start, duration) if mode == "closed" else open_round(reqs, stock, start, duration)
        print(json.dumps({**out, "t_start": start, "t_end": start + duration}), flush=True)
        reqs.refresh()
        stock, made_at = closed_stock(reqs, closed_s), time.time()  # for the next closed round


if __name__ == "__main__":
    if sys.argv[1] == "rounds":
        sys.path.insert(0, str(ROOT))
        rounds(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
