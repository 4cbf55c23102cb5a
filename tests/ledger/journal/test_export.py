"""Journal exports: the round trip on both databases, and every single-line forgery is caught offline."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import DomainError
from ledger.infra.keys import key_id_of, public_jwk
from ledger.journal.accounts import make_checkpoint, open_account, post
from ledger.journal.chain import checkpoint_digest
from ledger.journal.export import export_digest, export_journal, keys_from_jwks, trusted_keys, verify_export
from ledger.journal.posting import hold, post_hold, reversal, transfer, void_hold
from tests.conftest import fresh_sqlite, make_books


def build_books(books) -> None:
    """A small district: donations, allocations, awards, holds posted and voided, refunds, a reversal,
    a settlement, with checkpoints before and after some of it."""
    ids = {k: open_account(books, k, kind, name=name).id for k, kind, name in (
        ("donations", "donations", "捐赠"), ("fund", "fund", "金豆基金"), ("budget:1", "budget", "金沙社区预算"),
        ("wallet:1", "wallet", "张三的钱包"), ("wallet:2", "wallet", ""), ("merchant:1", "merchant", "便利店"),
        ("payout", "payout", ""), ("expiry", "expiry", ""))}
    post(books, transfer("don1", "donate", ids["donations"], ids["fund"], 5000, reason="首笔捐赠"))
    post(books, transfer("alloc1", "allocate", ids["fund"], ids["budget:1"], 2000))
    make_checkpoint(books)
    for i in range(4):
        post(books, transfer(f"aw{i}", "award", ids["budget:1"], ids[f"wallet:{1 + i % 2}"], 50 + i,
                             actor="user:9", reference=f"claim:{i}", reason="巡逻"))
    post(books, hold("h1", "redeem", ids["wallet:1"], ids["merchant:1"], 40, 600))
    post(books, post_hold("h1p", "h1", 30))
    post(books, hold("h2", "redeem", ids["wallet:2"], ids["merchant:1"], 10, 600))
    post(books, void_hold("h2v", "h2"))
    post(books, hold("h3", "redeem", ids["wallet:2"], ids["merchant:1"], 5, 600))  # still open
    post(books, transfer("rf1", "refund", ids["merchant:1"], ids["wallet:1"], 5))
    post(books, reversal("rv1", "aw1", 20, reason="冲正"))
    post(books, [transfer("st1", "settle", ids["merchant:1"], ids["payout"], 20, reference="settlement:1"),
                 transfer("ex1", "expire", ids["wallet:2"], ids["expiry"], 3)])
    make_checkpoint(books)
    post(books, transfer("aw9", "award", ids["budget:1"], ids["wallet:1"], 7, actor="user:9"))


def test_round_trip(books, tmp_path):
    build_books(books)
    out = tmp_path / "journal.jsonl"
    summary = export_journal(books, out)
    assert (summary.accounts, summary.checkpoints, summary.transfers, summary.entries) == (8, 2, 16, 32)
    lines = out.read_bytes().splitlines()
    assert len(lines) == summary.lines == 1 + 8 + 2 + 16 + 32 + 1
    assert json.loads(lines[0])["type"] == "header" and json.loads(lines[-1])["type"] == "end"
    report = verify_export(out, trusted_keys(books))
    assert report.ok, report.verdict()
    assert (report.debits_posted, report.donated, report.reconciliation_difference) == (
        report.credits_posted, 5000, 0)
    assert report.verdict().startswith("OK")
    # the published JWK set works as the trusted key too
    jwks = {"keys": [{**public_jwk(k.kid, k.public), "purpose": "ledger"} for k in books.keys.keys("ledger")]
            + [{**public_jwk("x", Ed25519PrivateKey.generate().public_key()), "purpose": "access"}]}
    assert verify_export(out, keys_from_jwks(json.dumps(jwks))).ok


def test_every_line_carries_the_rows_own_values_and_times(books, tmp_path):
    """The export writes what the database holds, field by field, timestamps included (the writer reuses
    the text of a repeated timestamp: it must never carry one row's time onto another)."""
    from sqlalchemy import select

    from ledger.journal.export import _ts
    from ledger.schema import Entry, Transfer

    build_books(books)
    out = tmp_path / "journal.jsonl"
    export_journal(books, out)
    lines = [json.loads(line) for line in out.read_bytes().splitlines()]
    with books.session(readonly=True) as s:
        transfers = {t.id: t for t in s.scalars(select(Transfer))}
        entries = {e.id: e for e in s.scalars(select(Entry))}
        if books.dialect == "postgresql":  # SQLite's server clock counts whole seconds
            assert len({t.created_at for t in transfers.values()}) > 1  # the test means something
        for obj in lines:
            if obj["type"] == "transfer":
                t = transfers.pop(obj["id"])
                assert (obj["transfer_key"], obj["amount"], obj["actor"], obj["reason"], obj["reference"],
                        obj["created_at"], obj["expires_at"]) == (
                    t.transfer_key, t.amount, t.actor, t.reason, t.reference, _ts(t.created_at), _ts(t.expires_at))
            elif obj["type"] == "entry":
                e = entries.pop(obj["id"])
                assert (obj["transfer_id"], obj["account_id"], obj["seq"], obj["hash"], obj["created_at"]) == (
                    e.transfer_id, e.account_id, e.seq, e.hash, _ts(e.created_at))
    assert transfers == {} and entries == {}


def test_the_lines_do_not_depend_on_how_the_rows_are_streamed(books, tmp_path, monkeypatch):
    """The writer takes the rows a chunk at a time and hashes and writes each chunk whole: with chunks of three
    rows (a transfer's entries split between two chunks) the file holds the same lines, and verifies."""
    import ledger.journal.export as export

    build_books(books)
    export_journal(books, tmp_path / "whole.jsonl")
    monkeypatch.setattr(export, "STREAM_CHUNK", 3)
    advanced: list[int] = []

    class Bar(export.Progress):
        def start(self, total: int) -> None:
            advanced.append(-total)

        def advance(self, n: int) -> None:
            advanced.append(n)

    summary = export_journal(books, tmp_path / "chunked.jsonl", progress=Bar())
    whole = (tmp_path / "whole.jsonl").read_bytes().splitlines()
    chunked = (tmp_path / "chunked.jsonl").read_bytes().splitlines()
    assert chunked[1:-1] == whole[1:-1]  # the header's time and the end line's signature differ, nothing else
    assert -advanced[0] == sum(advanced[1:]) == summary.lines == len(chunked)
    assert verify_export(tmp_path / "chunked.jsonl", trusted_keys(books)).ok


def test_export_refuses_nothing_but_a_key_file_without_ledger_keys(books, tmp_path):
    with pytest.raises(DomainError) as info:
        keys_from_jwks(json.dumps({"keys": [{**public_jwk("a", Ed25519PrivateKey.generate().public_key()),
                                             "purpose": "access"}]}))
    assert info.value.code == "no_trusted_key"
    build_books(books)
    export_journal(books, tmp_path / "j.jsonl")
    other = Ed25519PrivateKey.generate().public_key()
    report = verify_export(tmp_path / "j.jsonl", {key_id_of(other): other})
    assert not report.ok and "do not trust" in str(report.first)


# --- forgeries ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory, sqlite_template):
    folder = tmp_path_factory.mktemp("export")
    books = make_books(fresh_sqlite(sqlite_template, folder), folder / "keys")
    build_books(books)
    path = folder / "journal.jsonl"
    export_journal(books, path)
    keys = trusted_keys(books)
    books.engine.dispose()
    return path.read_bytes().splitlines(keepends=True), keys


def check(lines: list[bytes], keys) -> object:
    import io

    return verify_export(io.BytesIO(b"".join(lines)), keys)


def _mutate_value(value, choice: int):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + (1 if choice % 2 else -1)
    if isinstance(value, str):
        if not value:
            return "x"
        i = choice % len(value)
        ch = value[i]
        return value[:i] + ("0" if ch != "0" else "1") + value[i + 1:]
    if value is None:
        return 1
    return "changed"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_single_line_change_is_caught(exported, data):
    lines, keys = exported
    n = len(lines)
    action = data.draw(st.sampled_from(["change", "delete", "insert", "move", "swap"]))
    i = data.draw(st.integers(0, n - 1), label="line")
    forged = list(lines)
    if action == "change":
        obj = json.loads(lines[i])
        field = data.draw(st.sampled_from(sorted(obj)), label="field")
        obj[field] = _mutate_value(obj[field], data.draw(st.integers(0, 10**6)))
        forged[i] = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    elif action == "delete":
        del forged[i]
    elif action == "insert":
        j = data.draw(st.integers(0, n - 1), label="copy of")
        forged.insert(i, lines[j])
    elif action == "move":
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i), label="to")
        forged.insert(j, forged.pop(i))
    else:
        j = data.draw(st.integers(0, n - 1).filter(lambda j: lines[j] != lines[i]), label="with")
        forged[i], forged[j] = forged[j], forged[i]
    if forged == lines:
        return
    report = check(forged, keys)
    assert not report.ok, f"{action} of line {i + 1} went unnoticed"
    assert report.first is not None and 1 <= report.first.line <= len(forged) + 1


def test_a_changed_entry_is_named_by_its_line(exported):
    lines, keys = exported
    n = next(i for i, raw in enumerate(lines) if json.loads(raw)["type"] == "entry" and json.loads(raw)["seq"] > 1)
    obj = json.loads(lines[n])
    obj["posted_delta"] += 1
    forged = list(lines)
    forged[n] = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
    report = check(forged, keys)
    assert report.first.line == n + 1
    assert "hash does not match" in report.first.message


def _resign_end(lines: list[bytes], key: Ed25519PrivateKey) -> list[bytes]:
    body = lines[:-1]
    sha = hashlib.sha256(b"".join(body)).hexdigest()
    kid = key_id_of(key.public_key())
    end = {"type": "end", "lines": len(body), "sha256": sha, "key_id": kid,
           "signature": key.sign(export_digest(sha)).hex()}
    return body + [json.dumps(end, separators=(",", ":")).encode() + b"\n"]


def test_resigned_with_another_key_fails(exported):
    lines, keys = exported
    forger = Ed25519PrivateKey.generate()
    kid = key_id_of(forger.public_key())
    forged = []
    for raw in lines:
        obj = json.loads(raw)
        if obj["type"] == "checkpoint":
            obj["key_id"] = kid
            obj["signature"] = forger.sign(bytes.fromhex(checkpoint_digest(obj["heads"]))).hex()
            raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        forged.append(raw)
    forged = _resign_end(forged, forger)
    report = check(forged, keys)
    assert not report.ok
    first_checkpoint = next(i for i, raw in enumerate(lines) if json.loads(raw)["type"] == "checkpoint") + 1
    assert report.first.line == first_checkpoint and "do not trust" in report.first.message
    # the same forgery verifies against the forger's key: only the trusted key makes the difference
    assert check(forged, {kid: forger.public_key()}).ok


def test_changed_actor_is_caught_by_the_chain_even_when_resigned(exported):
    lines, keys = exported
    forger = Ed25519PrivateKey.generate()
    forged, n = [], None
    for i, raw in enumerate(lines):
        obj = json.loads(raw)
        if n is None and obj["type"] == "transfer" and obj["reason"] == "巡逻":
            obj["actor"] = "user:1"  # who awarded is what the anomaly reports rest on
            raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            n = i
        forged.append(raw)
    forged = _resign_end(forged, forger)
    report = check(forged, {**keys, key_id_of(forger.public_key()): forger.public_key()})
    assert not report.ok and "hash does not match" in report.first.message
    assert report.first.line == n + 1  # the changed transfer line itself, not the entry after it


def test_truncated_export_fails(exported, tmp_path):
    lines, keys = exported
    report = check(lines[:-1], keys)
    assert not report.ok and "no end line" in report.verdict()
    path = Path(tmp_path / "x.jsonl")
    path.write_bytes(b"".join(lines)[:-30])
    assert not verify_export(path, keys).ok


def test_every_line_deleted_duplicated_swapped_or_any_field_changed_is_caught(exported):
    """The exhaustive version of the property above, over every line and every field of this export."""
    lines, keys = exported
    missed = []
    for i, raw in enumerate(lines):
        forgeries = {"delete": lines[:i] + lines[i + 1:], "duplicate": lines[:i + 1] + [raw] + lines[i + 1:]}
        if i + 1 < len(lines):
            forgeries["swap with next"] = lines[:i] + [lines[i + 1], raw] + lines[i + 2:]
        obj = json.loads(raw)
        for field in obj:
            changed = dict(obj, **{field: _mutate_value(obj[field], i)})
            forgeries[f"change {field}"] = (lines[:i] + [json.dumps(changed, ensure_ascii=False, separators=(",", ":"))
                                                         .encode() + b"\n"] + lines[i + 1:])
        for what, forged in forgeries.items():
            if forged != lines and check(forged, keys).ok:
                missed.append(f"{what} of line {i + 1}")
    assert not missed


def test_a_newer_export_must_continue_the_older_one(books, tmp_path):
    from ledger.journal.export import compare_exports

    build_books(books)
    older, newer = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    export_journal(books, older)
    post(books, transfer("later", "donate", 1, 2, 10))
    export_journal(books, newer)
    report = compare_exports(older, newer)
    assert report.ok and report.accounts == 8, report.verdict()
    # an older export that remembers another head for the fund: the newer one rewrote history
    lines = older.read_bytes().splitlines(keepends=True)
    i = next(i for i, raw in enumerate(lines) if json.loads(raw).get("code") == "fund")
    obj = json.loads(lines[i])
    obj["chain_head"] = "0" * 64
    lines[i] = json.dumps(obj, ensure_ascii=False).encode() + b"\n"
    older.write_bytes(b"".join(lines))
    report = compare_exports(older, newer)
    assert not report.ok and "history was rewritten" in report.verdict()


@pytest.mark.parametrize("field", ["transfer_key", "kind", "phase", "debit_account_id", "credit_account_id", "amount",
                                   "actor", "reason", "reference"])
def test_a_changed_transfer_is_named_by_its_own_line(exported, field):
    """Issue 14: the verdict named the entry after a changed transfer line. Every field the entries' hashes
    cover, changed on any transfer line, is named at that line."""
    lines, keys = exported
    wrong = []
    for i, raw in enumerate(lines):
        obj = json.loads(raw)
        if obj["type"] != "transfer":
            continue
        changed = dict(obj, **{field: _mutate_value(obj[field], i)})
        forged = lines[:i] + [json.dumps(changed, ensure_ascii=False).encode() + b"\n"] + lines[i + 1:]
        first = check(forged, keys).first
        if first is None or first.line != i + 1:
            wrong.append(f"line {i + 1} ({obj['transfer_key']}): {first}")
    assert not wrong
