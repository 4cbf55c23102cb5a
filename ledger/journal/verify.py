"""Verification: recompute everything the journal claims, from its entries, without trusting totals.

Checks, streaming with constant memory per account:
- every account's entries: sequence 1..n without gaps, each hash and ``prev_hash`` link, each
  ``balance_after``, the sums of pending and posted deltas per side equal the account's four totals,
  the last hash and count equal the account row's ``chain_head`` and ``entry_count``;
- every transfer, by the rules of ``ledger.journal.rules`` (the same posting follows and the offline
  export verifier applies): exactly two entries, a debit on its debit account and a credit on its
  credit account, with the deltas its phase implies; a resolution between its hold's own accounts,
  never for more than the hold reserved, a void or expiry releasing exactly the hold (a hold is
  resolved at most once: a unique constraint); a reversal single, of a reversible transfer, and all
  reversals of one transfer never beyond it;
- globally: debits equal credits, posted and pending; no forbidden negative balance;
- every checkpoint: its digest, its Ed25519 signature by a known ledger key, and that each head it
  signed is the hash the account's chain has at that position.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from ledger.infra.books import Books
from ledger.infra.keys import verify_signature
from ledger.journal.chain import checkpoint_digest, entry_hash, genesis_hash
from ledger.journal.models import Account, Checkpoint, Entry, Transfer
from ledger.journal.rules import (
    RESOLUTION_PHASES,
    entries_problem,
    is_reversible,
    resolution_problem,
    reversal_problem,
)

STREAM_CHUNK = 5_000


@dataclass(frozen=True)
class Problem:
    message: str
    account_id: int | None = None
    account_code: str | None = None
    entry_id: int | None = None
    seq: int | None = None
    transfer_key: str | None = None

    def __str__(self) -> str:
        where = []
        if self.account_id is not None:
            where.append(f"account {self.account_id} ({self.account_code})")
        if self.entry_id is not None:
            where.append(f"entry {self.entry_id} (seq {self.seq})")
        if self.transfer_key is not None:
            where.append(f"transfer {self.transfer_key}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass
class VerifyReport:
    accounts: int = 0
    transfers: int = 0
    entries: int = 0
    checkpoints: int = 0
    debits_posted: int = 0
    credits_posted: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def verdict(self) -> str:
        counts = (f"{self.accounts} accounts, {self.transfers} transfers, {self.entries} entries, "
                  f"{self.checkpoints} checkpoints")
        if self.ok:
            return f"OK: {counts} verified; debits = credits = {self.debits_posted} beans posted"
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"FAILED: {first}{more}; checked {counts}"


def verify_books(books: Books) -> VerifyReport:
    return books.run(lambda s: verify_session(s, books), readonly=True)


def verify_session(session: Session, books: Books) -> VerifyReport:
    report = VerifyReport()
    accounts = {a.id: a for a in session.execute(select(
        Account.id, Account.code, Account.kind, Account.no_negative, Account.debits_pending,
        Account.debits_posted, Account.credits_pending, Account.credits_posted, Account.entry_count,
        Account.chain_head)).all()}
    report.accounts = len(accounts)

    # checkpoints first: they tell which chain positions to remember
    pinned: dict[int, dict[int, str]] = defaultdict(dict)
    for cp in session.scalars(select(Checkpoint).order_by(Checkpoint.id)):
        report.checkpoints += 1
        _check_checkpoint(cp, books, report, pinned)

    _check_chains(session, accounts, pinned, report)
    _check_transfers(session, report)

    dpo = sum(a.debits_posted for a in accounts.values())
    cpo = sum(a.credits_posted for a in accounts.values())
    dpe = sum(a.debits_pending for a in accounts.values())
    cpe = sum(a.credits_pending for a in accounts.values())
    report.debits_posted, report.credits_posted = dpo, cpo
    if dpo != cpo:
        report.problems.append(Problem(f"posted debits {dpo} != posted credits {cpo}"))
    if dpe != cpe:
        report.problems.append(Problem(f"pending debits {dpe} != pending credits {cpe}"))
    for a in accounts.values():
        if a.no_negative and a.debits_posted + a.debits_pending > a.credits_posted:
            report.problems.append(Problem("balance below zero on an account that forbids it", a.id, a.code))
    return report


def _check_checkpoint(cp: Checkpoint, books: Books, report: VerifyReport, pinned: dict[int, dict[int, str]]) -> None:
    label = f"checkpoint {cp.id}"
    if checkpoint_digest(cp.heads) != cp.digest:
        report.problems.append(Problem(f"{label}: digest does not match its heads"))
        return
    public = books.keys.any_public("ledger", cp.key_id)
    if public is None:
        report.problems.append(Problem(f"{label}: signed by unknown key {cp.key_id}"))
        return
    try:
        signature = bytes.fromhex(cp.signature)
    except ValueError:
        signature = b""
    if not verify_signature(public, signature, bytes.fromhex(cp.digest)):
        report.problems.append(Problem(f"{label}: signature is not valid"))
        return
    for account_id, count, head in json.loads(cp.heads):
        if count > 0:
            pinned[account_id][count] = head
        else:
            pinned[account_id].setdefault(0, head)


def _check_chains(session: Session, accounts: dict[int, Any], pinned: dict[int, dict[int, str]],
                  report: VerifyReport) -> None:
    stmt = (
        select(Entry.id, Entry.account_id, Entry.seq, Entry.side, Entry.pending_delta, Entry.posted_delta,
               Entry.balance_after, Entry.prev_hash, Entry.hash, Transfer.transfer_key, Transfer.kind,
               Transfer.phase, Transfer.debit_account_id, Transfer.credit_account_id, Transfer.amount,
               Transfer.actor, Transfer.reason, Transfer.reference)
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .order_by(Entry.account_id, Entry.seq)
        .execution_options(yield_per=STREAM_CHUNK)
    )
    walk = _ChainWalk(accounts, pinned, report)
    for e in session.execute(stmt):
        walk.entry(e)
    walk.done()


class _ChainWalk:
    """Follows every account's chain, one entry at a time in (account, seq) order, with constant memory."""

    def __init__(self, accounts: dict[int, Any], pinned: dict[int, dict[int, str]], report: VerifyReport) -> None:
        self.accounts, self.pinned, self.report = accounts, pinned, report
        self.state: dict[str, Any] | None = None
        self.broken: set[int] = set()
        self.seen: set[int] = set()

    def start(self, account_id: int) -> dict[str, Any]:
        acc = self.accounts[account_id]
        return {"id": account_id, "seq": 0, "head": genesis_hash(account_id, acc.code, acc.kind),
                "dpe": 0, "dpo": 0, "cpe": 0, "cpo": 0}

    def finish(self, st: dict[str, Any]) -> None:
        acc = self.accounts[st["id"]]
        if st["id"] in self.broken:
            return
        totals = (st["dpe"], st["dpo"], st["cpe"], st["cpo"])
        declared = (acc.debits_pending, acc.debits_posted, acc.credits_pending, acc.credits_posted)
        if totals != declared:
            self.report.problems.append(Problem(
                f"totals (debits pending/posted, credits pending/posted) {totals} recomputed from entries "
                f"differ from the account's {declared}", acc.id, acc.code))
        elif st["seq"] != acc.entry_count or st["head"] != acc.chain_head:
            self.report.problems.append(Problem(
                f"chain ends at entry {st['seq']} but the account says {acc.entry_count} entries "
                f"(or a different head)", acc.id, acc.code))

    def entry(self, e: Any) -> None:
        self.report.entries += 1
        if e.account_id not in self.accounts:
            self.report.problems.append(Problem("entry of an account that does not exist", e.account_id, None,
                                                e.id, e.seq, e.transfer_key))
            return
        if self.state is None or self.state["id"] != e.account_id:
            if self.state is not None:
                self.finish(self.state)
            self.state = self.start(e.account_id)
            self.seen.add(e.account_id)
        if e.account_id in self.broken:
            return
        wrong = self._check(e, self.state)
        if wrong is not None:
            acc = self.accounts[e.account_id]
            self.report.problems.append(Problem(wrong, acc.id, acc.code, e.id, e.seq, e.transfer_key))
            self.broken.add(acc.id)
            return
        self.state["seq"] = e.seq
        self.state["head"] = e.hash

    def _check(self, e: Any, state: dict[str, Any]) -> str | None:
        """What is wrong with the next entry of the account (and then its chain is followed no further)."""
        expected_seq = state["seq"] + 1
        if e.seq != expected_seq:
            return f"expected entry number {expected_seq} here: an entry is missing, inserted or moved"
        if e.prev_hash != state["head"]:
            return "prev_hash does not link to the previous entry: the chain was altered here"
        if e.side == "D":
            state["dpe"] += e.pending_delta
            state["dpo"] += e.posted_delta
            counterparty = e.credit_account_id
        else:
            state["cpe"] += e.pending_delta
            state["cpo"] += e.posted_delta
            counterparty = e.debit_account_id
        balance = state["cpo"] - state["dpo"]
        recomputed = entry_hash(
            e.prev_hash, account_id=e.account_id, seq=e.seq, transfer_key=e.transfer_key, kind=e.kind,
            phase=e.phase, side=e.side, counterparty_id=counterparty, amount=e.amount,
            pending_delta=e.pending_delta, posted_delta=e.posted_delta, balance_after=e.balance_after,
            actor=e.actor, reason=e.reason, reference=e.reference,
        )
        if recomputed != e.hash:
            return "hash does not match the entry's contents: the entry or its transfer was changed"
        if e.balance_after != balance:
            return f"balance_after {e.balance_after} but the entries before it add up to {balance}"
        pin = self.pinned.get(e.account_id, {}).get(e.seq)
        if pin is not None and pin != e.hash:
            return "a signed checkpoint pinned a different hash at this position"
        return None

    def done(self) -> None:
        if self.state is not None:
            self.finish(self.state)
        for account_id in self.accounts:
            if account_id not in self.seen:
                self.finish(self.start(account_id))
        for account_id, pins in self.pinned.items():
            acc = self.accounts.get(account_id)
            if acc is None:
                self.report.problems.append(Problem(f"a checkpoint names account {account_id}, which is gone"))
                continue
            if pins and max(pins) > acc.entry_count and account_id not in self.broken:
                self.report.problems.append(Problem(
                    f"a checkpoint signed {max(pins)} entries but only {acc.entry_count} remain", acc.id, acc.code))


def _check_transfers(session: Session, report: VerifyReport) -> None:
    """Each transfer's two entries, what a resolution does to its hold and what a reversal may take back:
    the rules of ``ledger.journal.rules``, the same the offline export verifier applies."""
    held, original = aliased(Transfer), aliased(Transfer)
    stmt = (
        select(Transfer.id, Transfer.transfer_key, Transfer.phase, Transfer.amount, Transfer.debit_account_id,
               Transfer.credit_account_id, Transfer.pending_id, Transfer.reverses_id, held.amount.label("held_amount"),
               held.phase.label("held_phase"), held.debit_account_id.label("held_debit"),
               held.credit_account_id.label("held_credit"), original.phase.label("original_phase"),
               original.kind.label("original_kind"), Entry.account_id, Entry.side, Entry.pending_delta,
               Entry.posted_delta)
        .outerjoin(Entry, Entry.transfer_id == Transfer.id)
        .outerjoin(held, held.id == Transfer.pending_id)
        .outerjoin(original, original.id == Transfer.reverses_id)
        .order_by(Transfer.id, Entry.side)
        .execution_options(yield_per=STREAM_CHUNK)
    )
    current: list[Any] = []
    for row in session.execute(stmt):
        if current and current[0].id != row.id:
            _check_transfer(current, report)
            current = []
        current.append(row)
    if current:
        _check_transfer(current, report)

    # reversals: the database sums them, so memory stays flat however long the journal is
    over = session.execute(
        select(original.transfer_key, original.amount, func.sum(Transfer.amount))
        .join(original, original.id == Transfer.reverses_id)
        .group_by(original.id, original.transfer_key, original.amount)
    ).all()
    for key, amount, total in over:
        wrong = reversal_problem("single", True, amount, total)  # phases and kinds: per reversal, above
        if wrong is not None:
            report.problems.append(Problem(wrong, transfer_key=key))


def _check_transfer(rows: list[Any], report: VerifyReport) -> None:
    t = rows[0]
    report.transfers += 1
    held_amount = None
    if t.phase in RESOLUTION_PHASES:
        hold = (t.held_amount, t.held_debit, t.held_credit) if t.held_phase == "pending" else None
        wrong = resolution_problem(t.phase, t.amount, t.debit_account_id, t.credit_account_id, hold)
        if wrong is not None:
            report.problems.append(Problem(wrong, transfer_key=t.transfer_key))
        if hold is None:
            return
        held_amount = t.held_amount
    if t.reverses_id is not None:
        wrong = reversal_problem(t.phase, is_reversible(t.original_phase, t.original_kind), 0, 0)
        if wrong is not None:
            report.problems.append(Problem(wrong, transfer_key=t.transfer_key))
    entries = [(r.side, r.account_id, r.pending_delta, r.posted_delta) for r in rows if r.side is not None]
    found = entries_problem(t.phase, t.amount, t.debit_account_id, t.credit_account_id, held_amount, entries)
    if found is not None:
        report.problems.append(Problem(found[1], transfer_key=t.transfer_key))
