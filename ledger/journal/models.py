"""The double-entry journal: accounts, transfers, entries and signed checkpoints.

Sign convention (TigerBeetle's): a transfer debits one account and credits another by the same
amount. An account's balance is ``credits_posted - debits_posted``; beans flow from the debited
account to the credited one. Accounts flagged ``no_negative`` may never have
``debits_posted + debits_pending > credits_posted``; the database enforces the same with a CHECK.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.infra.base import Base, BigId, UTCDateTime, created_at_column, in_values

ACCOUNT_KINDS = ("fund", "donations", "budget", "wallet", "merchant", "payout", "expiry", "adjustment")
ACCOUNT_STATUSES = ("open", "frozen", "closed")
TRANSFER_KINDS = (
    "donate",
    "allocate",
    "award",
    "redeem",
    "refund",
    "settle",
    "expire",
    "reverse",
    "adjust",
)
# single: posts at once; pending: a hold; post / void / expire: resolve a hold.
TRANSFER_PHASES = ("single", "pending", "post", "void", "expire")
ENTRY_SIDES = ("D", "C")



class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    # who the account belongs to, e.g. "user:12", "org:5", "merchant:3"; free of foreign keys so that
    # the journal stands without the people tables.
    owner_ref: Mapped[Optional[str]] = mapped_column(String(80), index=True)
    status: Mapped[str] = mapped_column(String(8), default="open")
    no_negative: Mapped[bool] = mapped_column(Boolean, default=True)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    # the head of this account's hash chain and how many entries it covers
    entry_count: Mapped[int] = mapped_column(BigInteger, default=0)
    chain_head: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("kind", ACCOUNT_KINDS), name="kind"),
        CheckConstraint(in_values("status", ACCOUNT_STATUSES), name="status"),
        CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
            name="totals_not_negative",
        ),
        CheckConstraint(
            "NOT no_negative OR debits_posted + debits_pending <= credits_posted",
            name="no_negative_balance",
        ),
        CheckConstraint("entry_count >= 0", name="entry_count_not_negative"),
    )

    @property
    def balance(self) -> int:
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending


class Transfer(Base):
    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # the client-chosen id that makes the write idempotent
    transfer_key: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(8))
    debit_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    # a post / void / expire names the hold it resolves; a hold is resolved at most once
    pending_id: Mapped[Optional[int]] = mapped_column(ForeignKey("transfers.id"), unique=True)
    # a hold's deadline
    expires_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    # a reversal names the transfer it corrects
    reverses_id: Mapped[Optional[int]] = mapped_column(ForeignKey("transfers.id"), index=True)
    # a linked batch shares one batch key
    batch_key: Mapped[Optional[str]] = mapped_column(String(100), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text, default="")
    # what the transfer is about, e.g. "claim:17", "redemption:9"
    reference: Mapped[Optional[str]] = mapped_column(String(120), index=True)
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("kind", TRANSFER_KINDS), name="kind"),
        CheckConstraint(in_values("phase", TRANSFER_PHASES), name="phase"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
        CheckConstraint(
            "(phase IN ('post', 'void', 'expire')) = (pending_id IS NOT NULL)",
            name="pending_id_iff_resolution",
        ),
        CheckConstraint("(phase = 'pending') = (expires_at IS NOT NULL)", name="expires_at_iff_hold"),
        Index("ix_transfers_hold_expiry", "phase", "expires_at"),
    )


class Entry(Base):
    """One account effect of one transfer: every transfer writes exactly two, one per side."""

    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    # position in the account's hash chain, 1, 2, 3, ...
    seq: Mapped[int] = mapped_column(BigInteger)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), index=True)
    side: Mapped[str] = mapped_column(String(1))
    # change to this side's pending total (a hold adds, its resolution removes) and posted total
    pending_delta: Mapped[int] = mapped_column(BigInteger)
    posted_delta: Mapped[int] = mapped_column(BigInteger)
    # credits_posted - debits_posted after this entry
    balance_after: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        UniqueConstraint("account_id", "seq"),
        CheckConstraint(in_values("side", ENTRY_SIDES), name="side"),
        CheckConstraint("posted_delta >= 0", name="posted_delta_not_negative"),
        CheckConstraint("seq >= 1", name="seq_positive"),
    )


class Checkpoint(Base):
    """A signed statement of every account's chain head at one moment."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # JSON list of [account_id, entry_count, chain_head], sorted by account id
    heads: Mapped[str] = mapped_column(Text)
    accounts_count: Mapped[int] = mapped_column(Integer)
    entries_count: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = created_at_column()
