"""What the open-loop HTTP bursts share (``bench/checkin_burst.py``, ``bench/survey_burst.py``): a scratch
PostgreSQL database, gunicorn started as ``goldbean serve --app-only`` starts it (``gunicorn -c
python:goldbean.serve``) and waited for on ``/healthz``, the CPU its workers used, a keep-alive client for
the load generator's threads, percentiles, and the load average as the figures' notes print it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_scratch_database(server_url: str, name: str) -> tuple[Any, str]:
    """A fresh database ``name`` on the server (dropped first if a crashed run left it); returns the
    AUTOCOMMIT admin engine (for ``drop_scratch_database``) and the new database's URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    return admin, make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_scratch_database(admin: Any, name: str) -> None:
    from sqlalchemy import text

    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def cpu_seconds(master: int) -> float:
    """User + system CPU seconds of gunicorn's workers (the master's children) so far: the server's own cost
    per request, which a busy shared machine does not inflate the way it inflates latency."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # ppid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def wait_healthy(port: int, log: Path) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not answer /healthz within 60 s: " + log.read_text()[-500:])


def start_gunicorn(url: str, instance: Path, log: Path, workers: int | None = None) -> tuple[subprocess.Popen, int, int]:
    """gunicorn as ``goldbean serve --app-only`` runs it, on a free port, answering ``/healthz``; returns the
    master process, the port and the worker count (default: ``goldbean serve``'s, 2 × CPUs + 1, at most 8)."""
    from goldbean.serve import default_workers

    port = free_port()
    n_workers = workers or default_workers()
    env = {**os.environ, "GOLDBEAN_DATABASE_URL": url, "GOLDBEAN_INSTANCE_PATH": str(instance),
           "GOLDBEAN_BIND": f"127.0.0.1:{port}", "GOLDBEAN_WORKERS": str(n_workers),
           "GOLDBEAN_SECURE_COOKIES": "0", "GOLDBEAN_LOG_LEVEL": "WARNING", "GOLDBEAN_DEMO": "0"}
    with open(log, "wb") as err:  # the child keeps its own descriptor
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:goldbean.serve",
                                   "goldbean.app:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=err)
    try:
        wait_healthy(port, log)
    except BaseException:
        stop_gunicorn(server)
        raise
    return server, port, n_workers


def stop_gunicorn(server: subprocess.Popen | None) -> None:
    if server is None:
        return
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def run_loadgen(module: str, world_file: Path, port: int, timeout_s: float) -> dict[str, Any]:
    """``python -m <module> loadgen <world> <port>`` in its own process; its last line of output, as JSON."""
    proc = subprocess.run([sys.executable, "-m", module, "loadgen", str(world_file), str(port)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Client:
    """One keep-alive connection per thread; each request's status, body and seconds."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return conn

    def call(self, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw[:200].decode(errors="replace")


def run_schedule(plans: list[dict[str, Any]], arrive: Callable[[dict[str, Any], float], None], lock: Any,
                 unexpected: list[str], threads: int = 64) -> float:
    """The open loop of a burst: each plan's ``arrive(plan, due)`` at ``t0 + plan["at"]`` (``t0`` one second from
    now), from ``threads`` threads; an exception is reported in ``unexpected`` and the rest goes on. Returns the
    seconds from ``t0`` to the last answer."""
    nxt = [0]
    t0 = time.perf_counter() + 1.0

    def worker() -> None:
        while True:
            with lock:
                k = nxt[0]
                nxt[0] += 1
            if k >= len(plans):
                return
            due = t0 + plans[k]["at"]
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                arrive(plans[k], due)
            except Exception as exc:  # reported, the rest goes on
                with lock:
                    unexpected.append(f"{type(exc).__name__}: {exc}"[:200])

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - t0


def pct(values: list[float], p: float) -> float | None:
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))] if v else None


def load_note(res: dict[str, Any]) -> str:
    return f"load avg {res['load_before'][0]:.1f} before, {res['load_after'][0]:.1f} after"


def measure_for_report(name: str, what: str, run: Callable[[str, Path], dict[str, Any]], server: str | None,
                       work: Path, figure: Any, add: Any, log: Any) -> dict[str, Any] | None:
    """``make bench``'s part of a burst: ``run(server, work)`` on the PostgreSQL server, or ``None`` once the
    burst's p99 figure says why there is no measurement (no server, or the run failed: the rest of the table
    stands)."""
    if not server:
        add(figure(f"{name}-p99", None, "ms", note="needs PostgreSQL (GOLDBEAN_TEST_POSTGRES_URL)"))
        return None
    log(f"postgresql: {name}, {what}")
    try:
        return run(server, work)
    except Exception as exc:
        add(figure(f"{name}-p99", None, "ms", note=f"failed: {type(exc).__name__}: {exc}"[:400]))
        return None


def server_from_environment() -> str | None:
    """The PostgreSQL server a burst run alone uses (``GOLDBEAN_TEST_POSTGRES_URL``), or ``None`` after saying so."""
    from goldbean.config import normalise_url

    server = normalise_url(os.environ.get("GOLDBEAN_TEST_POSTGRES_URL", ""))
    if not server:
        print("GOLDBEAN_TEST_POSTGRES_URL is not set", file=sys.stderr)
        return None
    return server
