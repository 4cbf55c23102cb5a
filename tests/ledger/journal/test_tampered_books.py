"""Both verifiers, fed the same tampered books, refuse them for the same rule.

Each forgery is written the way an insider with database access would: new transfers and entries whose
hashes, chain links, running balances and account totals are all recomputed, so that only the rules of
what a transfer's phase does (``ledger.journal.rules``) can tell. The online verifier reads the books;
the offline one reads their export, which the instance signs as it would any other.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select, update

from ledger.journal.accounts import open_account, post
from ledger.journal.chain import entry_hash
from ledger.journal.export import export_journal, trusted_keys, verify_export
from ledger.journal.models import Account, Entry, Transfer
from ledger.journal.posting import hold, reversal, transfer
from ledger.journal.verify import verify_books

ACCOUNTS, TRANSFERS, ENTRIES = Account.__table__, Transfer.__table__, Entry.__table__


@pytest.fixture
def ids(books):
    ids = {code: open_account(books, code, kind).id for code, kind in [
        ("donations", "donations"), ("fund", "fund"), ("budget", "budget"), ("wallet", "wallet"),
        ("merchant", "merchant"), ("merchant2", "merchant")]}
    post(books, transfer("d", "donate", ids["donations"], ids["fund"], 1000))
    post(books, transfer("a", "allocate", ids["fund"], ids["budget"], 600))
    post(books, transfer("aw", "award", ids["budget"], ids["wallet"], 200))
    post(books, hold("h1", "redeem", ids["wallet"], ids["merchant"], 20, 600))
    post(books, hold("h2", "redeem", ids["wallet"], ids["merchant2"], 20, 600))
    post(books, reversal("rv", "aw", 30, reason="wrong volunteer"))
    return ids


def forge(books, key: str, kind: str, phase: str, debit: int, credit: int, amount: int,
          deltas: tuple[int, int], *, pending_key: str | None = None, reverses_key: str | None = None) -> None:
    """Append a transfer and its two entries with ``deltas`` (pending, posted) on both sides, chained and
    summed into the accounts exactly as posting would have, but with no rule checked."""
    with books.engine.begin() as conn:
        def id_of(k: str | None) -> int | None:
            return None if k is None else conn.execute(
                select(TRANSFERS.c.id).where(TRANSFERS.c.transfer_key == k)).scalar_one()

        expires = books.now() + dt.timedelta(minutes=10) if phase == "pending" else None
        tid = conn.execute(insert(TRANSFERS).values(
            transfer_key=key, kind=kind, phase=phase, debit_account_id=debit, credit_account_id=credit,
            amount=amount, pending_id=id_of(pending_key), reverses_id=id_of(reverses_key), expires_at=expires,
            actor="system", reason="", reference=None)).inserted_primary_key[0]
        pending_delta, posted_delta = deltas
        for side, account_id, other in (("D", debit, credit), ("C", credit, debit)):
            a = conn.execute(select(ACCOUNTS).where(ACCOUNTS.c.id == account_id)).one()
            totals = {"debits_pending": a.debits_pending, "debits_posted": a.debits_posted,
                      "credits_pending": a.credits_pending, "credits_posted": a.credits_posted}
            prefix = "debits" if side == "D" else "credits"
            totals[f"{prefix}_pending"] += pending_delta
            totals[f"{prefix}_posted"] += posted_delta
            seq, balance = a.entry_count + 1, totals["credits_posted"] - totals["debits_posted"]
            digest = entry_hash(a.chain_head, account_id=account_id, seq=seq, transfer_key=key, kind=kind,
                                phase=phase, side=side, counterparty_id=other, amount=amount,
                                pending_delta=pending_delta, posted_delta=posted_delta, balance_after=balance,
                                actor="system", reason="", reference=None)
            conn.execute(insert(ENTRIES).values(
                account_id=account_id, seq=seq, transfer_id=tid, side=side, pending_delta=pending_delta,
                posted_delta=posted_delta, balance_after=balance, prev_hash=a.chain_head, hash=digest))
            conn.execute(update(ACCOUNTS).where(ACCOUNTS.c.id == account_id).values(
                **totals, entry_count=seq, chain_head=digest))


def both_verdicts(books, tmp_path) -> tuple[list[str], list[str]]:
    online = [str(p) for p in verify_books(books).problems]
    path = tmp_path / "journal.jsonl"
    export_journal(books, path)
    offline = [str(p) for p in verify_export(path, trusted_keys(books)).problems]
    return online, offline


def test_untampered_books_pass_both(books, ids, tmp_path):
    assert both_verdicts(books, tmp_path) == ([], [])


def test_the_forger_writes_what_posting_writes(books, ids, tmp_path):
    """A forged transfer that breaks no rule passes both: the refusals below are the rules' alone."""
    forge(books, "aw2", "award", "single", ids["budget"], ids["wallet"], 5, (0, 5))
    forge(books, "h1p", "redeem", "post", ids["wallet"], ids["merchant"], 15, (-20, 15), pending_key="h1")
    assert both_verdicts(books, tmp_path) == ([], [])


TAMPERED = {
    # a void (or expiry) releases exactly the hold: here it claims 15 of a hold of 20 yet releases 20
    "void of another amount": (lambda ids: ("h1v", "redeem", "void", ids["wallet"], ids["merchant"], 15, (-20, 0)),
                               {"pending_key": "h1"}, "voids 15 of a hold of 20"),
    "expiry of another amount": (lambda ids: ("h1x", "redeem", "expire", ids["wallet"], ids["merchant"], 15, (-20, 0)),
                                 {"pending_key": "h1"}, "expires 15 of a hold of 20"),
    # h1 (wallet -> merchant) "voided" between wallet and merchant2: merchant2's hold h2 is what it releases
    "hold released between other accounts": (
        lambda ids: ("h1v", "redeem", "void", ids["wallet"], ids["merchant2"], 20, (-20, 0)),
        {"pending_key": "h1"}, "resolves a hold between other accounts"),
    # rv took back 30 of aw; a reversal of that reversal gives 10 of it back again
    "reversal of a reversal": (lambda ids: ("rv2", "reverse", "single", ids["budget"], ids["wallet"], 10, (0, 10)),
                               {"reverses_key": "rv"}, "cannot be reversed"),
    # a hold that claims to reverse the award: reversals post at once, they never hold
    "a hold that reverses": (lambda ids: ("rvh", "reverse", "pending", ids["wallet"], ids["budget"], 10, (10, 0)),
                             {"reverses_key": "aw"}, "a pending transfer cannot reverse another"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_both_verifiers_refuse_the_same_tampered_books(books, ids, tmp_path, case):
    fields, names, message = TAMPERED[case]
    forge(books, *fields(ids), **names)
    online, offline = both_verdicts(books, tmp_path)
    assert any(message in p for p in online), online
    assert any(message in p for p in offline), offline
