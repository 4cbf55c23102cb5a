"""Earning beans: claims for tips and patrols, verification by officers, awards within rules, caps and
budgets, second approval, reversal, the fund's donations and allocations, bulk import, leaderboards.

Every use case takes the ``Books`` and the acting ``Actor`` and opens exactly one transaction; every
bean moves through ``post_in`` inside it, so a claim's new state and its award commit together.

Rules (``EarningRules`` in ``ledger.infra.settings``; override per deployment with ``LEDGER_SETTINGS["earning"]``):

- a tip is worth its value tier (set by the verifying officer); a patrol earns ``patrol_beans_per_hour``
  per full hour-fraction of duty (``minutes * rate // 60``), at most ``patrol_cap_beans`` per patrol;
- caps: per volunteer per day and per month, per officer per day (local days and months: ``books.calendar``), and
  the community budget (the journal's ``insufficient_funds`` on the budget account);
- an award above ``approval_threshold`` or for work submitted more than ``backfill_days`` after it
  ended is a hold (kind ``award``) that a different officer in scope posts or voids.

Locks: a use case that awards locks the volunteer's and the officer's user rows (in id order) before
it sums their awards, so that two awards at once cannot both squeeze under a cap; then the journal
locks the accounts. Approval locks the award row, so two officers approving at once: exactly one wins.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ledger import errors, notify, service
from ledger.access import policy
from ledger.access.identity import (
    Actor,
    ancestors,
    budget_account_id,
    community_at_or_above,
    descendants,
    wallet_account_id,
)
from ledger.access.models import OrgUnit, RoleGrant, User
from ledger.earning.models import Award, Claim, Reserve
from ledger.earning.reserves import lock_in, payable_in, rehold_in
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import Alongside, at_commit, bind_time, driver_rows, driver_sql, utc_from_db
from ledger.infra.settings import EarningRules
from ledger.journal.accounts import account_by_code, open_account_in, post_in
from ledger.journal.models import Account, Transfer
from ledger.journal.posting import TransferRequest, hold, post_hold, reversal, transfer, void_hold


def rules_of(books: Books) -> EarningRules:
    return books.settings.earning


# --- views ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClaimView:
    id: int
    kind: str
    status: str
    volunteer_id: int
    submitted_by_id: int
    org_unit_id: int
    category: str | None
    occurred_at: dt.datetime
    ended_at: dt.datetime | None
    team: str | None
    submitted_at: dt.datetime
    tier: str | None
    decided_by_id: int | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    award_id: int | None
    award_status: str | None
    amount: int | None
    # tip details: only for officers in scope
    details: dict[str, Any] | None
    reserve_id: int | None = None  # paid from this reserve (a notice's bounty), not by the rule table

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AwardView:
    id: int
    source: str
    status: str
    volunteer_id: int
    org_unit_id: int
    claim_id: int | None
    officer_id: int
    amount: int
    reversed_amount: int
    reference: str
    reason: str
    transfer_key: str
    hold_key: str | None
    approval_reason: str | None
    approved_by_id: int | None
    awarded_at: dt.datetime
    voided_by_id: int | None = None  # the second officer who refused a held award (approved_by_id stays empty)

    @classmethod
    def of(cls, a: Award, s: Session | None = None) -> AwardView:
        voided_by = _voided_by(s, a) if s is not None and a.status == "voided" else None
        return cls(a.id, a.source, a.status, a.volunteer_id, a.org_unit_id, a.claim_id, a.officer_id, a.amount,
                   a.reversed_amount, a.reference, a.reason, a.transfer_key, a.hold_key, a.approval_reason,
                   a.approved_by_id, utc_from_db(a.awarded_at), voided_by)


def _voided_by(s: Session, a: Award) -> int | None:
    """Who voided a held award: the actor of the journal's void (or expire) of its hold."""
    actor = s.scalar(select(Transfer.actor).where(Transfer.transfer_key.in_(
        (f"{a.hold_key}:void", f"{a.hold_key}:expire"))).order_by(Transfer.id).limit(1))
    kind, _, ident = (actor or "").partition(":")
    return int(ident) if kind == "user" and ident.isdigit() else None


@dataclass(frozen=True)
class FundView:
    donated: int
    fund: int
    budgets: int
    allocated: int


# --- helpers ----------------------------------------------------------------------------------------

def _unit(s: Session, org_unit_id: int) -> OrgUnit:
    unit = s.get(OrgUnit, org_unit_id) if isinstance(org_unit_id, int) else None
    if unit is None:
        raise DomainError(errors.ORG_UNIT_NOT_FOUND, org_unit_id=org_unit_id)
    return unit


def community_of(s: Session, org_unit_id: int) -> int:
    """The community at or above ``org_unit_id`` (budgets belong to communities)."""
    _unit(s, org_unit_id)
    community = community_at_or_above(s, org_unit_id)
    if community is not None:
        return community
    raise DomainError(errors.NOT_A_COMMUNITY, org_unit_id=org_unit_id)


def _volunteer_units(s: Session, user_id: int) -> list[int]:
    return [u for u in s.scalars(select(RoleGrant.org_unit_id).where(
        RoleGrant.user_id == user_id, RoleGrant.role == "volunteer")).all() if u is not None]


def _require_volunteer(s: Session, user_id: Any) -> User:
    user = s.get(User, user_id) if isinstance(user_id, int) and not isinstance(user_id, bool) else None
    if user is None or not user.active or not _volunteer_units(s, user.id):
        raise DomainError(errors.NOT_A_VOLUNTEER, volunteer_id=user_id)
    return user


_COUNTING = ("posted", "pending_approval")


def _awarded_sql(column: str, start: str, end: str) -> str:
    counting = ", ".join(f"'{status}'" for status in _COUNTING)
    return (f"(SELECT coalesce(sum(amount - reversed_amount), 0) FROM awards WHERE {column} = %({column})s "
            f"AND status IN ({counting}) AND awarded_at >= %({start})s AND awarded_at < %({end})s)")


# The award's statements run on the driver's cursor (``driver_rows``: an award is a hot path, and the ORM's
# execution cost more than the statements). The three caps' sums in one: the volunteer's day and month, the
# officer's day.
_CAP_SUMS = driver_sql("SELECT " + ", ".join((_awarded_sql("volunteer_id", "day_start", "day_end"),
                                              _awarded_sql("volunteer_id", "month_start", "month_end"),
                                              _awarded_sql("officer_id", "day_start", "day_end"))))
_LOCK_USERS = driver_sql("SELECT id FROM users WHERE id IN (%(first)s, %(second)s) ORDER BY id FOR UPDATE")


def _lock_users(s: Session, *user_ids: int) -> None:
    """Lock the users' rows in id order (one statement: the rows are locked as they come out sorted)."""
    ids = sorted(set(user_ids))
    assert 1 <= len(ids) <= 2, "a volunteer and an officer"
    conn = s.connection()
    driver_rows(conn, _LOCK_USERS[conn.dialect.name], {"first": ids[0], "second": ids[-1]})


def _check_caps(s: Session, books: Books, rules: EarningRules, volunteer_id: int, officer_id: int,
                amount: int) -> None:
    now = books.now()
    day_start, day_end = books.calendar.day_bounds(now)
    m_start, m_end = books.calendar.month_bounds(*books.calendar.month_of(now))
    conn = s.connection()
    [sums] = driver_rows(conn, _CAP_SUMS[conn.dialect.name], {
        "volunteer_id": volunteer_id, "officer_id": officer_id, "day_start": bind_time(conn, day_start),
        "day_end": bind_time(conn, day_end), "month_start": bind_time(conn, m_start),
        "month_end": bind_time(conn, m_end)})
    day, month, officer_day = (int(v or 0) for v in sums)
    if day + amount > rules.volunteer_daily_cap:
        raise DomainError(errors.VOLUNTEER_DAILY_CAP, cap=rules.volunteer_daily_cap,
                          remaining=max(0, rules.volunteer_daily_cap - day))
    if month + amount > rules.volunteer_monthly_cap:
        raise DomainError(errors.VOLUNTEER_MONTHLY_CAP, cap=rules.volunteer_monthly_cap,
                          remaining=max(0, rules.volunteer_monthly_cap - month))
    if officer_day + amount > rules.officer_daily_cap:
        raise DomainError(errors.OFFICER_DAILY_CAP, cap=rules.officer_daily_cap,
                          remaining=max(0, rules.officer_daily_cap - officer_day))


def _check_amount(amount: Any) -> int:
    if type(amount) is not int or amount < 1 or amount > 10**9:
        raise DomainError(errors.INVALID_AMOUNT)
    return amount


_AWARD_COLUMNS = ("source", "status", "volunteer_id", "org_unit_id", "claim_id", "officer_id", "amount",
                  "reversed_amount", "reference", "reason", "transfer_key", "hold_key", "approval_reason",
                  "import_key", "awarded_at")
_INSERT_AWARD = {
    "postgresql": f"INSERT INTO awards ({', '.join(_AWARD_COLUMNS)}) VALUES "
                  f"({', '.join(f'%({c})s' for c in _AWARD_COLUMNS)}) RETURNING id",
    "sqlite": f"INSERT INTO awards ({', '.join(_AWARD_COLUMNS)}) VALUES "
              f"({', '.join(f':{c}' for c in _AWARD_COLUMNS)}) RETURNING id",
}
_DECIDE_CLAIM = {
    "postgresql": "UPDATE claims SET status = %(status)s, tier = %(tier)s, decided_by_id = %(by)s, "
                  "decided_at = %(at)s, decision_reason = %(reason)s WHERE id = %(id)s",
    "sqlite": "UPDATE claims SET status = :status, tier = :tier, decided_by_id = :by, decided_at = :at, "
              "decision_reason = :reason WHERE id = :id",
}


def _made_already(s: Session, key: str) -> Award | None:
    return s.scalar(select(Award).where(or_(Award.transfer_key == key, Award.hold_key == f"{key}:hold")))


_BUDGET_AND_WALLET = driver_sql(
    "SELECT id, kind FROM accounts WHERE (kind = 'budget' AND owner_ref = %(budget_owner)s) "
    "OR (kind = 'wallet' AND owner_ref = %(wallet_owner)s) ORDER BY id")


def _budget_and_wallet(s: Session, community_id: int, volunteer_id: int) -> tuple[int, int]:
    """The community's budget account and the volunteer's wallet, in one statement (the first of each kind,
    as ``budget_account_id`` and ``wallet_account_id`` read them)."""
    found: dict[str, int] = {}
    conn = s.connection()
    for acc_id, kind in driver_rows(conn, _BUDGET_AND_WALLET[conn.dialect.name], {
            "budget_owner": f"org:{community_id}", "wallet_owner": f"user:{volunteer_id}"}):
        found.setdefault(kind, acc_id)
    if "budget" not in found:
        raise DomainError(errors.ACCOUNT_NOT_FOUND, f"org unit {community_id} has no budget",
                          org_unit_id=community_id)
    if "wallet" not in found:
        raise DomainError(errors.ACCOUNT_NOT_FOUND, f"user {volunteer_id} has no wallet", user_id=volunteer_id)
    return found["budget"], found["wallet"]


def _award_in(s: Session, books: Books, actor: Actor, *, volunteer_id: int, community_id: int, amount: int,
              source: str, key: str, reference: str, reason: str, claim_id: int | None = None,
              approval_reason: str | None = None, import_key: str | None = None,
              reserve: Reserve | None = None, first: bool = False) -> Award:
    """Credit ``amount`` beans from the community's budget to the volunteer's wallet, within the caps; from
    ``reserve`` (its hold released and the rest re-held in the same linked batch) when the claim has one.

    ``key`` is the award's deterministic journal key; an award with this key already made is returned
    unchanged (a retry). ``first``: the caller holds a lock under which no award with this key can exist
    (a claim locked and still submitted), so there is no retry to look for."""
    existing = None if first else _made_already(s, key)
    if existing is not None:  # a retry: answered before anything is locked
        return existing
    rules = rules_of(books)
    _check_amount(amount)
    if actor.user_id == volunteer_id:
        raise DomainError(errors.SELF_DEALING)
    if approval_reason is None and amount > rules.approval_threshold:
        approval_reason = "amount_over_threshold"
    _lock_users(s, volunteer_id, actor.user_id)
    # the same award sent twice at once: the second waited on the lock above and now sees the first
    existing = None if first else _made_already(s, key)
    if existing is not None:
        return existing
    _check_caps(s, books, rules, volunteer_id, actor.user_id, amount)
    budget, wallet = _budget_and_wallet(s, community_id, volunteer_id)
    ref = reference[:120]
    note = reason[:500]
    if approval_reason:
        hold_key: str | None = f"{key}:hold"
        req = hold(f"{key}:hold", "award", budget, wallet, amount, rules.approval_timeout_s, actor=actor.ref,
                   reason=note, reference=ref)
        transfer_key, status = f"{key}:post", "pending_approval"
    else:
        hold_key = None
        req = transfer(key, "award", budget, wallet, amount, actor=actor.ref, reason=note, reference=ref)
        transfer_key, status = key, "posted"
    values = {"source": source, "status": status, "volunteer_id": volunteer_id, "org_unit_id": community_id,
              "claim_id": claim_id, "officer_id": actor.user_id, "amount": amount, "reversed_amount": 0,
              "reference": ref, "reason": note, "transfer_key": transfer_key, "hold_key": hold_key,
              "approval_reason": approval_reason, "import_key": import_key, "awarded_at": books.now()}
    if reserve is not None:  # paid from the reserve: release its hold, pay, hold the rest (one batch)
        reserve.paid += amount
        rehold_in(s, books, actor, reserve, [req], why="bounty paid")
        award = Award(**values)
        s.add(award)
        s.flush()
    else:
        # the award's row is written in the same round trip as the accounts' lock (then the journal posts; a
        # refusal rolls both back): the budget's lock is held for two round trips and the commit
        conn = s.connection()
        row = Alongside(_INSERT_AWARD[conn.dialect.name],
                        {**values, "awarded_at": bind_time(conn, values["awarded_at"])})
        post_in(s, books, [req], alongside=row)
        assert row.rows is not None
        award = Award(id=int(row.rows[0][0]), **values)  # as written; not attached to the session
    if status == "posted":
        _tell_paid_in(s, books, award, reserve.reference if reserve is not None else None)
    return award


def _claim_view(s: Session, actor: Actor, c: Claim, *, award: Award | None = None, known: bool = False) -> ClaimView:
    """The claim as ``actor`` may see it; ``known``: ``award`` is the claim's award (or None), just made."""
    if not known:
        award = s.scalar(select(Award).where(Award.claim_id == c.id))
    details = None
    # tip details: officers in scope, and the people who wrote them (the volunteer, or their leader)
    if c.kind == "tip" and policy.may_read_tip_details(s, actor, c.org_unit_id,
                                                        authors=(c.volunteer_id, c.submitted_by_id)):
        details = {"description": c.description, "location": c.location, "police_case_ref": c.police_case_ref}
    return ClaimView(c.id, c.kind, c.status, c.volunteer_id, c.submitted_by_id, c.org_unit_id, c.category,
                     utc_from_db(c.occurred_at), utc_from_db(c.ended_at), c.team, utc_from_db(c.submitted_at), c.tier,
                     c.decided_by_id, utc_from_db(c.decided_at), c.decision_reason,
                     award.id if award else None, award.status if award else None,
                     award.amount if award else None, details, c.reserve_id)


def claim_view_in(s: Session, actor: Actor, claim_id: int) -> ClaimView:
    """A claim as ``actor`` may read it (tip details only for officers in scope and its authors), inside the
    caller's transaction: for the rooms above that link claims to what they answer."""
    return _claim_view(s, actor, s.get(Claim, claim_id))


def submit_tip_in(s: Session, books: Books, actor: Actor, *, community_id: int, category: str, description: str,
                  location: str | None, occurred_at: dt.datetime, reserve_id: int | None = None,
                  service: tuple[str, int] | None = None) -> int:
    """A volunteer's tip claim, written in the caller's transaction (a room above checked what the tip
    answers and that it is answered once); paid from ``reserve_id`` when given; ``service`` (activity,
    minutes) is recorded as volunteer service once the claim is verified and its award posted. Returns the
    claim's id."""
    policy.require_role(actor, "volunteer")
    _require_volunteer(s, actor.user_id)
    if reserve_id is not None and s.scalar(select(Reserve.org_unit_id).where(Reserve.id == reserve_id)) != community_id:
        raise DomainError(errors.VALIDATION_FAILED, "a claim is paid from a reserve of its own community")
    activity, minutes = service if service is not None and service[1] > 0 else (None, None)
    now = books.now()
    claim = Claim(kind="tip", status="submitted", volunteer_id=actor.user_id, submitted_by_id=actor.user_id,
                  org_unit_id=community_of(s, community_id), category=category, description=description,
                  location=location, occurred_at=utc_from_db(occurred_at) or now, submitted_at=now,
                  reserve_id=reserve_id, service_activity=activity, service_minutes=minutes)
    s.add(claim)
    s.flush()
    return claim.id


def _record_service_in(s: Session, books: Books, claim: Claim, verifier_id: int) -> None:
    """The claim's volunteer service, once it is verified (and its award, if any, posted): ledger.service."""
    if claim.service_activity is None or not claim.service_minutes:
        return
    service.record_in(s, volunteer_id=claim.volunteer_id, activity=claim.service_activity,
                      source_ref=f"claim:{claim.id}", org_unit_id=claim.org_unit_id,
                      description=service.describe(claim.service_activity),
                      service_day=books.calendar.today(utc_from_db(claim.occurred_at)),
                      minutes=claim.service_minutes, verified_by=f"user:{verifier_id}", verified_at=books.now())


def _tell_in(s: Session, books: Books, user_id: int, key: str, title: str, body: str, *, topic: str = "claim_decided",
             amount: int | None = None, subject: str | None = None) -> None:
    """The volunteer's inbox (and live stream, SMS if configured): short texts, never the tip's content."""
    notify.send_one_in(s, books, user_id=user_id, topic=topic, title=title, body=body, dedupe=key, link="/wallet",
                       subject=subject, amount=amount)


def _tell_paid_in(s: Session, books: Books, award: Award, subject: str | None) -> None:
    what = f"申报 {award.claim_id} 号已核实" if award.claim_id is not None else "民警直接奖励"
    _tell_in(s, books, award.volunteer_id, f"award:{award.id}", f"获得 {award.amount} 金豆", f"{what}，金豆已到账。",
             topic="award", amount=award.amount, subject=subject)


def _may_see_claim(s: Session, actor: Actor, c: Claim) -> bool:
    return policy.may_see_claim(s, actor, volunteer_id=c.volunteer_id, submitted_by_id=c.submitted_by_id,
                                org_unit_id=c.org_unit_id)


def _may_see_award(s: Session, actor: Actor, a: Award) -> bool:
    return policy.may_see_award(s, actor, volunteer_id=a.volunteer_id, officer_id=a.officer_id,
                                org_unit_id=a.org_unit_id)


# --- claims -----------------------------------------------------------------------------------------

def submit_claim(books: Books, actor: Actor, *, kind: str, occurred_at: dt.datetime,
                 volunteer_id: int | None = None, org_unit_id: int | None = None, category: str | None = None,
                 description: str | None = None, location: str | None = None,
                 police_case_ref: str | None = None, ended_at: dt.datetime | None = None,
                 team: str | None = None) -> ClaimView:
    """A volunteer claims credit for a tip or a patrol; a group or building leader may claim for a
    volunteer in their unit (both identities are recorded)."""
    rules = rules_of(books)
    if kind not in ("tip", "patrol"):
        raise DomainError(errors.VALIDATION_FAILED, "kind is tip or patrol")
    occurred_at = utc_from_db(occurred_at)
    ended_at = utc_from_db(ended_at)

    def work(s: Session) -> ClaimView:
        now = books.now()
        vid = actor.user_id if volunteer_id is None else volunteer_id
        if vid == actor.user_id:
            policy.require_role(actor, "volunteer")
        else:
            policy.require_role(actor, "leader")
        volunteer = _require_volunteer(s, vid)
        if vid != actor.user_id:
            policy.require_leader_over(s, actor, _volunteer_units(s, vid))
        if kind == "patrol":
            if org_unit_id is None or ended_at is None:
                raise DomainError(errors.VALIDATION_FAILED, "a patrol names its community, start and end")
            if ended_at <= occurred_at or ended_at - occurred_at > dt.timedelta(hours=rules.patrol_max_hours):
                raise DomainError(errors.VALIDATION_FAILED,
                                  f"a patrol ends after it starts and lasts at most {rules.patrol_max_hours} hours")
            community = community_of(s, org_unit_id)
            if not any(h in ancestors(s, community) or community in ancestors(s, h)
                       for h in _volunteer_units(s, volunteer.id)):
                raise DomainError(errors.OUT_OF_SCOPE, "a patrol is claimed in the volunteer's own community")
        else:
            if category not in rules.tip_categories:
                raise DomainError(errors.VALIDATION_FAILED, f"category is one of {', '.join(rules.tip_categories)}")
            if not description:
                raise DomainError(errors.VALIDATION_FAILED, "say what was seen")
            if ended_at is not None:
                raise DomainError(errors.VALIDATION_FAILED, "a tip has no end time")
            community = community_of(s, org_unit_id if org_unit_id is not None
                                     else _volunteer_units(s, volunteer.id)[0])
        same = _same_claim(s, volunteer.id, kind, community, occurred_at, ended_at, category, description)
        if same is not None:  # the same claim sent twice (a double-submitted form, a retry): one claim
            return _claim_view(s, actor, same)
        end = ended_at or occurred_at
        if end > now + dt.timedelta(minutes=5):
            raise DomainError(errors.CLAIM_IN_FUTURE)
        if occurred_at < now - dt.timedelta(days=rules.max_claim_age_days):
            raise DomainError(errors.CLAIM_TOO_OLD, max_days=rules.max_claim_age_days)
        claim = Claim(kind=kind, status="submitted", volunteer_id=volunteer.id, submitted_by_id=actor.user_id,
                      org_unit_id=community, category=category if kind == "tip" else None,
                      description=description if kind == "tip" else None,
                      location=location if kind == "tip" else None,
                      police_case_ref=police_case_ref if kind == "tip" else None,
                      occurred_at=occurred_at, ended_at=ended_at, team=team if kind == "patrol" else None,
                      submitted_at=now)
        s.add(claim)
        s.flush()
        return _claim_view(s, actor, claim)

    return books.run(work)


def _same_claim(s: Session, volunteer_id: int, kind: str, community: int, occurred_at: dt.datetime,
                ended_at: dt.datetime | None, category: str | None, description: str | None) -> Claim | None:
    """A claim not rejected for the same work: same volunteer, kind, community and times (and, for a tip,
    category and description)."""
    q = select(Claim).where(Claim.volunteer_id == volunteer_id, Claim.kind == kind, Claim.org_unit_id == community,
                            Claim.occurred_at == occurred_at, Claim.status != "rejected")
    q = q.where(Claim.ended_at == ended_at) if ended_at is not None else q.where(Claim.ended_at.is_(None))
    if kind == "tip":
        q = q.where(Claim.category == category, Claim.description == description)
    return s.scalars(q.order_by(Claim.id).limit(1)).first()


def claim_amount(rules: EarningRules, claim: Claim, tier: str | None) -> int:
    if claim.kind == "tip":
        if tier not in rules.tip_tiers:
            raise DomainError(errors.TIER_REQUIRED, tiers=list(rules.tip_tiers))
        return int(rules.tip_tiers[tier])
    minutes = int((utc_from_db(claim.ended_at) - utc_from_db(claim.occurred_at)).total_seconds() // 60)
    return min(rules.patrol_cap_beans, minutes * rules.patrol_beans_per_hour // 60)


def _lock_claim(s: Session, claim_id: int) -> Claim:
    claim = s.get(Claim, claim_id, with_for_update=True) if isinstance(claim_id, int) else None
    if claim is None:
        raise DomainError(errors.CLAIM_NOT_FOUND, claim_id=claim_id)
    return claim


def verify_claim(books: Books, actor: Actor, claim_id: int, *, reason: str, tier: str | None = None,
                 amount: int | None = None) -> ClaimView:
    """An officer in scope verifies the claim; beans move from the community budget to the wallet in
    the same transaction (or a hold awaits a second officer). A claim paid from a reserve (a tip answering
    a notice with a bounty) gets ``amount`` beans of it, by default all that is left; other tips are paid by
    ``tier``, patrols by the rule table."""
    rules = rules_of(books)
    if amount is not None and (type(amount) is not int or amount < 1):
        raise DomainError(errors.INVALID_AMOUNT)

    def work(s: Session) -> ClaimView:
        claim = _lock_claim(s, claim_id)
        policy.require_officer_in_scope(s, actor, claim.org_unit_id)
        if claim.status != "submitted":
            raise DomainError(errors.CLAIM_ALREADY_DECIDED, status=claim.status)
        if actor.user_id in (claim.volunteer_id, claim.submitted_by_id):
            raise DomainError(errors.SELF_DEALING)
        reserve = None
        if claim.reserve_id is not None:
            _require_volunteer(s, claim.volunteer_id)
            reserve = lock_in(s, claim.reserve_id)
            value = payable_in(reserve, amount, books.now())
        elif amount is not None:
            raise DomainError(errors.VALIDATION_FAILED, "beans are named only for claims paid from a bounty; "
                                                        "a tip is paid by its tier")
        else:
            value = claim_amount(rules, claim, tier if claim.kind == "tip" else None)
        end = utc_from_db(claim.ended_at or claim.occurred_at)
        backfilled = utc_from_db(claim.submitted_at) - end > dt.timedelta(days=rules.backfill_days)
        if value > 0:
            label = f"{claim.kind}:{claim.category}" if claim.kind == "tip" else "patrol"
            award = _award_in(s, books, actor, volunteer_id=claim.volunteer_id, community_id=claim.org_unit_id,
                              amount=value, source="claim", key=f"award:claim:{claim.id}",
                              reference=f"claim:{claim.id}", reason=label, claim_id=claim.id,
                              approval_reason="backfilled" if backfilled else None, reserve=reserve, first=True)
        else:
            award = None
        # the claim's decision travels with the COMMIT (the row is locked; the view is made from the object)
        s.expunge(claim)
        claim.status = "verified"
        claim.tier = tier if claim.kind == "tip" and reserve is None else None
        claim.decided_by_id = actor.user_id
        claim.decided_at = books.now()
        claim.decision_reason = (reason or "")[:2000]
        conn = s.connection()
        at_commit(s, _DECIDE_CLAIM[conn.dialect.name], {
            "status": claim.status, "tier": claim.tier, "by": claim.decided_by_id,
            "at": bind_time(conn, claim.decided_at), "reason": claim.decision_reason, "id": claim.id})
        view = _claim_view(s, actor, claim, award=award, known=True)
        if view.award_status != "pending_approval":  # else once the second officer approves
            _record_service_in(s, books, claim, actor.user_id)
        if view.award_status != "posted":  # (a posted award told the volunteer itself)
            waits = view.award_status == "pending_approval"
            _tell_in(s, books, claim.volunteer_id, f"claim:{claim.id}:verified", "申报已核实",
                     f"申报 {claim.id} 号已核实" + ("，奖励待第二位民警复核后到账。" if waits else "。"))
        return view

    return books.run(work)


def reject_claim(books: Books, actor: Actor, claim_id: int, *, reason: str) -> ClaimView:
    if not reason or not reason.strip():
        raise DomainError(errors.VALIDATION_FAILED, "a rejection gives its reason")

    def work(s: Session) -> ClaimView:
        claim = _lock_claim(s, claim_id)
        policy.require_officer_in_scope(s, actor, claim.org_unit_id)
        if claim.status != "submitted":
            raise DomainError(errors.CLAIM_ALREADY_DECIDED, status=claim.status)
        if actor.user_id in (claim.volunteer_id, claim.submitted_by_id):
            raise DomainError(errors.SELF_DEALING)
        claim.status = "rejected"
        claim.decided_by_id = actor.user_id
        claim.decided_at = books.now()
        claim.decision_reason = reason[:2000]
        s.flush()
        _tell_in(s, books, claim.volunteer_id, f"claim:{claim.id}:rejected", "申报未通过",
                 f"申报 {claim.id} 号未通过核实，原因见申报记录。")
        return _claim_view(s, actor, claim)

    return books.run(work)


def get_claim(books: Books, actor: Actor, claim_id: int) -> ClaimView:
    def work(s: Session) -> ClaimView:
        claim = s.get(Claim, claim_id)
        if claim is None or not _may_see_claim(s, actor, claim):
            raise DomainError(errors.CLAIM_NOT_FOUND, claim_id=claim_id)
        return _claim_view(s, actor, claim)

    return books.run(work, readonly=True)


def list_claims(books: Books, actor: Actor, *, status: str | None = None, limit: int = 100) -> list[ClaimView]:
    """Claims the actor may see: their own, those they submitted, and (officers) those in scope."""

    def work(s: Session) -> list[ClaimView]:
        conds = [Claim.volunteer_id == actor.user_id, Claim.submitted_by_id == actor.user_id]
        units = policy.visible_units(s, actor, ("auditor", "admin"))
        if units is None or units:
            conds.append(Claim.id.is_not(None) if units is None else Claim.org_unit_id.in_(units))
        q = select(Claim).where(or_(*conds))
        if status is not None:
            q = q.where(Claim.status == status)
        rows = s.scalars(q.order_by(Claim.id.desc()).limit(max(1, min(limit, 500)))).all()
        return [_claim_view(s, actor, c) for c in rows]

    return books.run(work, readonly=True)


# --- awards -----------------------------------------------------------------------------------------

def award_directly(books: Books, actor: Actor, *, volunteer_id: int, org_unit_id: int, amount: int,
                   reference: str, reason: str = "", key: str | None = None) -> AwardView:
    """An officer in scope awards beans for verified work outside a claim, citing a reference (a
    police case number, a duty roster)."""
    _check_amount(amount)
    if not reference or not reference.strip():
        raise DomainError(errors.VALIDATION_FAILED, "a direct award cites a reference")
    if key is not None and not 1 <= len(key) <= 60:
        raise DomainError(errors.VALIDATION_FAILED, "key is 1 to 60 characters")

    def work(s: Session) -> AwardView:
        community = community_of(s, org_unit_id)
        policy.require_officer_in_scope(s, actor, community)
        _require_volunteer(s, volunteer_id)
        # without a key, the award's own content is its key: the same officer awarding the same volunteer
        # the same beans for the same reference again (a double-submitted form, a retried call) is a replay
        k = f"award:direct:{actor.user_id}:{key}" if key else "award:direct:d:" + hashlib.sha256(json.dumps(
            [actor.user_id, volunteer_id, community, amount, reference.strip()]).encode()).hexdigest()[:40]
        award = _award_in(s, books, actor, volunteer_id=volunteer_id, community_id=community, amount=amount,
                          source="direct", key=k, reference=reference, reason=reason)
        return AwardView.of(award)

    return books.run(work)


def _lock_award(s: Session, award_id: int) -> Award:
    award = s.get(Award, award_id, with_for_update=True) if isinstance(award_id, int) else None
    if award is None:
        raise DomainError(errors.AWARD_NOT_FOUND, award_id=award_id)
    return award


def _second_officer(s: Session, actor: Actor, award: Award) -> None:
    policy.require_officer_in_scope(s, actor, award.org_unit_id)
    if award.status != "pending_approval":
        raise DomainError(errors.AWARD_NOT_PENDING, status=award.status)
    submitted_by = None
    if award.claim_id is not None:
        submitted_by = s.scalar(select(Claim.submitted_by_id).where(Claim.id == award.claim_id))
    if actor.user_id in (award.officer_id, award.volunteer_id, submitted_by):
        raise DomainError(errors.OWN_APPROVAL)


def approve_award(books: Books, actor: Actor, award_id: int, *, reason: str = "") -> AwardView:
    """A second officer in scope posts the held award (maker-checker)."""

    def work(s: Session) -> AwardView:
        award = _lock_award(s, award_id)
        _second_officer(s, actor, award)
        post_in(s, books, [post_hold(award.transfer_key, award.hold_key, actor=actor.ref,
                                     reason=(reason or "second approval")[:500], reference=award.reference)])
        award.status = "posted"
        award.approved_by_id = actor.user_id
        award.decided_at = books.now()
        subject = None
        if award.claim_id is not None:
            claim = s.get(Claim, award.claim_id)
            _record_service_in(s, books, claim, claim.decided_by_id or actor.user_id)
            subject = s.scalar(select(Reserve.reference).where(Reserve.id == claim.reserve_id)) if claim.reserve_id else None
        _tell_paid_in(s, books, award, subject)
        s.flush()
        return AwardView.of(award)

    return books.run(work)


def void_award(books: Books, actor: Actor, award_id: int, *, reason: str) -> AwardView:
    """A second officer in scope refuses the held award; the beans go back to the budget. A hold that
    timed out (approving it answers ``pending_transfer_expired``) is closed the same way."""
    if not reason or not reason.strip():
        raise DomainError(errors.VALIDATION_FAILED, "voiding an award gives its reason")

    def work(s: Session) -> AwardView:
        award = _lock_award(s, award_id)
        _second_officer(s, actor, award)
        held = s.scalar(select(Transfer).where(Transfer.transfer_key == award.hold_key))
        released = s.scalar(select(Transfer.id).where(Transfer.pending_id == held.id)) is not None
        reqs: list[TransferRequest] = []
        if not released:  # (a hold the expiry worker already released needs no transfer)
            if utc_from_db(held.expires_at) <= books.now():
                reqs.append(TransferRequest(f"{award.hold_key}:expire", "", "expire", pending_key=award.hold_key,
                                            actor=actor.ref, reason=reason[:500], reference=award.reference))
            else:
                reqs.append(void_hold(f"{award.hold_key}:void", award.hold_key, actor=actor.ref,
                                      reason=reason[:500], reference=award.reference))
        claim = s.get(Claim, award.claim_id) if award.claim_id is not None else None
        if claim is not None and claim.reserve_id is not None:  # the beans go back to the bounty they came from
            reserve = lock_in(s, claim.reserve_id)
            reserve.paid -= award.amount
            rehold_in(s, books, actor, reserve, reqs, why="bounty payment refused")
        elif reqs:
            post_in(s, books, reqs)
        award.status = "voided"  # approved_by_id stays empty: the voiding officer approved nothing
        award.decided_at = books.now()
        if claim is not None:
            claim.status = "rejected"
            claim.decision_reason = f"second approval refused: {reason}"[:2000]
        _tell_in(s, books, award.volunteer_id, f"award:{award.id}:voided", "奖励未获复核",
                 "第二位民警未批准这笔奖励" + (f"（申报 {award.claim_id} 号）。" if claim is not None else "。"))
        s.flush()
        return replace(AwardView.of(award), voided_by_id=actor.user_id)

    return books.run(work)


def reverse_award(books: Books, actor: Actor, award_id: int, *, reason: str, partial: bool = False) -> AwardView:
    """An officer in scope reverses a posted award (beans go back to the budget). If the volunteer has
    already spent some, this is refused (``beans_already_spent``) unless ``partial``: then what the
    wallet still holds, up to what remains of the award, is reversed."""
    if not reason or not reason.strip():
        raise DomainError(errors.VALIDATION_FAILED, "a reversal gives its reason")

    def work(s: Session) -> AwardView:
        award = _lock_award(s, award_id)
        policy.require_officer_in_scope(s, actor, award.org_unit_id)
        if award.status != "posted":
            raise DomainError(errors.AWARD_NOT_REVERSIBLE, status=award.status)
        remaining = award.amount - award.reversed_amount
        # read, not locked: the journal locks accounts in id order; a race ends in insufficient_funds
        wallet = s.get(Account, wallet_account_id(s, award.volunteer_id))
        available = max(0, wallet.available)
        amount = remaining
        if available < remaining:
            if not partial or available == 0:
                raise DomainError(errors.BEANS_ALREADY_SPENT, remaining=remaining, available=available)
            amount = available
        post_in(s, books, [reversal(f"{award.transfer_key}:rev:{award.reversed_amount}", award.transfer_key,
                                    amount, actor=actor.ref, reason=reason[:500], reference=award.reference)])
        award.reversed_amount += amount
        if award.reversed_amount == award.amount:
            award.status = "reversed"
        s.flush()
        return AwardView.of(award)

    return books.run(work)


def get_award(books: Books, actor: Actor, award_id: int) -> AwardView:
    def work(s: Session) -> AwardView:
        award = s.get(Award, award_id)
        if award is None or not _may_see_award(s, actor, award):
            raise DomainError(errors.AWARD_NOT_FOUND, award_id=award_id)
        return AwardView.of(award, s)

    return books.run(work, readonly=True)


def list_awards(books: Books, actor: Actor, *, status: str | None = None, limit: int = 100) -> list[AwardView]:
    def work(s: Session) -> list[AwardView]:
        conds = [Award.volunteer_id == actor.user_id, Award.officer_id == actor.user_id]
        units = policy.visible_units(s, actor, ("auditor", "admin", "fund_manager"))
        if units is None or units:
            conds.append(Award.id.is_not(None) if units is None else Award.org_unit_id.in_(units))
        q = select(Award).where(or_(*conds))
        if status is not None:
            q = q.where(Award.status == status)
        return [AwardView.of(a, s) for a in s.scalars(q.order_by(Award.id.desc()).limit(max(1, min(limit, 500))))]

    return books.run(work, readonly=True)


# --- the fund ---------------------------------------------------------------------------------------

def _fund_accounts(s: Session) -> tuple[int, int]:
    return account_by_code(s, "donations").id, account_by_code(s, "fund").id


def _post_keyed(s: Session, books: Books, req: TransferRequest) -> Any:
    """Post one transfer under a client's key: the key used before with other fields is the API's one
    idempotency mistake, ``idempotency_conflict`` (the journal's own name for it is an alias)."""
    try:
        [t] = post_in(s, books, [req])
    except DomainError as exc:
        if exc.code == errors.EXISTS_WITH_DIFFERENT_FIELDS.code:
            raise DomainError(errors.IDEMPOTENCY_CONFLICT, "This key was used with a different request.",
                              **exc.details) from exc
        raise
    return t


def record_donation(books: Books, actor: Actor, *, amount: int, donor: str, reference: str | None = None,
                    key: str | None = None) -> dict[str, Any]:
    """The fund manager records money given to the Gold Bean Fund, as beans (donations → fund)."""
    policy.require_role(actor, "fund_manager")
    _check_amount(amount)
    if not donor or not donor.strip():
        raise DomainError(errors.VALIDATION_FAILED, "name the donor (or 'anonymous')")

    def work(s: Session) -> dict[str, Any]:
        donations, fund = _fund_accounts(s)
        # without a key, a donation citing a reference (a receipt number) is keyed by it: sent twice, it counts once
        k = (f"donation:{key}" if key else f"donation:ref:{hashlib.sha256(reference.strip().encode()).hexdigest()[:40]}"
             if reference and reference.strip() else f"donation:{uuid.uuid4().hex}")
        t = _post_keyed(s, books, transfer(k, "donate", donations, fund, amount, actor=actor.ref,
                                           reason=f"donor: {donor}"[:500], reference=reference))
        return {"transfer_id": t.id, "transfer_key": t.transfer_key, "amount": t.amount, "replayed": t.replayed}

    return books.run(work)


def ensure_budget_account_in(s: Session, community_id: int) -> int:
    try:
        return budget_account_id(s, community_id)
    except DomainError:
        name = s.scalar(select(OrgUnit.name).where(OrgUnit.id == community_id)) or str(community_id)
        return open_account_in(s, f"budget:org:{community_id}", "budget", name=f"{name}社区预算",
                               owner_ref=f"org:{community_id}").id


def allocate_budget(books: Books, actor: Actor, *, org_unit_id: int, amount: int, reason: str = "",
                    key: str | None = None) -> dict[str, Any]:
    """The fund manager assigns beans from the fund to a community's budget; never more than the fund
    holds (``insufficient_funds``)."""
    policy.require_role(actor, "fund_manager")
    _check_amount(amount)

    def work(s: Session) -> dict[str, Any]:
        unit = _unit(s, org_unit_id)
        if unit.level != "community":
            raise DomainError(errors.NOT_A_COMMUNITY, org_unit_id=org_unit_id)
        _, fund = _fund_accounts(s)
        budget = ensure_budget_account_in(s, unit.id)
        # without a key, the same allocation (same fund manager, community, amount and reason) on the same local
        # day is a replay: a double-submitted call moves the beans once (send a key to allocate the same again)
        day = books.calendar.today(books.now()).isoformat()
        k = f"allocation:{key}" if key else "allocation:d:" + hashlib.sha256(json.dumps(
            [actor.user_id, unit.id, amount, reason or "", day]).encode()).hexdigest()[:40]
        t = _post_keyed(s, books, transfer(k, "allocate", fund, budget, amount, actor=actor.ref,
                                           reason=(reason or "budget allocation")[:500],
                                           reference=f"org:{unit.id}"))
        return {"transfer_id": t.id, "transfer_key": t.transfer_key, "amount": t.amount,
                "budget_account_id": budget, "replayed": t.replayed}

    return books.run(work)


def fund_position(books: Books, actor: Actor) -> dict[str, int]:
    """Where the donated beans are: fund, budgets, wallets, merchants, paid out (and in holds)."""
    policy.require_role(actor, "fund_manager", "auditor", "admin")

    def work(s: Session) -> dict[str, int]:
        rows = s.execute(select(Account.kind, func.sum(Account.credits_posted - Account.debits_posted))
                         .group_by(Account.kind)).all()
        by_kind = {k: int(v or 0) for k, v in rows}
        return {"donated": -by_kind.get("donations", 0), "fund": by_kind.get("fund", 0),
                "budgets": by_kind.get("budget", 0), "wallets": by_kind.get("wallet", 0),
                "merchants": by_kind.get("merchant", 0), "paid_out": by_kind.get("payout", 0),
                "expired": by_kind.get("expiry", 0), "adjustments": -by_kind.get("adjustment", 0)}

    return books.run(work, readonly=True)


def budget_balances(books: Books, actor: Actor) -> list[dict[str, Any]]:
    """Every community's budget: available and on hold (awards awaiting a second approval)."""
    policy.require_role(actor, "fund_manager", "auditor", "admin", "officer")

    def work(s: Session) -> list[dict[str, Any]]:
        units = policy.visible_units(s, actor, ("fund_manager", "auditor", "admin"))
        out = []
        for acc in s.scalars(select(Account).where(Account.kind == "budget").order_by(Account.id)):
            unit_id = int(acc.owner_ref.split(":", 1)[1]) if (acc.owner_ref or "").startswith("org:") else None
            if units is not None and unit_id not in units:
                continue
            out.append({"org_unit_id": unit_id, "account_id": acc.id, "name": acc.name, "balance": acc.balance,
                        "available": acc.available, "on_hold": acc.debits_pending})
        return out

    return books.run(work, readonly=True)


# --- leaderboards -----------------------------------------------------------------------------------

def _parse_month(books: Books, month: str | None) -> tuple[int, int]:
    if month is None:
        return books.calendar.month_of(books.now())
    try:
        y, m = month.split("-")
        year, mon = int(y), int(m)
        if not (2000 <= year <= 2999 and 1 <= mon <= 12) or len(month) != 7:
            raise ValueError
    except ValueError:
        raise DomainError(errors.VALIDATION_FAILED, "month is YYYY-MM") from None
    return year, mon


def volunteer_leaderboard(books: Books, actor: Actor, *, org_unit_id: int, month: str | None = None,
                          limit: int = 20) -> dict[str, Any]:
    """Volunteers of a street or community ranked by beans awarded (net of reversals) in a month.
    Shows the display name, or the pseudonym when the volunteer chose one; never ids or tip details."""

    def work(s: Session) -> dict[str, Any]:
        unit = _unit(s, org_unit_id)
        year, mon = _parse_month(books, month)
        start, end = books.calendar.month_bounds(year, mon)
        units = descendants(s, unit.id)
        beans = func.sum(Award.amount - Award.reversed_amount)
        rows = s.execute(
            select(User.display_name, User.pseudonym, User.show_pseudonym, beans.label("beans"),
                   func.count(Award.id).label("awards"))
            .join(User, User.id == Award.volunteer_id)
            .where(Award.status == "posted", Award.org_unit_id.in_(units), Award.awarded_at >= start,
                   Award.awarded_at < end)
            .group_by(Award.volunteer_id, User.display_name, User.pseudonym, User.show_pseudonym)
            .order_by(beans.desc(), func.count(Award.id).desc(), Award.volunteer_id)
            .limit(max(1, min(limit, 100)))).all()
        entries = []
        for i, r in enumerate(rows, 1):
            name = r.pseudonym if r.show_pseudonym and r.pseudonym else r.display_name
            entries.append({"rank": i, "name": name, "beans": int(r.beans or 0), "awards": int(r.awards)})
        _share_ranks(entries, lambda e: e["beans"])
        return {"org_unit_id": unit.id, "org_unit": unit.name, "month": f"{year:04d}-{mon:02d}", "entries": entries}

    return books.run(work, readonly=True)


def _share_ranks(entries: list[dict[str, Any]], score: Any) -> None:
    """Equal scores, equal rank ("1, 2, 2, 4"): ``entries`` are sorted best first and numbered 1..n."""
    for prev, entry in zip(entries, entries[1:]):
        if score(entry) == score(prev):
            entry["rank"] = prev["rank"]


def community_leaderboard(books: Books, actor: Actor, *, org_unit_id: int, month: str | None = None) -> dict[str, Any]:
    """The communities under a street office (or the district) ranked by verified activity in a month:
    beans awarded, verified claims and active volunteers."""

    def work(s: Session) -> dict[str, Any]:
        unit = _unit(s, org_unit_id)
        year, mon = _parse_month(books, month)
        start, end = books.calendar.month_bounds(year, mon)
        communities = s.execute(select(OrgUnit.id, OrgUnit.name).where(
            OrgUnit.level == "community", OrgUnit.id.in_(descendants(s, unit.id)))).all()
        ids = [c.id for c in communities]
        award_rows = {r.org_unit_id: r for r in s.execute(
            select(Award.org_unit_id, func.sum(Award.amount - Award.reversed_amount).label("beans"),
                   func.count(func.distinct(Award.volunteer_id)).label("volunteers"))
            .where(Award.status == "posted", Award.org_unit_id.in_(ids), Award.awarded_at >= start,
                   Award.awarded_at < end).group_by(Award.org_unit_id))}
        claim_rows = dict(s.execute(
            select(Claim.org_unit_id, func.count(Claim.id)).where(
                Claim.status == "verified", Claim.org_unit_id.in_(ids), Claim.decided_at >= start,
                Claim.decided_at < end).group_by(Claim.org_unit_id)).all())
        table = []
        for c in communities:
            r = award_rows.get(c.id)
            table.append({"org_unit_id": c.id, "name": c.name, "beans": int(r.beans) if r else 0,
                          "verified_claims": int(claim_rows.get(c.id, 0)),
                          "volunteers": int(r.volunteers) if r else 0})
        table.sort(key=lambda e: (-e["beans"], -e["verified_claims"], e["org_unit_id"]))
        for i, e in enumerate(table, 1):
            e["rank"] = i
        _share_ranks(table, lambda e: (e["beans"], e["verified_claims"]))
        return {"org_unit_id": unit.id, "org_unit": unit.name, "month": f"{year:04d}-{mon:02d}", "entries": table}

    return books.run(work, readonly=True)


# --- bulk import ------------------------------------------------------------------------------------

IMPORT_COLUMNS = ("key", "username", "community", "amount", "hours", "reference", "reason")


@dataclass(frozen=True)
class ImportLine:
    row: int
    key: str
    outcome: str  # "award", "needs_approval", "already_imported", "error"
    username: str
    community: str
    amount: int | None
    award_id: int | None = None
    error: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class ImportReport:
    committed: bool
    lines: tuple[ImportLine, ...]

    @property
    def ok(self) -> bool:
        return not any(line.outcome == "error" for line in self.lines)

    @property
    def total(self) -> int:
        return sum(line.amount or 0 for line in self.lines if line.outcome in ("award", "needs_approval"))


class _DryRun(Exception):
    def __init__(self, report: ImportReport) -> None:
        super().__init__("dry run")
        self.report = report


def parse_award_csv(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = {"username", "community", "reference"} - set(reader.fieldnames or ())
    if missing or not ({"amount", "hours"} & set(reader.fieldnames or ())):
        raise DomainError(errors.VALIDATION_FAILED,
                          "columns: username, community, amount or hours, reference[, reason, key]")
    return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]


def _row_key(row: Mapping[str, str]) -> str:
    if row.get("key"):
        return row["key"][:60]
    basis = "|".join(row.get(c, "") for c in ("username", "community", "amount", "hours", "reference"))
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def import_awards(books: Books, actor: Actor, rows: Iterable[Mapping[str, str]], *, commit: bool) -> ImportReport:
    """Award many volunteers at once (e.g. a night's patrol roster): all rows or none.

    Each row's key (the ``key`` column, or a digest of username, community, amount/hours and reference)
    becomes the award's journal key, so importing the same file twice awards once. Without ``commit``
    the whole import runs and is rolled back: the report says exactly what would happen."""
    policy.require_role(actor, "officer")
    rules = rules_of(books)
    rows = list(rows)

    def work(s: Session) -> ImportReport:
        lines: list[ImportLine] = []
        for i, row in enumerate(rows, 1):
            key = _row_key(row)
            username, community_code = row.get("username", ""), row.get("community", "")
            amount: int | None = None
            try:
                with s.begin_nested():
                    if row.get("amount"):
                        amount = int(row["amount"])
                    elif row.get("hours"):
                        minutes = int(round(float(row["hours"]) * 60))
                        amount = min(rules.patrol_cap_beans, minutes * rules.patrol_beans_per_hour // 60)
                    else:
                        raise DomainError(errors.INVALID_AMOUNT, "give amount or hours")
                    existing = s.scalar(select(Award).where(Award.import_key == key))
                    if existing is not None:
                        lines.append(ImportLine(i, key, "already_imported", username, community_code,
                                                existing.amount, existing.id))
                        continue
                    user_id = s.scalar(select(User.id).where(User.username == username))
                    unit_id = s.scalar(select(OrgUnit.id).where(OrgUnit.code == community_code))
                    if unit_id is None:
                        raise DomainError(errors.ORG_UNIT_NOT_FOUND, f"no org unit {community_code!r}")
                    community = community_of(s, unit_id)
                    policy.require_officer_in_scope(s, actor, community)
                    _require_volunteer(s, user_id)
                    award = _award_in(s, books, actor, volunteer_id=user_id, community_id=community,
                                      amount=amount, source="import", key=f"award:import:{key}",
                                      reference=row.get("reference") or "", reason=row.get("reason") or "",
                                      import_key=key)
                    lines.append(ImportLine(i, key, "needs_approval" if award.status == "pending_approval"
                                            else "award", username, community_code, amount, award.id))
            except ValueError:
                lines.append(ImportLine(i, key, "error", username, community_code, None, None,
                                        "validation_failed", "amount must be a whole number, hours a number"))
            except DomainError as exc:
                lines.append(ImportLine(i, key, "error", username, community_code, amount, None, exc.code,
                                        exc.message))
        report = ImportReport(commit, tuple(lines))
        if not report.ok:
            raise _DryRun(ImportReport(False, report.lines))
        if not commit:
            raise _DryRun(report)
        return report

    try:
        return books.run(work)
    except _DryRun as dry:
        return dry.report
