"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they bite: a forbidden import
planted in a copy of the tree makes ``lint-imports`` fail, naming the contract it breaks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ledger", "doors", "merchant_api", "admin_ui", "goldbean")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _copy_tree(target: Path) -> None:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("static", "templates",
                                                                                  "translations", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail("lint-imports is not installed (make install installs the test extras)")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}, timeout=300)


def _plant(path: Path, line: str) -> None:
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + "\n" + rest if sep else line + "\n" + text)


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("ledger/journal/chain.py", "import ledger.earning", "ledger is layered"),
    ("ledger/journal/chain.py", "import flask", "the domain knows nothing of the web"),
    ("ledger/earning/core.py", "import ledger.redemption", "ledger is layered"),
    ("ledger/earning/core.py", "import ledger.radar", "ledger is layered"),
    ("ledger/service/records.py", "import ledger.patrols", "ledger is layered"),
    ("ledger/radar/notices.py", "import ledger.patrols", "the radar stands on earning"),
    ("admin_ui/labels.py", "import merchant_api.errors", "the two front doors do not import each other"),
    ("merchant_api/health_probe.py", "import goldbean.app", "nothing imports the composition root"),
    ("merchant_api/ledger_api.py", "import sqlalchemy", "front doors never touch tables"),
    ("goldbean/awards_cli.py", "import goldbean.cli", "the command line: goldbean.cli assembles the areas"),
    ("goldbean/audit_cli.py", "import goldbean.ledger_cli", "the command line: goldbean.cli assembles the areas"),
])
def test_a_planted_violation_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    _copy_tree(tmp_path)
    path = tmp_path / module
    if not path.exists():
        path.write_text('"""planted by the test"""\n')
    _plant(path, line)
    result = _lint(tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
