"""``goldbean worker``: the scheduled work, in one loop (or once with ``--once``, for cron and tests).

Jobs:
- ``expire-holds`` every ``GOLDBEAN_EXPIRE_INTERVAL`` seconds (default 30): releases every hold whose
  time is up (``ledger.journal.expire_holds``).
- ``checkpoint`` every ``GOLDBEAN_CHECKPOINT_INTERVAL`` seconds (default 3600): signs the chain heads
  (``ledger.journal.make_checkpoint``), unless nothing was posted since the last checkpoint.
- ``settlement`` every ``GOLDBEAN_SETTLEMENT_INTERVAL`` seconds (default 3600): settles every merchant
  for the previous local calendar month (``ledger.settlement.run_settlement``); a month already settled
  answers the same statements and moves nothing.
- ``prune`` every ``GOLDBEAN_PRUNE_INTERVAL`` seconds (default 3600): forgets spent wallet codes and
  idempotency keys past their retention (``ledger.housekeeping.prune``; never the journal).
- ``radar`` every ``GOLDBEAN_RADAR_INTERVAL`` seconds (default 60): marks ended notices expired (their
  bounty holds are released by ``expire-holds`` at the end of the verification grace) and erases the
  personal content of public reports past their retention (``ledger.radar``).
- ``retention`` every ``GOLDBEAN_RETENTION_INTERVAL`` seconds (default 86400): erases tips' text and location
  ``tip_retention_days`` after their case closed (``ledger.privacy.erase_expired_tips``), and deletes
  notifications past ``settings.notify.retention_days`` (``ledger.notify.purge``).
- ``notify`` every ``GOLDBEAN_NOTIFY_INTERVAL`` seconds (default 2): delivers the notification outbox
  (``ledger.notify.deliver_due``): the live stream through the radar's ``LiveChannel``, SMS through
  ``SmsChannel`` when ``settings.notify.sms_url`` is set (token: ``GOLDBEAN_SMS_TOKEN``), retrying with
  backoff (an idle outbox costs one read). Its log line has counts only: never a phone number or a text.
- ``patrol-reminders`` every ``GOLDBEAN_REMINDER_INTERVAL`` seconds (default 300): reminds signed-up
  volunteers ``PatrolRules.reminder_minutes`` before their shift, once (``ledger.patrols.send_reminders``).

An interval of 0 switches a job off.

Safe on several servers at once:
- a hold can be resolved only once (a unique constraint on ``transfers.pending_id``); when two workers
  race for the same hold, the loser's whole batch rolls back with ``pending_transfer_already_resolved``
  and ``expire_holds`` looks again, so each expiry is posted exactly once;
- a settlement statement is unique per merchant and period, its transfer key is fixed, and concurrent
  runs are serialized by the payout account's row lock: a second worker answers the same statements;
- on PostgreSQL a checkpoint is made only by the worker that gets the advisory lock
  ``pg_try_advisory_lock(CHECKPOINT_LOCK)``; under the lock it looks at the newest checkpoint's age, so
  that one server makes one per interval whatever the number of workers. On SQLite (one machine) run
  one worker; a second one could at worst sign one extra checkpoint, which verifies like any other.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select, text

from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.journal.accounts import expire_holds, make_checkpoint
from ledger.schema import Account, Checkpoint

log = logging.getLogger("goldbean.worker")

# "goldbean" + "ckpt" as a 64-bit advisory lock key, fixed so every server agrees
CHECKPOINT_LOCK = 0x676F6C64_636B7074 & 0x7FFFFFFFFFFFFFFF


def _env_seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass
class Job:
    name: str
    every_s: float
    run: Callable[[Books], str]
    next_at: float = 0.0
    failures: int = field(default=0)


def expire_job(books: Books) -> str:
    n = expire_holds(books)
    return f"released {n} expired holds"


def checkpoint_due(books: Books, every_s: float) -> str | None:
    """Why no checkpoint is needed now, or None when one is."""
    with books.engine.connect() as conn:
        last = conn.execute(select(Checkpoint.created_at, Checkpoint.entries_count, Checkpoint.accounts_count)
                            .order_by(Checkpoint.id.desc()).limit(1)).first()
        if last is None:
            return None
        entries, accounts = conn.execute(select(func.coalesce(func.sum(Account.entry_count), 0),
                                                func.count(Account.id))).one()
    if int(entries) == last.entries_count and int(accounts) == last.accounts_count:
        return "nothing posted since the last checkpoint"
    age = (dt.datetime.now(dt.timezone.utc) - utc_from_db(last.created_at)).total_seconds()
    if age < every_s:
        return f"the last checkpoint is {age:.0f} s old"
    return None


def checkpoint_job(books: Books, every_s: float = 0.0) -> str:
    if books.dialect != "postgresql":
        why_not = checkpoint_due(books, every_s)
        return f"skipped: {why_not}" if why_not else _checkpoint(books)
    with books.engine.connect() as conn:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": CHECKPOINT_LOCK}).scalar()
        conn.commit()
        if not got:
            return "skipped: another server is making the checkpoint"
        try:
            why_not = checkpoint_due(books, every_s)
            return f"skipped: {why_not}" if why_not else _checkpoint(books)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": CHECKPOINT_LOCK})
            conn.commit()


def _checkpoint(books: Books) -> str:
    cp = make_checkpoint(books)
    return f"checkpoint {cp.id}: {cp.accounts_count} accounts, {cp.entries_count} entries, key {cp.key_id}"


def previous_period(books: Books) -> str:
    """The local calendar month before this one, ``YYYY-MM``."""
    last_month = books.calendar.today(books.now()).replace(day=1) - dt.timedelta(days=1)
    return f"{last_month.year:04d}-{last_month.month:02d}"


def settlement_job(books: Books) -> str:
    """Settle every merchant for the month that ended last (idempotent: a settled merchant's statement is
    answered again, nothing moves twice)."""
    from ledger.redemption.settlement import run_settlement

    period = previous_period(books)
    statements = run_settlement(books, period, "system:worker")
    return f"settlement {period}: {len(statements)} merchants, {sum(st['amount'] for st in statements)} beans"


def prune_job(books: Books) -> str:
    from ledger.redemption.housekeeping import prune

    return str(prune(books))


def series_job(books: Books) -> str:
    from ledger.patrols import extend_series

    return f"{extend_series(books)} patrol shifts added"


def radar_job(books: Books) -> str:
    from ledger import radar

    return f"{radar.expire_notices(books)} notices ended, {radar.purge_reports(books)} reports erased"


def retention_job(books: Books) -> str:
    from ledger import notify
    from ledger.privacy import erase_expired_tips

    return (f"{erase_expired_tips(books)} closed tips past retention erased, "
            f"{notify.purge(books)} notifications past retention deleted")


def notify_job(books: Books) -> str:
    from ledger import notify, radar

    url = books.settings.notify.sms_url
    sms = notify.SmsChannel(url, token=os.environ.get("GOLDBEAN_SMS_TOKEN") or None,
                            timeout_s=books.settings.notify.sms_timeout_s) if url else None
    counts = notify.deliver_due(books, live=radar.LiveChannel(), sms=sms)
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def reminders_job(books: Books) -> str:
    from ledger import patrols

    return f"{patrols.send_reminders(books)} patrol reminders"


def default_jobs() -> list[Job]:
    checkpoint_every = _env_seconds("GOLDBEAN_CHECKPOINT_INTERVAL", 3600)
    jobs = [
        Job("expire-holds", _env_seconds("GOLDBEAN_EXPIRE_INTERVAL", 30), expire_job),
        Job("checkpoint", checkpoint_every, lambda b: checkpoint_job(b, checkpoint_every)),
        Job("settlement", _env_seconds("GOLDBEAN_SETTLEMENT_INTERVAL", 3600), settlement_job),
        Job("prune", _env_seconds("GOLDBEAN_PRUNE_INTERVAL", 3600), prune_job),
        Job("patrol-series", _env_seconds("GOLDBEAN_SERIES_INTERVAL", 3600), series_job),
        Job("radar", _env_seconds("GOLDBEAN_RADAR_INTERVAL", 60), radar_job),
        Job("retention", _env_seconds("GOLDBEAN_RETENTION_INTERVAL", 86_400), retention_job),
        Job("notify", _env_seconds("GOLDBEAN_NOTIFY_INTERVAL", 2), notify_job),
        Job("patrol-reminders", _env_seconds("GOLDBEAN_REMINDER_INTERVAL", 300), reminders_job),
    ]
    return [job for job in jobs if job.every_s > 0]


def run_job(books: Books, job: Job) -> bool:
    t0 = time.perf_counter()
    try:
        outcome = job.run(books)
    except Exception as exc:  # one failing job must not stop the others
        job.failures += 1
        log.exception("job %s failed: %s", job.name, type(exc).__name__,
                      extra={"job": job.name, "duration_ms": round((time.perf_counter() - t0) * 1000, 2)})
        return False
    log.info("job %s: %s", job.name, outcome,
             extra={"job": job.name, "duration_ms": round((time.perf_counter() - t0) * 1000, 2)})
    _last_success(job.name)
    return True


_gauge = None


def _last_success(name: str) -> None:
    global _gauge
    try:
        from prometheus_client import Gauge
    except ImportError:  # pragma: no cover
        return
    if _gauge is None:
        _gauge = Gauge("goldbean_worker_last_success_timestamp_seconds",
                       "When each worker job last succeeded (unix time)", ["job"], multiprocess_mode="max")
    _gauge.labels(name).set(time.time())


def run(books: Books, *, once: bool = False, jobs: list[Job] | None = None,
        stop: threading.Event | None = None) -> int:
    """Run the jobs until ``stop`` is set (SIGTERM/SIGINT set it); with ``once``, each job once.
    Returns how many job runs failed."""
    jobs = jobs if jobs is not None else default_jobs()
    if once:
        return sum(0 if run_job(books, job) else 1 for job in jobs)
    stop = stop or threading.Event()
    failures = 0
    while not stop.is_set():
        now = time.monotonic()
        for job in jobs:
            if now >= job.next_at and not stop.is_set():
                failures += 0 if run_job(books, job) else 1
                job.next_at = time.monotonic() + job.every_s
        wait = min(job.next_at for job in jobs) - time.monotonic()
        stop.wait(max(0.05, wait))
    log.info("worker stopped")
    return failures


def install_signal_handlers(stop: threading.Event) -> None:
    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping after the current job", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


def start_metrics_server() -> None:
    """``GOLDBEAN_WORKER_METRICS_PORT`` set: serve this process's metrics on 127.0.0.1:<port>."""
    port = os.environ.get("GOLDBEAN_WORKER_METRICS_PORT")
    if not port:
        return
    from prometheus_client import start_http_server

    from .observability import metrics

    metrics()  # transfers posted and hold expiries by this process
    start_http_server(int(port), addr=os.environ.get("GOLDBEAN_WORKER_METRICS_ADDR", "127.0.0.1"))
