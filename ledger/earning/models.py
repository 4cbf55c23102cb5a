"""Earning: claims for tips and patrols, the awards that credit beans for verified work, and the reserves
that claims can be paid from.

The journal holds the beans; these rows hold the why: who claimed, who submitted, who verified,
who approved, against which rule. The ledger and leaderboards carry only the claim id and category;
a tip's details stay here, shown only to officers in scope.

A **reserve** is beans of a community budget set aside for claims to be paid from (a radar notice's bounty:
the room above names it by ``reference``, e.g. ``notice:12``; earning knows no notices). It is a hold on the
budget whose other side is the community's reserve account; a claim carries the reserve it is paid from
(``claims.reserve_id``), and paying it replaces the hold in one linked batch: release, pay, reserve the rest.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.infra.base import Base, BigId, UTCDateTime, created_at_column, in_values

CLAIM_KINDS = ("tip", "patrol")
CLAIM_STATUSES = ("submitted", "verified", "rejected")
TIP_TIERS = ("low", "medium", "high", "critical")
AWARD_SOURCES = ("claim", "direct", "import")
AWARD_STATUSES = ("posted", "pending_approval", "voided", "reversed")
RESERVE_STATUSES = ("open", "released")



class Reserve(Base):
    """Beans of a community budget set aside for claims (see the module doc). ``paid`` counts the awards made
    from it, posted or awaiting a second approval; what is left (``amount - paid``) is on hold under
    ``hold_key`` until ``expires_at`` (then the journal's expiry releases it, with no one asking)."""

    __tablename__ = "reserves"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)  # the paying community
    amount: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10), default="open")
    hold_key: Mapped[Optional[str]] = mapped_column(String(100), unique=True)  # the hold reserving the rest
    hold_seq: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reference: Mapped[str] = mapped_column(String(120))  # what the beans are for, named by the room above
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("status", RESERVE_STATUSES), name="status"),
        CheckConstraint("amount >= 0 AND paid >= 0 AND paid <= amount", name="paid_within"),
    )


class Claim(Base):
    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12), default="submitted")
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # the volunteer, or the group/building leader who submitted for them
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # the community whose officers verify it and whose budget pays
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    category: Mapped[Optional[str]] = mapped_column(String(40))  # tips
    description: Mapped[Optional[str]] = mapped_column(Text)  # tips: what was seen
    location: Mapped[Optional[str]] = mapped_column(String(200))  # tips: where
    police_case_ref: Mapped[Optional[str]] = mapped_column(String(60))  # tips
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # tip time / patrol start
    ended_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())  # patrol end
    team: Mapped[Optional[str]] = mapped_column(String(200))  # patrols
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    tier: Mapped[Optional[str]] = mapped_column(String(10))  # tips: set by the verifying officer
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    decision_reason: Mapped[Optional[str]] = mapped_column(Text)
    # tips answering a call for tips with a bounty: the reserve the award is paid from (else the rule table)
    reserve_id: Mapped[Optional[int]] = mapped_column(ForeignKey("reserves.id"), index=True)
    # the volunteer service the claim stands for, recorded (ledger.service) once it is verified and paid
    service_activity: Mapped[Optional[str]] = mapped_column(String(12))
    service_minutes: Mapped[Optional[int]] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("kind", CLAIM_KINDS), name="kind"),
        CheckConstraint(in_values("status", CLAIM_STATUSES), name="status"),
        CheckConstraint(f"tier IS NULL OR {in_values('tier', TIP_TIERS)}", name="tier"),
        CheckConstraint("kind <> 'patrol' OR (ended_at IS NOT NULL AND ended_at > occurred_at)",
                        name="patrol_has_end"),
        CheckConstraint("kind <> 'tip' OR category IS NOT NULL", name="tip_has_category"),
        CheckConstraint("(service_activity IS NULL) = (service_minutes IS NULL) AND "
                        "(service_minutes IS NULL OR service_minutes > 0)", name="service_whole"),
    )


class Award(Base):
    __tablename__ = "awards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # the community whose budget pays
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    claim_id: Mapped[Optional[int]] = mapped_column(ForeignKey("claims.id"), unique=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    reversed_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    reference: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text, default="")
    # the journal transfer that credits the wallet (single, or the hold's post); the hold's key
    transfer_key: Mapped[str] = mapped_column(String(100), unique=True)
    hold_key: Mapped[Optional[str]] = mapped_column(String(100), unique=True)
    # why a second officer must approve, e.g. "amount_over_threshold", "backfilled"
    approval_reason: Mapped[Optional[str]] = mapped_column(String(40))
    approved_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    # the CSV import's row key: a second import of the same row is a no-op
    import_key: Mapped[Optional[str]] = mapped_column(String(100), unique=True)
    # when, by the books' clock: caps and leaderboards count by this
    awarded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("source", AWARD_SOURCES), name="source"),
        CheckConstraint(in_values("status", AWARD_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("reversed_amount >= 0 AND reversed_amount <= amount", name="reversed_within_amount"),
        CheckConstraint("(source = 'claim') = (claim_id IS NOT NULL)", name="claim_iff_source_claim"),
        Index("ix_awards_officer_time", "officer_id", "awarded_at"),
        Index("ix_awards_volunteer_time", "volunteer_id", "awarded_at"),
    )
