"""The auditor's commands end to end: statement files, export, offline verify with the local or a published key."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from doors import books_of
from ledger.audit.statements import CSV_COLUMNS
from ledger.infra.keys import public_jwk
from ledger.infra.settings import Calendar
from tests.ledger.journal.test_export import build_books


def gb(runner, args: list[str]):
    from goldbean.cli import main

    return runner.invoke(main, args)


@pytest.fixture
def books(app):
    b = books_of(app)
    build_books(b)
    return b


TODAY = dt.datetime.now(Calendar().tz).date().isoformat()


def test_statement_files(runner, books, tmp_path):
    out = tmp_path / "s.csv"
    r = gb(runner, ["statement", "wallet:1", "--from", "2020-01-01", "--to", TODAY, "--format", "csv",
                    "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(rows[0]) == CSV_COLUMNS and rows[-1][CSV_COLUMNS.index("kind")] == "closing"
    r = gb(runner, ["statement", "4", "--from", "2020-01-01", "--to", TODAY, "--format", "json", "--out", "-"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["account_code"] == "wallet:1" and body["closing_balance"] == body["lines"][-1]["balance_after"]
    r = gb(runner, ["statement", "nobody", "--from", "2020-01-01", "--to", TODAY, "--out", str(tmp_path / "n.csv")])
    assert r.exit_code == 2 and "account_not_found" in r.output
    r = gb(runner, ["statement", "wallet:1", "--from", "2020-13-01", "--to", TODAY, "--out", str(out)])
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output


def test_export_and_verify(runner, books, client, tmp_path):
    out = tmp_path / "journal.jsonl"
    r = gb(runner, ["audit", "export", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "16 transfers, 32 entries" in r.output
    r = gb(runner, ["audit", "verify", str(out)])
    assert r.exit_code == 0 and r.output.startswith("OK"), r.output

    # the auditor's own copy of the published keys
    jwks = tmp_path / "keys.json"
    jwks.write_text(json.dumps(client.get("/api/v1/keys").json))
    r = gb(runner, ["audit", "verify", str(out), "--key", str(jwks)])
    assert r.exit_code == 0, r.output
    stranger = tmp_path / "stranger.json"
    stranger.write_text(json.dumps({"keys": [{**public_jwk("k", Ed25519PrivateKey.generate().public_key()),
                                              "purpose": "ledger"}]}))
    r = gb(runner, ["audit", "verify", str(out), "--key", str(stranger)])
    assert r.exit_code == 1 and "do not trust" in r.output

    # one changed entry: the verdict names its line
    lines = out.read_bytes().splitlines(keepends=True)
    n = next(i for i, raw in enumerate(lines) if json.loads(raw)["type"] == "entry")
    obj = json.loads(lines[n])
    obj["balance_after"] += 1
    lines[n] = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
    forged = tmp_path / "forged.jsonl"
    forged.write_bytes(b"".join(lines))
    r = gb(runner, ["audit", "verify", str(forged)])
    assert r.exit_code == 1
    assert f"FAILED at line {n + 1}:" in r.output

    # the next export continues this one; the forged one does not
    from ledger.journal.accounts import post
    from ledger.journal.posting import transfer

    post(books, transfer("later", "donate", 1, 2, 10))
    newer = tmp_path / "newer.jsonl"
    assert gb(runner, ["audit", "export", "--out", str(newer)]).exit_code == 0
    r = gb(runner, ["audit", "compare", str(out), str(newer)])
    assert r.exit_code == 0 and r.output.startswith("OK"), r.output
    r = gb(runner, ["audit", "compare", str(newer), str(out)])  # the "newer" file lost entries
    assert r.exit_code == 1 and "FAILED" in r.output


@pytest.mark.parametrize("field, value", [("amount", 999), ("reason", "edited"), ("credit_account_id", 1)])
def test_verify_names_a_changed_transfer_line_itself(runner, books, tmp_path, field, value):
    """Issue 14: the verdict named the line after a changed transfer line, never the line itself."""
    out = tmp_path / "journal.jsonl"
    assert gb(runner, ["audit", "export", "--out", str(out)]).exit_code == 0
    lines = out.read_bytes().splitlines(keepends=True)
    n = next(i for i, raw in enumerate(lines)
             if json.loads(raw)["type"] == "transfer" and json.loads(raw)["transfer_key"] == "aw2")
    obj = json.loads(lines[n])
    assert obj[field] != value
    obj[field] = value
    lines[n] = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    forged = tmp_path / "forged.jsonl"
    forged.write_bytes(b"".join(lines))
    r = gb(runner, ["audit", "verify", str(forged)])
    assert r.exit_code == 1
    assert f"FAILED at line {n + 1}: transfer aw2" in r.output, r.output


def test_reports(runner, books):
    r = gb(runner, ["audit", "trial-balance"])
    assert r.exit_code == 0 and "balanced" in r.output, r.output
    r = gb(runner, ["audit", "trial-balance", "--at", "2020-01-01", "--json"])
    body = json.loads(r.output)
    assert body["total"] == 0 and all(a["balance"] == 0 for a in body["accounts"])
    r = gb(runner, ["audit", "reconcile", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["donated"] == 5000 and json.loads(r.output)["difference"] == 0
    r = gb(runner, ["audit", "settlements", "--from", "2020-01-01", "--to", TODAY])
    [merchant] = json.loads(r.output)
    assert (merchant["redeemed"], merchant["refunded"], merchant["settled"]) == (30, 5, 20)
    r = gb(runner, ["audit", "anomalies", "--from", "2020-01-01", "--to", TODAY, "--min-awards", "2"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["officer_concentration"][0]["officer"] == "user:9"
    r = gb(runner, ["audit", "trial-balance", "--at", "yesterday"])
    assert r.exit_code == 2
