"""Where an HTTP request's CPU goes across processes: one kind of request served by gunicorn alone
(``bench.redeem_http.HttpBench``: redeem or award), closed-loop rounds, and per request the CPU of the
gunicorn workers, of every PostgreSQL backend and of the load generator (``/proc/<pid>/stat`` before and
after each round). A diagnosis tool, not a figure of ``make bench``; docs/performance.md.

    GOLDBEAN_TEST_POSTGRES_URL=... .venv/bin/python -m bench.http_cpu redeem|award [ROUNDS] [SECONDS]

``GOLDBEAN_THREADS=2`` (the environment the server reads) compares gunicorn's threaded worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.redeem_http import HttpBench

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: str) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def workers_cpu_s(master: int) -> float:
    """CPU seconds of the gunicorn master's children (the workers) so far."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return sum(_cpu_s(pid) for pid in out.split())


def postgres_cpu_s() -> float:
    """CPU seconds of every process named postgres on this machine so far (the server is local)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "postgres":
                    total += _cpu_s(pid)
        except OSError:  # the process ended meanwhile
            pass
    return total


def main(argv: list[str]) -> int:
    kind = argv[0] if argv else "redeem"
    rounds = int(argv[1]) if len(argv) > 1 else 3
    secs = float(argv[2]) if len(argv) > 2 else 5.0
    server = os.environ["GOLDBEAN_TEST_POSTGRES_URL"].replace("+psycopg", "")
    bench = HttpBench(server, Path(tempfile.mkdtemp(prefix="goldbean-http-cpu-")), kind, secs, rounds, 2)
    try:
        assert bench.server is not None
        for r in range(rounds):
            w0, p0 = workers_cpu_s(bench.server.pid), postgres_cpu_s()
            rnd, answer = bench.closed(secs)
            w1, p1 = workers_cpu_s(bench.server.pid), postgres_cpu_s()
            done = max(1.0, (rnd.value or 0) * secs)
            print(json.dumps({"round": r, "per_s": rnd.value, "errors": answer.get("errors"),
                              "workers_cpu_ms": round((w1 - w0) / done * 1000, 2),
                              "postgres_cpu_ms": round((p1 - p0) / done * 1000, 2),
                              "loadgen_cpu_ms": answer.get("loadgen_cpu_ms"), "load": round(os.getloadavg()[0], 1)}),
                  flush=True)
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
