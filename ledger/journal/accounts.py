"""Use cases of the journal itself: open accounts, post transfers, expire holds, make checkpoints.

Higher use cases (awards, redemptions, settlements) call ``post_in`` inside their own transaction so
that their own rows (claims, spent codes, idempotency records) commit together with the transfer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import Alongside
from ledger.invariants import invariant
from ledger.journal import events
from ledger.journal.chain import checkpoint_digest, genesis_hash
from ledger.journal.models import ACCOUNT_KINDS, ACCOUNT_STATUSES, Account, Checkpoint, Transfer
from ledger.journal.posting import PostedTransfer, TransferRequest, post_batch

# Accounts that may go below zero: the outside world's side of the books.
NEGATIVE_ALLOWED_KINDS = ("donations", "adjustment")


@dataclass(frozen=True)
class AccountView:
    id: int
    code: str
    kind: str
    name: str
    owner_ref: str | None
    status: str
    no_negative: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    entry_count: int

    @property
    def balance(self) -> int:
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending

    @property
    def on_hold(self) -> int:
        return self.debits_pending

    @classmethod
    def of(cls, acc: Account) -> AccountView:
        return cls(acc.id, acc.code, acc.kind, acc.name, acc.owner_ref, acc.status, acc.no_negative,
                   acc.debits_pending, acc.debits_posted, acc.credits_pending, acc.credits_posted,
                   acc.entry_count)


def open_account_in(session: Session, code: str, kind: str, *, name: str = "", owner_ref: str | None = None,
                    no_negative: bool | None = None) -> Account:
    if kind not in ACCOUNT_KINDS:
        raise DomainError(errors.VALIDATION_FAILED, f"no account kind {kind!r}")
    if not code or len(code) > 80:
        raise DomainError(errors.VALIDATION_FAILED, "account code must be 1 to 80 characters")
    if session.scalar(select(Account.id).where(Account.code == code)) is not None:
        raise DomainError(errors.ACCOUNT_EXISTS, code=code)
    if no_negative is None:
        no_negative = kind not in NEGATIVE_ALLOWED_KINDS
    acc = Account(code=code, kind=kind, name=name, owner_ref=owner_ref, status="open", no_negative=no_negative,
                  debits_pending=0, debits_posted=0, credits_pending=0, credits_posted=0, entry_count=0,
                  chain_head="")
    session.add(acc)
    session.flush()
    acc.chain_head = genesis_hash(acc.id, code, kind)
    session.flush()
    return acc


def open_account(books: Books, code: str, kind: str, **kwargs: object) -> AccountView:
    return books.run(lambda s: AccountView.of(open_account_in(s, code, kind, **kwargs)))  # type: ignore[arg-type]


def account_by_code(session: Session, code: str) -> Account:
    acc = session.scalar(select(Account).where(Account.code == code))
    if acc is None:
        raise DomainError(errors.ACCOUNT_NOT_FOUND, code=code)
    return acc


def get_account(books: Books, account_id: int) -> AccountView:
    def work(s: Session) -> AccountView:
        acc = s.get(Account, account_id)
        if acc is None:
            raise DomainError(errors.ACCOUNT_NOT_FOUND, account_id=account_id)
        return AccountView.of(acc)

    return books.run(work, readonly=True)


def set_account_status(books: Books, account_id: int, status: str) -> AccountView:
    if status not in ACCOUNT_STATUSES:
        raise DomainError(errors.VALIDATION_FAILED, f"no account status {status!r}")

    def work(s: Session) -> AccountView:
        acc = s.get(Account, account_id, with_for_update={"key_share": True})
        if acc is None:
            raise DomainError(errors.ACCOUNT_NOT_FOUND, account_id=account_id)
        if status == "closed" and (acc.balance != 0 or acc.debits_pending or acc.credits_pending):
            raise DomainError(errors.VALIDATION_FAILED, "only an empty account with no holds can be closed")
        acc.status = status
        return AccountView.of(acc)

    return books.run(work)


def post_in(session: Session, books: Books, requests: Sequence[TransferRequest],
            batch_key: str | None = None, *, alongside: Alongside | None = None) -> list[PostedTransfer]:
    """Post inside an open unit of work (the caller's transaction). ``alongside``: one read of the caller's
    sent in the same round trip as the accounts' lock, once it is granted (``ledger.infra.db.Alongside``)."""
    posted = post_batch(session.connection(), requests, now=books.now(), batch_key=batch_key, alongside=alongside)
    events.record_posted(session, posted)  # announced to listeners (metrics) once the transaction commits
    return posted


def post(books: Books, requests: Sequence[TransferRequest] | TransferRequest,
         batch_key: str | None = None) -> list[PostedTransfer]:
    """Post one transfer or one linked batch in its own transaction."""
    reqs = [requests] if isinstance(requests, TransferRequest) else list(requests)
    # the hot path: a plain connection, no ORM unit of work; listeners hear of it after the commit
    posted = books.run_core(lambda conn: post_batch(conn, reqs, now=books.now(), batch_key=batch_key))
    events.announce(posted)
    return posted


def expire_holds(books: Books, *, limit: int = 500) -> int:
    """Release every hold whose time is up (the worker calls this). Returns how many it released.

    Safe to run on several servers at once: each hold can be resolved only once (a unique constraint
    on ``pending_id``), and a hold resolved meanwhile is skipped on the retry.
    """
    from ledger.journal.posting import TransferRequest as Req

    released = 0
    while True:
        now = books.now()

        def work(s: Session) -> tuple[int, int]:
            resolution = aliased(Transfer)
            rows = s.execute(
                select(Transfer.id, Transfer.transfer_key)
                .outerjoin(resolution, resolution.pending_id == Transfer.id)
                .where(Transfer.phase == "pending", Transfer.expires_at <= now, resolution.id.is_(None))
                .order_by(Transfer.id).limit(limit)
            ).all()
            if not rows:
                return 0, 0
            reqs = [Req(f"expire:{r.id}", "", "expire", pending_key=r.transfer_key, actor="system:expiry",
                        reason="hold timed out") for r in rows]
            posted = post_batch(s.connection(), reqs, now=now)
            events.record_posted(s, posted)
            # another worker may have expired some of them under the same keys: those are replays
            return len(reqs), sum(1 for p in posted if not p.replayed)

        try:
            n, fresh = books.run(work)
        except DomainError as exc:
            if exc.code == "linked_transfer_failed" and exc.details.get("cause") == "pending_transfer_already_resolved":
                continue  # another worker got there first; look again
            raise
        released += fresh
        if n < limit:
            return released


# --- checkpoints ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckpointView:
    id: int
    accounts_count: int
    entries_count: int
    digest: str
    key_id: str
    created_at: dt.datetime


def make_checkpoint(books: Books) -> CheckpointView:
    """Sign the chain heads of every account as they stand now."""
    key = books.keys.ensure("ledger")

    def work(s: Session) -> CheckpointView:
        # one SELECT is one consistent snapshot on both databases
        heads = [[r.id, r.entry_count, r.chain_head] for r in s.execute(
            select(Account.id, Account.entry_count, Account.chain_head).order_by(Account.id))]
        heads_json = json.dumps(heads, separators=(",", ":"))
        digest = checkpoint_digest(heads_json)
        signature = key.sign(bytes.fromhex(digest)).hex()
        entries = sum(h[1] for h in heads)
        invariant(entries % 2 == 0, "every transfer writes two entries")
        cp = Checkpoint(heads=heads_json, accounts_count=len(heads), entries_count=entries, digest=digest,
                        key_id=key.kid, signature=signature)
        s.add(cp)
        s.flush()
        s.refresh(cp)
        return CheckpointView(cp.id, cp.accounts_count, cp.entries_count, digest, key.kid, cp.created_at)

    return books.run(work)
