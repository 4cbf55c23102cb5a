"""hordak-pg: django-hordak posting the same kind of transfer (with a balance check first), 16 workers, on
the same PostgreSQL server, installed into a throwaway virtualenv by the benchmark itself.

The virtualenv lives in ``$TMPDIR/goldbean-bench-hordak-venv`` (kept between runs to save the download;
delete it to start over); nothing of it enters Gold Bean's own environment. The Django side is
``bench/hordak_driver.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HORDAK = "django-hordak==2.0.0"
DRIVER = Path(__file__).resolve().parent / "hordak_driver.py"


def venv_python() -> Path:
    venv = Path(tempfile.gettempdir()) / "goldbean-bench-hordak-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists() or stamp.read_text().strip() != HORDAK:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", HORDAK, "psycopg[binary]"], check=True,
                       capture_output=True, timeout=600)
        stamp.write_text(HORDAK)
    return python


def run_hordak(server_url: str, accounts: int, transfers: int, workers: int, procs: int,
               duration: float) -> dict[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    python = venv_python()
    name = f"goldbean_bench_hordak_{os.getpid()}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        u = make_url(server_url)
        env = dict(os.environ)
        if u.password:
            env["PGPASSWORD"] = str(u.password)
        proc = subprocess.run(
            [str(python), str(DRIVER), name, u.host or "127.0.0.1", str(u.port or 5432), u.username or "postgres",
             str(accounts), str(transfers), str(workers), str(procs), str(duration)],
            capture_output=True, text=True, env=env, timeout=duration + 1800, cwd=tempfile.gettempdir())
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip()[-600:])
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
