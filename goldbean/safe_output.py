"""One way for every command with ``--out`` to write a file without destroying anything (issue 14).

- an existing file is replaced only with ``--force``; without it the final step is ``os.link``, which
  fails if the name appeared meanwhile, so a file made between the check and the write is not lost;
- the database (and its ``-wal``/``-shm``/``-journal``), anything under ``instance/keys`` and
  ``instance/secret_key`` are never written, even with ``--force``, however the path is spelt
  (symbolic links in its folders and hard links are resolved);
- a symbolic link as the output is refused (it would write wherever the link points);
- the data goes to a temporary file in the same folder, is fsynced, then renamed into place (a crash
  leaves the old file or the new one, never half of one); the folder is fsynced after the rename;
- a missing folder is a one-line error, not a traceback.

Commands catch :class:`OutputRefused` and print ``error: <message>`` with exit status 2.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url


class OutputRefused(Exception):
    """The output file cannot be written; the message says why in one line."""


def protected_paths(database_url: str | None, instance_path: str | os.PathLike[str] | None) -> list[Path]:
    """What no ``--out`` may ever write: the SQLite database and its side files, the instance's keys and
    secret. (A PostgreSQL database has no file here to protect.)"""
    paths: list[Path] = []
    if database_url and make_url(database_url).get_backend_name() == "sqlite":
        database = make_url(database_url).database
        if database and database != ":memory:":
            db = Path(os.path.realpath(database))
            paths += [db] + [Path(f"{db}{suffix}") for suffix in ("-wal", "-shm", "-journal")]
    if instance_path:
        instance = Path(os.path.realpath(instance_path))
        paths += [instance / "keys", instance / "secret_key"]
    return paths


def _is_protected(target: Path, protected: Sequence[Path]) -> Path | None:
    for guarded in protected:
        if target == guarded or guarded in target.parents:
            return guarded
        if target.exists() and guarded.exists():
            try:
                if os.path.samefile(target, guarded):  # a hard link to the database or a key
                    return guarded
            except OSError:
                continue
    return None


def check_output(out: str | os.PathLike[str], *, force: bool, protected: Sequence[Path] = ()) -> Path:
    """The real path to write ``out`` at, or :class:`OutputRefused` saying why not."""
    given = Path(out).expanduser()
    if given.name in ("", ".", ".."):
        raise OutputRefused(f"{out} is not a file name")
    folder = given.parent
    if not folder.is_dir():
        raise OutputRefused(f"no folder {folder}: create it first")
    if given.is_symlink():
        raise OutputRefused(f"{given} is a symbolic link; name the file itself")
    target = Path(os.path.realpath(folder)) / given.name
    guarded = _is_protected(target, protected)
    if guarded is not None:
        raise OutputRefused(f"{given} is {guarded} (the database or a key): never overwritten; choose another name")
    if target.is_dir():
        raise OutputRefused(f"{given} is a folder")
    if target.exists() and not force:
        raise OutputRefused(f"{given} exists; pass --force to replace it")
    return target


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def safe_output(out: str | os.PathLike[str], *, force: bool, protected: Sequence[Path] = ()) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes ``out`` (see the module's rules).
    The temporary file exists (empty, mode 0600) and may be replaced by the writer."""
    target = check_output(out, force=force, protected=protected)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o600)
        _fsync_file(tmp)
        check_output(target, force=force, protected=protected)  # again: the writing took time
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if the name appeared meanwhile: nothing is overwritten
            except FileExistsError:
                raise OutputRefused(f"{target} appeared while writing; pass --force to replace it") from None
        _fsync_folder(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(out: str | os.PathLike[str], data: bytes, *, force: bool, protected: Sequence[Path] = ()) -> Path:
    with safe_output(out, force=force, protected=protected) as tmp:
        tmp.write_bytes(data)
    return check_path(out)


def check_path(out: str | os.PathLike[str]) -> Path:
    given = Path(out).expanduser()
    return Path(os.path.realpath(given.parent)) / given.name
