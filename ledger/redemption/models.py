"""Redemption: tills, catalogue items, bean cards, spent codes, redemptions, refunds and settlements (the
idempotency records are ``ledger.infra.idempotency``'s). The beans themselves move only through the journal
(``transfers``); these rows say why, and the single-use rules live in their unique constraints."""

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
from ledger.infra.idempotency import IdempotencyRecord as IdempotencyRecord  # its table moved to infra

CARD_STATUSES = ("active", "locked", "revoked")
TILL_STATUSES = ("active", "revoked")
REDEMPTION_STATUSES = ("completed", "awaiting_confirmation", "declined", "expired")
REDEMPTION_METHODS = ("wallet_code", "card", "device_code")
DEVICE_STATUSES = ("active", "revoked")
DEVICE_ALGORITHMS = ("EdDSA", "ES256")  # Ed25519, or ECDSA P-256 where a browser lacks Ed25519



class Till(Base):
    """A till device's key, issued and revoked by the merchant owner; only a hash of its secret is kept."""

    __tablename__ = "tills"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    secret_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8), default="active")
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = created_at_column()
    revoked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint(in_values("status", TILL_STATUSES), name="status"),)


class CatalogueItem(Base):
    __tablename__ = "catalogue_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    price: Mapped[int] = mapped_column(BigInteger)  # beans
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (CheckConstraint("price > 0", name="price_positive"),)


class Card(Base):
    """A printed bean card. Its code carries ``card`` = this id; the code works while ``status`` is
    ``active``. Five wrong PINs lock it; an officer unlocks; a lost card is revoked and reissued."""

    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    token_id: Mapped[str] = mapped_column(String(64), unique=True)  # the code's jti
    code: Mapped[str] = mapped_column(Text)  # kept for reprinting; useless without the PIN
    pin_hash: Mapped[str] = mapped_column(String(200))
    failed_pins: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(8), default="active")
    issued_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = created_at_column()
    revoked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(in_values("status", CARD_STATUSES), name="status"),
        CheckConstraint("failed_pins >= 0", name="failed_pins_not_negative"),
    )


class WalletDevice(Base):
    """A volunteer's phone: the public half of a key pair made on the phone (the private half never leaves
    it). Codes the phone signs offline (``typ gb-offline+jwt``, ``kid`` = this row's ``kid``) pay while
    ``status`` is ``active``; revoking is read in every redemption's transaction."""

    __tablename__ = "wallet_devices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kid: Mapped[str] = mapped_column(String(32), unique=True)  # derived from the public key
    alg: Mapped[str] = mapped_column(String(8))
    public_jwk: Mapped[str] = mapped_column(Text)  # canonical JSON of the public JWK
    name: Mapped[str] = mapped_column(String(60), default="")
    status: Mapped[str] = mapped_column(String(8), default="active")
    created_at: Mapped[dt.datetime] = created_at_column()
    last_used_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    revoked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    revoked_by: Mapped[Optional[str]] = mapped_column(String(80))

    __table_args__ = (
        CheckConstraint(in_values("status", DEVICE_STATUSES), name="status"),
        CheckConstraint(in_values("alg", DEVICE_ALGORITHMS), name="alg"),
    )


class PayNumber(Base):
    """The short number (付款码数字) shown under a wallet code's QR, for a cashier to type: it stands for that
    code until the code expires, and the till's redemption reads the code from here."""

    __tablename__ = "pay_numbers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    code: Mapped[str] = mapped_column(Text)
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[dt.datetime] = created_at_column()


class SpentCode(Base):
    """A wallet code's ``jti``, written in the same transaction as its transfer: a code pays once."""

    __tablename__ = "spent_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = created_at_column()


class Redemption(Base):
    __tablename__ = "redemptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    items: Mapped[str] = mapped_column(Text, default="[]")  # JSON snapshot: [{item_id, name, price, qty}]
    method: Mapped[str] = mapped_column(String(12))
    card_id: Mapped[Optional[int]] = mapped_column(ForeignKey("cards.id"))
    device_id: Mapped[Optional[int]] = mapped_column(ForeignKey("wallet_devices.id"))  # an offline code's phone
    code_jti: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    transfer_key: Mapped[str] = mapped_column(String(100), unique=True)
    actor: Mapped[str] = mapped_column(String(80))  # "user:7" (cashier) or "till:3"
    till_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tills.id"))
    # the books' clock: when it was asked for, and when the beans reached the merchant
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    hold_expires_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("status", REDEMPTION_STATUSES), name="status"),
        CheckConstraint(in_values("method", REDEMPTION_METHODS), name="method"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded >= 0 AND refunded <= amount", name="refunded_in_range"),
        Index("ix_redemptions_merchant_time", "merchant_id", "requested_at"),
        # the wallet's history and its daily limit (summed on every redemption): one index range each
        Index("ix_redemptions_wallet_time", "wallet_account_id", "requested_at"),
    )


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    redemption_id: Mapped[int] = mapped_column(ForeignKey("redemptions.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    transfer_key: Mapped[str] = mapped_column(String(100), unique=True)
    actor: Mapped[str] = mapped_column(String(80))
    refunded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_refunds_merchant_time", "merchant_id", "refunded_at"),
    )


class Settlement(Base):
    """One merchant's settlement statement for one period ("2026-11"); at most one per pair."""

    __tablename__ = "settlements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    period: Mapped[str] = mapped_column(String(7))
    redeemed: Mapped[int] = mapped_column(BigInteger)
    refunded: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)  # beans moved to the payout account = RMB owed
    redemptions_count: Mapped[int] = mapped_column(Integer)
    transfer_key: Mapped[Optional[str]] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        UniqueConstraint("merchant_id", "period"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )
