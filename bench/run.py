"""``make bench``: the ledger's speed next to the database's own, on seeded books.

Runs on SQLite always and on PostgreSQL when ``GOLDBEAN_TEST_POSTGRES_URL`` names a reachable server
(a scratch database ``goldbean_bench_<pid>`` is created there and dropped at the end). Prints a table
and writes ``bench/report.json``: one object per figure with name, value, unit, and, where the figure
has a reference, the reference's name and the ratio to it. See ``docs/performance.md``.

    python -m bench.run            # full: 10^4 accounts, 10^6 entries
    python -m bench.run --quick    # 10^4 accounts, 10^5 entries, short runs (< 3 minutes)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, create_engine, select, text, update
from sqlalchemy.engine import make_url

from bench import machine
from bench.peers import MAX_APART_S, Round, paired_ratio, timed
from bench.redeem_http import OPEN_RATE, TILLS, WORKERS
from ledger import journal
from ledger.infra.books import Books
from ledger.infra.db import make_engine
from ledger.infra.keys import KeyStore
from ledger.journal.chain import entry_hash, genesis_hash
from ledger.journal.posting import transfer
from ledger.schema import Account

ACCOUNTS = Account.__table__
REPORT = ROOT / "bench" / "report.json"
PGBENCH_SCRIPT = ROOT / "bench" / "pgbench_ledger.sql"
FUNDING = 1_000_000  # beans per wallet: no benchmark transfer ever runs out


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    ratio: float | None = None
    reference: str | None = None
    target: str | None = None
    note: str | None = None
    load: float | None = None  # the 1-minute load average when the figure was taken (2 cores: > 2 is busy)


@dataclass
class Plan:
    quick: bool
    wallets: int = 10_000
    small_entries: int = 10_000  # growth: the small book
    entries: int = 1_000_000  # growth, verify, export, stream: the big book
    duration: float = 15.0  # seconds per post-* figure and its reference (split into alternating rounds)
    batches: int = 10  # linked batches of 1,000 for batch-*, per round
    batch_rounds: int = 3
    reads: int = 2_000  # balance reads per growth point
    growth_posts: int = 300  # single-writer posts per growth point and round
    growth_rounds: int = 3
    post_rounds: int = 3  # every figure with a reference alternates with it in rounds of duration / rounds seconds
    workers: int = 16
    procs: int = 2  # processes the 16 workers are spread over (threads within)
    http: bool = True  # redeem-http and award-http
    peers: bool = True  # django-hordak and python-accounting, each in a throwaway virtualenv

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(quick=True, entries=100_000, duration=6.0, batches=5, reads=500, growth_posts=150,
                       growth_rounds=2, post_rounds=2)
        return cls(quick=False)


FIGURES: list[Figure] = []


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def add(fig: Figure) -> Figure:
    fig.load = round(os.getloadavg()[0], 2)
    FIGURES.append(fig)
    v = "not measured" if fig.value is None else f"{fig.value:,.3f} {fig.unit}"
    log(f"  {fig.name}: {v}" + (f"  (ratio {fig.ratio:.2f} to {fig.reference})" if fig.ratio is not None else "")
        + (f"  [{fig.note}]" if fig.note else ""))
    return fig


# --- books ---------------------------------------------------------------------------------------

def make_books(url: str, keys_dir: Path, **kw: Any) -> Books:
    return Books(engine=make_engine(url, **kw), keys=KeyStore(keys_dir))


def create_schema(url: str) -> None:
    from goldbean.migrate import upgrade

    try:
        upgrade(url)
    except Exception as exc:  # another helper's migration in progress: the core tables suffice
        log(f"  migrations failed ({type(exc).__name__}: {exc}); creating the ledger tables from the models")
        from ledger.schema import Base

        engine = create_engine(url)
        Base.metadata.drop_all(engine)
        core = [Base.metadata.tables[n] for n in ("accounts", "transfers", "entries", "checkpoints")]
        Base.metadata.create_all(engine, tables=core)
        engine.dispose()


@dataclass
class Seeded:
    donations: int
    wallets: list[int]  # all wallet ids, ascending and contiguous
    funded: int = 0  # how many wallets (from the first) have beans
    entries: int = 0
    transfers: int = 0
    keyseq: int = 0


def open_accounts(books: Books, n: int) -> Seeded:
    """One donations account (may go negative) and ``n`` wallets, in one transaction."""
    with books.session() as s:
        donations = journal.open_account_in(s, "bench:donations", "donations").id
        conn = s.connection()
        conn.execute(ACCOUNTS.insert(), [
            {"code": f"bench:w{i:06d}", "kind": "wallet", "name": "", "owner_ref": None, "status": "open",
             "no_negative": True, "debits_pending": 0, "debits_posted": 0, "credits_pending": 0,
             "credits_posted": 0, "entry_count": 0, "chain_head": ""} for i in range(n)])
        rows = conn.execute(select(ACCOUNTS.c.id, ACCOUNTS.c.code, ACCOUNTS.c.kind)
                            .where(ACCOUNTS.c.code.like("bench:w%")).order_by(ACCOUNTS.c.id)).all()
        conn.execute(update(ACCOUNTS).where(ACCOUNTS.c.id == bindparam("b_id"))
                     .values(chain_head=bindparam("b_head")),
                     [{"b_id": r.id, "b_head": genesis_hash(r.id, r.code, r.kind)} for r in rows])
    ids = [r.id for r in rows]
    assert ids == list(range(ids[0], ids[0] + n)), "wallet ids are contiguous"
    return Seeded(donations, ids)


def _key(seeded: Seeded, tag: str) -> str:
    seeded.keyseq += 1
    return f"{tag}{seeded.keyseq}"


def fund(books: Books, seeded: Seeded, upto: int) -> float:
    """Give wallets [funded, upto) their beans from donations, in linked batches of 1,000."""
    t0 = time.perf_counter()
    n0 = seeded.funded
    while seeded.funded < upto:
        chunk = seeded.wallets[seeded.funded:min(upto, seeded.funded + 1000)]
        journal.post(books, [transfer(_key(seeded, "f"), "donate", seeded.donations, w, FUNDING) for w in chunk])
        seeded.funded += len(chunk)
        seeded.transfers += len(chunk)
        seeded.entries += 2 * len(chunk)
    return (seeded.funded - n0) / (time.perf_counter() - t0)


def random_batch(seeded: Seeded, rnd: random.Random, n: int = 1000, tag: str = "s") -> list[Any]:
    ids = seeded.wallets[:seeded.funded]
    out = []
    for _ in range(n):
        a, b = rnd.sample(ids, 2)
        out.append(transfer(_key(seeded, tag), "redeem", a, b, rnd.randint(1, 10)))
    return out


def grow(books: Books, seeded: Seeded, entries: int, rnd: random.Random) -> float:
    """Random wallet-to-wallet transfers in linked batches of 1,000 until the books hold ``entries``."""
    t0 = time.perf_counter()
    done = 0
    while seeded.entries < entries:
        n = min(1000, max(1, (entries - seeded.entries) // 2))
        journal.post(books, random_batch(seeded, rnd, n))
        seeded.transfers += n
        seeded.entries += 2 * n
        done += n
    return done / max(time.perf_counter() - t0, 1e-9)


def clone_books(url: str, admin_url: str | None, tag: str) -> str:
    """A copy of the books as they stand (no connection may be open to them)."""
    if url.startswith("sqlite"):
        src_path = make_url(url).database
        dst_path = f"{src_path[:-3]}-{tag}.db"
        src, dst = sqlite3.connect(src_path), sqlite3.connect(dst_path)
        src.backup(dst)
        src.close()
        dst.close()
        return f"sqlite:///{dst_path}"
    src = make_url(url).database
    name = f"{src}_{tag}"
    admin = create_engine(admin_url or url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{src}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_clone(url: str, admin_url: str | None) -> None:
    if url.startswith("sqlite"):
        for ext in ("", "-wal", "-shm"):
            Path(make_url(url).database + ext).unlink(missing_ok=True)
        return
    admin = create_engine(admin_url or url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


# --- measurements on the ledger ------------------------------------------------------------------

def measure_batches(books: Books, seeded: Seeded, plan: Plan, rnd: random.Random, tag: str) -> list[float]:
    """Transfers/s of ``plan.batch_rounds`` rounds of ``plan.batches`` linked batches of 1,000 each."""
    rates = []
    for _ in range(plan.batch_rounds):
        batches = [random_batch(seeded, rnd, 1000, tag) for _ in range(plan.batches)]
        t0 = time.perf_counter()
        for b in batches:
            journal.post(books, b)
        rates.append(plan.batches * 1000 / (time.perf_counter() - t0))
        seeded.transfers += plan.batches * 1000
        seeded.entries += plan.batches * 2000
    return rates


def measure_growth_point(books: Books, seeded: Seeded, plan: Plan, rnd: random.Random, tag: str) -> tuple[float, float]:
    """(balance read in ms, single-writer posts/s) on the books as they stand."""
    ids = seeded.wallets[:seeded.funded]
    sample = [rnd.choice(ids) for _ in range(plan.reads)]
    t0 = time.perf_counter()
    for acc in sample:
        journal.get_account(books, acc).balance
    read_ms = (time.perf_counter() - t0) / plan.reads * 1000
    reqs = []
    for i in range(plan.growth_posts):
        a, b = rnd.sample(ids, 2)
        reqs.append(transfer(f"{tag}{i}", "redeem", a, b, rnd.randint(1, 10)))
    t0 = time.perf_counter()
    for r in reqs:
        journal.post(books, r)
    rate = plan.growth_posts / (time.perf_counter() - t0)
    seeded.transfers += plan.growth_posts
    seeded.entries += 2 * plan.growth_posts
    return read_ms, rate


def _post_worker(url: str, keys_dir: str, ids: list[int], threads: int, start_at: float, duration: float,
                 seed: int, out: Any) -> None:
    books = make_books(url, Path(keys_dir), pool_size=threads, max_overflow=0) if url.startswith("postgresql") \
        else make_books(url, Path(keys_dir))
    counts = [0] * threads
    failures = [0] * threads
    tag = uuid.uuid4().hex[:8]

    def loop(t: int) -> None:
        rnd = random.Random(seed * 1000 + t)
        pairs = [rnd.sample(ids, 2) for _ in range(4096)]
        amounts = [rnd.randint(1, 10) for _ in range(4096)]
        journal.get_account(books, ids[0])  # connect before the clock starts
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + duration
        n = 0
        while True:
            a, b = pairs[n % 4096]
            try:
                journal.post(books, transfer(f"w{tag}-{t}-{n}", "redeem", a, b, amounts[n % 4096]))
            except Exception:  # counted, reported
                failures[t] += 1
            if time.time() > end:
                break
            n += 1
        counts[t] = n

    ths = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    books.engine.dispose()
    out.put((sum(counts), sum(failures)))


def measure_concurrent_posts(url: str, keys_dir: Path, seeded: Seeded, workers: int, procs: int,
                             duration: float) -> float:
    """Transfers/s of ``workers`` concurrent posters (threads spread over ``procs`` processes)."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    ids = seeded.wallets[:seeded.funded]
    start_at = time.time() + 2.0 + 0.3 * procs
    per = [workers // procs + (1 if i < workers % procs else 0) for i in range(procs)]
    ps = [ctx.Process(target=_post_worker, args=(url, str(keys_dir), ids, k, start_at, duration, i, q))
          for i, k in enumerate(per) if k]
    for p in ps:
        p.start()
    results = [q.get(timeout=duration + 120) for _ in ps]
    for p in ps:
        p.join()
    done = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    if failed:
        log(f"  {failed} posts failed during the run")
    seeded.transfers += done
    seeded.entries += 2 * done
    return done / duration


# --- references ----------------------------------------------------------------------------------

def pg_conninfo(url: str) -> dict[str, str]:
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    return {"env": env, "args": args, "db": u.database}  # type: ignore[dict-item]


def find_pgbench() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(cand)
    return None


def run_pgbench(db_url: str, seeded: Seeded, clients: int, seconds: float) -> tuple[float | None, str]:
    """pgbench's TPS for the ledger transfer as SQL (``bench/pgbench_ledger.sql``) on ``db_url``."""
    exe = find_pgbench()
    if exe is None:
        return None, "pgbench not found (PostgreSQL's client tools)"
    ci = pg_conninfo(db_url)
    cmd = [exe, *ci["args"], "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(max(1, round(seconds))),
           "-n", "-f", str(PGBENCH_SCRIPT), "-D", f"minid={seeded.wallets[0]}", "-D", f"n={seeded.funded}",
           ci["db"]]
    proc = subprocess.run(cmd, env=ci["env"], capture_output=True, text=True, timeout=seconds + 120)
    if proc.returncode != 0:
        return None, f"pgbench failed: {proc.stderr.strip()[-400:]}"
    tps = None
    failed = ""
    for line in proc.stdout.splitlines():
        if line.startswith("tps =") and tps is None:
            tps = float(line.split("=")[1].split()[0])
        if "failed transactions" in line:
            failed = line.strip()
    return tps, failed


def sqlite3_ledger(path: Path, seeded: Seeded, duration: float) -> float:
    """The same transfer with the stdlib ``sqlite3`` and hand-written SQL, one writer, synchronous=FULL."""
    db = sqlite3.connect(str(path), isolation_level=None)
    for p in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
        db.execute(f"PRAGMA {p}")
    rnd = random.Random(7)
    ids = seeded.wallets[:seeded.funded]
    pairs = [rnd.sample(ids, 2) for _ in range(4096)]
    tag = uuid.uuid4().hex[:8]
    lock = ("SELECT id, status, no_negative, debits_pending, debits_posted, credits_pending, credits_posted, "
            "entry_count, chain_head FROM accounts WHERE id IN (?, ?) ORDER BY id")
    ins_t = ("INSERT INTO transfers (transfer_key, kind, phase, debit_account_id, credit_account_id, amount, "
             "actor, reason) VALUES (?, 'redeem', 'single', ?, ?, ?, 'bench', '') RETURNING id")
    ins_e = ("INSERT INTO entries (account_id, seq, transfer_id, side, pending_delta, posted_delta, balance_after, "
             "prev_hash, hash) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?), (?, ?, ?, ?, 0, ?, ?, ?, ?)")
    upd = "UPDATE accounts SET debits_posted = ?, credits_posted = ?, entry_count = ?, chain_head = ? WHERE id = ?"
    end = time.perf_counter() + duration
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() < end:
        a, b = pairs[n % 4096]
        amount = 1 + n % 10
        key = f"q{tag}-{n}"
        db.execute("BEGIN IMMEDIATE")
        rows = {r[0]: list(r) for r in db.execute(lock, (a, b))}
        da, cb = rows[a], rows[b]
        if da[1] != "open" or cb[1] != "open" or (da[2] and da[6] - da[4] - da[3] < amount):
            db.execute("ROLLBACK")
            n += 1
            continue
        tid = db.execute(ins_t, (key, a, b, amount)).fetchone()[0]
        params = []
        for side, acc, other in (("D", da, b), ("C", cb, a)):
            if side == "D":
                acc[4] += amount
            else:
                acc[6] += amount
            acc[7] += 1
            bal = acc[6] - acc[4]
            h = entry_hash(acc[8], account_id=acc[0], seq=acc[7], transfer_key=key, kind="redeem", phase="single",
                           side=side, counterparty_id=other, amount=amount, pending_delta=0, posted_delta=amount,
                           balance_after=bal, actor="bench", reason="", reference=None)
            params += [acc[0], acc[7], tid, side, amount, bal, acc[8], h]
            acc[8] = h
        db.execute(ins_e, params)
        db.executemany(upd, [(acc[4], acc[6], acc[7], acc[8], acc[0]) for acc in (da, cb)])
        db.execute("COMMIT")
        n += 1
    rate = n / (time.perf_counter() - t0)
    db.close()
    return rate


# --- verify, export, stream (each in a child process, to measure its resident memory) ------------

def child(kind: str, url: str, keys_dir: Path, out_dir: Path) -> tuple[float | None, float | None, str]:
    proc = subprocess.run([sys.executable, "-m", "bench.measure", kind, url, str(keys_dir), str(out_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return None, None, (proc.stderr.strip().splitlines() or ["failed"])[-1][:300]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return res.get("seconds"), res.get("rss_growth_mb"), res.get("note", "")


# --- one database --------------------------------------------------------------------------------

def bench_database(db: str, url: str, plan: Plan, work: Path, admin_url: str | None = None) -> None:
    suffix = "pg" if db == "postgresql" else "sqlite"
    keys_dir = work / f"keys-{suffix}"
    rnd = random.Random(42)
    log(f"{db}: creating the schema")
    create_schema(url)
    books = make_books(url, keys_dir)
    log(f"{db}: opening {plan.wallets:,} wallets")
    seeded = open_accounts(books, plan.wallets)
    fund(books, seeded, plan.small_entries // 2)
    log(f"{db}: keeping a copy of the small book ({seeded.entries:,} entries) for growth")
    books.engine.dispose()
    small_url = clone_books(url, admin_url, "small")
    small_seeded = Seeded(seeded.donations, seeded.wallets, seeded.funded, seeded.entries, seeded.transfers)
    n_small = seeded.entries
    log(f"{db}: funding every wallet, then random transfers to {plan.entries:,} entries")
    t0 = time.perf_counter()
    fund(books, seeded, plan.wallets)
    grow(books, seeded, plan.entries, rnd)
    log(f"{db}: seeded {seeded.transfers:,} transfers, {seeded.entries:,} entries in {time.perf_counter() - t0:.0f}s")
    if db == "postgresql":
        for u in (url, small_url):
            ae = create_engine(u, isolation_level="AUTOCOMMIT")
            with ae.connect() as c:
                c.exec_driver_sql("VACUUM ANALYZE")
            ae.dispose()
    n_big = seeded.entries
    log(f"{db}: growth: {n_small:,} vs {n_big:,} entries, {plan.growth_rounds} rounds each, alternating")
    small_books = make_books(small_url, keys_dir)
    smalls, bigs = [], []
    started = time.time()
    for r in range(plan.growth_rounds):
        smalls.append(measure_growth_point(small_books, small_seeded, plan, rnd, f"gs{r}-"))
        bigs.append(measure_growth_point(books, seeded, plan, rnd, f"gb{r}-"))
    span = time.time() - started
    small_books.engine.dispose()
    drop_clone(small_url, admin_url)
    # the best of the rounds on each side: the machine's noise only ever slows a round down
    small = (min(x[0] for x in smalls), max(x[1] for x in smalls))
    big = (min(x[0] for x in bigs), max(x[1] for x in bigs))
    apart = span > MAX_APART_S  # the best rounds of the two sides could lie further apart than a minute
    refused = f"; no ratio: the rounds spanned {span:.0f} s, more than {MAX_APART_S:.0f} s" if apart else ""
    add(Figure(f"growth-read-{suffix}", big[0], "ms", ratio=None if apart else big[0] / small[0],
               reference=f"{small[0]:.3f} ms at {n_small:,} entries", target="<= 1.2",
               note=f"balance read (get_account) at {n_big:,} entries; ratio = big book / small book; "
                    f"{plan.growth_rounds} alternating rounds in {span:.0f} s{refused}"))
    add(Figure(f"growth-post-{suffix}", big[1], "transfers/s", ratio=None if apart else small[1] / big[1],
               reference=f"{small[1]:.0f}/s at {n_small:,} entries", target="<= 1.2",
               note=f"single-writer posting at {n_big:,} entries; ratio = small-book rate / big-book rate; "
                    f"{plan.growth_rounds} alternating rounds in {span:.0f} s{refused}"))

    log(f"{db}: linked batches of 1,000")
    rates = measure_batches(books, seeded, plan, rnd, "b")
    add(Figure(f"batch-{suffix}", min(rates), "transfers/s", target=">= 10000 in every round",
               note=f"the slowest of {len(rates)} rounds of {plan.batches} batches; rounds "
                    + ", ".join(f"{r:.0f}" for r in rates)))

    # verify / stream / export before the concurrent runs so they see exactly the seeded books
    books.engine.dispose()
    log(f"{db}: stream, verify and export of {seeded.entries:,} entries")
    size = f"{seeded.entries // 10**6}m" if seeded.entries >= 10**6 else f"{seeded.entries // 1000}k"
    # the reference (the database's own stream) is measured again right before each of them: alternately
    kinds = [("export", "<= 3, rss <= 64 MB"), ("verify", "<= 4, rss <= 64 MB")]
    if not plan.quick:
        kinds.append(("verify-books", None))  # goldbean ledger verify, on the database itself
    streams: list[Round] = []
    for kind, target in kinds:
        t0 = time.time()
        stream_s, stream_mb, stream_note = child("stream", url, keys_dir, work)
        streams.append(Round(t0, time.time(), stream_s or 0.0))
        t1 = time.time()
        secs, mb, note = child(kind, url, keys_dir, work)
        fig = Figure(f"{kind}-{size}-{suffix}", secs, "s", reference=f"stream-{size}-{suffix}", target=target,
                     note=(f"rss +{mb} MB; " if mb is not None else "") + note)
        if secs is not None and stream_s:
            fig.ratio, how = paired_ratio([Round(t1, time.time(), secs)], [streams[-1]])
            fig.note = f"{fig.note}; stream measured right before: {stream_s:.3f} s" + ("" if fig.ratio else f"; {how}")
        add(fig)
    add(Figure(f"stream-{size}-{suffix}", min(r.value for r in streams), "s",
               note=f"{seeded.entries:,} entries to CSV by {stream_note}, rss +{stream_mb} MB; best of "
                    f"{len(streams)}, each right before the figure it is the reference of"))

    if db == "postgresql":
        pg_rounds(url, admin_url, keys_dir, seeded, plan, work)
    else:
        sqlite_rounds(url, keys_dir, seeded, plan, work)
    books.engine.dispose()


def _rounds_note(rounds: list[Round]) -> str:
    return "rounds " + ", ".join(f"{r.value:.0f}" for r in rounds)


def add_with_reference(name: str, rounds: list[Round], unit: str, ref: Figure | None, ref_rounds: list[Round],
                       target: str, note: str, *, inverse: bool = False, ratio_name: str | None = None) -> Figure:
    """The figure (best of its rounds) and its ratio to a reference measured alternately with it: the median
    of the rounds' ratios (``inverse``: reference / figure), never from sides more than a minute apart."""
    fig = Figure(name, max(r.value for r in rounds) if rounds else None, unit, target=target,
                 note=f"{note}; {_rounds_note(rounds)}")
    if ref is not None and rounds and ref_rounds:
        value, how = paired_ratio(ref_rounds, rounds) if inverse else paired_ratio(rounds, ref_rounds)
        fig.ratio, fig.reference = value, ratio_name or ref.name
        fig.note += f"; {how}"
    return add(fig)


def sqlite_rounds(url: str, keys_dir: Path, seeded: Seeded, plan: Plan, work: Path) -> None:
    """post-sqlite-1, sqlite3-ledger-1 and python-accounting, alternately, in ``plan.post_rounds`` rounds."""
    secs = max(3.0, plan.duration / plan.post_rounds)
    copy = work / "sqlite3-ref.db"
    shutil.copyfile(Path(make_url(url).database), copy)
    pyacc, pyacc_note = None, ""
    if plan.peers:
        try:
            from bench.pyacc_sqlite import PYACC, start_pyacc

            accounts, transfers = (200, 2_000) if plan.quick else (1_000, 10_000)
            log(f"sqlite: seeding python-accounting ({accounts:,} accounts, {transfers:,} transfers, its own posting)")
            pyacc = start_pyacc(work, accounts, transfers)
            pyacc_note = f"{PYACC}, books of {accounts:,} accounts and {transfers:,} transfers posted through its own API"
        except Exception as exc:  # reported, the rest of the table stands
            pyacc_note = f"failed: {type(exc).__name__}: {exc}"[:400]
    posts, refs, peers, peer_out = [], [], [], []
    try:
        for r in range(plan.post_rounds):
            log(f"sqlite: round {r + 1}/{plan.post_rounds}: one ledger writer, stdlib sqlite3"
                + (", python-accounting" if pyacc else "") + f", {secs:.0f}s each")
            posts.append(timed(measure_concurrent_posts, url, keys_dir, seeded, 1, 1, secs)[0])
            refs.append(timed(sqlite3_ledger, copy, seeded, secs)[0])
            if pyacc is not None:
                rnd_, out = pyacc.round(secs)
                peers.append(rnd_)
                peer_out.append(out)
    finally:
        if pyacc is not None:
            pyacc.close()
    ref = add(Figure("sqlite3-ledger-1", max(r.value for r in refs), "transfers/s",
                     note=f"alternating with post-sqlite-1; {_rounds_note(refs)}"))
    post_fig = add_with_reference("post-sqlite-1", posts, "transfers/s", ref, refs, ">= 0.5",
                                  f"best of {plan.post_rounds} rounds of {secs:.0f}s, alternating with its references")
    if pyacc is not None and peers:
        failed = sum(o.get("failed", 0) for o in peer_out)
        add_with_reference("pyacc-sqlite", peers, "transfers/s", post_fig, posts, "post-sqlite-1 >= 10 x",
                           f"{pyacc_note}; one writer, balance check by closing_balance then a posted journal "
                           f"entry; failed {failed}; ratio = post-sqlite-1 / pyacc-sqlite", inverse=True,
                           ratio_name="post-sqlite-1 / pyacc-sqlite")
    else:
        add(Figure("pyacc-sqlite", None, "transfers/s", note=pyacc_note or "--no-peers"))


def pg_rounds(url: str, admin_url: str | None, keys_dir: Path, seeded: Seeded, plan: Plan, work: Path) -> None:
    """post-pg-16 and everything measured against it (pgbench, redeem-http, award-http, hordak-pg), alternately
    in ``plan.post_rounds`` rounds: each round runs every one of them once, back to back."""
    secs = max(3.0, plan.duration / plan.post_rounds)
    server = admin_url or url
    clone_url = clone_books(url, admin_url, "pgbench")  # pgbench writes into a copy of the same books
    others: dict[str, Any] = {}
    notes: dict[str, str] = {}
    try:
        start_others(server, plan, work, secs, others, notes)
        rounds: dict[str, list[Round]] = {k: [] for k in ("post", "pgbench", "redeem", "award", "hordak")}
        answers: dict[str, list[dict[str, Any]]] = {k: [] for k in rounds}
        pg_note = ""
        for r in range(plan.post_rounds):
            log(f"postgresql: round {r + 1}/{plan.post_rounds}: {plan.workers} ledger workers, pgbench, "
                + ", ".join(k for k in ("redeem", "award", "hordak") if k in others) + f"; {secs:.0f}s each")
            rounds["post"].append(timed(measure_concurrent_posts, url, keys_dir, seeded, plan.workers, plan.procs,
                                        secs)[0])
            t0 = time.time()
            tps, pg_note = run_pgbench(clone_url, seeded, plan.workers, secs)
            if tps is not None:
                rounds["pgbench"].append(Round(t0, time.time(), tps))
            for kind in ("redeem", "award", "hordak"):
                if kind in others:
                    rnd_, out = others[kind].closed(secs) if kind != "hordak" else others[kind].round(secs)
                    rounds[kind].append(rnd_)
                    answers[kind].append(out)
        report_pg_rounds(plan, secs, rounds, answers, pg_note, notes)
        for kind in ("redeem", "award"):
            if kind in others:
                log(f"postgresql: {kind}-http open loop, {OPEN_RATE}/s offered for {plan.duration:.0f}s")
                res = others[kind].open_loop(plan.duration)
                behind = (f"; the server fell more than 5 s behind: {res['open_unsent']} of {res['open_total']} "
                          "never sent" if res.get("open_unsent") else "")
                errs = f"; errors {res['errors']}" if res.get("errors") else ""
                add(Figure(f"{kind}-http-p50", res["p50_ms"], "ms", note=f"open loop, {OPEN_RATE}/s offered{behind}{errs}"))
                add(Figure(f"{kind}-http-p99", res["p99_ms"], "ms", target="<= 50" if kind == "redeem" else None,
                           note=f"open loop, {OPEN_RATE}/s offered{behind}{errs}"))
    finally:
        for kind, other in others.items():
            try:
                other.close()
            except Exception as exc:  # the next one is still closed
                log(f"  closing {kind}: {exc}")
        if "hordak_db" in notes:
            from bench.hordak_pg import drop_database

            drop_database(server, notes["hordak_db"])
        drop_clone(clone_url, admin_url)


def start_others(server: str, plan: Plan, work: Path, secs: float, others: dict[str, Any],
                 notes: dict[str, str]) -> None:
    """The HTTP servers with their load generators and django-hordak's seeded books (each skipped, with the
    reason in ``notes``, when it cannot start)."""
    if plan.http:
        from bench.redeem_http import HttpBench

        for kind in ("redeem", "award"):
            log(f"postgresql: {kind}-http: district, gunicorn ({WORKERS} workers), load generator")
            try:
                others[kind] = HttpBench(server, work, kind, secs, plan.post_rounds, plan.duration)
            except Exception as exc:  # reported, the rest of the table stands
                notes[kind] = f"failed: {type(exc).__name__}: {exc}"[:400]
    if plan.peers:
        from bench.hordak_pg import HORDAK, start_hordak

        accounts, transfers = (1_000, 10_000) if plan.quick else (plan.wallets, 100_000)
        log(f"postgresql: seeding django-hordak ({accounts:,} accounts, {transfers:,} transfers; throwaway virtualenv)")
        try:
            others["hordak"], notes["hordak_db"] = start_hordak(server, accounts, transfers, plan.workers, plan.procs,
                                                                work)
            notes["hordak"] = f"{HORDAK}, books of {accounts:,} accounts and {transfers:,} transfers"
        except Exception as exc:  # reported, the rest of the table stands
            notes["hordak_fail"] = f"failed: {type(exc).__name__}: {exc}"[:400]


def report_pg_rounds(plan: Plan, secs: float, rounds: dict[str, list[Round]], answers: dict[str, list[dict[str, Any]]],
                     pg_note: str, notes: dict[str, str]) -> None:
    how = f"best of {plan.post_rounds} rounds of {secs:.0f}s, alternating"
    ref = add(Figure("pgbench-ledger-16", max((r.value for r in rounds["pgbench"]), default=None), "transfers/s",
                     note=f"{how} with post-pg-16; {_rounds_note(rounds['pgbench'])}; {pg_note}"))
    post = add_with_reference("post-pg-16", rounds["post"], "transfers/s", ref, rounds["pgbench"], ">= 0.6",
                              f"{plan.workers} workers over {plan.procs} processes; {how} with its references")
    for kind, label in (("redeem", "redemptions/s"), ("award", "awards/s")):
        if not rounds[kind]:
            add(Figure(f"{kind}-http", None, label, note=notes.get(kind, "--no-http")))
            continue
        errors = sum(a.get("errors", 0) for a in answers[kind])
        first = next((a["first_error"] for a in answers[kind] if a.get("first_error")), None)
        add_with_reference(f"{kind}-http", rounds[kind], label, post, rounds["post"], ">= 0.5",
                           f"gunicorn {WORKERS} workers, {TILLS} clients closed loop; {how} with post-pg-16; "
                           f"errors {errors}" + (f" (first: {first})" if first else ""))
    if rounds["hordak"]:
        refused = sum(a.get("refused", 0) for a in answers["hordak"])
        failed = sum(a.get("failed", 0) for a in answers["hordak"])
        add_with_reference("hordak-pg", rounds["hordak"], "transfers/s", post, rounds["post"], "post-pg-16 >= 5 x",
                           f"{notes['hordak']}; {plan.workers} workers; refused {refused}, failed {failed}; "
                           "ratio = post-pg-16 / hordak-pg", inverse=True, ratio_name="post-pg-16 / hordak-pg")
    else:
        add(Figure("hordak-pg", None, "transfers/s", note=notes.get("hordak_fail", "--no-peers")))


def pg_server_url() -> str | None:
    raw = os.environ.get("GOLDBEAN_TEST_POSTGRES_URL", "")
    if not raw:
        return None
    from goldbean.config import normalise_url

    url = normalise_url(raw)
    try:
        e = create_engine(url, isolation_level="AUTOCOMMIT")
        with e.connect() as c:
            c.execute(text("SELECT 1"))
        e.dispose()
    except Exception as exc:
        log(f"PostgreSQL at {make_url(url).render_as_string(hide_password=True)} unreachable: {exc}")
        return None
    return url


def print_table() -> None:
    print()
    print(f"{'figure':<22} {'value':>14} {'unit':<12} {'ratio':>7}  reference")
    print("-" * 80)
    for f in FIGURES:
        v = "not measured" if f.value is None else f"{f.value:,.3f}" if f.value < 10 else f"{f.value:,.0f}"
        r = "" if f.ratio is None else f"{f.ratio:.2f}"
        print(f"{f.name:<22} {v:>14} {f.unit:<12} {r:>7}  {f.reference or ''}")
    print()


def markdown_table(report: Path = REPORT) -> str:
    """The figures of ``bench/report.json`` as the Markdown table docs/performance.md carries."""
    rows = ["| figure | value | unit | ratio | reference | target | load | note |",
            "|---|---:|---|---:|---|---|---:|---|"]
    for f in json.loads(report.read_text()):
        v = "not measured" if f["value"] is None else (f"{f['value']:,.3f}" if f["value"] < 10 else f"{f['value']:,.0f}")
        r = "" if f.get("ratio") is None else f"{f['ratio']:.2f}"
        load = "" if f.get("load") is None else f"{f['load']:.1f}"
        note = (f.get("note") or "").replace("|", "/")
        rows.append(f"| {f['name']} | {v} | {f['unit']} | {r} | {f.get('reference') or ''} | {f.get('target') or ''} "
                    f"| {load} | {note} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller books and shorter runs (< 3 minutes)")
    ap.add_argument("--only", choices=["sqlite", "postgresql"], help="run one database only")
    ap.add_argument("--procs", type=int, default=None, help="processes for the 16 PostgreSQL workers")
    ap.add_argument("--entries", type=int, default=None, help="entries in the big book")
    ap.add_argument("--duration", type=float, default=None, help="seconds per timed run")
    ap.add_argument("--no-http", action="store_true", help="skip redeem-http and award-http")
    ap.add_argument("--no-peers", action="store_true", help="skip hordak-pg and pyacc-sqlite (they install django-hordak "
                    "and python-accounting into throwaway virtualenvs)")
    ap.add_argument("--no-radar", action="store_true", help="skip radar-fanout and radar-publish")
    ap.add_argument("--only-radar", action="store_true", help="radar-fanout and radar-publish alone")
    ap.add_argument("--markdown", action="store_true", help="print bench/report.json as a Markdown table and stop")
    ap.add_argument("--no-checkin", action="store_true", help="skip checkin-burst (patrols over HTTP)")
    ap.add_argument("--no-survey", action="store_true", help="skip survey-burst (a paid survey answered over HTTP)")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown_table())
        return 0
    plan = Plan.make(args.quick)
    if args.procs:
        plan.procs = args.procs
    if args.entries:
        plan.entries = args.entries
    if args.duration:
        plan.duration = args.duration
    plan.http, plan.peers = not args.no_http, not args.no_peers
    started = time.perf_counter()
    load_start = os.getloadavg()
    add(Figure("machine-load-before", load_start[0], "load avg (1 min)",
               note=f"{os.cpu_count()} CPUs; 5 and 15 min: {load_start[1]:.1f}/{load_start[2]:.1f}; every figure "
                    "carries the load when it was taken (its `load`)"))
    add(Figure("machine-python", machine.python_speed_us(), "us/entry hash",
               note="the ledger's own entry hash in a loop, best of 7 after 1 s of warm-up: how fast this machine runs "
                    "the ledger's Python (absolute figures such as batch-* scale with it; compare it before comparing "
                    "those)"))
    ticks_start = machine.cpu_ticks()
    log(f"bench: {'QUICK ' if plan.quick else ''}{plan.wallets:,} wallets, {plan.entries:,} entries, "
        f"{plan.duration:.0f}s runs")
    work = Path(tempfile.mkdtemp(prefix="goldbean-bench-"))
    try:
        if args.only_radar:
            bench_radar(plan, work)
            return finish(started, load_start, ticks_start, merge=True)
        if args.only in (None, "sqlite"):
            bench_database("sqlite", f"sqlite:///{work / 'bench.db'}", plan, work)
        server = pg_server_url() if args.only in (None, "postgresql") else None
        if server:
            name = f"goldbean_bench_{os.getpid()}"
            admin = create_engine(server, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                c.execute(text(f'CREATE DATABASE "{name}"'))
            url = make_url(server).set(database=name).render_as_string(hide_password=False)
            try:
                bench_database("postgresql", url, plan, work, admin_url=server)
            finally:
                with admin.connect() as c:
                    for db_name in (name, f"{name}_small", f"{name}_pgbench"):
                        c.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
                admin.dispose()
        elif args.only != "sqlite":
            for name in ("post-pg-16", "pgbench-ledger-16", "batch-pg"):
                add(Figure(name, None, "transfers/s", note="GOLDBEAN_TEST_POSTGRES_URL not set or unreachable"))
            for name in ("redeem-http", "award-http", "hordak-pg"):
                add(Figure(name, None, "requests/s" if "http" in name else "transfers/s", note="needs PostgreSQL"))
        if not args.no_checkin:  # patrols: bench/checkin_burst.py
            from bench.checkin_burst import add_figures as checkin_figures

            checkin_figures(server, work, Figure, add, log)
        if not args.no_survey:  # surveys: bench/survey_burst.py
            from bench.survey_burst import add_figures as survey_figures

            survey_figures(server, work, Figure, add, log)
        if not args.no_radar:
            bench_radar(plan, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return finish(started, load_start, ticks_start)


def bench_radar(plan: Plan, work: Path) -> None:
    """radar-publish, radar-fanout (p99, memory per stream) and the streams one server held (bench/radar.py)."""
    server = pg_server_url()
    streams = 5_000
    log(f"{'postgresql' if server else 'sqlite'}: radar, a street office of 10,000 volunteers, {streams:,} open "
        f"streams{'' if plan.quick else ', then as many as the server holds'}")
    try:
        from bench.radar import run_radar

        res = run_radar(server, work / "radar", streams=streams, capacity=not plan.quick)
    except Exception as exc:  # reported, the rest of the table stands
        for name, unit in (("radar-publish", "ms"), ("radar-fanout-p99", "s")):
            add(Figure(name, None, unit, note=f"failed: {type(exc).__name__}: {exc}"[:400]))
        return
    pub, fan, db = res["publish"], res["fanout"], res["database"]
    add(Figure("radar-publish", pub["median_ms"], "ms", target="<= 1000",
               note=f"{db}; a notice with a bounty to a street office of {res['volunteers']:,} volunteers: call to "
                    f"commit (outbox row + NOTIFY); median of {pub['rounds']}, max {pub['max_ms']:.0f} ms; "
                    f"{pub['load']}"))
    add(Figure("radar-fanout-p99", fan["p99_s"], "s", target="<= 2",
               note=f"{db}; goldbean serve (events front + 2 gunicorn workers), {fan['held']:,} streams held by a load "
                    f"client in another process, one notice to all: received {fan['received']:,}, p50 "
                    f"{fan['p50_s'] or 0:.2f} s, max {fan['max_s'] or 0:.2f} s from before the publishing call; "
                    f"opening them took {fan['open_s']:.0f} s; {fan['load']}"))
    add(Figure("radar-stream-memory", fan["per_stream_kb"], "KB/stream",
               note=f"the front's resident memory {fan['rss_before_kb'] / 1024:.0f} MB before, "
                    f"{fan['rss_held_kb'] / 1024:.0f} MB with {fan['held']:,} streams"))
    if "capacity_held" in fan:
        add(Figure("radar-streams-held", fan["capacity_held"], "streams",
                   note=f"held by one server before it stopped: {fan['capacity_stop']}; "
                        f"{fan['per_stream_capacity_kb']:.1f} KB/stream at that point "
                        f"({fan['rss_capacity_kb'] / 1024:.0f} MB); opening took {fan['capacity_open_s']:.0f} s"))
    else:
        add(Figure("radar-streams-held", None, "streams", note="not measured with --quick"))


def finish(started: float, load_start: tuple[float, float, float], ticks_start: machine.CpuTicks | None,
           merge: bool = False) -> int:
    """Print the table and write the report (``merge``: replace only these figures in the last report)."""
    load = os.getloadavg()
    add(Figure("machine-load-after", load[0], "load avg (1 min)",
               note=f"{os.cpu_count()} CPUs; 5 and 15 min: {load[1]:.1f}/{load[2]:.1f}: figures from a busy machine "
                    "are lower and noisier, ratios (each side measured within a minute of the other) less so"))
    steal = machine.steal_percent(ticks_start, machine.cpu_ticks())
    add(Figure("machine-steal", steal, "% of CPU time",
               note="not measured (no /proc/stat)" if steal is None else
               "the CPUs' time the hypervisor gave to other virtual machines during the run (/proc/stat): above a "
               "few per cent, every figure was slowed by neighbours this machine cannot see"))
    print_table()
    rows = [{k: v for k, v in asdict(f).items()} for f in FIGURES]
    if merge and REPORT.exists():
        names = {r["name"] for r in rows}
        rows = [r for r in json.loads(REPORT.read_text()) if r["name"] not in names] + rows
    REPORT.write_text(json.dumps(rows, indent=2) + "\n")
    log(f"wrote {REPORT.relative_to(ROOT)} in {time.perf_counter() - started:.0f}s total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
