"""At the post: the leader's rotating code, check-in and check-out with proof of presence, attendance paid
once, no-shows, the coverage board and the volunteer's service records.

Paying exactly once: check-out locks the sign-up row, so of two check-outs at once the second waits and
then finds ``checked_out`` (``already_checked_out``); the award's journal key ``patrol:signup:<id>`` is
unique in the journal and on the sign-up, and the service record's ``source_ref`` is unique, so even a
retried payment writes nothing twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import Actor, budget_account_id, scope_units, wallet_account_id
from ledger.access.models import OrgUnit, User
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.infra.idempotency import insert_if_new
from ledger.infra.settings import Calendar
from ledger.journal.accounts import post_in
from ledger.journal.posting import transfer
from ledger.patrols import codes
from ledger.patrols.core import (
    SignupView,
    community_of,
    get_post_in,
    get_shift_and_post_in,
    get_shift_in,
    service_day,
)
from ledger.patrols.models import PatrolPost, PatrolShift, PatrolSignup, UsedLeaderCode
from ledger.patrols.rules import (
    PatrolRules,
    beans_for,
    round_minutes,
    rules_of,
)
from ledger.service import record_in

RULE_ACTOR = "rule:patrol"


@dataclass(frozen=True)
class Proof:
    """What the phone sent: the leader's code, or the post sign with a location."""

    code: str | None = None
    post_sign: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_m: float | None = None


# --- the leader's rotating code ---------------------------------------------------------------------------

def _current_shift_q(post_id: int, now: dt.datetime, rules: PatrolRules, leader_id: int | None) -> Any:
    """The earliest open shift at the post whose check-in or check-out window is open now."""
    q = select(PatrolShift.id).where(
        PatrolShift.post_id == post_id, PatrolShift.status == "open",
        PatrolShift.starts_at <= now + dt.timedelta(minutes=rules.early_checkin_minutes),
        PatrolShift.ends_at >= now - dt.timedelta(minutes=rules.grace_minutes))
    if leader_id is not None:
        q = q.where(PatrolShift.leader_id == leader_id)
    return q.order_by(PatrolShift.starts_at).limit(1)


def leader_code(books: Books, actor: Actor, post_id: int) -> dict[str, Any]:
    """A fresh rotating code for the shift the actor leads at this post now (an officer in scope may show
    one for any current shift there). It lives ``leader_code_ttl_s`` seconds and serves one volunteer.

    The leader's phone asks for one per volunteer at a shift change, so the leader's own case is one
    statement without a transaction (a read); only an officer's needs the post and the scope."""
    rules = rules_of(books)
    now = books.now()
    shift_id = books.run_core(lambda c: c.scalar(_current_shift_q(post_id, now, rules, actor.user_id)),
                              readonly=True) if type(post_id) is int and 0 < post_id < 2**63 else None

    def officer(s: Session) -> int:
        post = get_post_in(s, post_id)
        policy.require_officer_in_scope(s, actor, post.org_unit_id)
        found = s.scalar(_current_shift_q(post.id, now, rules, None))
        if found is None:
            raise DomainError(errors.OUTSIDE_SHIFT_WINDOW, "no shift at this post now")
        return found

    if shift_id is None:
        shift_id = books.run(officer, readonly=True)
    code = codes.issue_leader_code(books, post_id, shift_id, actor.user_id, rules.leader_code_ttl_s)
    return {"post_id": post_id, "shift_id": shift_id, "code": code.code, "expires_in": code.expires_in,
            "exp": code.exp, "jti": code.jti}


def leader_code_used(books: Books, jti: Any) -> bool:
    """Whether a phone has used the leader's code with this id: the leader's page then shows a fresh one at
    once, so that members queueing at the post scan one after another without waiting for the rotation
    (a code serves one phone). One indexed read, without a transaction."""
    if not isinstance(jti, str) or not 1 <= len(jti) <= 64:
        return False
    table = UsedLeaderCode.__table__
    return books.run_core(lambda c: c.scalar(select(table.c.id).where(table.c.jti == jti)), readonly=True) is not None


# --- proofs of presence -----------------------------------------------------------------------------------

def _prove(s: Session, books: Books, rules: PatrolRules, shift: PatrolShift, post: PatrolPost, volunteer_id: int,
           proof: Proof) -> tuple[str, int | None]:
    """The proof's kind and, for a location, the distance to the post in whole metres; or a refusal."""
    if proof.code:
        claims = codes.verify(books, proof.code, codes.LEADER_TYP, max_ttl_s=rules.leader_code_ttl_s)
        if claims["sub"] != str(post.id) or claims.get("shift") != shift.id:
            raise DomainError(errors.WRONG_POST)
        if claims.get("leader") == volunteer_id:
            raise DomainError(errors.SELF_DEALING, "a leader checks in by the post sign, not their own code")
        _spend_leader_code(s, books, claims, shift.id, volunteer_id)
        return "leader_code", None
    if proof.post_sign:
        claims = codes.verify(books, proof.post_sign, codes.SIGN_TYP)
        if claims["sub"] != str(post.id):
            raise DomainError(errors.WRONG_POST)
        if claims.get("serial") != post.sign_serial:
            raise DomainError(errors.SIGN_REPRINTED)
        return "post_sign", _distance(rules, post, proof)
    raise DomainError(errors.PROOF_REQUIRED)


def _distance(rules: PatrolRules, post: PatrolPost, proof: Proof) -> int:
    lat, lon, acc = proof.latitude, proof.longitude, proof.accuracy_m
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon, acc)):
        raise DomainError(errors.PROOF_REQUIRED, "the post sign needs the phone's location and its accuracy")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and acc >= 0):
        raise DomainError(errors.VALIDATION_FAILED, "latitude -90..90, longitude -180..180, accuracy >= 0")
    if acc > rules.max_accuracy_m:
        raise DomainError(errors.LOCATION_TOO_VAGUE, max_accuracy_m=rules.max_accuracy_m)
    metres = codes.distance_m(lat, lon, post.latitude_e6 / 1e6, post.longitude_e6 / 1e6)
    if metres > post.radius_m + min(acc, rules.accuracy_slack_m):
        raise DomainError(errors.OUTSIDE_POST_RADIUS, radius_m=post.radius_m)
    return round(metres)


def _spend_leader_code(s: Session, books: Books, claims: dict[str, Any], shift_id: int, volunteer_id: int) -> None:
    """The code's first phone owns it: ``INSERT ... ON CONFLICT DO NOTHING`` on the unique ``jti`` (one round
    trip; the same code from two phones at once: the second waits for the first's commit, then finds it)."""
    table = UsedLeaderCode.__table__
    inserted = s.execute(insert_if_new(s.get_bind().dialect.name, table, ("jti",)), {
        "jti": claims["jti"], "shift_id": shift_id, "volunteer_id": volunteer_id, "used_at": books.now(),
        "expires_at": dt.datetime.fromtimestamp(claims["exp"], dt.timezone.utc)}).scalar()
    if inserted is None:
        owner = s.scalar(select(table.c.volunteer_id).where(table.c.jti == claims["jti"]))
        if owner != volunteer_id:  # the same volunteer may use their code again (a retried request)
            raise DomainError(errors.LEADER_CODE_REPLAYED)


# --- check-in and check-out -------------------------------------------------------------------------------

def _subject(s: Session, actor: Actor, shift: PatrolShift, volunteer_id: int | None) -> tuple[int, bool]:
    """Whose attendance this is, and whether the leader records it for a member without a phone."""
    if volunteer_id is None or volunteer_id == actor.user_id:
        return actor.user_id, False
    if shift.leader_id != actor.user_id:
        raise DomainError(errors.PERMISSION_DENIED, "only the shift's leader checks members in")
    if type(volunteer_id) is not int or not 0 < volunteer_id < 2**63:
        raise DomainError(errors.NOT_SIGNED_UP)
    return volunteer_id, True


def _lock_signup(s: Session, shift_id: int, volunteer_id: Any) -> tuple[PatrolSignup, str]:
    """The sign-up row, locked, and the volunteer's display name (one round trip)."""
    found = s.execute(select(PatrolSignup, User.display_name).join(User, User.id == PatrolSignup.volunteer_id)
                      .where(PatrolSignup.shift_id == shift_id, PatrolSignup.volunteer_id == volunteer_id)
                      .with_for_update(of=PatrolSignup)).first()
    if found is None or found[0].status == "withdrawn":
        raise DomainError(errors.NOT_SIGNED_UP)
    return found[0], found[1]


def check_in(books: Books, actor: Actor, shift_id: int, proof: Proof, *, volunteer_id: int | None = None) -> SignupView:
    """The volunteer is at the post: from ``early_checkin_minutes`` before the start until the end."""
    rules = rules_of(books)

    def work(s: Session) -> SignupView:
        shift, post = get_shift_and_post_in(s, shift_id)
        who, by_leader = _subject(s, actor, shift, volunteer_id)
        row, name = _lock_signup(s, shift.id, who)
        if shift.status != "open":
            raise DomainError(errors.SHIFT_CANCELLED)
        if row.status == "pending":
            raise DomainError(errors.SIGNUP_PENDING)
        if row.status == "checked_in":
            raise DomainError(errors.ALREADY_CHECKED_IN)
        if row.status in ("checked_out", "no_show"):
            raise DomainError(errors.ALREADY_CHECKED_OUT if row.status == "checked_out" else errors.OUTSIDE_SHIFT_WINDOW)
        now = books.now()
        start, end = utc_from_db(shift.starts_at), utc_from_db(shift.ends_at)
        if not start - dt.timedelta(minutes=rules.early_checkin_minutes) <= now < end:
            raise DomainError(errors.OUTSIDE_SHIFT_WINDOW, starts_at=start.isoformat(), ends_at=end.isoformat())
        kind, metres = ("leader_manual", None) if by_leader else _prove(s, books, rules, shift, post, who, proof)
        row.status, row.checked_in_at, row.check_in_proof, row.check_in_distance_m = "checked_in", now, kind, metres
        row.recorded_by_id = actor.user_id if by_leader else None
        s.flush()
        return SignupView.of(s, row, name)

    return books.run(work)


def check_out(books: Books, actor: Actor, shift_id: int, proof: Proof, *,
              volunteer_id: int | None = None) -> SignupView:
    """The volunteer leaves: the service time is counted and rounded, and the beans are paid at once
    (``rule:patrol``) or held for an officer (see ``rules``)."""
    rules = rules_of(books)

    def work(s: Session) -> SignupView:
        shift, post = get_shift_and_post_in(s, shift_id)
        who, by_leader = _subject(s, actor, shift, volunteer_id)
        row, name = _lock_signup(s, shift.id, who)  # a second check-out waits here, then sees checked_out
        if row.status == "checked_out":
            raise DomainError(errors.ALREADY_CHECKED_OUT)
        if row.status != "checked_in":
            raise DomainError(errors.NOT_CHECKED_IN)
        now = books.now()
        end = utc_from_db(shift.ends_at)
        if now > end + dt.timedelta(minutes=rules.grace_minutes):
            raise DomainError(errors.OUTSIDE_SHIFT_WINDOW, "too late to check out; an officer closes the attendance")
        kind, metres = ("leader_manual", None) if by_leader else _prove(s, books, rules, shift, post, who, proof)
        row.checked_out_at, row.check_out_proof, row.check_out_distance_m = now, kind, metres
        if by_leader:
            row.recorded_by_id = actor.user_id
        _close(s, books, rules, shift, post, row, now)
        return SignupView.of(s, row, name)

    return books.run(work)


def _close(s: Session, books: Books, rules: PatrolRules, shift: PatrolShift, post: PatrolPost, row: PatrolSignup,
           out_at: dt.datetime, hold: str | None = None) -> None:
    """Count the time, then pay it or hold it for an officer."""
    start, end = utc_from_db(shift.starts_at), utc_from_db(shift.ends_at)
    counted_end = min(out_at, end + dt.timedelta(minutes=rules.grace_minutes))
    counted_start = max(utc_from_db(row.checked_in_at), start)
    seconds = int((counted_end - counted_start).total_seconds())
    row.status = "checked_out"
    row.minutes = min(round_minutes(seconds, rules.rounding_minutes),
                      int((end - start).total_seconds()) // 60 + rules.grace_minutes)
    row.beans = beans_for(row.minutes, shift.beans_per_hour)
    reason = hold or _hold_reason(s, rules, shift, row, books.calendar)
    if reason is None:
        reason = _pay(s, books, shift, post, row, RULE_ACTOR, None)
    if reason is not None:
        row.attendance, row.hold_reason = "awaiting_verification", reason
    s.flush()


def _hold_reason(s: Session, rules: PatrolRules, shift: PatrolShift, row: PatrolSignup,
                 calendar: Calendar) -> str | None:
    if "post_sign" in (row.check_in_proof, row.check_out_proof):
        return "location_only"
    if row.minutes > rules.hold_minutes_over:
        return "long_time"
    if row.beans > rules.hold_beans_over:
        return "many_beans"
    lo = dt.datetime.combine(service_day(shift.starts_at, calendar), dt.time(), calendar.tz)
    that_day = int(s.scalar(select(func.coalesce(func.sum(PatrolSignup.beans), 0)).join(
        PatrolShift, PatrolShift.id == PatrolSignup.shift_id).where(
        PatrolSignup.volunteer_id == row.volunteer_id, PatrolSignup.id != row.id,
        PatrolSignup.attendance.in_(("paid", "awaiting_verification")),
        PatrolShift.starts_at >= lo, PatrolShift.starts_at < lo + dt.timedelta(days=1)))
        or 0)
    if that_day + row.beans > rules.volunteer_daily_beans:
        return "daily_limit"
    return None


def _pay(s: Session, books: Books, shift: PatrolShift, post: PatrolPost, row: PatrolSignup, actor_ref: str,
         verifier_id: int | None) -> str | None:
    """Record the service time and credit the beans from the community budget, once. Returns a hold reason
    instead if the budget cannot pay now (the attendance then waits for an officer)."""
    community = community_of(s, post.org_unit_id)
    key = f"patrol:signup:{row.id}"
    if row.beans:
        try:
            with s.begin_nested():
                post_in(s, books, [transfer(key, "award", budget_account_id(s, community),
                                            wallet_account_id(s, row.volunteer_id), row.beans, actor=actor_ref,
                                            reason=f"patrol {post.name}"[:500], reference=f"patrol_shift:{shift.id}")])
        except DomainError as exc:
            if exc.code in (errors.INSUFFICIENT_FUNDS.code, errors.ACCOUNT_NOT_FOUND.code,
                            errors.ACCOUNT_FROZEN.code):
                return "budget_short"
            raise
        row.transfer_key = key
    if row.minutes:  # the 志愿服务记录, apart from the beans (ledger.service)
        record_in(s, volunteer_id=row.volunteer_id, activity="patrol", source_ref=f"patrol_signup:{row.id}",
                  org_unit_id=community, description=f"治安巡逻 · {post.name}",
                  service_day=service_day(shift.starts_at, books.calendar), minutes=row.minutes,
                  verified_by=actor_ref, verified_at=books.now())
    row.attendance = "paid" if row.beans else "recorded"
    row.hold_reason = None
    row.verified_by_id = verifier_id
    row.verified_at = books.now()
    return None


# --- officers: verify, refuse, no-shows ---------------------------------------------------------------------

def _signup_for_officer(s: Session, actor: Actor, signup_id: Any) -> tuple[PatrolSignup, PatrolShift, PatrolPost]:
    row = s.get(PatrolSignup, signup_id, with_for_update=True) if type(signup_id) is int else None
    if row is None:
        raise DomainError(errors.NOT_FOUND_ERR, signup_id=signup_id)
    shift = s.get(PatrolShift, row.shift_id)
    post = s.get(PatrolPost, shift.post_id)
    policy.require_officer_in_scope(s, actor, post.org_unit_id)
    policy.require_not_self(actor, row.volunteer_id)
    return row, shift, post


def verify_attendance(books: Books, actor: Actor, signup_id: int, *, minutes: int | None = None) -> SignupView:
    """An officer in scope accepts a held attendance (optionally correcting the time down): paid once."""

    def work(s: Session) -> SignupView:
        row, shift, post = _signup_for_officer(s, actor, signup_id)
        if row.attendance != "awaiting_verification":
            raise DomainError(errors.ATTENDANCE_NOT_AWAITING, attendance=row.attendance)
        if minutes is not None:
            if type(minutes) is not int or not 0 <= minutes <= (row.minutes or 0):
                raise DomainError(errors.VALIDATION_FAILED, "an officer may only lower the counted minutes")
            row.minutes, row.beans = minutes, beans_for(minutes, shift.beans_per_hour)
        reason = _pay(s, books, shift, post, row, actor.ref, actor.user_id)
        if reason is not None:
            raise DomainError(errors.INSUFFICIENT_FUNDS, "the community budget cannot pay this now")
        s.flush()
        return SignupView.of(s, row)

    return books.run(work)


def refuse_attendance(books: Books, actor: Actor, signup_id: int, *, reason: str) -> SignupView:
    if not reason or not reason.strip():
        raise DomainError(errors.VALIDATION_FAILED, "a refusal gives its reason")

    def work(s: Session) -> SignupView:
        row, _shift, _post = _signup_for_officer(s, actor, signup_id)
        if row.attendance != "awaiting_verification":
            raise DomainError(errors.ATTENDANCE_NOT_AWAITING, attendance=row.attendance)
        row.attendance, row.hold_reason = "refused", reason.strip()[:40]
        row.verified_by_id, row.verified_at = actor.user_id, books.now()
        s.flush()
        return SignupView.of(s, row)

    return books.run(work)


def close_shift(books: Books, actor: Actor, shift_id: int) -> list[SignupView]:
    """After the shift's end plus grace, an officer in scope records the no-shows (signed up, never came) and
    closes who never checked out at the end plus grace (held for verification: no proof of leaving)."""
    rules = rules_of(books)

    def work(s: Session) -> list[SignupView]:
        shift = get_shift_in(s, shift_id, lock=True)
        post = s.get(PatrolPost, shift.post_id)
        policy.require_officer_in_scope(s, actor, post.org_unit_id)
        closing = utc_from_db(shift.ends_at) + dt.timedelta(minutes=rules.grace_minutes)
        if books.now() < closing:
            raise DomainError(errors.OUTSIDE_SHIFT_WINDOW, "the shift is not over yet")
        rows = s.scalars(select(PatrolSignup).where(PatrolSignup.shift_id == shift.id).order_by(PatrolSignup.id)
                         .with_for_update()).all()
        for row in rows:
            if row.status in ("pending", "signed_up"):
                row.status = "no_show"
            elif row.status == "checked_in":
                row.checked_out_at = closing
                _close(s, books, rules, shift, post, row, closing, hold="no_check_out")
        s.flush()
        return [SignupView.of(s, r) for r in rows]

    return books.run(work)


def awaiting(books: Books, actor: Actor, *, limit: int = 200) -> list[SignupView]:
    """Attendances held for an officer, in the actor's scope."""

    def work(s: Session) -> list[SignupView]:
        q = (select(PatrolSignup).join(PatrolShift, PatrolShift.id == PatrolSignup.shift_id)
             .join(PatrolPost, PatrolPost.id == PatrolShift.post_id)
             .where(PatrolSignup.attendance == "awaiting_verification").order_by(PatrolSignup.id))
        units = scope_units(s, actor, "officer") if actor.has_role("officer") else set()
        if units is not None:
            q = q.where(PatrolPost.org_unit_id.in_(units))
        return [SignupView.of(s, r) for r in s.scalars(q.limit(max(1, min(limit, 500))))]

    return books.run(work, readonly=True)


# --- the coverage board -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PostCoverage:
    post_id: int
    name: str
    org_unit_id: int
    org_unit: str
    latitude: float
    longitude: float
    radius_m: int
    state: str  # covered, short, uncovered, no_shift
    shift_id: int | None
    needed: int
    present: int
    on_post: tuple[str, ...]
    ends_at: dt.datetime | None
    # signed up, not checked in, ``late_after_minutes`` after the start: whom to phone
    late: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def coverage(books: Books, actor: Actor) -> list[PostCoverage]:
    """Every post in the actor's scope with its state now: covered (as many checked in as needed), short,
    uncovered (a shift and nobody there) or no_shift."""

    def work(s: Session) -> list[PostCoverage]:
        now = books.now()
        units = scope_units(s, actor, "officer") if actor.has_role("officer") else None
        if units is None and not any(actor.is_district_wide(r) for r in ("officer", "auditor", "admin")):
            raise DomainError(errors.PERMISSION_DENIED, required_roles=["officer"])
        q = select(PatrolPost).where(PatrolPost.active.is_(True)).order_by(PatrolPost.id)
        if units is not None:
            q = q.where(PatrolPost.org_unit_id.in_(units))
        out = []
        for post in s.scalars(q.limit(2000)):
            if not policy.may_see_board(s, actor, post.org_unit_id):
                continue
            out.append(_post_state(s, post, now, rules_of(books)))
        return out

    return books.run(work, readonly=True)


def _names(s: Session, shift_ids: list[int], status: str) -> tuple[str, ...]:
    if not shift_ids:
        return ()
    return tuple(s.scalars(select(User.display_name).join(PatrolSignup, PatrolSignup.volunteer_id == User.id).where(
        PatrolSignup.shift_id.in_(shift_ids), PatrolSignup.status == status).order_by(User.display_name)))


def _post_state(s: Session, post: PatrolPost, now: dt.datetime, rules: PatrolRules) -> PostCoverage:
    shifts = s.scalars(select(PatrolShift).where(PatrolShift.post_id == post.id, PatrolShift.status == "open",
                                                 PatrolShift.starts_at <= now, PatrolShift.ends_at > now)).all()
    needed = sum(t.needed for t in shifts)
    names = _names(s, [t.id for t in shifts], "checked_in")
    late = _names(s, [t.id for t in shifts if utc_from_db(t.starts_at) + dt.timedelta(
        minutes=rules.late_after_minutes) <= now], "signed_up")
    if not shifts:
        state = "no_shift"
    elif not names:
        state = "uncovered"
    else:
        state = "covered" if len(names) >= needed else "short"
    unit = s.scalar(select(OrgUnit.name).where(OrgUnit.id == post.org_unit_id)) or ""
    return PostCoverage(post.id, post.name, post.org_unit_id, unit, post.latitude_e6 / 1e6, post.longitude_e6 / 1e6,
                        post.radius_m, state, shifts[0].id if shifts else None, needed, len(names), names,
                        utc_from_db(max(t.ends_at for t in shifts)) if shifts else None, late)
