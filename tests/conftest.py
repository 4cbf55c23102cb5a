"""Shared fixtures: ``books`` on SQLite and (when reachable) PostgreSQL, ``app``, ``client``, ``runner``.

PostgreSQL tests run when ``GOLDBEAN_TEST_POSTGRES_URL`` names a reachable server (one scratch
database per test session, migrated once, truncated between tests) and are skipped with the reason
otherwise. With ``GOLDBEAN_REQUIRE_POSTGRES=1`` (CI) an unreachable server fails them instead.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from goldbean.migrate import upgrade
from ledger.infra.books import Books
from ledger.infra.db import make_engine
from ledger.infra.keys import KeyStore

PG_URL = os.environ.get("GOLDBEAN_TEST_POSTGRES_URL", "")
REQUIRE_PG = os.environ.get("GOLDBEAN_REQUIRE_POSTGRES") == "1"

# Property tests draw the same examples on every run (a failure fails every time; a flaky suite blocks
# landing). GOLDBEAN_HYPOTHESIS_EXPLORE=1 draws new ones, to look for trouble on purpose.
hypothesis_settings.register_profile("goldbean", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile("explore" if os.environ.get("GOLDBEAN_HYPOTHESIS_EXPLORE") else "goldbean")


class FakeClock:
    """A clock the tests move by hand; starts at a fixed moment, in UTC."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _pg_unavailable(reason: str) -> None:
    if REQUIRE_PG:
        pytest.fail(f"PostgreSQL is required here (GOLDBEAN_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def pg_admin_url() -> str:
    from goldbean.config import normalise_url

    return normalise_url(PG_URL)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The server URL, checked reachable once per session."""
    if not PG_URL:
        _pg_unavailable("GOLDBEAN_TEST_POSTGRES_URL is not set")
    url = pg_admin_url()
    try:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        _pg_unavailable(f"cannot reach {make_url(url).render_as_string(hide_password=True)}: {exc}")
    return url


def create_pg_database(server_url: str, prefix: str = "gbtest") -> str:
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_database(pg_server: str) -> Iterator[str]:
    """One migrated scratch database for the whole session."""
    url = create_pg_database(pg_server)
    upgrade(url)
    yield url
    drop_pg_database(pg_server, url)


def truncate_all(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        present = set(inspect(conn).get_table_names()) - {"alembic_version"}
    names = ", ".join(f'"{name}"' for name in sorted(present))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "goldbean.db"
    upgrade(f"sqlite:///{path}")
    return path


def fresh_sqlite(template: Path, folder: Path) -> str:
    target = folder / "goldbean.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database: SQLite always, PostgreSQL when reachable."""
    if request.param == "sqlite":
        return fresh_sqlite(sqlite_template, tmp_path)
    url = request.getfixturevalue("pg_database")
    truncate_all(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    return fresh_sqlite(sqlite_template, tmp_path)


@pytest.fixture
def pg_url(pg_database: str) -> str:
    truncate_all(pg_database)
    return pg_database


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_books(url: str, keys_dir: Path, clock: FakeClock | None = None, **engine_kwargs: object) -> Books:
    books = Books(engine=make_engine(url, **engine_kwargs), keys=KeyStore(keys_dir))
    if clock is not None:
        books.clock = clock
    return books


@pytest.fixture
def books(db_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Books]:
    b = make_books(db_url, tmp_path / "keys", clock)
    yield b
    b.engine.dispose()


# --- the web app ------------------------------------------------------------------------------------

@pytest.fixture
def app_config(tmp_path: Path, sqlite_template: Path, clock: FakeClock) -> dict[str, object]:
    instance = tmp_path / "instance"
    instance.mkdir()
    return {
        "TESTING": True,
        "DATABASE_URL": fresh_sqlite(sqlite_template, instance),
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret",
        "SESSION_COOKIE_SECURE": False,
        "CLOCK": clock,
    }


@pytest.fixture
def app(app_config: dict[str, object]):
    from doors import books_of
    from goldbean.app import create_app

    application = create_app(app_config)
    yield application
    books_of(application).engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- a highly available PostgreSQL (Patroni + etcd, goldbean.ha_local) -------------------------------------
# Its tests run when patroni, etcd and the PostgreSQL server binaries are installed; with GOLDBEAN_REQUIRE_HA=1
# (CI) their absence fails them instead of skipping. One cluster for the whole session (it takes ~20 s).

REQUIRE_HA = os.environ.get("GOLDBEAN_REQUIRE_HA") == "1"


@pytest.fixture(scope="session")
def ha_cluster():
    import tempfile

    from goldbean.ha_local import LocalCluster
    from tests.chaos.ha import ha_available

    ok, why = ha_available()
    if not ok:
        if REQUIRE_HA:
            pytest.fail(f"the HA cluster is required here (GOLDBEAN_REQUIRE_HA=1) but {why}")
        pytest.skip(f"HA tests skipped: {why}")
    root = Path(tempfile.mkdtemp(prefix="goldbean-ha-test-"))
    root.chmod(0o755)  # its processes run as the postgres user when we are root
    cluster = LocalCluster(root / "cluster")
    try:
        cluster.up(standbys=2, db="postgres")
        yield cluster
    finally:
        cluster.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def ha_template(ha_cluster) -> str:
    """A migrated database on the cluster that the HA tests copy (CREATE DATABASE ... TEMPLATE)."""
    upgrade(ha_cluster.create_database("gb_template"))
    return "gb_template"
