"""hordak-pg: django-hordak posting the same kind of transfer (with a balance check first), 16 workers, on
the same PostgreSQL server, installed into a throwaway virtualenv by the benchmark itself.

The virtualenv lives in ``$TMPDIR/goldbean-bench-hordak-venv`` (``bench.peers.venv_python``); the Django
side is ``bench/hordak_driver.py``, a round child: ``bench.run`` runs its rounds alternately with
post-pg-16's.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.peers import RoundChild, venv_python

HORDAK = "django-hordak==2.0.0"
DRIVER = Path(__file__).resolve().parent / "hordak_driver.py"


def start_hordak(server_url: str, accounts: int, transfers: int, workers: int, procs: int,
                 work: Path) -> tuple[RoundChild, str]:
    """The seeded django-hordak books in a scratch database, ready for rounds; (the child, the database)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    python = venv_python("goldbean-bench-hordak-venv", [HORDAK, "psycopg[binary]"])
    name = f"goldbean_bench_hordak_{os.getpid()}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    u = make_url(server_url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    child = RoundChild([str(python), str(DRIVER), name, u.host or "127.0.0.1", str(u.port or 5432),
                        u.username or "postgres", str(accounts), str(transfers), str(workers), str(procs)],
                       env=env, cwd=tempfile.gettempdir(), stderr=work / "hordak.log")
    return child, name


def drop_database(server_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
