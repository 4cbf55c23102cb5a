"""Issue 13, the command line: each area is its own command group assembled by ``goldbean.cli`` (no import
cycle), ``goldbean --help`` lists every group, and the offline commands work where no app can be built."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path

import grimp
import pytest
from click.testing import CliRunner

from doors import books_of
from ledger import service
from tests.ledger.journal.test_export import build_books
from tests.patrol_world import build_patrol_world

ROOT = Path(__file__).resolve().parents[2]
GROUPS = ["audit", "awards", "backup", "certificate", "db", "events", "keys", "ledger", "patrols", "restore",
          "seed-demo", "serve", "settlement", "statement", "worker"]


def _broken_env(tmp_path: Path) -> dict[str, str]:
    """An environment where ``create_app`` fails: a database URL no driver can open."""
    return {"GOLDBEAN_DATABASE_URL": "nosuchdriver://nowhere/goldbean",
            "GOLDBEAN_INSTANCE_PATH": str(tmp_path / "nowhere-instance")}


def _offline(args: list[str], tmp_path: Path):
    """Run ``goldbean ARGS`` as a shell would, in the broken environment (no app of the test suite's)."""
    from goldbean.cli import main

    return CliRunner().invoke(main, args, env=_broken_env(tmp_path))


def test_the_broken_environment_really_cannot_build_the_app(tmp_path, monkeypatch) -> None:
    from goldbean.app import create_app

    for name, value in _broken_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(Exception, match="nosuchdriver"):
        create_app()


def test_help_lists_every_group(runner, tmp_path) -> None:
    from goldbean.cli import main

    for result in (runner.invoke(main, ["--help"]), _offline(["--help"], tmp_path)):
        assert result.exit_code == 0, result.output
        listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
        assert set(GROUPS) <= listed, sorted(set(GROUPS) - listed)
    ledger_help = _offline(["db", "--help"], tmp_path)
    assert ledger_help.exit_code == 0 and {"upgrade", "current", "copy"} <= set(ledger_help.output.split())


def test_audit_verify_with_a_key_and_compare_need_no_app(app, runner, client, tmp_path) -> None:
    from goldbean.cli import main

    build_books(books_of(app))
    out = tmp_path / "journal.jsonl"
    assert runner.invoke(main, ["audit", "export", "--out", str(out)]).exit_code == 0
    jwks = tmp_path / "keys.json"
    jwks.write_text(json.dumps(client.get("/api/v1/keys").json))

    verified = _offline(["audit", "verify", str(out), "--key", str(jwks)], tmp_path)
    assert verified.exit_code == 0 and verified.output.startswith("OK"), verified.output
    compared = _offline(["audit", "compare", str(out), str(out)], tmp_path)
    assert compared.exit_code == 0, compared.output

    lines = out.read_bytes().splitlines(keepends=True)
    n = next(i for i, raw in enumerate(lines) if json.loads(raw)["type"] == "entry")
    obj = json.loads(lines[n])
    obj["balance_after"] += 1
    lines[n] = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
    (tmp_path / "forged.jsonl").write_bytes(b"".join(lines))
    failed = _offline(["audit", "verify", str(tmp_path / "forged.jsonl"), "--key", str(jwks)], tmp_path)
    assert failed.exit_code == 1 and f"FAILED at line {n + 1}:" in failed.output, failed.output
    # without --key the instance's own keys are needed: the app is built, and here it cannot be
    assert _offline(["audit", "verify", str(out)], tmp_path).exit_code != 0


def test_certificate_verify_with_jwks_needs_no_app(app, client, tmp_path) -> None:
    books = books_of(app)
    pw = build_patrol_world(books)
    cert = service.issue_certificate(books, pw.w.actor("v1"), first_day=dt.date(2026, 11, 1),
                                     last_day=dt.date(2026, 11, 30))
    jwks = tmp_path / "keys.json"
    jwks.write_text(json.dumps(client.get("/api/v1/keys").json))
    result = _offline(["certificate", "verify", cert.code, "--jwks", str(jwks)], tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["name"] == "V1"


def _cli_modules() -> list[str]:
    names = ["goldbean.cli", "goldbean.cli_areas", "goldbean.cli_common", "goldbean.app"]
    return names + sorted(f"goldbean.{p.stem}" for p in (ROOT / "goldbean").glob("*_cli.py"))


def test_the_cli_modules_form_no_import_cycle() -> None:
    graph = grimp.build_graph("goldbean", "ledger", "doors", "merchant_api", "admin_ui")
    modules = _cli_modules()
    cycles = [(a, b) for a in modules for b in modules
              if a < b and graph.chain_exists(a, b, as_packages=False) and graph.chain_exists(b, a, as_packages=False)]
    assert cycles == []
    for area in modules[4:]:
        assert not graph.chain_exists(area, "goldbean.cli", as_packages=False), area


def test_every_area_module_is_assembled_and_under_the_contract() -> None:
    from goldbean.cli_areas import AREAS

    areas = {f"goldbean.{p.stem}" for p in (ROOT / "goldbean").glob("*_cli.py")}
    assert {m.__name__ for m in AREAS} == areas
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layered = {name.strip() for c in contracts if c["type"] == "layers" for layer in c["layers"]
               for name in layer.split("|")}
    assert areas <= layered
