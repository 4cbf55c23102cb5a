"""Verify finds every kind of tampering done behind the application's back, by raw SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ledger.journal.accounts import make_checkpoint, open_account, post
from ledger.journal.chain import entry_hash
from ledger.journal.posting import hold, post_hold, transfer
from ledger.journal.verify import verify_books


@pytest.fixture
def history(books):
    ids = {code: open_account(books, code, kind).id for code, kind in [
        ("donations", "donations"), ("fund", "fund"), ("budget", "budget"), ("wallet", "wallet"),
        ("merchant", "merchant")]}
    post(books, transfer("d", "donate", ids["donations"], ids["fund"], 1000))
    post(books, transfer("a", "allocate", ids["fund"], ids["budget"], 600))
    for i in range(4):
        post(books, transfer(f"w{i}", "award", ids["budget"], ids["wallet"], 50 + i))
    post(books, transfer("r", "redeem", ids["wallet"], ids["merchant"], 30))
    post(books, hold("h", "redeem", ids["wallet"], ids["merchant"], 20, 600))
    post(books, post_hold("p", "h", 15))
    make_checkpoint(books)
    assert verify_books(books).ok
    return ids


def sql(books, statement: str, **params: object) -> None:
    with books.engine.begin() as conn:
        conn.execute(text(statement), params)


def entry_id(books, account_id: int, seq: int) -> int:
    with books.engine.connect() as conn:
        return conn.execute(text("SELECT id FROM entries WHERE account_id = :a AND seq = :s"),
                            {"a": account_id, "s": seq}).scalar_one()


def first_problem(books) -> str:
    report = verify_books(books)
    assert not report.ok, "tampering went unnoticed"
    return str(report.problems[0])


def test_changed_amount_names_account_and_entry(books, history):
    target = entry_id(books, history["wallet"], 2)
    sql(books, "UPDATE entries SET posted_delta = posted_delta + 100 WHERE id = :id", id=target)
    problem = first_problem(books)
    assert f"account {history['wallet']} (wallet)" in problem and f"entry {target} (seq 2)" in problem


def test_changed_transfer_amount(books, history):
    sql(books, "UPDATE transfers SET amount = 31 WHERE transfer_key = 'r'")
    assert "transfer r" in first_problem(books)


@pytest.mark.parametrize("column, value", [("actor", "user:999"), ("reason", "edited"), ("reference", "claim:1")])
def test_changed_actor_reason_or_reference(books, history, column, value):
    """The anomaly reports trust who awarded what and why: those are under the chain too."""
    sql(books, f"UPDATE transfers SET {column} = :v WHERE transfer_key = 'w2'", v=value)
    assert "transfer w2" in first_problem(books)


def test_deleted_entry(books, history):
    sql(books, "DELETE FROM entries WHERE id = :id", id=entry_id(books, history["wallet"], 3))
    assert "expected entry number 3" in first_problem(books)


def test_inserted_entry_with_a_valid_link(books, history):
    wallet = history["wallet"]
    with books.engine.connect() as conn:
        last = conn.execute(text("SELECT seq, hash, balance_after, transfer_id FROM entries WHERE account_id = :a "
                                 "ORDER BY seq DESC LIMIT 1"), {"a": wallet}).one()
    forged = entry_hash(last.hash, account_id=wallet, seq=last.seq + 1, transfer_key="w0", kind="award",
                        phase="single", side="C", counterparty_id=history["budget"], amount=50, pending_delta=0,
                        posted_delta=50, balance_after=last.balance_after + 50, actor="system", reason="",
                        reference=None)
    sql(books, "INSERT INTO entries (account_id, seq, transfer_id, side, pending_delta, posted_delta, balance_after, "
               "prev_hash, hash) VALUES (:a, :s, (SELECT id FROM transfers WHERE transfer_key = 'w0'), 'C', 0, 50, "
               ":b, :p, :h)", a=wallet, s=last.seq + 1, b=last.balance_after + 50, p=last.hash, h=forged)
    report = verify_books(books)
    assert not report.ok
    assert any("w0" in str(p) for p in report.problems)


def test_reordered_entries(books, history):
    a, b = entry_id(books, history["wallet"], 2), entry_id(books, history["wallet"], 3)
    sql(books, "UPDATE entries SET seq = 1000 WHERE id = :id", id=a)
    sql(books, "UPDATE entries SET seq = 2 WHERE id = :id", id=b)
    sql(books, "UPDATE entries SET seq = 3 WHERE id = :id", id=a)
    assert f"account {history['wallet']}" in first_problem(books)


def test_rolled_back_history_is_caught_by_the_signed_checkpoint(books, history):
    """An insider deletes the last transfer and makes every account row agree: only the checkpoint knows."""
    with books.engine.connect() as conn:
        t = conn.execute(text("SELECT id, debit_account_id, credit_account_id, amount FROM transfers "
                              "WHERE transfer_key = 'r'")).one()
        later = conn.execute(text("SELECT count(*) FROM entries WHERE account_id IN (:d, :c) AND id > "
                                  "(SELECT max(id) FROM entries WHERE transfer_id = :t)"),
                             {"d": t.debit_account_id, "c": t.credit_account_id, "t": t.id}).scalar_one()
    assert later > 0  # 'r' is not last on its accounts: delete the hold and post after it too
    for key in ("p", "h", "r"):
        with books.engine.connect() as conn:
            tid = conn.execute(text("SELECT id FROM transfers WHERE transfer_key = :k"), {"k": key}).scalar_one()
        sql(books, "DELETE FROM entries WHERE transfer_id = :t", t=tid)
        sql(books, "DELETE FROM transfers WHERE id = :t", t=tid)
    for acc in ("wallet", "merchant"):
        with books.engine.connect() as conn:
            last = conn.execute(text("SELECT seq, hash FROM entries WHERE account_id = :a ORDER BY seq DESC LIMIT 1"),
                                {"a": history[acc]}).one_or_none()
            sums = conn.execute(text(
                "SELECT COALESCE(SUM(CASE WHEN side='D' THEN posted_delta END), 0), "
                "COALESCE(SUM(CASE WHEN side='C' THEN posted_delta END), 0) FROM entries WHERE account_id = :a"),
                {"a": history[acc]}).one()
        if last is None:
            sql(books, "UPDATE accounts SET entry_count = 0, debits_posted = 0, credits_posted = 0, "
                       "debits_pending = 0, credits_pending = 0 WHERE id = :a", a=history[acc])
            with books.engine.connect() as conn:
                code, kind = conn.execute(text("SELECT code, kind FROM accounts WHERE id = :a"),
                                          {"a": history[acc]}).one()
            from ledger.journal.chain import genesis_hash

            sql(books, "UPDATE accounts SET chain_head = :h WHERE id = :a", h=genesis_hash(history[acc], code, kind),
                a=history[acc])
        else:
            sql(books, "UPDATE accounts SET entry_count = :n, chain_head = :h, debits_posted = :d, credits_posted = :c, "
                       "debits_pending = 0, credits_pending = 0 WHERE id = :a",
                n=last.seq, h=last.hash, d=sums[0], c=sums[1], a=history[acc])
    problems = [str(p) for p in verify_books(books).problems]
    assert problems and all("checkpoint" in p for p in problems), problems


def test_forged_checkpoint_signature(books, history):
    sql(books, "UPDATE checkpoints SET signature = :s", s="00" * 64)
    assert "signature is not valid" in first_problem(books)


def test_checkpoint_signed_by_an_unknown_key(books, history):
    sql(books, "UPDATE checkpoints SET key_id = 'feedfacefeedface'")
    assert "unknown key" in first_problem(books)
