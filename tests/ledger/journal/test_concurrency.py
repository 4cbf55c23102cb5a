"""Concurrent posting: as many successes as the balances allow, never a negative balance, beans conserved.

PostgreSQL: 16 threads against a real server (row locks in id order, retries on deadlock and
serialization failure). SQLite: several processes writing one file (``BEGIN IMMEDIATE`` and a busy
timeout): no "database is locked" reaches the caller.
"""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from ledger.errors import DomainError
from ledger.journal.accounts import get_account, open_account, post
from ledger.journal.posting import transfer
from ledger.journal.verify import verify_books
from tests.conftest import make_books

WALLET_BEANS = 100
PRICE = 7  # 100 // 7 = 14 redemptions per wallet, 2 beans left over


def _open_books(books) -> dict[str, int]:
    ids = {code: open_account(books, code, kind).id for code, kind in [
        ("donations", "donations"), ("fund", "fund"), ("budget", "budget"),
        ("wallet:1", "wallet"), ("wallet:2", "wallet"), ("wallet:3", "wallet"),
        ("merchant:1", "merchant"), ("merchant:2", "merchant")]}
    post(books, transfer("donate", "donate", ids["donations"], ids["fund"], 1000))
    post(books, transfer("allocate", "allocate", ids["fund"], ids["budget"], 1000))
    for w in ("wallet:1", "wallet:2", "wallet:3"):
        post(books, transfer(f"award:{w}", "award", ids["budget"], ids[w], WALLET_BEANS))
    return ids


def _check_outcome(books, ids: dict[str, int], successes: int) -> None:
    wallets = [get_account(books, ids[w]) for w in ("wallet:1", "wallet:2", "wallet:3")]
    merchants = [get_account(books, ids[m]) for m in ("merchant:1", "merchant:2")]
    assert successes == 3 * (WALLET_BEANS // PRICE)
    assert all(w.balance == WALLET_BEANS % PRICE for w in wallets)
    assert sum(m.balance for m in merchants) == successes * PRICE
    assert sum(w.balance for w in wallets) + sum(m.balance for m in merchants) == 3 * WALLET_BEANS
    report = verify_books(books)
    assert report.ok, report.verdict()


@pytest.mark.postgres
def test_sixteen_threads_redeem_exactly_what_balances_allow(pg_url: str, tmp_path: Path) -> None:
    books = make_books(pg_url, tmp_path / "keys", pool_size=16, max_overflow=4)
    ids = _open_books(books)
    barrier = threading.Barrier(16)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        # each thread hits every wallet and both merchants, in different orders, to provoke deadlocks
        for i in range(12):
            wallet = ids[f"wallet:{(n + i) % 3 + 1}"]
            merchant = ids[f"merchant:{(n * 7 + i) % 2 + 1}"]
            try:
                post(books, transfer(f"t{n}-{i}", "redeem", wallet, merchant, PRICE))
                result = "ok"
            except DomainError as exc:
                result = exc.code
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(outcomes) <= {"ok", "insufficient_funds"}, set(outcomes)
    _check_outcome(books, ids, outcomes.count("ok"))
    books.engine.dispose()


def _sqlite_worker(url: str, keys_dir: str, n: int, ids: dict[str, int], start: multiprocessing.Event,
                   results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    books = make_books(url, Path(keys_dir))
    start.wait()
    out = []
    for i in range(12):
        wallet = ids[f"wallet:{(n + i) % 3 + 1}"]
        merchant = ids[f"merchant:{(n + i) % 2 + 1}"]
        try:
            post(books, transfer(f"p{n}-{i}", "redeem", wallet, merchant, PRICE))
            out.append("ok")
        except DomainError as exc:
            out.append(exc.code)
        except Exception as exc:  # anything else, e.g. "database is locked", is the failure
            out.append(f"crash: {exc}")
    results.put(out)
    books.engine.dispose()


def test_several_processes_share_one_sqlite_file(sqlite_url: str, tmp_path: Path) -> None:
    books = make_books(sqlite_url, tmp_path / "keys")
    ids = _open_books(books)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=_sqlite_worker, args=(sqlite_url, str(tmp_path / "keys"), n, ids, start, results))
             for n in range(6)]
    for p in procs:
        p.start()
    start.set()
    outcomes = [o for _ in procs for o in results.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
    assert set(outcomes) <= {"ok", "insufficient_funds"}, set(outcomes)
    _check_outcome(books, ids, outcomes.count("ok"))
    books.engine.dispose()
