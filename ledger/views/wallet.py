"""The volunteer's phone: their history in their own words, and the payments they just made.

``history``: newest first, every line naming what it was about (the shop of a payment or a refund, the
claim, the radar notice, the patrol post, the survey), the change of what the volunteer *can spend*, and the
running figure of that after the line. The figure is the one big number of the wallet (``available`` =
posted balance less what is on hold), so the newest line's figure always equals it: a payment waiting for
the volunteer's confirmation already counts when it is asked (待确认), its release gives the beans back, and
its confirmation changes nothing more. Accounting detail (debit, credit, phases) never reaches the phone.

``recent_payments``: the wallet's last redemptions with the shop's name and what is left, for the 支付成功
screen the app shows when the event stream says a till took a payment.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger.access import policy
from ledger.access.models import Merchant
from ledger.earning.models import Claim
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.journal.models import Account, Transfer
from ledger.patrols.models import PatrolPost, PatrolShift
from ledger.radar.models import Notice
from ledger.redemption.models import Redemption
from ledger.surveys.models import Survey


def _available(acc: Account) -> int:
    return acc.credits_posted - acc.debits_posted - acc.debits_pending


def _effect(t: Transfer, wallet: int, holds: dict[int, int]) -> int:
    """How the transfer changed what the wallet can spend (a hold into the wallet counts once it is posted)."""
    out = t.debit_account_id == wallet
    held = holds.get(t.pending_id or 0, t.amount)
    if t.phase == "single":
        return -t.amount if out else t.amount
    if t.phase == "pending":
        return -t.amount if out else 0  # a payment asked of the volunteer is no longer spendable from then on
    if t.phase == "post":
        return held - t.amount if out else t.amount  # out: already counted when asked; any rest is released
    return held if out else 0  # void or expire: the beans asked of the wallet are back


def _refs(rows: list[Transfer]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for t in rows:
        kind, _, raw = (t.reference or "").partition(":")
        if raw.isdigit():
            out.setdefault(kind, set()).add(int(raw))
    return out


def _names(s: Session, refs: dict[str, set[int]]) -> dict[tuple[str, int], dict[str, Any]]:
    """What each reference names: the shop, the claim, the notice, the patrol post, the survey."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    if refs.get("redemption"):
        for rid, shop, status in s.execute(select(Redemption.id, Merchant.name, Redemption.status).join(
                Merchant, Merchant.id == Redemption.merchant_id).where(Redemption.id.in_(refs["redemption"]))):
            out[("redemption", rid)] = {"shop": shop, "status": status}
    if refs.get("claim"):
        for cid, kind, category in s.execute(select(Claim.id, Claim.kind, Claim.category)
                                             .where(Claim.id.in_(refs["claim"]))):
            out[("claim", cid)] = {"claim_id": cid, "claim_kind": kind, "category": category}
    if refs.get("notice"):
        for nid, title in s.execute(select(Notice.id, Notice.title).where(Notice.id.in_(refs["notice"]))):
            out[("notice", nid)] = {"notice_id": nid, "notice": title}
    if refs.get("patrol_shift"):
        for sid, post in s.execute(select(PatrolShift.id, PatrolPost.name).join(
                PatrolPost, PatrolPost.id == PatrolShift.post_id).where(PatrolShift.id.in_(refs["patrol_shift"]))):
            out[("patrol_shift", sid)] = {"post": post}
    if refs.get("survey"):
        for sid, title in s.execute(select(Survey.id, Survey.title).where(Survey.id.in_(refs["survey"]))):
            out[("survey", sid)] = {"survey": title}
    return out


def _what(t: Transfer, wallet: int, names: dict[tuple[str, int], dict[str, Any]]) -> dict[str, Any]:
    kind, _, raw = (t.reference or "").partition(":")
    named = names.get((kind, int(raw)), {}) if raw.isdigit() else {}
    incoming = t.credit_account_id == wallet
    if incoming and t.phase in ("pending", "void", "expire"):  # beans on their way in: not spendable yet, or not coming
        what = "incoming_waiting" if t.phase == "pending" else "incoming_cancelled"
        return {"what": what, **named, "reason": t.reason, "coming": t.amount if t.phase == "pending" else 0}
    if t.kind == "redeem":
        what = {"pending": "payment_waiting", "post": "payment_confirmed", "void": "payment_released",
                "expire": "payment_released"}.get(t.phase, "payment")
    elif t.kind == "refund":
        what = "refund"
    elif t.kind == "award" and kind in ("claim", "notice", "patrol_shift", "survey"):
        what = {"claim": "claim_award", "notice": "notice_award", "patrol_shift": "patrol_award",
                "survey": "survey_award"}[kind]
    elif t.kind == "award":
        what = "award"
    else:
        what = t.kind if incoming else f"{t.kind}_out"
    return {"what": what, **named, "reason": t.reason if what == "award" else ""}


def history(books: Books, actor: Any, *, limit: int = 30) -> dict[str, Any]:
    """The actor's own wallet: ``available``, ``on_hold`` and up to ``limit`` lines, newest first (module doc)."""
    def work(s: Session) -> dict[str, Any]:
        wallet = policy.own_wallet(s, actor)
        acc = s.get(Account, wallet)
        rows = list(s.scalars(select(Transfer).where(or_(Transfer.debit_account_id == wallet,
                                                         Transfer.credit_account_id == wallet))
                              .order_by(Transfer.id.desc()).limit(limit)).all())
        pending_ids = {t.pending_id for t in rows if t.pending_id}
        holds = dict(s.execute(select(Transfer.id, Transfer.amount).where(Transfer.id.in_(pending_ids))).all()) \
            if pending_ids else {}
        names = _names(s, _refs(rows))
        running = _available(acc)
        lines = []
        for t in rows:
            change = _effect(t, wallet, holds)
            lines.append({"transfer_id": t.id, "time": utc_from_db(t.created_at), "kind": t.kind, "phase": t.phase,
                          "change": change, "available_after": running, **_what(t, wallet, names)})
            running -= change
        return {"available": _available(acc), "on_hold": acc.debits_pending, "lines": lines}

    return books.run(work, readonly=True)


def recent_payments(books: Books, actor: Any, *, within_s: int = 600, limit: int = 5) -> list[dict[str, Any]]:
    """The actor's redemptions of the last ``within_s`` seconds, newest first: shop, amount, status, time."""
    def work(s: Session) -> list[dict[str, Any]]:
        wallet = policy.own_wallet(s, actor)
        since = books.now() - dt.timedelta(seconds=within_s)
        rows = s.execute(select(Redemption.id, Merchant.name, Redemption.amount, Redemption.status,
                                Redemption.method, Redemption.requested_at)
                         .join(Merchant, Merchant.id == Redemption.merchant_id)
                         .where(Redemption.wallet_account_id == wallet, Redemption.requested_at >= since)
                         .order_by(Redemption.id.desc()).limit(limit)).all()
        return [{"redemption_id": r.id, "shop": r.name, "amount": r.amount, "status": r.status, "method": r.method,
                 "time": utc_from_db(r.requested_at).isoformat().replace("+00:00", "Z")} for r in rows]

    return books.run(work, readonly=True)
