"""Issue 14: every command with ``--out`` (backup, statement, audit export) writes by one rule: never over an
existing file without --force, never over the database or a signing key even with it, never through a
symbolic link, a one-line error for a missing folder, and a temporary file renamed into place."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest

from doors import books_of
from goldbean.safe_output import OutputRefused, protected_paths, safe_output
from ledger.journal.accounts import make_checkpoint, open_account, post
from ledger.journal.posting import transfer

TODAY = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).date().isoformat()


def gb(runner, args: list[str]):
    from goldbean.cli import main

    return runner.invoke(main, args)


COMMANDS = {
    "backup": ["backup"],
    "statement": ["statement", "out:wallet", "--from", "2020-01-01", "--to", TODAY],
    "audit export": ["audit", "export"],
}


@pytest.fixture
def books(app):
    b = books_of(app)
    fund = open_account(b, "out:fund", "fund", no_negative=False)
    wallet = open_account(b, "out:wallet", "wallet")
    post(b, transfer("out:1", "award", fund.id, wallet.id, 5))
    make_checkpoint(b)
    return b


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(runner, command: str, out: Path | str, *extra: str):
    return gb(runner, [*COMMANDS[command], "--out", str(out), *extra])


def one_line_error(result) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_an_existing_file_is_replaced_only_with_force(runner, books, tmp_path: Path, command: str) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "existing"
    out.write_bytes(b"keep me")
    one_line_error(run(runner, command, out))
    assert out.read_bytes() == b"keep me"
    result = run(runner, command, out, "--force")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() != b"keep me"
    assert os.stat(out).st_mode & 0o077 == 0
    assert [p.name for p in folder.iterdir()] == ["existing"]  # no temporary file left behind


@pytest.mark.parametrize("command", COMMANDS)
def test_the_database_and_the_keys_are_never_written_even_with_force(app, runner, books, tmp_path: Path,
                                                                      command: str) -> None:
    instance = Path(app.config["INSTANCE_PATH"])
    database = Path(app.config["DATABASE_URL"].removeprefix("sqlite:///"))
    key = next((instance / "keys" / "ledger").glob("*.pem"))
    alias = tmp_path / "alias.db"
    os.link(database, alias)  # the database under another name
    for target in (database, key, instance / "keys" / "ledger" / "new.pem", alias,
                   instance / "keys" / ".." / "keys" / "ledger" / key.name):
        before = digest(target) if target.exists() else None
        result = run(runner, command, target, "--force")
        one_line_error(result)
        assert "never overwritten" in result.output
        assert (digest(target) if target.exists() else None) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_symbolic_link_is_refused(runner, books, tmp_path: Path, command: str) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "link"
    link.symlink_to(victim)
    for extra in ((), ("--force",)):
        result = run(runner, command, link, *extra)
        one_line_error(result)
        assert "symbolic link" in result.output
    assert victim.read_bytes() == b"precious"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_folder_is_one_line(runner, books, tmp_path: Path, command: str) -> None:
    result = run(runner, command, tmp_path / "no" / "such" / "folder" / "x")
    one_line_error(result)
    assert "no folder" in result.output


def test_statement_to_standard_output_still_works(runner, books) -> None:
    result = run(runner, "statement", "-")
    assert result.exit_code == 0 and "out:1" in result.output


def test_a_file_made_while_writing_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "race"
    with pytest.raises(OutputRefused, match="exists|appeared while writing"):
        with safe_output(out, force=False) as tmp:
            tmp.write_bytes(b"new")
            out.write_bytes(b"someone else's")
    assert out.read_bytes() == b"someone else's"
    assert [p.name for p in tmp_path.iterdir()] == ["race"]


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with safe_output(out, force=True) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("the writer failed")
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x"]


def test_protected_paths_cover_the_sqlite_side_files_and_the_instance_secrets(tmp_path: Path) -> None:
    paths = protected_paths(f"sqlite:///{tmp_path / 'g.db'}", tmp_path / "instance")
    names = {p.name for p in paths}
    assert {"g.db", "g.db-wal", "g.db-shm", "g.db-journal", "keys", "secret_key"} <= names
    assert protected_paths("postgresql+psycopg://u@h/db", None) == []
