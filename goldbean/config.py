"""Configuration from the environment and from files under ``instance/``.

- ``GOLDBEAN_DATABASE_URL``: default ``sqlite:///instance/goldbean.db``. PostgreSQL behind a failover manager:
  libpq's multi-host form ``postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write``.
- ``GOLDBEAN_READ_DATABASE_URL``: optional; where the auditor's reports, statements, exports and dashboards
  read (a standby: ``...?target_session_attrs=prefer-standby``). Unset: they read the primary.
- ``GOLDBEAN_INSTANCE_PATH``: where the secret key and the signing keys live; default ``./instance``.
- ``GOLDBEAN_DEMO``: ``1`` seeds and announces the demo users (``make run`` sets it).
- ``GOLDBEAN_SECURE_COOKIES``: ``1`` behind TLS (the default outside demo mode).
- ``LEDGER_SETTINGS`` (app configuration, or JSON in the file named by ``GOLDBEAN_LEDGER_SETTINGS``): the
  ledger's rules, limits, retention and calendar; built once into the typed ``ledger.infra.settings.Settings``
  by ``ledger_settings`` and refused at start-up when a key is unknown or a value is of the wrong type or range
  (docs/operations.md lists every key).

The secret key and the signing keys are generated on first run, never committed.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from ledger.infra.db import sqlalchemy_url
from ledger.infra.settings import Settings, SettingsError

DEFAULT_DATABASE_URL = "sqlite:///instance/goldbean.db"


def instance_path() -> Path:
    return Path(os.environ.get("GOLDBEAN_INSTANCE_PATH", "instance")).resolve()


def database_url() -> str:
    return os.environ.get("GOLDBEAN_DATABASE_URL", DEFAULT_DATABASE_URL)


def read_database_url() -> str | None:
    return os.environ.get("GOLDBEAN_READ_DATABASE_URL") or None


def normalise_url(url: str) -> str:
    """Let operators write ``postgresql://``; we always use psycopg 3. libpq's multi-host form
    (``h1:5432,h2:5432``) becomes the ``?host=h1:5432&host=h2:5432`` form SQLAlchemy parses."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return sqlalchemy_url(url)


def _secret_key(folder: Path) -> str:
    path = folder / "secret_key"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def load(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    overrides = dict(overrides or {})
    folder = Path(overrides.get("INSTANCE_PATH") or instance_path())
    folder.mkdir(parents=True, exist_ok=True)
    demo = os.environ.get("GOLDBEAN_DEMO", "0") == "1"
    cfg: dict[str, Any] = {
        "INSTANCE_PATH": str(folder),
        "DATABASE_URL": normalise_url(overrides.get("DATABASE_URL") or database_url()),
        "READ_DATABASE_URL": None,
        "DEMO": demo,
        "DEMO_USERS": _demo_usernames(),
        "SESSION_COOKIE_SECURE": os.environ.get("GOLDBEAN_SECURE_COOKIES", "0" if demo else "1") == "1",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "MAX_CONTENT_LENGTH": 256 * 1024,
    }
    cfg.update(overrides)
    read_url = overrides.get("READ_DATABASE_URL", read_database_url())
    cfg["READ_DATABASE_URL"] = normalise_url(read_url) if read_url else None
    if "SECRET_KEY" not in cfg:
        cfg["SECRET_KEY"] = _secret_key(folder)
    db_url = cfg["DATABASE_URL"]
    if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
        # relative SQLite paths are relative to the working directory; make sure the folder exists
        Path(db_url[len("sqlite:///"):]).resolve().parent.mkdir(parents=True, exist_ok=True)
    return cfg


def ledger_settings(cfg: dict[str, Any]) -> Settings:
    """The typed, validated ledger settings of ``cfg``: ``LEDGER_SETTINGS`` (a mapping, or ``Settings`` already
    built) over the JSON file ``GOLDBEAN_LEDGER_SETTINGS`` names, if any. Raises ``SettingsError``."""
    given = cfg.get("LEDGER_SETTINGS")
    if isinstance(given, Settings):
        return given
    mapping: dict[str, Any] = {}
    path = os.environ.get("GOLDBEAN_LEDGER_SETTINGS")
    if path:
        try:
            mapping = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SettingsError(f"GOLDBEAN_LEDGER_SETTINGS={path}: cannot read it as JSON ({exc})") from None
        if not isinstance(mapping, dict):
            raise SettingsError(f"GOLDBEAN_LEDGER_SETTINGS={path}: must hold a JSON object")
    settings = Settings.from_mapping(mapping)
    return settings.with_overrides(given or {})


def _demo_usernames() -> list[str]:
    from .seed_district import demo_usernames

    return demo_usernames()
