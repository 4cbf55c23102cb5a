"""``goldbean worker``: expiring holds and making checkpoints, also with several workers at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from doors import books_of
from goldbean.worker import CHECKPOINT_LOCK, checkpoint_job, expire_job
from ledger.infra.books import Books
from ledger.journal.accounts import get_account, open_account, post
from ledger.journal.posting import hold, transfer
from ledger.journal.verify import verify_books
from ledger.schema import Checkpoint, Transfer
from tests.conftest import make_books


def gb(runner, args: list[str]):
    from goldbean.cli import main

    return runner.invoke(main, args)


def holds(books: Books, n: int, timeout_s: int = 60) -> tuple[int, int]:
    fund = open_account(books, "w:fund", "fund", no_negative=False)
    wallet = open_account(books, "w:wallet", "wallet")
    shop = open_account(books, "w:shop", "merchant")
    post(books, transfer("w:give", "award", fund.id, wallet.id, 1_000))
    for i in range(n):
        post(books, hold(f"w:hold:{i}", "redeem", wallet.id, shop.id, 3, timeout_s))
    return wallet.id, shop.id


def checkpoints(books: Books) -> int:
    return books.run(lambda s: s.scalar(select(func.count()).select_from(Checkpoint)), readonly=True)


def test_worker_once_expires_the_holds_whose_time_is_up(app, runner, clock) -> None:
    books = books_of(app)
    wallet, _ = holds(books, 4, timeout_s=60)
    post(books, hold("w:later", "redeem", wallet, _, 5, 3600))
    before = REGISTRY.get_sample_value("goldbean_hold_expiries_total") or 0.0
    clock.advance(120)
    result = gb(runner, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    acc = get_account(books, wallet)
    assert acc.on_hold == 5 and acc.available == 1_000 - 5  # the four expired, the later one stays
    assert (REGISTRY.get_sample_value("goldbean_hold_expiries_total") or 0.0) == before + 4
    assert checkpoints(books) == 1  # first run: no checkpoint yet, so one is made
    assert verify_books(books).ok


def test_checkpoint_job_makes_one_per_interval_and_only_when_something_changed(books: Books) -> None:
    wallet, shop = holds(books, 1)
    assert checkpoint_job(books, every_s=3600).startswith("checkpoint ")
    assert "nothing posted" in checkpoint_job(books, every_s=0)
    post(books, transfer("w:more", "redeem", wallet, shop, 1))
    assert "s old" in checkpoint_job(books, every_s=3600)  # due again only after the interval
    assert checkpoint_job(books, every_s=0).startswith("checkpoint ")
    assert checkpoints(books) == 2
    assert verify_books(books).ok


@pytest.mark.postgres
def test_only_the_worker_holding_the_advisory_lock_makes_the_checkpoint(pg_url: str, tmp_path: Path) -> None:
    books = make_books(pg_url, tmp_path / "keys")
    try:
        holds(books, 1)
        with books.engine.connect() as other_server:
            assert other_server.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": CHECKPOINT_LOCK}).scalar()
            assert "another server" in checkpoint_job(books, every_s=0)
            other_server.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": CHECKPOINT_LOCK})
        assert checkpoint_job(books, every_s=0).startswith("checkpoint ")
        assert checkpoints(books) == 1
    finally:
        books.engine.dispose()


def test_several_workers_at_once_expire_each_hold_exactly_once(db_url: str, tmp_path: Path, clock) -> None:
    make_books(db_url, tmp_path / "keys").keys.ensure("ledger")  # every server has the same instance/keys
    servers = [make_books(db_url, tmp_path / "keys", clock) for _ in range(3)]
    try:
        wallet, _ = holds(servers[0], 30, timeout_s=10)
        clock.advance(60)
        results: list[str] = []
        errors: list[BaseException] = []

        def work(b: Books) -> None:
            try:
                results.append(expire_job(b))
                results.append(checkpoint_job(b, every_s=3600))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(b,)) for b in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        released = sum(int(r.split()[1]) for r in results if r.startswith("released"))
        assert released == 30
        expired = servers[0].run(lambda s: s.scalar(
            select(func.count()).select_from(Transfer).where(Transfer.phase == "expire")))
        assert expired == 30
        assert get_account(servers[0], wallet).on_hold == 0
        assert verify_books(servers[0]).ok
        if servers[0].dialect == "postgresql":
            assert checkpoints(servers[0]) == 1  # one per interval, whoever got the lock
    finally:
        for b in servers:
            b.engine.dispose()


def test_settlement_job_settles_the_last_month_once_whatever_the_number_of_workers(
        db_url: str, tmp_path: Path, clock) -> None:
    from goldbean.worker import settlement_job
    from ledger.schema import Settlement
    from tests.earning_world import build_world

    build_world(make_books(db_url, tmp_path / "keys", clock))  # one merchant, "shop"
    servers = [make_books(db_url, tmp_path / "keys", clock) for _ in range(3)]
    try:
        outcomes: list[str] = []
        threads = [threading.Thread(target=lambda b=b: outcomes.append(settlement_job(b))) for b in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert outcomes == ["settlement 2026-10: 1 merchants, 0 beans"] * 3  # the clock says 2026-11-27
        statements = servers[0].run(lambda s: s.execute(select(Settlement.period)).scalars().all())
        assert statements == ["2026-10"]
    finally:
        for b in servers:
            b.engine.dispose()


def test_the_loop_runs_jobs_on_their_intervals_survives_a_failing_job_and_stops_on_request(app) -> None:
    from goldbean.worker import Job, run

    books = books_of(app)
    stop = threading.Event()
    calls: list[str] = []

    def fast(_b: Books) -> str:
        calls.append("fast")
        if calls.count("fast") >= 4:
            stop.set()
        return "ok"

    def broken(_b: Books) -> str:
        calls.append("broken")
        raise RuntimeError("boom")

    failures = run(books, jobs=[Job("fast", 0.05, fast), Job("broken", 60, broken)], stop=stop)
    assert calls.count("fast") == 4 and calls.count("broken") == 1  # the hourly job ran once, at start
    assert failures == 1


def test_notify_and_reminder_jobs_deliver_to_the_stream_and_by_sms_with_counts_only(books: Books, clock) -> None:
    """The worker's ``notify`` job delivers the outbox through the radar's live channel (and SMS when a provider
    is configured: here a local receiver on a free port); its line names counts, never a phone or a text."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from goldbean.worker import notify_job, reminders_job
    from ledger import notify, patrols, radar
    from ledger.schema import User
    from tests.patrol_world import build_patrol_world

    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        books.settings = books.settings.with_overrides(
            {"notify": {"sms_url": f"http://127.0.0.1:{server.server_address[1]}/"}})
        pw = build_patrol_world(books)
        with books.session() as s:
            s.get(User, pw.w.users["v1"]).phone = "13800000009"
        patrols.sign_up(books, pw.w.actor("v1"), pw.shift_id)
        start = radar.latest_event_id(books)
        assert reminders_job(books) == "1 patrol reminders"  # the default: 3 hours ahead
        line = notify_job(books)
        assert line.startswith("live 1, sms_sent 1") and "13800000009" not in line
        assert notify_job(books) == "live 0, sms_sent 0, sms_retry 0, sms_failed 0, sms_skipped 0"  # idle
        assert got[0]["to"] == "13800000009" and got[0]["text"] == notify.sms_text("patrol_reminder")
        events, _ = radar.events_for(books, pw.w.actor("v1"), after=start)
        assert [e["title"] for e in events] == ["巡逻提醒"]
    finally:
        server.shutdown()
        server.server_close()
