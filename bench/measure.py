"""One measurement in a child process, so that its resident memory growth is its own.

    python -m bench.measure {stream|verify-books|export|verify} URL KEYS_DIR OUT_DIR

``export`` writes OUT_DIR/journal.jsonl (``goldbean audit export``); ``verify`` checks that file
offline (``goldbean audit verify``) and removes it; ``verify-books`` is ``goldbean ledger verify``.

Prints one JSON line: seconds, rss_growth_mb (peak resident set minus the resident set just before
the measured work started) and a note.
"""

from __future__ import annotations

import csv
import json
import resource
import sys
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


STREAM_SQL = (
    "SELECT e.id, e.account_id, e.seq, e.transfer_id, e.side, e.pending_delta, e.posted_delta, e.balance_after, "
    "e.prev_hash, e.hash, e.created_at, t.transfer_key, t.kind, t.phase, t.debit_account_id, t.credit_account_id, "
    "t.amount FROM entries e JOIN transfers t ON t.id = e.transfer_id ORDER BY e.account_id, e.seq"
)


def stream(url: str, out: Path) -> str:
    """The database's own fastest way out: COPY on PostgreSQL, a plain cursor loop on SQLite."""
    if url.startswith("postgresql"):
        import psycopg
        from sqlalchemy.engine import make_url

        u = make_url(url)
        conninfo = f"host={u.host or '127.0.0.1'} port={u.port or 5432} user={u.username} dbname={u.database}"
        if u.password:
            conninfo += f" password={u.password}"
        with psycopg.connect(conninfo) as conn, conn.cursor() as cur, open(out, "wb") as fh:
            with cur.copy(f"COPY ({STREAM_SQL}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
                for block in copy:
                    fh.write(block)
        return "COPY ... TO STDOUT"
    import sqlite3

    db = sqlite3.connect(url.split("sqlite:///", 1)[1])
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        cur = db.execute(STREAM_SQL)
        w.writerow([d[0] for d in cur.description])
        while True:
            rows = cur.fetchmany(5000)
            if not rows:
                break
            w.writerows(rows)
    db.close()
    return "sqlite3 cursor loop"


def main() -> int:
    kind, url, keys_dir, out_dir = sys.argv[1:5]
    out = Path(out_dir) / f"{kind}.out"
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    note = ""
    if kind == "stream":
        base = rss_mb()
        t0 = time.perf_counter()
        note = stream(url, out)
        seconds = time.perf_counter() - t0
    elif kind in ("verify-books", "export", "verify"):
        from ledger.infra.books import Books
        from ledger.infra.db import make_engine
        from ledger.infra.keys import KeyStore

        books = Books(engine=make_engine(url), keys=KeyStore(keys_dir))
        export_file = Path(out_dir) / "journal.jsonl"
        if kind == "verify-books":
            from ledger.journal.verify import verify_books

            base = rss_mb()
            t0 = time.perf_counter()
            report = verify_books(books)
            seconds = time.perf_counter() - t0
            problems = [str(p) for p in report.problems]
            note = f"{report.entries} entries"
        elif kind == "export":
            from ledger.journal.export import export_journal

            books.keys.ensure("ledger")
            base = rss_mb()
            t0 = time.perf_counter()
            summary = export_journal(books, export_file)
            seconds = time.perf_counter() - t0
            problems = []
            note = f"{summary.lines} lines, {export_file.stat().st_size / 2**20:.0f} MB"
        else:
            from ledger.journal.export import trusted_keys, verify_export

            keys = trusted_keys(books)
            base = rss_mb()
            t0 = time.perf_counter()
            report = verify_export(export_file, keys)
            seconds = time.perf_counter() - t0
            problems = [str(p) for p in report.problems]
            note = report.verdict()[:120]
            export_file.unlink(missing_ok=True)
        if problems:
            print(f"{len(problems)} problems: {problems[0]}", file=sys.stderr)
            return 1
        out = Path(out_dir) / f"{kind}.unused"
    else:
        raise SystemExit(f"unknown measurement {kind}")
    print(json.dumps({"seconds": seconds, "rss_growth_mb": round(max(0.0, peak_mb() - base), 1), "note": note}))
    out.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
