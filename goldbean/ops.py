"""Backups, restores and moving a database: ``goldbean backup``, ``goldbean restore``, ``goldbean db copy``.

- SQLite backup: sqlite3's online backup API, in one step, from a read transaction: a consistent
  snapshot of the database as of one commit while the service keeps writing (WAL readers never block
  writers), into a work folder beside the output, then checked with
  ``PRAGMA integrity_check``.
- PostgreSQL backup: ``pg_dump --format=custom --no-owner --no-privileges``, which dumps from one
  snapshot; the password goes through ``PGPASSWORD``, never the command line.
- A backup is one tar file: a manifest (size and SHA-256 of the database), the database, and the signing
  keys (``goldbean/backup_keys.py``: public always, private only under the operator's passphrase).
  The file is written by ``goldbean/safe_output.py``'s rules (no overwrite without force, never the
  database or a key, temporary file, fsync, rename).
- Restore never touches the live database until the backup passed every check: it is read whole, its
  keys opened, the database restored into a scratch location (a SQLite file beside the live one, or a
  scratch PostgreSQL database), migrated to head and verified (``verify_books``: totals, chains,
  checkpoint signatures); then the missing keys are installed and the scratch database swapped in
  atomically (``_swap_sqlite``, ``_swap_pg``), the replaced one kept aside. On any failure the live
  database and the keys are untouched.
- ``copy_database``: every table of ``ledger.models.Base.metadata`` in foreign-key order, rows in
  primary-key order with their ids, in one target transaction; then the PostgreSQL sequences are moved
  past the copied ids, and the copy is compared (row counts, every account's totals and chain head)
  and verified.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

from sqlalchemy import Connection, Engine, Table, create_engine, func, insert, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.sqltypes import DateTime

from ledger.infra.books import Books
from ledger.infra.db import make_engine
from ledger.infra.keys import KeyStore
from ledger.journal.verify import VerifyReport, verify_books
from ledger.schema import Account, Base

from .backup_keys import PASSPHRASE_ENV, KeysError, bundle, conflicts, install, merged_dir, unseal
from .migrate import at_head, current, upgrade
from .safe_output import OutputRefused, check_path, protected_paths, safe_output

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
    hosts = u.query.get("host")
    if isinstance(hosts, tuple) and len(hosts) > 1:  # several servers (a failover cluster): libpq's own form
        query = urlencode({k: v for k, v in u.query.items() if k != "host"}, doseq=True)
        user = f"{quote(u.username, safe='')}@" if u.username else ""
        return (f"postgresql://{user}{','.join(hosts)}/{quote(u.database or '', safe='')}"
                + (f"?{query}" if query else "")), env
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
# A backup is one tar file: MANIFEST.json (format, kind, the database's size and sha256), the database
# (a SQLite file or a pg_dump custom archive) and keys.json (goldbean/backup_keys.py: the public keys
# always, the private keys only encrypted under the operator's passphrase). A bare SQLite file or
# pg_dump archive (made by an older version, or by hand) can still be restored.

MANIFEST = "MANIFEST.json"
KEYS_MEMBER = "keys.json"
BACKUP_FORMAT = "goldbean-backup/1"
DB_MEMBER = {"sqlite": "database.sqlite", "pg_dump": "database.pgdump"}


@dataclass
class BackupResult:
    path: Path
    kind: str  # "sqlite" or "pg_dump"
    size: int
    private_keys: bool = False


def backup(url: str, out: str | os.PathLike[str], *, keys_dir: str | os.PathLike[str] | None = None,
           passphrase: bytes | None = None, force: bool = False, protected: list[Path] | None = None
           ) -> BackupResult:
    """Write a backup of ``url`` (and the keys in ``keys_dir``) to ``out`` by the ``--out`` rules."""
    kind = {"sqlite": "sqlite", "postgresql": "pg_dump"}.get(dialect_of(url))
    if kind is None:
        raise OpsError(f"cannot back up a {dialect_of(url)} database")
    if protected is None:
        protected = protected_paths(url, Path(keys_dir).parent if keys_dir else None)
    try:
        with safe_output(out, force=force, protected=protected) as tmp, \
                tempfile.TemporaryDirectory(prefix=".goldbean-backup.", dir=tmp.parent) as work:
            database = Path(work) / DB_MEMBER[kind]
            if kind == "sqlite":
                _backup_sqlite(sqlite_path(url), database)
            else:
                _backup_pg(url, database)
            keys = bundle(keys_dir, passphrase) if keys_dir is not None else None
            _write_container(tmp, kind, database, keys)
    except (OutputRefused, KeysError) as exc:
        raise OpsError(str(exc)) from None
    path = check_path(out)
    return BackupResult(path, kind, path.stat().st_size, private_keys=passphrase is not None and keys_dir is not None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_container(out: Path, kind: str, database: Path, keys: bytes | None) -> None:
    manifest = {"format": BACKUP_FORMAT, "kind": kind, "database": DB_MEMBER[kind],
                "size": database.stat().st_size, "sha256": _sha256(database),
                "made_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
        if keys is not None:
            _add_bytes(tar, KEYS_MEMBER, keys)
        tar.add(database, arcname=DB_MEMBER[kind], recursive=False)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(dt.datetime.now().timestamp())
    tar.addfile(info, io.BytesIO(data))


def _backup_sqlite(src: Path, out: Path) -> None:
    if not src.exists():
        raise OpsError(f"no database at {src}")
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(out)
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


def _backup_pg(url: str, out: Path) -> None:
    conninfo, env = libpq_args(url)
    _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--compress=6",
          f"--file={out}", f"--dbname={conninfo}"], env)


# --- reading a backup -----------------------------------------------------------------------------

@dataclass
class OpenedBackup:
    kind: str  # "sqlite" or "pg_dump"
    database: Path  # the database, extracted into the work folder (or the bare backup itself)
    keys: bytes | None  # keys.json, if the backup has one


def backup_kind(path: str | os.PathLike[str]) -> str:
    """"sqlite" or "pg_dump": what the backup holds (a container's manifest, or a bare file's magic)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "pg_dump"
    with tempfile.TemporaryDirectory() as work:
        return open_backup(path, Path(work)).kind


def open_backup(path: str | os.PathLike[str], work: Path) -> OpenedBackup:
    """Check a backup whole (a truncated or altered one is refused here) and extract it into ``work``."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(SQLITE_MAGIC):
        return OpenedBackup("sqlite", path, None)
    if head.startswith(PGDUMP_MAGIC):
        return OpenedBackup("pg_dump", path, None)
    try:
        with tarfile.open(path, "r:") as tar:
            manifest = json.loads(_member(tar, MANIFEST))
            if manifest.get("format") != BACKUP_FORMAT or manifest.get("kind") not in DB_MEMBER:
                raise OpsError(f"{path} is not a Gold Bean backup this version can read")
            keys = _member(tar, KEYS_MEMBER, required=False)
            database = work / DB_MEMBER[manifest["kind"]]
            with open(database, "wb") as fh:
                shutil.copyfileobj(_open_member(tar, DB_MEMBER[manifest["kind"]]), fh)
    except (tarfile.TarError, EOFError, OSError, ValueError, KeyError) as exc:
        raise OpsError(f"{path} is not a whole Gold Bean backup (truncated or damaged: {exc})") from None
    if database.stat().st_size != manifest.get("size") or _sha256(database) != manifest.get("sha256"):
        raise OpsError(f"{path} is damaged: its database does not match the checksum in its manifest")
    return OpenedBackup(manifest["kind"], database, keys)


def _open_member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    member = tar.getmember(name)
    fh = tar.extractfile(member) if member.isfile() else None
    if fh is None:
        raise OpsError(f"the backup's {name} is not a file")
    return fh


def _member(tar: tarfile.TarFile, name: str, required: bool = True) -> bytes | None:
    try:
        return _open_member(tar, name).read()
    except KeyError:
        if required:
            raise OpsError(f"the backup has no {name}: not a Gold Bean backup") from None
        return None


# --- restore --------------------------------------------------------------------------------------
# Nothing touches the live database until the backup, restored into a scratch database, has passed
# every check; then one atomic swap (see _swap_sqlite, _swap_pg). The live database is kept aside.

class RestoreRefused(OpsError):
    """The backup failed a check; nothing was changed. ``report`` is the failed verification, if any."""

    def __init__(self, message: str, report: VerifyReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class RestoreResult:
    lines: list[str]
    report: VerifyReport


def restore(path: str | os.PathLike[str], to_url: str, *, force: bool = False,
            keys_dir: str | os.PathLike[str] | None = None, passphrase: bytes | None = None) -> RestoreResult:
    """Restore the backup at ``path`` into ``to_url``: into a scratch database, verified with the keys in
    ``keys_dir`` plus the backup's own (opened with ``passphrase``), then swapped in."""
    path, keys_root = Path(path), Path(keys_dir) if keys_dir is not None else None
    if not path.is_file():
        raise OpsError(f"no backup at {path}")
    target = dialect_of(to_url)
    _refuse_instance_files(to_url, keys_root)
    live_has_data = _check_target(to_url, force)
    with tempfile.TemporaryDirectory(prefix=".goldbean-restore.", dir=_work_parent(to_url)) as work_name:
        work = Path(work_name)
        opened = open_backup(path, work)
        if opened.kind == "pg_dump" and target != "postgresql":
            raise OpsError("cannot restore a pg_dump backup into SQLite: restore into PostgreSQL, then use "
                           "goldbean db copy")
        try:
            carries_private, keys = unseal(opened.keys, passphrase)
            clash = conflicts(keys_root, keys) if keys_root is not None else []
        except KeysError as exc:
            raise RestoreRefused(str(exc)) from None
        if clash:
            raise RestoreRefused(f"{clash[0]} differs from the backup's key of that id: never overwritten")
        verify_keys = merged_dir(keys_root or work / "none", keys, work)
        hint = carries_private and passphrase is None
        if target == "sqlite":
            lines = _restore_sqlite(opened, sqlite_path(to_url), verify_keys, work, hint)
        else:
            lines = _restore_pg(opened, to_url, verify_keys, work, hint, keep=live_has_data)
        if keys_root is not None:
            added = install(keys_root, keys)
            if added:
                lines.append(f"installed {len(added)} signing keys from the backup into {keys_root}")
        report = verify_url(to_url, verify_keys if keys_root is None else keys_root)
    return RestoreResult(lines, report)


def _refuse_instance_files(url: str, keys_root: Path | None) -> None:
    """A SQLite target never lands among the signing keys or on the secret key."""
    if keys_root is None or dialect_of(url) != "sqlite":
        return
    dest = sqlite_path(url)
    keys = keys_root.resolve()
    if dest == keys.parent / "secret_key" or keys == dest or keys in dest.parents:
        raise OpsError(f"{dest} is in {keys} or is the secret key: never a database; choose another path")


def _work_parent(to_url: str) -> Path | None:
    """The work folder sits beside a SQLite target (same file system: the swap is a rename)."""
    if dialect_of(to_url) != "sqlite":
        return None
    folder = sqlite_path(to_url).parent
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _check_target(to_url: str, force: bool) -> bool:
    """Whether the target holds data; refuses without --force if it does, and always if it is not a
    database at all (a SQLite target path naming a key or any other file)."""
    if dialect_of(to_url) == "sqlite":
        dest = sqlite_path(to_url)
        if dest.is_symlink() or (dest.exists() and not dest.is_file()):
            raise OpsError(f"{dest} is not a plain file; restore to the database file itself")
        if not dest.exists() or dest.stat().st_size == 0:
            return False
        with open(dest, "rb") as fh:
            if not fh.read(16).startswith(SQLITE_MAGIC):
                raise OpsError(f"{dest} is not a SQLite database: never overwritten by a restore")
        has_data = True
    elif dialect_of(to_url) == "postgresql":
        has_data = bool(_pg_tables(to_url))
    else:
        raise OpsError(f"cannot restore into a {dialect_of(to_url)} database")
    if has_data and not force:
        raise OpsError(f"{_safe(to_url)} already has data; stop the service and pass --force to replace it "
                       "(the replaced database is kept aside)")
    return has_data


def _pg_tables(url: str) -> list[str]:
    engine = make_engine(url, poolclass=NullPool)
    try:
        return inspect(engine).get_table_names()
    except OperationalError as exc:
        if "does not exist" in str(exc):
            return []
        raise OpsError(f"cannot reach {_safe(url)}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def _check_scratch(url: str, keys: Path, hint: bool) -> VerifyReport:
    """The scratch database is at this version's migration head (older backups are migrated) and its books
    verify: every total, chain and checkpoint signature."""
    _migrate_scratch(url)
    engine = make_engine(url, poolclass=NullPool)
    try:
        if not at_head(engine):
            raise RestoreRefused(f"the backup is at migration {current(engine)}, not at this version's head")
    finally:
        engine.dispose()
    report = verify_url(url, keys)
    if not report.ok:
        why = str(report.problems[0]) if report.problems else report.verdict()
        if hint:
            why += (f"; the backup carries its signing keys encrypted: give the passphrase (--passphrase-file "
                    f"or {PASSPHRASE_ENV})")
        raise RestoreRefused(f"the backup fails ledger verify: {why}", report)
    return report


def _migrate_scratch(url: str) -> None:
    try:
        upgrade(url)
    except Exception as exc:  # an unknown (newer) revision, a schema the migrations cannot follow
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RestoreRefused(f"the backup's schema cannot be brought to this version's: {first}") from None


def _scratch_sqlite(opened: OpenedBackup, work: Path) -> Path:
    """The backup's SQLite database as a scratch file in ``work``, checked whole by SQLite itself."""
    scratch = work / "scratch.db"
    try:
        source = sqlite3.connect(f"file:{opened.database}?mode=ro", uri=True)
        target = sqlite3.connect(scratch)
        try:
            source.backup(target, pages=-1)
            ok = target.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            target.close()
            source.close()
    except sqlite3.DatabaseError as exc:
        raise RestoreRefused(f"the backup's SQLite database is damaged: {exc}") from None
    if ok != "ok":
        raise RestoreRefused(f"the backup's SQLite database fails its integrity check: {ok}")
    return scratch


def _restore_sqlite(opened: OpenedBackup, dest: Path, keys: Path, work: Path, hint: bool) -> list[str]:
    scratch = _scratch_sqlite(opened, work)
    _check_scratch(f"sqlite:///{scratch}", keys, hint)
    kept = _swap_sqlite(scratch, dest)
    lines = [f"restored the backup into {dest} (checked in a scratch copy first)"]
    if kept is not None:
        lines.append(f"the database it replaced is kept as {kept}")
    return lines


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_sqlite(scratch: Path, dest: Path) -> Path | None:
    """Put ``scratch`` at ``dest`` with one rename, keeping the old database as a hard link beside it. The
    old WAL is folded into the old file first (and is then empty), so no stale WAL can be replayed into
    the new file."""
    with sqlite3.connect(scratch) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    os.chmod(scratch, 0o600)
    _fsync(scratch)
    kept = None
    if dest.exists():
        conn = sqlite3.connect(dest, timeout=5)
        try:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            conn.close()
        if busy:
            raise OpsError(f"{dest} is in use: stop the service, then restore")
        kept = dest.with_name(f"{dest.name}.before-restore-{_stamp()}")
        try:
            os.link(dest, kept)  # the old file stays whole under the new name; no copy needed
        except OSError:  # a file system without hard links
            shutil.copy2(dest, kept)
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    os.replace(scratch, dest)
    _fsync(dest.parent)
    return kept


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")


def _restore_pg(opened: OpenedBackup, to_url: str, keys: Path, work: Path, hint: bool, keep: bool) -> list[str]:
    name = make_url(to_url).database or ""
    scratch_url = _create_pg_scratch(to_url, f"{name[:40]}_restore_{os.urandom(4).hex()}")
    swapped = False
    try:
        if opened.kind == "pg_dump":
            conninfo, env = libpq_args(scratch_url)
            try:
                _run([_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                      "--single-transaction", f"--dbname={conninfo}", str(opened.database)], env)
            except OpsError as exc:
                raise RestoreRefused(f"the backup does not restore: {str(exc).splitlines()[0]}") from None
        else:
            source = _scratch_sqlite(opened, work)
            _migrate_scratch(f"sqlite:///{source}")
            copy_database(f"sqlite:///{source}", scratch_url, keys=None, verify=False)
        _check_scratch(scratch_url, keys, hint)
        kept = _swap_pg(scratch_url, to_url, keep)
        swapped = True
    finally:
        if not swapped:
            _drop_pg(scratch_url)
    lines = [f"restored the backup into {_safe(to_url)} (checked in a scratch database first)"]
    if kept:
        lines.append(f"the database it replaced is kept as {kept}")
    return lines


def _admin_engine(url: str):
    return make_engine(make_url(url).set(database="postgres").render_as_string(hide_password=False),
                       poolclass=NullPool, isolation_level="AUTOCOMMIT")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _create_pg_scratch(to_url: str, scratch: str) -> str:
    admin = _admin_engine(to_url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {_ident(scratch)} TEMPLATE template0"))
    except DBAPIError as exc:
        raise OpsError(f"cannot create a scratch database to restore into (the user needs CREATEDB): "
                       f"{str(exc.orig).splitlines()[0]}") from None
    finally:
        admin.dispose()
    return make_url(to_url).set(database=scratch).render_as_string(hide_password=False)


def _drop_pg(url: str) -> None:
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {_ident(make_url(url).database or '')} WITH (FORCE)"))
    finally:
        admin.dispose()


def _swap_pg(scratch_url: str, to_url: str, keep: bool) -> str | None:
    """Rename the live database aside and the scratch one into its name, after closing the live one's
    connections (new ones are refused meanwhile). PostgreSQL cannot rename two databases in one
    transaction: if the second rename fails, the first is undone, so the name always holds the old or
    the new books. An empty live database is dropped instead of kept (it holds nothing)."""
    name, scratch = make_url(to_url).database or "", make_url(scratch_url).database or ""
    kept = f"{name[:40]}_before_restore_{_stamp()[:15]}"
    admin = _admin_engine(to_url)
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists:
                _rename_aside(conn, name, kept)
            try:
                conn.execute(text(f"ALTER DATABASE {_ident(scratch)} RENAME TO {_ident(name)}"))
            except DBAPIError:
                if exists:
                    conn.execute(text(f"ALTER DATABASE {_ident(kept)} RENAME TO {_ident(name)}"))
                raise
            if exists and not keep:
                conn.execute(text(f"DROP DATABASE {_ident(kept)}"))
    except DBAPIError as exc:
        raise OpsError(f"could not swap the restored database in: {str(exc.orig).splitlines()[0]}") from None
    finally:
        admin.dispose()
    return kept if exists and keep else None


def _rename_aside(conn: Connection, name: str, kept: str) -> None:
    """Refuse new connections to ``name``, close its sessions, rename it to ``kept``. A terminated session
    can linger for a moment ("being accessed by other users"): try again, a few seconds at most. On
    failure the database takes connections again under its own name."""
    conn.execute(text(f"ALTER DATABASE {_ident(name)} ALLOW_CONNECTIONS false"))
    try:
        for attempt in range(50):
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
            try:
                conn.execute(text(f"ALTER DATABASE {_ident(name)} RENAME TO {_ident(kept)}"))
                break
            except DBAPIError as exc:
                if "being accessed" not in str(exc.orig) or attempt == 49:
                    raise
                time.sleep(0.1)
    except DBAPIError:
        conn.execute(text(f"ALTER DATABASE {_ident(name)} ALLOW_CONNECTIONS true"))
        raise
    conn.execute(text(f"ALTER DATABASE {_ident(kept)} ALLOW_CONNECTIONS true"))


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def verify_url(url: str, keys_dir: str | os.PathLike[str]) -> VerifyReport:
    """``goldbean ledger verify`` against ``url`` with the keys in ``keys_dir``."""
    engine = make_engine(url, poolclass=NullPool)
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
    _refuse_instance_files(target_url, Path(keys) if keys is not None else None)
    _check_copy_target(source_url, target_url)
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


def _check_copy_target(source_url: str, target_url: str) -> None:
    """Before anything is written to the target (even a migration): it is not the source, not a file that
    is no database, and holds no rows and no tables of anything else."""
    if make_url(source_url).set(password=None) == make_url(target_url).set(password=None):
        raise OpsError("the target is the source; copy into a new database")
    engine = _read_only_engine(target_url)
    if engine is None:
        return
    try:
        present = set(inspect(engine).get_table_names())
        ours = [t for t in Base.metadata.sorted_tables if t.name in present]
        with engine.connect() as conn:
            busy = [t.name for t in ours if conn.execute(select(func.count()).select_from(t)).scalar()]
    except DBAPIError as exc:
        raise OpsError(f"cannot read the target {_safe(target_url)}: {str(exc.orig).splitlines()[0]}") from None
    finally:
        engine.dispose()
    foreign = sorted(present - {t.name for t in ours} - {"alembic_version"})
    if foreign:
        raise OpsError(f"the target has tables that are not Gold Bean's ({', '.join(foreign[:5])}); copy into a "
                       "new database")
    if busy:
        raise OpsError(f"the target is not empty ({', '.join(busy[:5])}); copy into a new database")


def _read_only_engine(url: str) -> Engine | None:
    """An engine that only reads ``url`` (a SQLite file opened read-only: the ledger's engine would turn
    it to WAL), or None for a SQLite file that does not exist yet."""
    if dialect_of(url) != "sqlite":
        return make_engine(url, poolclass=NullPool)
    dest = sqlite_path(url)
    if not dest.exists() or dest.stat().st_size == 0:
        return None
    with open(dest, "rb") as fh:
        if not fh.read(16).startswith(SQLITE_MAGIC):
            raise OpsError(f"{dest} is not a SQLite database: never written by a copy")
    return create_engine("sqlite://", poolclass=NullPool,
                         creator=lambda: sqlite3.connect(f"file:{dest}?mode=ro", uri=True))


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
