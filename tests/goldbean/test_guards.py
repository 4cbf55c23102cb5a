"""Start-up guards: in production the service refuses an unsafe configuration and says why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from goldbean.app import create_app
from goldbean.guards import StartupRefused, check

GOOD_SECRET = "s" * 48


@pytest.fixture
def prod(monkeypatch, tmp_path: Path, sqlite_template: Path) -> dict:
    import shutil

    monkeypatch.setenv("GOLDBEAN_ENV", "production")
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    instance = tmp_path / "instance"
    instance.mkdir()
    db = instance / "goldbean.db"
    shutil.copyfile(sqlite_template, db)
    return {"DATABASE_URL": f"sqlite:///{db}", "INSTANCE_PATH": str(instance), "SECRET_KEY": GOOD_SECRET}


def start(config: dict) -> None:
    check(create_app(config))


def refusal(config: dict) -> list[str]:
    with pytest.raises(StartupRefused) as info:
        start(config)
    return info.value.reasons


def test_a_safe_production_configuration_starts(prod: dict) -> None:
    app = create_app(prod)
    app.extensions["goldbean.books"].keys.ensure("access")  # keys are written owner-only
    start(prod)


def test_generated_secret_and_keys_pass(prod: dict) -> None:
    del prod["SECRET_KEY"]  # generated into instance/secret_key, mode 0600
    start(prod)


@pytest.mark.parametrize("secret", ["", "dev", "test-secret", "short-but-not-default"])
def test_default_or_short_secret_is_refused(prod: dict, secret: str) -> None:
    reasons = refusal({**prod, "SECRET_KEY": secret})
    assert any("secret key" in r for r in reasons)


def test_debug_and_testing_are_refused(prod: dict, monkeypatch) -> None:
    monkeypatch.setenv("FLASK_DEBUG", "1")
    reasons = refusal({**prod, "TESTING": True})
    assert any("debug" in r for r in reasons) and any("TESTING" in r for r in reasons)


def test_sqlite_without_wal_is_refused(prod: dict, monkeypatch) -> None:
    import ledger.infra.db

    real = ledger.infra.db._install_sqlite_hooks

    def no_wal(engine):  # a server whose connections never switch to WAL
        real(engine)
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _rollback_journal(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA journal_mode=DELETE")

    monkeypatch.setattr(ledger.infra.db, "_install_sqlite_hooks", no_wal)
    reasons = refusal(prod)
    assert any("not WAL" in r for r in reasons)


def test_keys_readable_by_others_are_refused(prod: dict) -> None:
    app = create_app(prod)
    key = app.extensions["goldbean.books"].keys.ensure("wallet")
    pem = next((Path(prod["INSTANCE_PATH"]) / "keys" / "wallet").glob("*.pem"))
    os.chmod(pem, 0o644)
    reasons = refusal(prod)
    assert len(reasons) == 1 and str(pem) in reasons[0] and "chmod go-rwx" in reasons[0], key.kid


def test_every_reason_at_once(prod: dict, monkeypatch) -> None:
    monkeypatch.setenv("FLASK_DEBUG", "1")
    secret_file = Path(prod["INSTANCE_PATH"]) / "secret_key"
    secret_file.write_text("x" * 64)
    os.chmod(secret_file, 0o644)
    reasons = refusal({**prod, "SECRET_KEY": "dev"})
    assert len(reasons) == 3


def test_outside_production_nothing_is_checked(prod: dict, monkeypatch) -> None:
    monkeypatch.setenv("GOLDBEAN_ENV", "development")
    start({**prod, "SECRET_KEY": "dev"})


def test_goldbean_serve_says_why_and_exits(prod: dict, monkeypatch) -> None:
    import goldbean.serve

    monkeypatch.setattr(goldbean.serve, "exec_gunicorn", lambda: pytest.fail("gunicorn must not start"))
    app = create_app({**prod, "SECRET_KEY": "dev"})
    from goldbean.cli import main

    result = app.test_cli_runner().invoke(main, ["serve"])
    assert result.exit_code != 0
    assert "refusing to start in production" in result.output and "secret key" in result.output
