"""Posting: the hot path that moves beans. Every transfer in the product goes through ``post_batch``.

One call is one linked batch (a single transfer is a batch of one): all of it commits, or none of it
does. It runs inside the caller's transaction, with hand-written SQL on the driver's cursor for the
common path and few round trips:

1. look up the holds and originals that resolutions and reversals name (only if there are any);
2. lock every account involved, in id order (on PostgreSQL ``FOR NO KEY UPDATE``, sent together with
   the transaction's BEGIN: unlike ``FOR UPDATE`` it does not conflict with the ``FOR KEY SHARE`` lock
   that inserting a row with a foreign key to the account takes, so a use case that first writes
   such a row (a spent code) cannot deadlock with another; SQLite's ``BEGIN IMMEDIATE`` already holds
   the write lock);
3. read what earlier resolutions and reversals already did to them (only if needed);
4. the common case: check every rule for each transfer in order against copies of the locked
   balances, build its two entries and extend both accounts' hash chains; if all pass, one write
   inserts the transfers with ``ON CONFLICT (transfer_key) DO NOTHING`` and, only if no key was taken,
   the entries and the accounts' new totals (on PostgreSQL a single statement, so a transfer is four
   round trips in all with BEGIN and COMMIT);
5. otherwise (a rule refuses, or a key is already taken) the careful path decides from the untouched
   state: a key that is already taken is a retry, answered from the stored transfer, or
   ``exists_with_different_fields``; then every rule for each new transfer, in order; then the
   entries and totals.

The rules themselves (shapes, statuses, what a phase does to the accounts, the entries and their
chains, the trial) are pure functions in ``ledger.journal.rules``; the SQL of each dialect is in
``ledger.journal.dialects``. This module reads, locks and decides which path to take.

Both paths give the same answers and write the same rows. A refusal raises ``DomainError`` and the
caller's transaction rolls back, so it changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.db import Alongside, utc_from_db
from ledger.invariants import invariant
from ledger.journal import dialects
from ledger.journal.models import Transfer
from ledger.journal.rules import (
    MAX_AMOUNT,
    MAX_BATCH,
    MAX_HOLD_TIMEOUT_S,
    MAX_KEY_LENGTH,
    MAX_REASON_LENGTH,
    MAX_TOTAL,
    SAME_FIELDS,
    AccountState,
    TransferRequest,
    apply,
    check_batch,
    entries_for,
    fail,
    resolve_accounts,
    transfer_row,
    trial,
)

__all__ = ["MAX_AMOUNT", "MAX_BATCH", "MAX_HOLD_TIMEOUT_S", "MAX_KEY_LENGTH", "MAX_REASON_LENGTH", "MAX_TOTAL",
           "PostedTransfer", "TransferRequest", "hold", "post_batch", "post_hold", "reversal", "transfer", "void_hold"]

TRANSFERS = Transfer.__table__


@dataclass(frozen=True)
class PostedTransfer:
    id: int
    transfer_key: str
    kind: str
    phase: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    pending_id: int | None
    reverses_id: int | None
    expires_at: dt.datetime | None
    actor: str
    reason: str
    reference: str | None
    batch_key: str | None
    replayed: bool = False  # True when this answer is a retry's: nothing changed


def transfer(key: str, kind: str, debit: int, credit: int, amount: int, *, actor: str = "system",
             reason: str = "", reference: str | None = None) -> TransferRequest:
    return TransferRequest(key, kind, "single", debit, credit, amount, actor=actor, reason=reason,
                           reference=reference)


def hold(key: str, kind: str, debit: int, credit: int, amount: int, timeout_s: int, *,
         actor: str = "system", reason: str = "", reference: str | None = None) -> TransferRequest:
    return TransferRequest(key, kind, "pending", debit, credit, amount, timeout_s=timeout_s, actor=actor,
                           reason=reason, reference=reference)


def post_hold(key: str, pending_key: str, amount: int | None = None, *, actor: str = "system",
              reason: str = "", reference: str | None = None) -> TransferRequest:
    """Post a hold in full (``amount=None``) or in part; the rest is released."""
    return TransferRequest(key, "", "post", amount=amount, pending_key=pending_key, actor=actor,
                           reason=reason, reference=reference)


def void_hold(key: str, pending_key: str, *, actor: str = "system", reason: str = "",
              reference: str | None = None) -> TransferRequest:
    return TransferRequest(key, "", "void", pending_key=pending_key, actor=actor, reason=reason,
                           reference=reference)


def reversal(key: str, reverses_key: str, amount: int, *, actor: str = "system", reason: str = "",
             reference: str | None = None) -> TransferRequest:
    return TransferRequest(key, "reverse", "single", amount=amount, reverses_key=reverses_key, actor=actor,
                           reason=reason, reference=reference)


def _posted_from_row(row: Any, replayed: bool) -> PostedTransfer:
    return PostedTransfer(
        id=row.id, transfer_key=row.transfer_key, kind=row.kind, phase=row.phase,
        debit_account_id=row.debit_account_id, credit_account_id=row.credit_account_id, amount=row.amount,
        pending_id=row.pending_id, reverses_id=row.reverses_id, expires_at=utc_from_db(row.expires_at),
        actor=row.actor, reason=row.reason, reference=row.reference, batch_key=row.batch_key,
        replayed=replayed,
    )


def _posted_new(transfer_id: int, req: TransferRequest, row: dict[str, Any]) -> PostedTransfer:
    return PostedTransfer(
        id=transfer_id, transfer_key=req.transfer_key, kind=req.kind, phase=req.phase,
        debit_account_id=row["debit_account_id"], credit_account_id=row["credit_account_id"],
        amount=row["amount"], pending_id=row["pending_id"], reverses_id=row["reverses_id"],
        expires_at=row["expires_at"], actor=req.actor, reason=req.reason, reference=req.reference,
        batch_key=row["batch_key"],
    )



def post_batch(conn: Connection, requests: Sequence[TransferRequest], *, now: dt.datetime,
               batch_key: str | None = None, alongside: Alongside | None = None) -> list[PostedTransfer]:
    """Post ``requests`` all-or-nothing inside the caller's transaction (see the module doc); the caller's
    ``alongside`` read travels with the accounts' lock (``ledger.infra.db.Alongside``)."""
    check_batch(requests)
    linked = len(requests) > 1
    if batch_key is None and linked:
        batch_key = requests[0].transfer_key

    # 1. the holds and originals that resolutions and reversals name
    named = _read_named(conn, requests)
    resolved: list[TransferRequest] = []
    for i, req in enumerate(requests):
        try:
            resolved.append(resolve_accounts(req, named))
        except DomainError as exc:
            raise fail(linked, i, req.transfer_key, exc) from None

    # 2. lock every account involved, in id order
    accounts = _lock(conn, resolved, linked, alongside)
    # 3. what earlier resolutions and reversals already did (read under the account locks)
    reversed_so_far = _read_earlier(conn, resolved, named, linked)
    rows = [transfer_row(req, named, batch_key if linked else None, now) for req in resolved]

    # 4. the common case: every transfer is new and passes every rule. Work that out on copies of the
    # locked state; then one write claims the keys and, if none was taken, records everything.
    new_ids: dict[str, int] | None = None
    tried = trial(resolved, rows, named, accounts, reversed_so_far, now)
    if tried is not None:
        trial_entries, trial_accounts = tried
        new_ids, complete = dialects.post_all_new(conn, rows, trial_entries,
                                                  [a for a in trial_accounts.values() if a.touched])
        if complete:
            return [_posted_new(new_ids[req.transfer_key], req, row) for req, row in zip(resolved, rows)]

    # 5. otherwise, carefully: claim the keys (unless done above); a key already taken is a retry
    if new_ids is None:
        new_ids = dialects.insert_transfers(conn, rows)
    results = _replays(conn, resolved, rows, new_ids, linked)
    # every rule, in order, against the locked balances; then the entries and chains
    entries: list[dict[str, Any]] = []
    for i, (req, row) in enumerate(zip(resolved, rows)):
        if results[i] is not None:
            continue
        try:
            deltas = apply(req, row, named, accounts, reversed_so_far, now)
        except DomainError as exc:
            raise fail(linked, i, req.transfer_key, exc) from None
        entries.extend(entries_for(new_ids[req.transfer_key], req, row, deltas, accounts))
        results[i] = _posted_new(new_ids[req.transfer_key], req, row)

    # 6. write
    if entries:
        dialects.write_entries_and_totals(conn, entries, [a for a in accounts.values() if a.touched])
    out = [r for r in results if r is not None]
    invariant(len(out) == len(requests), "every request has an outcome")
    return out


def _read_named(conn: Connection, requests: Sequence[TransferRequest]) -> dict[str, Any]:
    """The stored transfers that resolutions and reversals name, by key (no round trip if none does)."""
    named_keys = {r.pending_key for r in requests if r.pending_key} | {
        r.reverses_key for r in requests if r.reverses_key}
    if not named_keys:
        return {}
    rows = conn.execute(select(TRANSFERS).where(TRANSFERS.c.transfer_key.in_(named_keys))).all()
    return {row.transfer_key: row for row in rows}


def _lock(conn: Connection, resolved: list[TransferRequest], linked: bool,
          alongside: Alongside | None) -> dict[int, AccountState]:
    account_ids = sorted({a for r in resolved for a in (r.debit_account_id, r.credit_account_id)})
    accounts = dialects.lock_accounts(conn, account_ids, alongside)
    if len(accounts) != len(account_ids):
        for i, req in enumerate(resolved):
            for acc_id in (req.debit_account_id, req.credit_account_id):
                if acc_id not in accounts:
                    exc = DomainError(errors.ACCOUNT_NOT_FOUND, account_id=acc_id)
                    raise fail(linked, i, req.transfer_key, exc)
    return accounts


def _read_earlier(conn: Connection, resolved: list[TransferRequest], named: dict[str, Any],
                  linked: bool) -> dict[int, int]:
    """Refuse a hold that another transfer already resolved; return how much of each original earlier
    reversals took back (original id -> beans)."""
    hold_ids = [named[r.pending_key].id for r in resolved if r.pending_key]
    if hold_ids:
        resolver_of = dict(conn.execute(
            select(TRANSFERS.c.pending_id, TRANSFERS.c.transfer_key).where(TRANSFERS.c.pending_id.in_(hold_ids))
        ).all())
        for i, req in enumerate(resolved):
            if not req.pending_key:
                continue
            resolver = resolver_of.setdefault(named[req.pending_key].id, req.transfer_key)
            if resolver != req.transfer_key:  # a retry of the resolver itself is answered later
                exc = DomainError(errors.PENDING_ALREADY_RESOLVED, pending_key=req.pending_key)
                raise fail(linked, i, req.transfer_key, exc)
    original_ids = [named[r.reverses_key].id for r in resolved if r.reverses_key]
    if not original_ids:
        return {}
    return dict(conn.execute(
        select(TRANSFERS.c.reverses_id, func.sum(TRANSFERS.c.amount))
        .where(TRANSFERS.c.reverses_id.in_(original_ids))
        .group_by(TRANSFERS.c.reverses_id)).all())


def _replays(conn: Connection, resolved: list[TransferRequest], rows: list[dict[str, Any]],
             new_ids: dict[str, int], linked: bool) -> list[PostedTransfer | None]:
    """The stored answer of each request whose key was already taken (a retry), else ``None``; a key
    taken by a different transfer is ``exists_with_different_fields``."""
    results: list[PostedTransfer | None] = [None] * len(resolved)
    taken = [r.transfer_key for r in resolved if r.transfer_key not in new_ids]
    if not taken:
        return results
    existing = {row.transfer_key: row for row in conn.execute(
        select(TRANSFERS).where(TRANSFERS.c.transfer_key.in_(taken)))}
    for i, (req, row) in enumerate(zip(resolved, rows)):
        if req.transfer_key in new_ids:
            continue
        stored = existing[req.transfer_key]
        if any(getattr(stored, f) != row[f] for f in SAME_FIELDS):
            exc = DomainError(errors.EXISTS_WITH_DIFFERENT_FIELDS, transfer_key=req.transfer_key)
            raise fail(linked, i, req.transfer_key, exc)
        results[i] = _posted_from_row(stored, replayed=True)
    return results
