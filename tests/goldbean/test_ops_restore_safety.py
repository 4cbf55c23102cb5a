"""Issue 14, data safety: a truncated or tampered backup never touches the live database (SQLite and
PostgreSQL); a restore swaps in only what verified, keeping the replaced database; a backup carries the
signing keys (the private ones only under a passphrase) so that it restores on a new machine."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tarfile
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from doors import books_of
from goldbean.ops import OpsError, RestoreRefused, backup, open_backup, restore, verify_url
from ledger.infra.books import Books
from ledger.journal.accounts import make_checkpoint, open_account, post
from ledger.journal.posting import transfer
from ledger.journal.verify import verify_books
from ledger.schema import Transfer
from tests import needs
from tests.conftest import create_pg_database, drop_pg_database, make_books

PASSPHRASE = "correct horse battery staple"


def gb(runner, args: list[str], env: dict[str, str] | None = None):
    from goldbean.cli import main

    return runner.invoke(main, args, env=env)


def fill(books: Books, prefix: str = "s", n: int = 4) -> None:
    fund = open_account(books, f"{prefix}:fund", "fund", no_negative=False)
    wallet = open_account(books, f"{prefix}:wallet", "wallet")
    for i in range(n):
        post(books, transfer(f"{prefix}:{i}", "award", fund.id, wallet.id, 3))
    make_checkpoint(books)


def transfers(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(Transfer)).scalar_one()
    finally:
        engine.dispose()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def live_path(app) -> Path:
    return Path(app.config["DATABASE_URL"].removeprefix("sqlite:///"))


def settle(app) -> str:
    """Close the app's connections (the service is stopped for a restore) and fingerprint the live file."""
    books_of(app).engine.dispose()
    return digest(live_path(app))


def bare_copy(backup_file: Path, folder: Path) -> Path:
    """The database inside a backup, as a bare file (what an older version wrote, or someone's edit)."""
    out = folder / "bare.db"
    with tempfile.TemporaryDirectory() as work:
        shutil.copyfile(open_backup(backup_file, Path(work)).database, out)
    return out


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def tamper_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE entries SET posted_delta = posted_delta + 1 WHERE id = (SELECT MAX(id) FROM entries)")
    conn.close()


# --- SQLite: the live file survives every bad backup ------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated container", "truncated bare file", "tampered bare file",
                                    "flipped byte in container"])
def test_a_bad_backup_leaves_the_live_sqlite_database_untouched(app, runner, tmp_path: Path, damage: str) -> None:
    fill(books_of(app))
    out = tmp_path / "b.gbk"
    assert gb(runner, ["backup", "--out", str(out)]).exit_code == 0
    bad = out if "container" in damage else bare_copy(out, tmp_path)
    if "truncated" in damage:
        truncate(bad)
    elif "tampered" in damage:
        tamper_sqlite(bad)
    else:
        with tarfile.open(bad) as tar:
            member = tar.getmember("database.sqlite")
        data = bytearray(bad.read_bytes())
        data[member.offset_data + member.size // 2] ^= 0xFF  # inside the database
        bad.write_bytes(bytes(data))
    before = settle(app)
    result = gb(runner, ["restore", "--force", str(bad)])
    assert result.exit_code in (1, 2), result.output
    assert result.output.startswith("error: nothing restored: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert digest(live_path(app)) == before
    assert verify_url(app.config["DATABASE_URL"], Path(app.config["INSTANCE_PATH"]) / "keys").ok
    assert not [p for p in live_path(app).parent.iterdir() if "restore" in p.name]  # no scratch left behind


def test_restore_force_swaps_in_the_backup_and_keeps_the_replaced_database(app, runner, tmp_path: Path) -> None:
    books = books_of(app)
    fill(books)
    out = tmp_path / "b.gbk"
    assert gb(runner, ["backup", "--out", str(out)]).exit_code == 0
    fill(books, prefix="later", n=2)
    url = app.config["DATABASE_URL"]
    count_after = transfers(url)
    settle(app)
    result = gb(runner, ["restore", "--force", str(out)])
    assert result.exit_code == 0, result.output
    assert "ledger verify: OK" in result.output
    assert transfers(url) == count_after - 2
    kept = [p for p in live_path(app).parent.iterdir() if ".before-restore-" in p.name]
    assert len(kept) == 1 and f"kept as {kept[0]}" in result.output
    assert transfers(f"sqlite:///{kept[0]}") == count_after


def test_restore_never_replaces_a_file_that_is_not_a_database(app, runner, tmp_path: Path) -> None:
    fill(books_of(app))
    out = tmp_path / "b.gbk"
    assert gb(runner, ["backup", "--out", str(out)]).exit_code == 0
    notes = tmp_path / "notes.txt"  # a typo in --to names some other file
    notes.write_text("the district's phone list\n")
    before = digest(notes)
    result = gb(runner, ["restore", "--force", str(out), "--to", f"sqlite:///{notes}"])
    assert result.exit_code == 2 and "not a SQLite database" in result.output
    assert digest(notes) == before


# --- PostgreSQL: pg_restore never runs on the live database -----------------------------------------

@pytest.fixture
def pg_dbs(pg_server: str):
    made: list[str] = []

    def make() -> str:
        url = create_pg_database(pg_server, prefix="gbsafe")
        made.append(url)
        return url

    yield make
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # the kept copies the swaps left
        names = [n for (n,) in conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE 'gbsafe%'"))]
    admin.dispose()
    for name in names:
        if any(name.startswith(url.rsplit("/", 1)[1][:40]) for url in made):
            drop_pg_database(pg_server, f"{pg_server.rsplit('/', 1)[0]}/{name}")


def pg_state(url: str) -> dict:
    """What a half-done ``pg_restore --clean`` destroys: rows, keys, constraints, the append-only trigger."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                "transfers": conn.execute(select(func.count()).select_from(Transfer)).scalar_one(),
                "constraints": conn.execute(text("SELECT count(*) FROM pg_constraint c JOIN pg_namespace n "
                                                 "ON n.oid = c.connamespace WHERE n.nspname = 'public'")).scalar_one(),
                "triggers": conn.execute(text("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal")).scalar_one(),
            }
    finally:
        engine.dispose()


def pg_live(pg_dbs, keys: Path, prefix: str = "s") -> str:
    from goldbean.migrate import upgrade

    url = pg_dbs()
    upgrade(url)
    books = make_books(url, keys)
    try:
        fill(books, prefix)
    finally:
        books.engine.dispose()
    return url


@pytest.mark.postgres
@pytest.mark.parametrize("damage", ["truncated dump", "truncated container", "tampered books"])
def test_a_bad_backup_leaves_the_live_postgres_database_untouched(pg_dbs, tmp_path: Path, damage: str) -> None:
    needs.postgres_program("pg_dump")
    keys = tmp_path / "keys"
    source = pg_live(pg_dbs, keys)
    if damage == "tampered books":  # an entry edited behind the append-only trigger, then backed up
        engine = create_engine(source)
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("UPDATE entries SET posted_delta = posted_delta + 1 "
                              "WHERE id = (SELECT MAX(id) FROM entries)"))
        engine.dispose()
    out = backup(source, tmp_path / "b.gbk", keys_dir=keys).path
    bad = out
    if damage == "truncated dump":
        bad = tmp_path / "bare.dump"
        with tempfile.TemporaryDirectory() as work:
            shutil.copyfile(open_backup(out, Path(work)).database, bad)
        truncate(bad)
    elif damage == "truncated container":
        truncate(bad)
    live = pg_live(pg_dbs, keys, prefix="live")
    before = pg_state(live)
    with pytest.raises(OpsError) as refused:
        restore(bad, live, force=True, keys_dir=keys)
    assert "\n" not in str(refused.value)
    if damage == "tampered books":
        assert isinstance(refused.value, RestoreRefused) and "ledger verify" in str(refused.value)
    assert pg_state(live) == before and before["transfers"] > 0 and before["triggers"] > 0
    assert verify_url(live, keys).ok


@pytest.mark.postgres
def test_postgres_restore_force_swaps_and_keeps_the_replaced_database(pg_dbs, tmp_path: Path) -> None:
    needs.postgres_program("pg_dump")
    keys = tmp_path / "keys"
    source = pg_live(pg_dbs, keys)
    out = backup(source, tmp_path / "b.gbk", keys_dir=keys).path
    live = pg_live(pg_dbs, keys, prefix="live")
    live_transfers = transfers(live)
    holder = create_engine(live)
    held = holder.connect()  # a service still connected: its connection is closed for the swap
    try:
        result = restore(out, live, force=True, keys_dir=keys)
    finally:
        held.invalidate()
        holder.dispose()
    assert result.report.ok
    assert transfers(live) == transfers(source)
    kept_line = next(line for line in result.lines if "kept as" in line)
    kept = kept_line.rsplit(" ", 1)[1]
    assert transfers(live.rsplit("/", 1)[0] + "/" + kept) == live_transfers
    assert pg_state(live)["triggers"] == pg_state(source)["triggers"]


# --- keys: a backup restores on a new machine --------------------------------------------------------

def new_machine(tmp_path: Path):
    """A fresh instance/ (the old one lost with the disk) and an app on it."""
    from goldbean.app import create_app

    instance = tmp_path / "new-machine" / "instance"
    instance.mkdir(parents=True)
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{instance / 'goldbean.db'}",
                      "INSTANCE_PATH": str(instance), "SECRET_KEY": "test-secret"})
    return app, app.test_cli_runner()


def passphrase_file(tmp_path: Path, value: str = PASSPHRASE) -> Path:
    path = tmp_path / f"pass-{len(value)}"
    path.write_text(value + "\n")
    return path


def test_a_backup_restores_and_verifies_on_a_new_machine(app, runner, tmp_path: Path) -> None:
    fill(books_of(app))
    out = tmp_path / "b.gbk"
    made = gb(runner, ["backup", "--out", str(out)], env={"GOLDBEAN_BACKUP_PASSPHRASE": PASSPHRASE})
    assert made.exit_code == 0 and "private signing keys (encrypted" in made.output
    assert b"PRIVATE KEY" not in out.read_bytes()

    new, new_runner = new_machine(tmp_path)
    try:
        result = gb(new_runner, ["restore", str(out), "--passphrase-file", str(passphrase_file(tmp_path))])
        assert result.exit_code == 0, result.output
        assert "installed" in result.output and "ledger verify: OK" in result.output
        keys = Path(new.config["INSTANCE_PATH"]) / "keys"
        old_keys = Path(app.config["INSTANCE_PATH"]) / "keys"
        assert {p.name for p in (keys / "ledger").glob("*.pem")} == {p.name for p in (old_keys / "ledger").glob("*.pem")}
        assert all(p.stat().st_mode & 0o077 == 0 for p in keys.rglob("*.pem"))
        books = books_of(new)
        fill(books, prefix="after")  # the new machine keeps signing
        assert verify_books(books).ok
        assert gb(new_runner, ["ledger", "verify"]).exit_code == 0
    finally:
        books_of(new).engine.dispose()


def test_a_wrong_or_missing_passphrase_is_refused_cleanly(app, runner, tmp_path: Path) -> None:
    fill(books_of(app))
    out = tmp_path / "b.gbk"
    assert gb(runner, ["backup", "--out", str(out), "--passphrase-file", str(passphrase_file(tmp_path))]).exit_code == 0
    new, new_runner = new_machine(tmp_path)
    try:
        wrong = gb(new_runner, ["restore", str(out), "--passphrase-file",
                                str(passphrase_file(tmp_path, "not the passphrase at all"))])
        assert wrong.exit_code == 2 and "wrong backup passphrase" in wrong.output
        assert wrong.output.count("\n") == 1
        missing = gb(new_runner, ["restore", str(out)], env={"GOLDBEAN_BACKUP_PASSPHRASE": ""})
        assert missing.exit_code == 1 and "give the passphrase" in missing.output
        instance = Path(new.config["INSTANCE_PATH"])
        assert not (instance / "goldbean.db").exists() or transfers(new.config["DATABASE_URL"]) == 0
        assert not list((instance / "keys").rglob("*.pem")) if (instance / "keys").exists() else True
    finally:
        books_of(new).engine.dispose()


def test_a_backup_without_passphrase_has_only_public_keys(app, runner, tmp_path: Path) -> None:
    fill(books_of(app))
    out = tmp_path / "b.gbk"
    result = gb(runner, ["backup", "--out", str(out)], env={"GOLDBEAN_BACKUP_PASSPHRASE": ""})
    assert result.exit_code == 0 and "public signing keys only" in result.output
    with tarfile.open(out) as tar:
        keys = tar.extractfile("keys.json").read()
    assert b'"private": null' in keys and b"PRIVATE KEY" not in out.read_bytes()
    kid = next((Path(app.config["INSTANCE_PATH"]) / "keys" / "ledger").glob("*.pem")).stem
    assert kid.encode() in keys


def test_restore_never_overwrites_a_different_key_of_the_same_name(app, runner, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    fill(books_of(app))
    out = tmp_path / "b.gbk"
    env = {"GOLDBEAN_BACKUP_PASSPHRASE": PASSPHRASE}
    assert gb(runner, ["backup", "--out", str(out)], env=env).exit_code == 0
    kid = next((Path(app.config["INSTANCE_PATH"]) / "keys" / "ledger").glob("*.pem")).stem
    new, new_runner = new_machine(tmp_path)
    try:
        squatter = Path(new.config["INSTANCE_PATH"]) / "keys" / "ledger" / f"{kid}.pem"
        squatter.parent.mkdir(parents=True)
        other = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption())
        squatter.write_bytes(other)
        result = gb(new_runner, ["restore", str(out)], env=env)
        assert result.exit_code == 2 and "never overwritten" in result.output
        assert squatter.read_bytes() == other
    finally:
        books_of(new).engine.dispose()


# --- db copy: checks the target before writing anything to it ---------------------------------------

def test_db_copy_never_writes_into_another_application_s_database(app, runner, tmp_path: Path) -> None:
    fill(books_of(app))
    theirs = tmp_path / "theirs.db"
    conn = sqlite3.connect(theirs)
    with conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)")
        conn.execute("INSERT INTO invoices VALUES (1, 100)")
    conn.close()
    before = digest(theirs)
    result = gb(runner, ["db", "copy", "--to", f"sqlite:///{theirs}"])
    assert result.exit_code == 2 and "not Gold Bean's" in result.output
    assert digest(theirs) == before


def test_db_copy_never_writes_into_a_file_that_is_not_a_database(app, runner, tmp_path: Path) -> None:
    fill(books_of(app))
    notes = tmp_path / "notes.txt"
    notes.write_text("the district's phone list\n")
    before = digest(notes)
    result = gb(runner, ["db", "copy", "--to", f"sqlite:///{notes}"])
    assert result.exit_code == 2 and "not a SQLite database" in result.output
    assert digest(notes) == before


@pytest.mark.parametrize("command", ["restore", "db copy"])
def test_no_database_is_ever_made_among_the_keys(app, runner, tmp_path: Path, command: str) -> None:
    fill(books_of(app))
    out = tmp_path / "b.gbk"
    assert gb(runner, ["backup", "--out", str(out)]).exit_code == 0
    keys = Path(app.config["INSTANCE_PATH"]) / "keys"
    squat = keys / "ledger" / "0000000000000000.pem"  # would break loading the keys
    args = ["restore", str(out), "--to"] if command == "restore" else ["db", "copy", "--to"]
    result = gb(runner, [*args, f"sqlite:///{squat}"])
    assert result.exit_code == 2 and "never a database" in result.output
    assert not squat.exists()


def test_a_bare_sqlite_backup_of_an_older_version_still_restores(app, runner, tmp_path: Path) -> None:
    fill(books_of(app))
    out = tmp_path / "b.gbk"
    assert gb(runner, ["backup", "--out", str(out)]).exit_code == 0
    bare = bare_copy(out, tmp_path)
    result = gb(runner, ["restore", str(bare), "--to", f"sqlite:///{tmp_path / 'r' / 'g.db'}"])
    assert result.exit_code == 0 and "ledger verify: OK" in result.output


@pytest.mark.postgres
def test_a_sqlite_backup_restores_into_postgres_through_a_scratch_database(app, runner, pg_dbs,
                                                                          tmp_path: Path) -> None:
    fill(books_of(app))
    out = tmp_path / "b.gbk"
    assert gb(runner, ["backup", "--out", str(out)]).exit_code == 0
    target = pg_dbs()
    result = gb(runner, ["restore", str(out), "--to", target])
    assert result.exit_code == 0, result.output
    assert "ledger verify: OK" in result.output
    assert transfers(target) == transfers(app.config["DATABASE_URL"])


def test_a_backup_from_a_newer_version_is_refused_in_one_line(app, runner, tmp_path: Path) -> None:
    fill(books_of(app))
    out = tmp_path / "b.gbk"
    assert gb(runner, ["backup", "--out", str(out)]).exit_code == 0
    bare = bare_copy(out, tmp_path)
    conn = sqlite3.connect(bare)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = 'from_the_future'")
    conn.close()
    before = settle(app)
    result = gb(runner, ["restore", "--force", str(bare)])
    assert result.exit_code == 2 and result.output.startswith("error: nothing restored: the backup's schema")
    assert result.output.count("\n") == 1
    assert digest(live_path(app)) == before
