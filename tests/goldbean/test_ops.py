"""Backups while transfers are posted, restores that verify themselves, and the SQLite → PostgreSQL copy."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from doors import books_of
from goldbean.ops import backup_kind, copy_database, libpq_args, open_backup
from goldbean.seed import seed_demo
from ledger.infra.books import Books
from ledger.journal.accounts import make_checkpoint, open_account, post
from ledger.journal.posting import transfer
from ledger.journal.verify import verify_books
from ledger.schema import Account, Transfer
from tests import needs
from tests.conftest import create_pg_database, drop_pg_database, make_books


def gb(runner, args: list[str]):
    """Run a ``goldbean`` command against the test app."""
    from goldbean.cli import main

    return runner.invoke(main, args)


class Poster(threading.Thread):
    """Posts awards until stopped, the way a busy district would while the backup runs."""

    def __init__(self, books: Books, prefix: str, debit: int, credit: int) -> None:
        super().__init__(daemon=True)
        self.books, self.prefix, self.debit, self.credit = books, prefix, debit, credit
        self.stop = threading.Event()
        self.posted = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                post(self.books, transfer(f"{self.prefix}:{self.posted}", "award", self.debit, self.credit, 1))
                self.posted += 1
        except BaseException as exc:
            self.error = exc

    def finish(self) -> int:
        self.stop.set()
        self.join(10)
        assert self.error is None, self.error
        return self.posted


def busy_books(books: Books, n: int = 40) -> tuple[int, int]:
    seed_demo(books)
    fund = open_account(books, "ops:fund", "fund", no_negative=False)
    wallet = open_account(books, "ops:wallet", "wallet")
    for i in range(n):
        post(books, transfer(f"ops:pre:{i}", "award", fund.id, wallet.id, 2))
    make_checkpoint(books)
    return fund.id, wallet.id


def count_transfers(books: Books) -> int:
    return books.run(lambda s: s.scalar(select(func.count()).select_from(Transfer)), readonly=True)


def test_sqlite_backup_while_posting_restores_and_verifies(app, runner, tmp_path: Path) -> None:
    books = books_of(app)
    fund, wallet = busy_books(books)
    poster = Poster(books, "ops:live", fund, wallet)
    poster.start()
    while poster.posted < 20:
        threading.Event().wait(0.01)
    out = tmp_path / "backups" / "goldbean-1.db"
    out.parent.mkdir()
    result = gb(runner, ["backup", "--out", str(out)])
    posted = poster.finish()
    assert result.exit_code == 0, result.output
    assert backup_kind(out) == "sqlite"

    target = tmp_path / "restored" / "goldbean.db"
    result = gb(runner, ["restore", str(out), "--to", f"sqlite:///{target}"])
    assert result.exit_code == 0, result.output
    assert "ledger verify: OK" in result.output
    restored = make_books(f"sqlite:///{target}", Path(app.config["INSTANCE_PATH"]) / "keys")
    try:
        live_in_backup = restored.run(lambda s: s.scalar(
            select(func.count()).select_from(Transfer).where(Transfer.transfer_key.like("ops:live:%"))))
        # a consistent snapshot from the middle of the run: some, but not necessarily all, live transfers
        assert 20 <= live_in_backup <= posted
        wallet_balance = restored.run(lambda s: s.get(Account, wallet).balance)
        assert wallet_balance == 40 * 2 + live_in_backup
        assert verify_books(restored).ok
    finally:
        restored.engine.dispose()


def test_restore_of_a_tampered_backup_fails_verification(app, runner, tmp_path: Path) -> None:
    busy_books(books_of(app), n=5)
    out = tmp_path / "b.db"
    assert gb(runner, ["backup", "--out", str(out)]).exit_code == 0
    bare = tmp_path / "bare.db"  # someone edits the database in the backup: one entry's amount
    with tempfile.TemporaryDirectory() as work:
        shutil.copyfile(open_backup(out, Path(work)).database, bare)
    with sqlite3.connect(bare) as conn:
        conn.execute("UPDATE entries SET posted_delta = posted_delta + 1 WHERE id = (SELECT MAX(id) FROM entries)")
    conn.close()
    result = gb(runner, ["restore", str(bare), "--to", f"sqlite:///{tmp_path / 'r.db'}"])
    assert result.exit_code == 1
    assert "nothing restored: the backup fails ledger verify" in result.output
    assert not (tmp_path / "r.db").exists()


def test_restore_needs_the_keys_that_signed_the_checkpoints(app, runner, tmp_path: Path) -> None:
    busy_books(books_of(app), n=3)
    out = tmp_path / "b.db"
    assert gb(runner, ["backup", "--out", str(out)]).exit_code == 0
    shutil.rmtree(Path(app.config["INSTANCE_PATH"]) / "keys")  # instance/ was not backed up
    books_of(app).keys.reload()
    result = gb(runner, ["restore", str(out), "--to", f"sqlite:///{tmp_path / 'r.db'}"])
    assert result.exit_code == 1 and "fails ledger verify" in result.output


def test_restore_refuses_to_overwrite_a_database_without_force(app, runner, tmp_path: Path) -> None:
    busy_books(books_of(app), n=1)
    out = tmp_path / "b.db"
    assert gb(runner, ["backup", "--out", str(out)]).exit_code == 0
    result = gb(runner, ["restore", str(out)])  # onto the live configured database
    assert result.exit_code == 2 and "--force" in result.output
    assert gb(runner, ["restore", str(out), "--to", f"sqlite:///{tmp_path / 'x.db'}"]).exit_code == 0


def test_libpq_args_keep_the_password_out_of_the_command_line() -> None:
    uri, env = libpq_args("postgresql+psycopg://gb:s3cret@db.internal:5433/goldbean?sslmode=require")
    assert uri == "postgresql://gb@db.internal:5433/goldbean?sslmode=require"
    assert env["PGPASSWORD"] == "s3cret"


# --- PostgreSQL ---------------------------------------------------------------------------------------

@pytest.fixture
def fresh_pg(pg_server: str):
    made: list[str] = []

    def make() -> str:
        url = create_pg_database(pg_server, prefix="gbops")
        made.append(url)
        return url

    yield make
    for url in made:
        drop_pg_database(pg_server, url)


@pytest.mark.postgres
def test_postgres_backup_while_posting_restores_and_verifies(fresh_pg, tmp_path: Path) -> None:
    needs.postgres_program("pg_dump")
    from goldbean.migrate import upgrade
    from goldbean.ops import backup, restore, verify_url

    source = fresh_pg()
    upgrade(source)
    keys = tmp_path / "keys"
    books = make_books(source, keys)
    try:
        fund, wallet = busy_books(books, n=10)
        poster = Poster(books, "ops:pg", fund, wallet)
        poster.start()
        while poster.posted < 10:
            threading.Event().wait(0.01)
        result = backup(source, tmp_path / "gb.dump", keys_dir=keys)
        posted = poster.finish()
    finally:
        books.engine.dispose()
    assert result.kind == "pg_dump" and backup_kind(result.path) == "pg_dump"
    target = fresh_pg()
    restore(result.path, target, keys_dir=keys)
    report = verify_url(target, keys)
    assert report.ok, report.verdict()
    restored = make_books(target, keys)
    try:
        n = restored.run(lambda s: s.scalar(select(func.count()).select_from(Transfer)
                                            .where(Transfer.transfer_key.like("ops:pg:%"))))
        assert 10 <= n <= posted
        assert restored.run(lambda s: s.get(Account, wallet).balance) == 20 + n
    finally:
        restored.engine.dispose()


@pytest.mark.postgres
def test_db_copy_of_a_running_sqlite_demo_to_postgres(app, runner, fresh_pg) -> None:
    books = books_of(app)
    fund, wallet = busy_books(books, n=10)
    target = fresh_pg()
    poster = Poster(books, "ops:copy", fund, wallet)
    poster.start()
    while poster.posted < 10:
        threading.Event().wait(0.01)
    result = gb(runner, ["db", "copy", "--to", target.replace("postgresql+psycopg://", "postgresql://")])
    poster.finish()
    assert result.exit_code == 0, result.output
    assert "same row counts, balances and chain heads" in result.output and "ledger verify: OK" in result.output

    copy = make_books(target, Path(app.config["INSTANCE_PATH"]) / "keys")
    try:
        # the sequences moved past the copied ids: new rows get new ids, and the books still verify
        new_acc = open_account(copy, "ops:after-copy", "wallet")
        assert new_acc.id > max(fund, wallet)
        post(copy, transfer("ops:after-copy:1", "award", fund, new_acc.id, 3))
        make_checkpoint(copy)
        assert verify_books(copy).ok
    finally:
        copy.engine.dispose()
    # the target is not empty any more: a second copy is refused
    again = gb(runner, ["db", "copy", "--to", target])
    assert again.exit_code == 2 and "not empty" in again.output


@pytest.mark.postgres
def test_db_copy_detects_a_diverging_copy(app, fresh_pg, monkeypatch) -> None:
    import goldbean.ops as ops

    books = books_of(app)
    busy_books(books, n=3)
    real_fix = ops._fix_row

    def corrupt(row: dict, tz: list[str]) -> dict:
        row = real_fix(row, tz)
        if row.get("code") == "ops:wallet":
            row["credits_posted"] += 1
            row["no_negative"] = False
        return row

    monkeypatch.setattr(ops, "_fix_row", corrupt)
    result = copy_database(app.config["DATABASE_URL"], fresh_pg(), keys=Path(app.config["INSTANCE_PATH"]) / "keys")
    assert not result.ok
    assert any("ops:wallet" in p for p in result.problems)
    assert not result.report.ok
