"""radar-fanout and radar-publish: the police radar's live stream at district scale (issue 15).

``run_radar(server_url_or_none, work, streams, capacity)`` builds a street office of 10,000 volunteers (10
communities, 100 resident groups, 1,000 buildings) in a scratch database (PostgreSQL when given, else
SQLite), then:

- **radar-publish**: an officer of the street office publishes notices to the whole street office (with a
  bounty held from a community budget) in this process: time from the call to its commit, which writes
  the outbox row (the enqueue) and sends the NOTIFY; median and max of several.
- **radar-fanout**: starts ``goldbean serve`` (the events front and gunicorn, as in production) and a load
  client in another process (``python -m bench.radar loadgen``: asyncio, raw sockets) that opens ``streams``
  event streams with the volunteers' bearer tokens; one notice to the street office is published here and
  every stream's receipt time is taken: p50/p99/max delivery from the moment before the publishing call.
  Memory per open stream is the front process's resident memory grown while the streams opened, divided by
  their number. With ``capacity``, the client then keeps opening streams until the server stops holding
  new ones (it answers them in short-poll mode) or the client runs out of its own file descriptors: the
  number held.

The machine's load (``os.getloadavg``) goes into every figure's note: the machine is shared.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.http_burst import free_port

ROOT = Path(__file__).resolve().parent.parent
VOLUNTEERS = 10_000
COMMUNITIES, GROUPS, BUILDINGS = 10, 10, 10  # per street, per community, per group
PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$YmVuY2hiZW5jaA$not-a-real-hash-nobody-signs-in-with-it"


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} CPUs"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def build_street(books: Any) -> dict[str, Any]:
    """The street office, its tree, ``VOLUNTEERS`` volunteers spread over its buildings, an officer and a
    funded community budget. Users and grants go in with bulk inserts (one statement per table)."""
    from sqlalchemy import insert, select

    from goldbean.seed import seed_ledger
    from ledger import earning
    from ledger.access.identity import create_org_unit_in, create_user_in, grant_role_in, load_actor
    from ledger.schema import RoleGrant, User

    seed_ledger(books)

    def tree(s: Any) -> dict[str, Any]:
        district = create_org_unit_in(s, "bench", "盘龙区", "district").id
        street = create_org_unit_in(s, "bench.s", "鼓楼街道", "street", district).id
        communities, buildings = [], []
        for c in range(COMMUNITIES):
            cid = create_org_unit_in(s, f"bench.s.c{c}", f"社区{c}", "community", street).id
            communities.append(cid)
            for g in range(GROUPS):
                gid = create_org_unit_in(s, f"bench.s.c{c}.g{g}", f"{g}组", "group", cid).id
                buildings += [create_org_unit_in(s, f"bench.s.c{c}.g{g}.b{b}", f"{b}栋", "building", gid).id
                              for b in range(BUILDINGS)]
        officer = create_user_in(s, "bench_officer", "x", "李警官", password_hash=PASSWORD_HASH).id
        grant_role_in(s, officer, "officer", street)
        fund = create_user_in(s, "bench_fund", "x", "基金", password_hash=PASSWORD_HASH).id
        grant_role_in(s, fund, "fund_manager")
        ids = list(s.scalars(insert(User).returning(User.id), [
            {"username": f"bv{i:05d}", "display_name": f"志愿者{i}", "password_hash": PASSWORD_HASH, "active": True,
             "failed_logins": 0, "show_pseudonym": False} for i in range(VOLUNTEERS)]))
        s.execute(insert(RoleGrant), [{"user_id": uid, "role": "volunteer", "org_unit_id": buildings[i % len(buildings)]}
                                      for i, uid in enumerate(ids)])
        return {"street": street, "communities": communities, "officer": officer, "fund": fund, "volunteers": ids}

    d = books.run(tree)
    with books.session(readonly=True) as s:
        d["officer_actor"] = load_actor(s, d["officer"])
        fund = load_actor(s, d["fund"])
        d["volunteer_count"] = len(s.scalars(select(RoleGrant.id).where(RoleGrant.role == "volunteer")).all())
    earning.record_donation(books, fund, amount=1_000_000, donor="bench", key="bench-d")
    earning.allocate_budget(books, fund, org_unit_id=d["communities"][0], amount=500_000, key="bench-a")
    return d


def publish(books: Any, d: dict[str, Any], title: str, bounty: int = 50) -> Any:
    from ledger import radar

    return radar.publish_notice(books, d["officer_actor"], kind="寻人", title=title, body="身穿蓝色外套,约75岁",
                                area=[d["street"]], ends_at=books.now() + dt.timedelta(days=2), bounty=bounty,
                                budget_org_unit_id=d["communities"][0])


def measure_publish(books: Any, d: dict[str, Any], rounds: int = 7) -> dict[str, Any]:
    times = []
    for i in range(rounds):
        t0 = time.perf_counter()
        publish(books, d, f"寻找走失老人 {i}")
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"median_ms": times[len(times) // 2] * 1000, "max_ms": times[-1] * 1000, "rounds": rounds}


# --- the server and the load client -----------------------------------------------------------------------

def start_server(url: str, instance: Path, log_path: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "GOLDBEAN_DATABASE_URL": url, "GOLDBEAN_INSTANCE_PATH": str(instance),
           "GOLDBEAN_BIND": f"127.0.0.1:{port}", "GOLDBEAN_WORKERS": "2", "GOLDBEAN_LOG_LEVEL": "info"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    script = Path(sys.executable).parent / "goldbean"
    argv = [str(script), "serve"] if script.exists() else [sys.executable, "-m", "goldbean.cli", "serve"]
    proc = subprocess.Popen(argv, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"goldbean serve exited ({proc.returncode}); see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                c.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
                if b" 200 " in c.recv(200):
                    return proc, port
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"goldbean serve not ready; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, round(p * len(sorted_values)) - 1))]


def run_fanout(url: str, work: Path, d: dict[str, Any], books: Any, streams: int, capacity: bool) -> dict[str, Any]:
    from ledger.access.tokens import issue_access_token
    from ledger.infra.keys import PURPOSES

    instance = work / "instance"
    for purpose in PURPOSES:
        books.keys.ensure(purpose)
    tokens_file = work / "tokens.txt"
    from ledger.access.identity import Actor

    tokens = [issue_access_token(books, Actor(uid, "", "", ()))[0] for uid in d["volunteers"]]
    tokens_file.write_text("\n".join(tokens))
    proc, port = start_server(url, instance, work / "serve.log")
    client = None
    try:
        time.sleep(1.0)
        before = _rss_kb(proc.pid)
        client = subprocess.Popen([sys.executable, "-m", "bench.radar", "loadgen", "--port", str(port),
                                   "--tokens", str(tokens_file), "--streams", str(streams)]
                                  + (["--capacity"] if capacity else []),
                                  cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        opened = json.loads(client.stdout.readline())
        time.sleep(1.0)
        held_rss = _rss_kb(proc.pid)
        t0 = time.time()
        publish(books, d, "寻找走失老人(全街道)")
        client.stdin.write(f"go {t0}\n")
        client.stdin.flush()
        fan = json.loads(client.stdout.readline())
        out = {**opened, **fan, "rss_before_kb": before, "rss_held_kb": held_rss,
               "per_stream_kb": (held_rss - before) / max(1, opened["held"])}
        if capacity:
            client.stdin.write("capacity\n")
            client.stdin.flush()
            cap = json.loads(client.stdout.readline())
            cap_rss = _rss_kb(proc.pid)
            out.update(cap, rss_capacity_kb=cap_rss,
                       per_stream_capacity_kb=(cap_rss - before) / max(1, cap["capacity_held"]))
        client.stdin.write("quit\n")
        client.stdin.flush()
        client.wait(60)
        return out
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        stop_server(proc)


# --- the load client (its own process) ---------------------------------------------------------------------

async def _open(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /api/v1/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n"
                 f"Authorization: Bearer {token}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0] or b"content-length" in head.lower():
        writer.close()
        return None  # answered and ended: not held
    return reader, writer


async def _watch(reader: asyncio.StreamReader, i: int, got: dict[int, float]) -> None:
    tail = b""
    while True:
        try:
            data = await reader.read(65536)
        except (ConnectionError, OSError):
            return
        if not data:
            return
        if i not in got and b"event: notice" in tail + data:
            got[i] = time.time()
        tail = data[-16:]  # a frame split across reads


async def _open_many(port: int, tokens: list[str], start: int, count: int, conns: list, got: dict[int, float],
                     tasks: list, stop_on_refusal: bool) -> tuple[int, int, str]:
    sem = asyncio.Semaphore(64)
    refused = failed = 0
    stop = asyncio.Event()
    why = "all opened"

    async def one(i: int) -> None:
        nonlocal refused, failed, why
        async with sem:
            if stop.is_set():
                return
            try:
                pair = await _open(port, tokens[i % len(tokens)])
            except OSError as exc:
                failed += 1
                if stop_on_refusal:
                    why = f"client: {type(exc).__name__} {exc.errno}"
                    stop.set()
                return
            if pair is None:
                refused += 1
                if stop_on_refusal:
                    why = "server stopped holding new streams"
                    stop.set()
                return
            conns.append(pair)
            tasks.append(asyncio.create_task(_watch(pair[0], i, got)))

    await asyncio.gather(*(one(i) for i in range(start, start + count)))
    return refused, failed, why


async def _loadgen(port: int, tokens: list[str], streams: int, capacity: bool) -> None:
    conns: list = []
    tasks: list = []
    got: dict[int, float] = {}
    loop = asyncio.get_running_loop()
    t = time.perf_counter()
    refused, failed, _ = await _open_many(port, tokens, 0, streams, conns, got, tasks, False)
    print(json.dumps({"held": len(conns), "not_held": refused, "failed": failed,
                      "open_s": time.perf_counter() - t}), flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    t0 = float(line.split()[1])
    deadline = time.time() + 30
    while len(got) < len(conns) and time.time() < deadline:
        await asyncio.sleep(0.05)
    lat = sorted(v - t0 for v in got.values())
    print(json.dumps({"received": len(got), "p50_s": _percentile(lat, 0.5) if lat else None,
                      "p99_s": _percentile(lat, 0.99) if lat else None, "max_s": lat[-1] if lat else None}),
          flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    if line.strip() == "capacity":
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        room = soft - len(conns) - 64
        t = time.perf_counter()
        _, failed, why = await _open_many(port, tokens, streams, max(0, room), conns, got, tasks, True)
        if why == "all opened":
            why = f"client: its own file limit ({soft})"
        print(json.dumps({"capacity_held": len(conns), "capacity_stop": why,
                          "capacity_open_s": time.perf_counter() - t}), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
    for _, writer in conns:
        writer.close()


def loadgen(argv: list[str]) -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--streams", type=int, required=True)
    ap.add_argument("--capacity", action="store_true")
    args = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tokens = Path(args.tokens).read_text().split("\n")
    asyncio.run(_loadgen(args.port, tokens, args.streams, args.capacity))


# --- the two figures ---------------------------------------------------------------------------------------

def run_radar(pg_url: str | None, work: Path, *, streams: int = 5_000, capacity: bool = True) -> dict[str, Any]:
    """Both figures on a scratch database: PostgreSQL (``pg_url``: a server URL) when given, else SQLite."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from goldbean.migrate import upgrade
    from ledger.infra.books import Books
    from ledger.infra.db import make_engine
    from ledger.infra.keys import KeyStore

    name = f"goldbean_bench_radar_{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    if pg_url:
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{work / 'radar.db'}"
    try:
        upgrade(url)
        books = Books(engine=make_engine(url), keys=KeyStore(work / "instance" / "keys"))
        d = build_street(books)
        load_publish = load_note()
        pub = measure_publish(books, d)
        pub["load"] = load_publish
        fan = run_fanout(url, work, d, books, streams, capacity)
        fan["load"] = load_note()
        books.engine.dispose()
        return {"database": "postgresql" if pg_url else "sqlite", "volunteers": d["volunteer_count"],
                "publish": pub, "fanout": fan}
    finally:
        if pg_url:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "loadgen":
        loadgen(sys.argv[2:])
    else:  # python -m bench.radar [--no-capacity] [--streams N]: the two figures alone
        import tempfile

        from bench.run import pg_server_url

        folder = Path(tempfile.mkdtemp(prefix="goldbean-radar-"))
        result = run_radar(pg_server_url(), folder, streams=int(os.environ.get("RADAR_STREAMS", "5000")),
                           capacity="--no-capacity" not in sys.argv)
        print(json.dumps(result, indent=2, ensure_ascii=False))
