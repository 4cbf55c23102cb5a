"""Backups, restores and moving a database: ``goldbean backup``, ``goldbean restore``, ``goldbean db copy``.

- SQLite backup: sqlite3's online backup API, in one step, from a read transaction: a consistent
  snapshot of the database as of one commit while the service keeps writing (WAL readers never block
  writers). The copy is written beside the target and renamed into place, then checked with
  ``PRAGMA integrity_check``.
- PostgreSQL backup: ``pg_dump --format=custom --no-owner --no-privileges``, which dumps from one
  snapshot; the password goes through ``PGPASSWORD``, never the command line.
- Restore: a SQLite backup into a SQLite file (which must not exist, or ``--force``), a PostgreSQL dump
  with ``pg_restore --single-transaction --exit-on-error`` into an empty database; a SQLite backup can
  also be restored into PostgreSQL (via ``copy_database``). Then the restored ledger is verified with
  the LOCAL signing keys (``instance/keys``): the checkpoints in a backup can only be checked with the
  keys that signed them, so back up ``instance/`` together with the database.
- ``copy_database``: every table of ``ledger.models.Base.metadata`` in foreign-key order, rows in
  primary-key order with their ids, in one target transaction; then the PostgreSQL sequences are moved
  past the copied ids, and the copy is compared (row counts, every account's totals and chain head)
  and verified.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Table, func, insert, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.sql.sqltypes import DateTime

from ledger.infra.books import Books
from ledger.infra.db import make_engine
from ledger.infra.keys import KeyStore
from ledger.journal.verify import VerifyReport, verify_books
from ledger.schema import Account, Base

from .migrate import at_head, current, upgrade

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
COPY_CHUNK = 2_000


class OpsError(Exception):
    """An operation could not be done; the message says why and what to do."""


# --- URLs -----------------------------------------------------------------------------------------

def dialect_of(url: str) -> str:
    return make_url(url).get_backend_name()


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise OpsError(f"not a SQLite file URL: {url}")
    return Path(database).resolve()


def libpq_args(url: str) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy URL (``postgresql+psycopg://u:p@h:5432/db?sslmode=require``) as a libpq URI for
    pg_dump/pg_restore/psql, without the password, and the environment that carries the password."""
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    plain = URL.create("postgresql", username=u.username, host=u.host, port=u.port, database=u.database,
                       query=u.query)
    return plain.render_as_string(hide_password=False), env


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise OpsError(f"{name} is not installed (Debian: apt-get install postgresql-client-15)")
    return path


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise OpsError(f"{Path(cmd[0]).name} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


# --- backup ---------------------------------------------------------------------------------------

@dataclass
class BackupResult:
    path: Path
    kind: str  # "sqlite" or "pg_dump"
    size: int


def backup(url: str, out: str | os.PathLike[str]) -> BackupResult:
    out_path = Path(out).resolve()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if dialect_of(url) == "sqlite":
        _backup_sqlite(sqlite_path(url), out_path)
        kind = "sqlite"
    elif dialect_of(url) == "postgresql":
        _backup_pg(url, out_path)
        kind = "pg_dump"
    else:
        raise OpsError(f"cannot back up a {dialect_of(url)} database")
    return BackupResult(out_path, kind, out_path.stat().st_size)


def _backup_sqlite(src: Path, out: Path) -> None:
    if not src.exists():
        raise OpsError(f"no database at {src}")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
        target = sqlite3.connect(tmp)
        try:
            source.execute("PRAGMA busy_timeout=30000")
            # pages=-1: the whole database in one step, under one read lock (a snapshot in WAL mode);
            # a stepwise copy would restart whenever another connection writes
            source.backup(target, pages=-1)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            ok = target.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                raise OpsError(f"the backup failed its integrity check: {ok}")
        finally:
            target.close()
            source.close()
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _backup_pg(url: str, out: Path) -> None:
    conninfo, env = libpq_args(url)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--compress=6",
              f"--file={tmp}", f"--dbname={conninfo}"], env)
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


# --- restore --------------------------------------------------------------------------------------

def backup_kind(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "pg_dump"
    raise OpsError(f"{path} is neither a SQLite backup nor a pg_dump custom-format archive")


def restore(path: str | os.PathLike[str], to_url: str, *, force: bool = False) -> str:
    """Restore the backup at ``path`` into ``to_url``; returns what was done (one line)."""
    path = Path(path)
    if not path.exists():
        raise OpsError(f"no backup at {path}")
    kind = backup_kind(path)
    target = dialect_of(to_url)
    if kind == "sqlite" and target == "sqlite":
        dest = sqlite_path(to_url)
        if dest.exists() and dest.stat().st_size > 0 and not force:
            raise OpsError(f"{dest} exists; stop the service and pass --force to overwrite it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.restore.tmp")
        shutil.copyfile(path, tmp)
        os.chmod(tmp, 0o600)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{dest}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, dest)
        return f"restored SQLite backup into {dest}"
    if kind == "pg_dump" and target == "postgresql":
        _ensure_empty_pg(to_url, force)
        conninfo, env = libpq_args(to_url)
        args = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
        args += ["--clean", "--if-exists"] if force else ["--single-transaction"]
        _run(args + [f"--dbname={conninfo}", str(path)], env)
        return f"restored pg_dump archive into {_safe(to_url)}"
    if kind == "sqlite" and target == "postgresql":
        result = copy_database(f"sqlite:///{path.resolve()}", to_url, keys=None, verify=False)
        return f"restored SQLite backup into {_safe(to_url)} ({result.rows} rows)"
    raise OpsError(f"cannot restore a {kind} backup into {target}; restore into PostgreSQL, then use "
                   "goldbean db copy")


def _ensure_empty_pg(url: str, force: bool) -> None:
    engine = make_engine(url)
    try:
        names = inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if names and not force:
        raise OpsError(f"{_safe(url)} already has tables ({', '.join(sorted(names)[:5])}...); restore into a "
                       "new empty database (createdb) or pass --force to replace its contents")


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def verify_url(url: str, keys_dir: str | os.PathLike[str]) -> VerifyReport:
    """``goldbean ledger verify`` against ``url`` with the keys in ``keys_dir``."""
    engine = make_engine(url)
    try:
        return verify_books(Books(engine=engine, keys=KeyStore(keys_dir)))
    finally:
        engine.dispose()


# --- copy -----------------------------------------------------------------------------------------

@dataclass
class CopyResult:
    tables: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # models whose tables neither database has yet
    problems: list[str] = field(default_factory=list)
    report: VerifyReport | None = None

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    @property
    def ok(self) -> bool:
        return not self.problems and (self.report is None or self.report.ok)


def _fix_row(row: dict, tz_columns: list[str]) -> dict:
    for name in tz_columns:
        value = row.get(name)
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            row[name] = value.replace(tzinfo=dt.timezone.utc)  # SQLite keeps UTC without a zone
    return row


def copy_database(source_url: str, target_url: str, *, keys: str | os.PathLike[str] | None,
                  verify: bool = True) -> CopyResult:
    """Copy every table from ``source_url`` to an empty ``target_url`` (migrated to head first)."""
    src = make_engine(source_url)
    dst = make_engine(target_url)
    result = CopyResult()
    try:
        if not at_head(src):
            raise OpsError(f"the source is at migration {current(src) or '(empty)'}, not at head: run "
                           "goldbean db upgrade on it first")
        upgrade(target_url)
        in_source, in_target = set(inspect(src).get_table_names()), set(inspect(dst).get_table_names())
        tables = [t for t in Base.metadata.sorted_tables if t.name in in_source and t.name in in_target]
        result.skipped = [t.name for t in Base.metadata.sorted_tables if t not in tables]
        missing = [name for name in result.skipped if name in in_source]
        if missing:
            raise OpsError(f"the target lacks tables the source has: {', '.join(missing)}")
        unknown = sorted(in_source - {t.name for t in tables} - {"alembic_version"})
        if unknown:
            raise OpsError(f"the source has tables this version does not know: {', '.join(unknown)}")
        with dst.connect() as conn:
            busy = [t.name for t in tables if conn.execute(select(func.count()).select_from(t)).scalar()]
        if busy:
            raise OpsError(f"the target is not empty ({', '.join(busy[:5])}); copy into a new database")
        # one read transaction on the source: every table from the same snapshot, while it keeps serving
        with src.connect().execution_options(readonly=True) as sconn, sconn.begin(), dst.begin() as dconn:
            for table in tables:
                tz_columns = [c.name for c in table.columns
                              if isinstance(c.type, DateTime) and c.type.timezone]
                order = list(table.primary_key.columns) or list(table.columns)
                rows = sconn.execute(select(table).order_by(*order))
                count = 0
                while batch := rows.fetchmany(COPY_CHUNK):
                    dconn.execute(insert(table), [_fix_row(dict(r._mapping), tz_columns) for r in batch])
                    count += len(batch)
                result.tables[table.name] = count
            if dst.dialect.name == "postgresql":
                _reset_sequences(dconn, tables)
            # compare against the same source snapshot that was copied (the source may have moved on)
            result.problems = compare_databases(sconn, dconn, tables)
    finally:
        src.dispose()
        dst.dispose()
    if verify and keys is not None:
        result.report = verify_url(target_url, keys)
    return result


def _reset_sequences(conn, tables) -> None:
    """Move each serial/identity sequence past the ids just copied in."""
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not _is_int(pk[0]):
            continue
        col = pk[0].name
        seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": col}).scalar()
        if seq is None:
            continue
        conn.execute(text(f'SELECT setval(:seq, COALESCE((SELECT MAX("{col}") FROM "{table.name}"), 1), '
                          f'(SELECT MAX("{col}") FROM "{table.name}") IS NOT NULL)'), {"seq": seq})


def _is_int(column) -> bool:
    try:
        return column.type.python_type is int
    except NotImplementedError:
        return False


def compare_databases(a: Connection, b: Connection, tables: list[Table]) -> list[str]:
    """Differences between two copies: row counts per table, every account's totals and chain head."""
    problems: list[str] = []
    cols = [Account.id, Account.code, Account.debits_pending, Account.debits_posted, Account.credits_pending,
            Account.credits_posted, Account.entry_count, Account.chain_head]
    for table in tables:
        na = a.execute(select(func.count()).select_from(table)).scalar()
        nb = b.execute(select(func.count()).select_from(table)).scalar()
        if na != nb:
            problems.append(f"table {table.name}: {na} rows in the source, {nb} in the copy")
    left = {r.id: tuple(r) for r in a.execute(select(*cols).order_by(Account.id))}
    right = {r.id: tuple(r) for r in b.execute(select(*cols).order_by(Account.id))}
    for account_id in sorted(set(left) | set(right)):
        if left.get(account_id) != right.get(account_id):
            problems.append(f"account {account_id}: source {left.get(account_id)} != copy {right.get(account_id)}")
    return problems
