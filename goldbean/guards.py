"""Start-up guards: in production (``GOLDBEAN_ENV=production``) the service refuses to start on an unsafe
configuration and says why, every reason at once.

- the secret key is missing, a known default, or shorter than 32 characters;
- debug is on (``FLASK_DEBUG``, ``app.debug``) or the app is in testing mode;
- the database is SQLite and its journal is not WAL (a crash could lose or corrupt acknowledged writes
  under several processes), or it is an in-memory database;
- the instance's secret key or signing keys (``instance/keys``) are readable or writable by the group
  or by others (their folder too).

``goldbean serve`` runs the check before starting gunicorn and every gunicorn worker after loading the app
(``post_worker_init`` in ``goldbean.serve``); outside production it is skipped. Command-line tools (migrations,
verify, backups) are not refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import text

WEAK_SECRETS = {"", "dev", "development", "secret", "changeme", "change-me", "test", "test-secret", "default",
                "insecure", "please-change"}
MIN_SECRET_LEN = 32


class StartupRefused(RuntimeError):
    """The configuration is unsafe for production; ``reasons`` says why."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("refusing to start in production:\n" + "\n".join(f"  - {r}" for r in reasons))


def is_production(config: dict[str, Any] | None = None) -> bool:
    value = (config or {}).get("ENV") or os.environ.get("GOLDBEAN_ENV", "")
    return str(value).lower() == "production"


def problems(app: Flask) -> list[str]:
    """Every reason this app must not serve in production (empty: fine)."""
    out: list[str] = []
    secret = app.config.get("SECRET_KEY")
    if not isinstance(secret, str) or not secret:
        out.append("no secret key: let instance/secret_key be generated, or pass SECRET_KEY")
    elif secret.lower() in WEAK_SECRETS or len(secret) < MIN_SECRET_LEN:
        out.append(f"the secret key is a default or shorter than {MIN_SECRET_LEN} characters")
    if app.debug or os.environ.get("FLASK_DEBUG", "0").lower() in ("1", "true", "yes"):
        out.append("debug is on (FLASK_DEBUG / app.debug): it exposes an interactive console")
    if app.testing:
        out.append("TESTING is on")
    out.extend(_database_problems(app))
    out.extend(_file_problems(Path(app.config["INSTANCE_PATH"])))
    return out


def _database_problems(app: Flask) -> list[str]:
    from doors import books_of

    engine = books_of(app).engine
    if engine.dialect.name != "sqlite":
        return []
    if engine.url.database in (None, "", ":memory:"):
        return ["the database is an in-memory SQLite database"]
    try:
        with engine.connect() as conn:
            mode = str(conn.execute(text("PRAGMA journal_mode")).scalar() or "").lower()
    except Exception as exc:  # any failure to open it is a reason too
        return [f"the SQLite database cannot be opened: {type(exc).__name__}: {exc}"]
    if mode != "wal":
        return [f"the SQLite database is in journal mode {mode!r}, not WAL"]
    return []


def _file_problems(instance: Path) -> list[str]:
    """Secrets (the secret key, private keys) must be the owner's alone; nothing under ``keys`` may be
    writable by others (a planted or swapped key, a forged ``.retired`` marker)."""
    out = []
    keys = instance / "keys"
    candidates = [instance / "secret_key", keys]
    if keys.is_dir():
        candidates += sorted(keys.rglob("*"))
    for path in candidates:
        if not path.exists():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        secret = path.is_file() and (path.name == "secret_key" or path.suffix == ".pem")
        loose = mode & (stat.S_IRWXG | stat.S_IRWXO) if secret else mode & (stat.S_IWGRP | stat.S_IWOTH)
        if loose:
            out.append(f"{path} is {'accessible' if secret else 'writable'} by group or others "
                       f"(mode {oct(mode)}): chmod go-rwx")
    return out


def check(app: Flask) -> None:
    """Raise ``StartupRefused`` in production when there is any problem; do nothing otherwise."""
    if not is_production(app.config):
        return
    reasons = problems(app)
    if reasons:
        raise StartupRefused(reasons)
