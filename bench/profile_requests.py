"""Where a request's time goes: redemptions or awards through the whole app, in one process.

    python -m bench.profile_requests redeem|award [--db pg|sqlite] [-n 400] [--profile FILE] [--top 30]

Builds the district of ``bench.redeem_http`` (or ``bench.award_http``) in a scratch database, then
sends ``-n`` requests through Flask's test client (after 50 of warm-up) and prints, per request:

- the statements the app sent (counted at the driver: ``psycopg.Cursor.execute`` / ``sqlite3``
  ``execute``), the transactions' BEGINs and COMMITs, and the round trips to PostgreSQL (a pipeline's
  statements travel together: one round trip);
- the CPU time of this process (``time.process_time``: Flask, the app, SQLAlchemy, the driver) and, on
  PostgreSQL, of the server's backends serving it (``/proc/<pid>/stat`` of each backend);
- with ``--profile FILE``: a cProfile (CPU clock) of the measured requests, its top functions by own
  time and the share of each package (sqlalchemy, psycopg, flask, werkzeug, ledger, ...).

It measures CPU, not wall time, so it reads the same on a busy machine. No gunicorn, no HTTP socket:
that part is ``bench.redeem_http``'s.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WARMUP = 50
COUNTS: Counter[str] = Counter()
SQL: Counter[str] = Counter()


def _count_driver_calls() -> None:
    """Wrap the drivers' execute calls so that every statement the app sends is counted."""
    import psycopg

    def wrap(cls: Any, name: str, label: str) -> None:
        orig = getattr(cls, name)

        def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            conn = self.connection
            COUNTS["statements"] += 1
            text = query if isinstance(query, str) else getattr(query, "as_string", lambda c: str(query))(conn)
            SQL[" ".join(str(text).split())[:110]] += 1
            in_pipeline = getattr(conn, "_pipeline", None) is not None
            if not in_pipeline:
                COUNTS["round_trips"] += 1
                if conn.info.transaction_status == 0 and not conn.autocommit:  # psycopg sends BEGIN first
                    COUNTS["begin"] += 1
                    COUNTS["round_trips"] += 1
            else:
                COUNTS["pipelined"] += 1
            return orig(self, query, *args, **kwargs)

        setattr(cls, name, counted)

    wrap(psycopg.Cursor, "execute", "execute")
    wrap(psycopg.Cursor, "executemany", "executemany")
    orig_commit = psycopg.Connection.commit

    def commit(self: Any) -> Any:
        if self.info.transaction_status != 0:
            COUNTS["commit"] += 1
            if getattr(self, "_pipeline", None) is None:  # else it travels with the pipeline's sync
                COUNTS["round_trips"] += 1
        return orig_commit(self)

    psycopg.Connection.commit = commit  # type: ignore[method-assign]
    orig_pipeline_sync = psycopg.Connection.pipeline

    def pipeline(self: Any) -> Any:
        COUNTS["pipelines"] += 1
        if self.info.transaction_status == 0 and not self.autocommit:
            COUNTS["begin"] += 1
        COUNTS["round_trips"] += 1
        return orig_pipeline_sync(self)

    psycopg.Connection.pipeline = pipeline  # type: ignore[method-assign]


def _count_sqlite(engine: Any) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        COUNTS["statements"] += 1
        SQL[" ".join(statement.split())[:110]] += 1


def _backend_cpu(url: str) -> float:
    """CPU seconds of the server backends connected to the database of ``url`` (same machine only)."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    total = 0.0
    with psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username, dbname="postgres",
                         autocommit=True) as c:
        pids = [r[0] for r in c.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (u.database,))]
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def _redeem_requests(url: str, instance: Path, n: int) -> tuple[list[Any], dict[str, Any]]:
    from bench.redeem_http import TILLS, build_district
    from ledger.infra.books import Books
    from ledger.infra.keys import KeyStore
    from ledger.redemption import codes

    world = build_district(url, instance, TILLS)
    signer = Books(engine=None, keys=KeyStore(instance / "keys"))  # type: ignore[arg-type]
    tills = list(zip(world["till_keys"], world["wallets"]))
    reqs = []
    for i in range(n + WARMUP):
        key, wallet = tills[i % len(tills)]
        reqs.append(("/api/v1/redemptions", {"code": codes.issue_wallet_code(signer, wallet).code, "amount": 1},
                     {"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex}, 201))
    return reqs, {}


def _award_requests(url: str, instance: Path, n: int) -> tuple[list[Any], dict[str, Any]]:
    from bench.award_http import access_tokens, build_award_world, write_settings

    officers = 8
    world = build_award_world(url, instance, officers, (n + WARMUP) // officers + 1)
    tokens = access_tokens(instance, world["officers"])
    reqs = []
    for i in range(n + WARMUP):
        o = i % officers
        reqs.append((f"/api/v1/claims/{world['claims'][o][i // officers]}/verify", {"reason": "patrol seen"},
                     {"Authorization": f"Bearer {tokens[o]}"}, 200))
    return reqs, {"GOLDBEAN_LEDGER_SETTINGS": str(write_settings(instance))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=["redeem", "award"])
    ap.add_argument("--db", choices=["pg", "sqlite"], default="pg")
    ap.add_argument("-n", type=int, default=400)
    ap.add_argument("--profile", help="write a cProfile of the measured requests here")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--sql", action="store_true", help="print each statement sent and how often")
    args = ap.parse_args(argv)

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from goldbean.migrate import upgrade

    work = Path(tempfile.mkdtemp(prefix="goldbean-profile-"))
    instance = work / "instance"
    instance.mkdir()
    admin = None
    if args.db == "pg":
        from goldbean.config import normalise_url

        server = normalise_url(os.environ.get("GOLDBEAN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
        name = f"goldbean_profile_{os.getpid()}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{work / 'profile.db'}"
    try:
        upgrade(url)
        reqs, env = (_redeem_requests if args.kind == "redeem" else _award_requests)(url, instance, args.n)
        os.environ.update(env)
        os.environ.setdefault("GOLDBEAN_LOG_LEVEL", "WARNING")  # as bench.redeem_http serves it
        from goldbean.app import create_app

        app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(instance), "SESSION_COOKIE_SECURE": False})
        client = app.test_client()
        if args.db == "pg":
            _count_driver_calls()
        else:
            _count_sqlite(app.extensions["goldbean_books"].engine if "goldbean_books" in app.extensions
                          else next(v for v in app.extensions.values() if hasattr(v, "engine")).engine)

        def send(req: Any) -> None:
            path, body, headers, status = req
            resp = client.post(path, json=body, headers=headers)
            if resp.status_code != status:
                raise SystemExit(f"{path}: HTTP {resp.status_code}: {resp.get_data(as_text=True)[:300]}")

        for req in reqs[:WARMUP]:
            send(req)
        COUNTS.clear()
        SQL.clear()
        measured = reqs[WARMUP:]
        server_cpu0 = _backend_cpu(url) if args.db == "pg" else 0.0
        COUNTS.clear()
        SQL.clear()
        prof = cProfile.Profile(time.process_time) if args.profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        for req in measured:
            send(req)
        if prof:
            prof.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        counts = dict(COUNTS)
        server_cpu = (_backend_cpu(url) - server_cpu0) if args.db == "pg" else None
        n = len(measured)
        out = {"kind": args.kind, "db": args.db, "requests": n,
               "app_cpu_ms": round(cpu / n * 1000, 3), "wall_ms": round(wall / n * 1000, 3),
               "server_cpu_ms": None if server_cpu is None else round(server_cpu / n * 1000, 3),
               **{k: round(v / n, 2) for k, v in sorted(counts.items())}}
        if args.sql:
            for stmt, count in SQL.most_common():
                print(f"{count / n:5.2f}  {stmt}")
        if prof:
            prof.dump_stats(args.profile)
            buf = io.StringIO()
            st = pstats.Stats(prof, stream=buf)
            st.sort_stats("tottime").print_stats(args.top)
            print("\n".join(buf.getvalue().splitlines()[:args.top + 12]))
            shares: Counter[str] = Counter()
            for (file, _line, _fn), (_cc, _nc, tt, _ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
                shares[_package(file)] += tt
            total = sum(shares.values()) or 1
            out["profile_shares"] = {k: round(v / total, 3) for k, v in shares.most_common(12)}
        print(json.dumps(out))
        return 0
    finally:
        if admin is not None:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            admin.dispose()


def _package(file: str) -> str:
    if file.startswith("~") or file.startswith("<"):
        return "builtins"
    for marker in ("site-packages/", "lib/python3"):
        if marker in file:
            rest = file.split(marker, 1)[1].lstrip("/")
            parts = rest.split("/")
            return parts[0] if marker == "site-packages/" else "stdlib:" + (parts[1] if len(parts) > 1 else parts[0])
    rel = os.path.relpath(file, ROOT)
    return rel.split("/")[0] + ("/" + rel.split("/")[1] if rel.startswith("ledger/") and "/" in rel[7:] else "")


if __name__ == "__main__":
    sys.exit(main())
