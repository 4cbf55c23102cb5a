"""The command line as an operator uses it: migrate, seed, verify, checkpoint, expire holds."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from doors import books_of


def _sqlite_path(app) -> str:
    return app.config["DATABASE_URL"][len("sqlite:///"):]


def test_seed_is_idempotent_and_verify_passes(app, runner):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    counts = _counts(app)
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0, again.output
    assert _counts(app)[:2] == counts[:2]  # no new transfers or entries
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK:")


def _counts(app) -> tuple[int, int, int]:
    con = sqlite3.connect(_sqlite_path(app))
    try:
        return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("transfers", "entries", "checkpoints"))
    finally:
        con.close()


def test_verify_names_the_account_and_entry_changed_by_hand(app, runner):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    books_of(app).engine.dispose()
    con = sqlite3.connect(_sqlite_path(app))
    entry_id, account_id, seq, code = con.execute(
        "SELECT e.id, e.account_id, e.seq, a.code FROM entries e JOIN accounts a ON a.id = e.account_id "
        "JOIN transfers t ON t.id = e.transfer_id WHERE t.kind = 'award' ORDER BY e.id LIMIT 1").fetchone()
    con.execute("UPDATE entries SET posted_delta = posted_delta + 1 WHERE id = ?", (entry_id,))
    con.commit()
    con.close()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert result.output.startswith("FAILED:")
    assert f"account {account_id} ({code})" in result.output
    assert f"entry {entry_id} (seq {seq})" in result.output


def test_checkpoint_and_expire_holds(app, runner, clock):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    result = runner.invoke(args=["ledger", "checkpoint"])
    assert result.exit_code == 0 and result.output.startswith("checkpoint ")
    clock.advance(10 * 24 * 3600)
    result = runner.invoke(args=["ledger", "expire-holds"])
    assert result.exit_code == 0, result.output
    assert "released" in result.output
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0


def test_console_script_against_a_fresh_database(tmp_path: Path) -> None:
    """What `make run` does, through the installed `goldbean` entry point, from an empty folder."""
    env = {**os.environ, "GOLDBEAN_INSTANCE_PATH": str(tmp_path / "instance"), "GOLDBEAN_DEMO": "1"}
    env.pop("GOLDBEAN_DATABASE_URL", None)
    exe = Path(sys.executable).with_name("goldbean")
    for args in (["db", "upgrade"], ["seed-demo"], ["seed-demo"], ["ledger", "verify"]):
        done = subprocess.run([str(exe), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert (tmp_path / "instance" / "goldbean.db").exists()
    assert "OK:" in done.stdout
    keys = list((tmp_path / "instance" / "keys" / "ledger").glob("*.pem"))
    assert keys and oct(keys[0].stat().st_mode & 0o777) == "0o600"


def test_prune_forgets_old_spent_codes_and_keys_and_nothing_of_the_journal(app, runner, clock):
    from sqlalchemy import func, select

    from ledger import redemption
    from ledger.access.identity import wallet_account_id
    from ledger.access.policy import SYSTEM
    from ledger.redemption import codes
    from ledger.schema import Entry, IdempotencyRecord, Merchant, SpentCode, User

    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    books = books_of(app)
    with books.session(readonly=True) as s:
        wallet = wallet_account_id(s, s.scalar(select(User.id).where(User.username == "volunteer")))
        merchant = s.scalar(select(Merchant.id).order_by(Merchant.id))
    for i in range(3):  # three redemptions at a till: three spent codes, three stored answers
        code = codes.issue_wallet_code(books, wallet).code
        redemption.redeem(books, redemption.TillContext(merchant, SYSTEM), code=code, amount=1,
                          idempotency_key=f"cli-{i}")

    def count(model) -> int:
        with books.session(readonly=True) as s:
            return int(s.scalar(select(func.count()).select_from(model)))

    seeded = (count(SpentCode), count(IdempotencyRecord), count(Entry))
    assert seeded[0] >= 3 and seeded[1] >= 3
    result = runner.invoke(args=["ledger", "prune"])
    assert result.exit_code == 0 and result.output.strip() == "pruned 0 spent codes, 0 idempotency records"
    clock.advance(31 * 86_400)
    result = runner.invoke(args=["ledger", "prune"])
    assert result.output.strip() == f"pruned {seeded[0]} spent codes, {seeded[1]} idempotency records", result.output
    assert (count(SpentCode), count(IdempotencyRecord), count(Entry)) == (0, 0, seeded[2])
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
