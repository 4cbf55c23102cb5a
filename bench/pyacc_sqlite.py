"""pyacc-sqlite: python-accounting posting the same kind of transfer (a balance check first, then a posted
journal entry), one writer, on SQLite (WAL, synchronous=FULL), installed into a throwaway virtualenv.

python-accounting 2.0.0 declares the MySQL and PostgreSQL drivers as dependencies; neither is needed on
SQLite (and mysqlclient needs MySQL's headers to build), so it is installed without them: its own
SQLAlchemy and python-dateutil only. The driver is ``bench/pyacc_driver.py``, a round child
(``bench.peers``) that ``bench.run`` runs alternately with post-sqlite-1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.peers import RoundChild, venv_python

PYACC = "python-accounting==2.0.0"
DEPENDENCIES = ["sqlalchemy>=2.1.4,<2.2", "python-dateutil>=2.9,<3"]
DRIVER = Path(__file__).resolve().parent / "pyacc_driver.py"


def pyacc_python() -> Path:
    python = venv_python("goldbean-bench-pyacc-venv", DEPENDENCIES)
    stamp = python.parent.parent / ".installed-pyacc"
    if not stamp.exists() or stamp.read_text().strip() != PYACC:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", PYACC], check=True,
                       capture_output=True, timeout=600)
        stamp.write_text(PYACC)
    return python


def start_pyacc(work: Path, accounts: int, transfers: int) -> RoundChild:
    """python-accounting's books seeded through its own posting, ready for rounds."""
    db = work / "pyacc.db"
    for ext in ("", "-wal", "-shm"):
        Path(f"{db}{ext}").unlink(missing_ok=True)
    return RoundChild([str(pyacc_python()), str(DRIVER), str(db), str(accounts), str(transfers)], cwd=work,
                      stderr=work / "pyacc.log")
