"""Migrations are reviewed code: one head, upgrade from empty, down and up again, models == migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from goldbean.migrate import downgrade, heads, upgrade
from ledger.schema import Base
from tests.conftest import create_pg_database, drop_pg_database


def test_one_head() -> None:
    assert len(heads()) == 1, heads()


def _diff(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    return diff


def _roundtrip(url: str) -> None:
    upgrade(url)
    assert _diff(url) == [], "the models and the migrations disagree"
    downgrade(url, "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(url)
    assert _diff(url) == []


def test_sqlite_upgrade_from_empty_matches_models(tmp_path: Path) -> None:
    _roundtrip(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_postgres_upgrade_from_empty_matches_models(pg_server: str) -> None:
    url = create_pg_database(pg_server, "gbmigr")
    try:
        _roundtrip(url)
    finally:
        drop_pg_database(pg_server, url)
