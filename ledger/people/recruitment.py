"""Recruitment (志愿者征集): a community's call for volunteers, a resident's own sign-up, and the staff's
approval, which opens the volunteer's account and wallet (and pays an optional starter award from the
community budget) in one transaction.

Abuse: sign-ups are rate-limited per address and per mobile number, a mobile number already registered or
already waiting is refused, and each sign-up answers a plain question in words (no image puzzle).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy, security
from ledger.access.identity import (
    Actor,
    budget_account_id,
    create_user_in,
    grant_role_in,
    hash_password,
    scope_units,
    wallet_account_id,
)
from ledger.access.masking import mask_phone
from ledger.access.models import OrgUnit, User
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.journal.accounts import post_in
from ledger.journal.posting import transfer
from ledger.people.models import Consent, RecruitmentCall, Signup, SignupChallenge

PRIVACY_NOTICE_VERSION = "2026-11"  # docs/people.md holds the text of each version
PHONE_RE = re.compile(r"1[3-9]\d{9}")
MIN_PASSWORD = 8
GUARDIAN_AGE = 14  # under this, a guardian consents
ADULT_AGE = 18
CHALLENGE_TTL = dt.timedelta(minutes=10)
_DIGITS = "零一二三四五六七八九"


@dataclass(frozen=True)
class CallView:
    id: int
    org_unit_id: int
    community: str
    title: str
    description: str
    needed: int
    min_age: int
    training_required: bool
    insurance_required: bool
    starter_beans: int
    closes_at: dt.datetime
    status: str
    approved: int


@dataclass(frozen=True)
class SignupView:
    id: int
    status: str
    community_id: int
    building_id: int | None
    call_id: int | None
    name: str
    phone: str  # masked (138****5678): staff read the desk; the number itself stays in the row
    minor: bool
    guardian_consent: bool
    created_at: dt.datetime
    decision_reason: str | None
    user_id: int | None
    username: str | None


# --- calls -----------------------------------------------------------------------------------------------

def _community(s: Session, org_unit_id: Any) -> OrgUnit:
    unit = s.get(OrgUnit, org_unit_id) if type(org_unit_id) is int else None
    if unit is None:
        raise DomainError(errors.ORG_UNIT_NOT_FOUND, org_unit_id=org_unit_id)
    if unit.level != "community":
        raise DomainError(errors.NOT_A_COMMUNITY, org_unit_id=org_unit_id)
    return unit


def _call_view(s: Session, call: RecruitmentCall) -> CallView:
    approved = s.scalar(select(func.count()).select_from(Signup).where(Signup.call_id == call.id,
                                                                       Signup.status == "approved")) or 0
    community = s.get(OrgUnit, call.org_unit_id)
    return CallView(call.id, call.org_unit_id, community.name if community else "", call.title, call.description,
                    call.needed, call.min_age, call.training_required, call.insurance_required, call.starter_beans,
                    utc_from_db(call.closes_at), call.status, int(approved))


def publish_call(books: Books, actor: Actor, *, org_unit_id: int, title: str, needed: int, closes_at: dt.datetime,
                 description: str = "", min_age: int = GUARDIAN_AGE, training_required: bool = False,
                 insurance_required: bool = False, starter_beans: int = 0) -> CallView:
    """A community's call for volunteers, open at once until ``closes_at``."""
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200 or len(description or "") > 4000:
        raise DomainError(errors.VALIDATION_FAILED, "a title of 1 to 200 characters, a description up to 4000")
    if type(needed) is not int or not 1 <= needed <= 10_000 or type(min_age) is not int or not 0 <= min_age <= 100:
        raise DomainError(errors.VALIDATION_FAILED, "needed is 1 to 10000, min_age 0 to 100")
    if type(starter_beans) is not int or not 0 <= starter_beans <= 100:
        raise DomainError(errors.INVALID_AMOUNT, "a starter award is 0 to 100 beans")
    if not isinstance(closes_at, dt.datetime) or closes_at.tzinfo is None or closes_at <= books.now():
        raise DomainError(errors.VALIDATION_FAILED, "closes_at is a future time with a time zone")

    def work(s: Session) -> CallView:
        _community(s, org_unit_id)
        policy.require_officer_in_scope(s, actor, org_unit_id)
        call = RecruitmentCall(org_unit_id=org_unit_id, title=title.strip(), description=description or "",
                               needed=needed, min_age=min_age, training_required=bool(training_required),
                               insurance_required=bool(insurance_required), starter_beans=starter_beans,
                               closes_at=closes_at, status="open", created_by_id=actor.user_id)
        s.add(call)
        s.flush()
        return _call_view(s, call)

    return books.run(work)


def close_call(books: Books, actor: Actor, call_id: int) -> CallView:
    def work(s: Session) -> CallView:
        call = s.get(RecruitmentCall, call_id, with_for_update=True) if type(call_id) is int else None
        if call is None:
            raise DomainError(errors.CALL_NOT_FOUND, call_id=call_id)
        policy.require_officer_in_scope(s, actor, call.org_unit_id)
        call.status = "closed"
        return _call_view(s, call)

    return books.run(work)


def _is_open(books: Books, call: RecruitmentCall) -> bool:
    return call.status == "open" and utc_from_db(call.closes_at) > books.now()


def open_calls(books: Books) -> list[CallView]:
    """Every open call, newest first: public (the front page shows them)."""
    def work(s: Session) -> list[CallView]:
        rows = s.scalars(select(RecruitmentCall).where(RecruitmentCall.status == "open")
                         .order_by(RecruitmentCall.id.desc()).limit(200)).all()
        return [_call_view(s, c) for c in rows if _is_open(books, c)]

    return books.run(work, readonly=True)


def get_call(books: Books, call_id: int) -> CallView:
    """One call, open or closed (its shareable page and QR code keep working after it closes)."""
    def work(s: Session) -> CallView:
        call = s.get(RecruitmentCall, call_id) if type(call_id) is int else None
        if call is None:
            raise DomainError(errors.CALL_NOT_FOUND, call_id=call_id)
        return _call_view(s, call)

    return books.run(work, readonly=True)


def places(books: Books) -> list[dict[str, Any]]:
    """Every community with its groups and buildings, for the sign-up form (public: names of places only)."""
    def work(s: Session) -> list[dict[str, Any]]:
        units = s.execute(select(OrgUnit.id, OrgUnit.name, OrgUnit.level, OrgUnit.parent_id)
                          .order_by(OrgUnit.id)).all()
        by_parent: dict[int | None, list[Any]] = {}
        for u in units:
            by_parent.setdefault(u.parent_id, []).append(u)
        out = []
        for c in (u for u in units if u.level == "community"):
            inside = []
            for child in by_parent.get(c.id, []):
                inside.append({"id": child.id, "name": child.name})
                inside += [{"id": b.id, "name": f"{child.name} {b.name}"} for b in by_parent.get(child.id, [])]
            out.append({"id": c.id, "name": c.name, "units": inside})
        return out

    return books.run(work, readonly=True)


# --- the challenge -------------------------------------------------------------------------------------------

def new_challenge(books: Books) -> dict[str, str]:
    """A small sum in Chinese words (``三加四等于几？``), answered in digits with the sign-up."""
    a, b = secrets.randbelow(9) + 1, secrets.randbelow(9) + 1
    challenge_id = secrets.token_hex(16)

    def work(s: Session) -> None:
        s.add(SignupChallenge(id=challenge_id, answer=str(a + b), expires_at=books.now() + CHALLENGE_TTL,
                              used=False))

    books.run(work)
    return {"challenge_id": challenge_id, "question": f"{_DIGITS[a]}加{_DIGITS[b]}等于几？"}


def _consume_challenge(books: Books, challenge_id: Any, answer: Any) -> None:
    """Use the question up, right or wrong, in a transaction of its own (so a wrong guess cannot be retried)."""
    def work(s: Session) -> bool:
        row = s.get(SignupChallenge, challenge_id, with_for_update=True) if isinstance(challenge_id, str) else None
        if row is None or row.used:
            return False
        row.used = True
        return (utc_from_db(row.expires_at) > books.now() and isinstance(answer, str)
                and answer.strip() == row.answer)

    if not books.run(work):
        raise DomainError(errors.CHALLENGE_FAILED)


# --- signing up ----------------------------------------------------------------------------------------------

def _age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _check_person(books: Books, name: Any, phone: Any, password: Any, birth_date: Any, consent_version: Any) -> None:
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
        raise DomainError(errors.VALIDATION_FAILED, "a name of 1 to 100 characters", field="name")
    if not isinstance(phone, str) or not PHONE_RE.fullmatch(phone):
        raise DomainError(errors.INVALID_PHONE, field="phone")
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= 200:
        raise DomainError(errors.WEAK_PASSWORD, field="password")
    if not isinstance(birth_date, dt.date) or isinstance(birth_date, dt.datetime) or not (
            dt.date(1900, 1, 1) <= birth_date <= books.calendar.today(books.now())):
        raise DomainError(errors.VALIDATION_FAILED, "a birth date in the past", field="birth_date")
    if consent_version != PRIVACY_NOTICE_VERSION:
        raise DomainError(errors.CONSENT_REQUIRED, current_version=PRIVACY_NOTICE_VERSION)


def _check_guardian(age: int, guardian_name: Any, guardian_phone: Any, guardian_consent: Any) -> bool:
    if age >= GUARDIAN_AGE:
        return False
    if not (guardian_consent is True and isinstance(guardian_name, str) and guardian_name.strip()
            and isinstance(guardian_phone, str) and PHONE_RE.fullmatch(guardian_phone)):
        raise DomainError(errors.GUARDIAN_CONSENT_REQUIRED)
    return True


def _place(s: Session, community_id: Any, building_id: Any) -> None:
    _community(s, community_id)
    if building_id is None:
        return
    unit = s.get(OrgUnit, building_id) if type(building_id) is int else None
    parent = s.get(OrgUnit, unit.parent_id) if unit is not None and unit.parent_id else None
    inside = unit is not None and (unit.parent_id == community_id or (parent is not None and
                                                                      parent.parent_id == community_id))
    if not inside or unit.level not in ("group", "building"):
        raise DomainError(errors.VALIDATION_FAILED, "the building lies in the chosen community", field="building_id")


def sign_up(books: Books, *, name: str, phone: str, community_id: int, password: str, birth_date: dt.date,
            consent_version: str, challenge_id: str, challenge_answer: str, building_id: int | None = None,
            call_id: int | None = None, guardian_name: str | None = None, guardian_phone: str | None = None,
            guardian_consent: bool = False, source: str | None = None) -> SignupView:
    """A resident's own sign-up (public): pending until the community's staff approve it."""
    _check_person(books, name, phone, password, birth_date, consent_version)
    age = _age_on(birth_date, books.calendar.today(books.now()))
    guardian = _check_guardian(age, guardian_name, guardian_phone, guardian_consent)
    security.take(books, "signup", f"signup:ip:{source or 'unknown'}", "signup_per_ip", source=source)
    security.take(books, "signup", f"signup:phone:{phone}", "signup_per_phone", source=source)
    _consume_challenge(books, challenge_id, challenge_answer)
    pw_hash = hash_password(password)

    def work(s: Session) -> SignupView:
        _place(s, community_id, building_id)
        if call_id is not None:
            call = s.get(RecruitmentCall, call_id) if type(call_id) is int else None
            if call is None or call.org_unit_id != community_id:
                raise DomainError(errors.CALL_NOT_FOUND, call_id=call_id)
            if not _is_open(books, call):
                raise DomainError(errors.CALL_CLOSED)
            if age < call.min_age:
                raise DomainError(errors.TOO_YOUNG, min_age=call.min_age)
        if s.scalar(select(User.id).where((User.phone == phone) | (User.username == phone))) is not None:
            raise DomainError(errors.USERNAME_TAKEN, field="phone")
        if s.scalar(select(Signup.id).where(Signup.phone == phone, Signup.status == "pending")) is not None:
            raise DomainError(errors.SIGNUP_ALREADY_WAITING)
        signup = Signup(call_id=call_id, community_id=community_id, building_id=building_id, name=name.strip(),
                        phone=phone, birth_date=birth_date, password_hash=pw_hash, status="pending")
        s.add(signup)
        s.flush()
        s.add(Consent(signup_id=signup.id, kind="privacy_notice", version=consent_version, given_at=books.now()))
        if guardian:
            s.add(Consent(signup_id=signup.id, kind="guardian", version=consent_version,
                          given_by=f"{guardian_name.strip()[:60]} {guardian_phone}", given_at=books.now()))
        s.flush()
        return _signup_view(s, books, signup)

    return books.run(work)


def _signup_view(s: Session, books: Books, signup: Signup) -> SignupView:
    minor = _age_on(signup.birth_date, books.calendar.today(books.now())) < ADULT_AGE
    guardian = s.scalar(select(Consent.id).where(Consent.signup_id == signup.id, Consent.kind == "guardian"))
    username = s.scalar(select(User.username).where(User.id == signup.user_id)) if signup.user_id else None
    return SignupView(signup.id, signup.status, signup.community_id, signup.building_id, signup.call_id, signup.name,
                      mask_phone(signup.phone), minor, guardian is not None, utc_from_db(signup.created_at) or books.now(),
                      signup.decision_reason, signup.user_id, username)


# --- the staff decide -------------------------------------------------------------------------------------

def list_signups(books: Books, actor: Actor, *, status: str | None = "pending", limit: int = 200) -> list[SignupView]:
    """Sign-ups for the communities the staff member serves."""
    policy.require_role(actor, "officer")

    def work(s: Session) -> list[SignupView]:
        q = select(Signup).order_by(Signup.id.desc()).limit(min(max(limit, 1), 500))
        if status is not None:
            q = q.where(Signup.status == status)
        units = scope_units(s, actor, "officer")
        if units is not None:
            q = q.where(Signup.community_id.in_(units))
        return [_signup_view(s, books, x) for x in s.scalars(q)]

    return books.run(work, readonly=True)


def desk_signups(books: Books, actor: Actor) -> list[SignupView]:
    """The sign-ups waiting for ``actor``: officers see their communities', anyone else none."""
    return list_signups(books, actor) if actor.has_role("officer") else []


def _lock_signup(s: Session, actor: Actor, signup_id: Any) -> Signup:
    signup = s.get(Signup, signup_id, with_for_update=True) if type(signup_id) is int else None
    if signup is None:
        raise DomainError(errors.SIGNUP_NOT_FOUND, signup_id=signup_id)
    policy.require_officer_in_scope(s, actor, signup.community_id)
    if signup.status != "pending":
        raise DomainError(errors.SIGNUP_NOT_PENDING, status=signup.status)
    return signup


def _open_volunteer(s: Session, books: Books, signup: Signup) -> User:
    if s.scalar(select(User.id).where((User.phone == signup.phone) | (User.username == signup.phone))) is not None:
        raise DomainError(errors.USERNAME_TAKEN, field="phone")
    user = create_user_in(s, f"v{signup.id:06d}", "", signup.name, phone=signup.phone,
                          password_hash=signup.password_hash)
    birth = signup.birth_date
    adult = dt.date(birth.year + ADULT_AGE, birth.month, 28 if (birth.month, birth.day) == (2, 29) else birth.day)
    user.adult_from = adult if adult > books.calendar.today(books.now()) else None
    grant_role_in(s, user.id, "volunteer", signup.building_id or signup.community_id)
    for consent in s.scalars(select(Consent).where(Consent.signup_id == signup.id)):
        consent.user_id = user.id
    return user


def approve_signup(books: Books, actor: Actor, signup_id: int, *, reason: str = "") -> SignupView:
    """Approve: the account and wallet open, the starter award (if the call offers one) is paid from the
    community budget, and the volunteer can sign in with their mobile number, all in one transaction."""
    def work(s: Session) -> SignupView:
        signup = _lock_signup(s, actor, signup_id)
        user = _open_volunteer(s, books, signup)
        call = s.get(RecruitmentCall, signup.call_id) if signup.call_id else None
        if call is not None and call.starter_beans > 0:
            post_in(s, books, [transfer(f"signup:{signup.id}:starter", "award",
                                        budget_account_id(s, signup.community_id), wallet_account_id(s, user.id),
                                        call.starter_beans, actor=actor.ref, reason="starter award",
                                        reference=f"signup:{signup.id}")])
        signup.status, signup.user_id = "approved", user.id
        signup.decided_by_id, signup.decided_at = actor.user_id, books.now()
        signup.decision_reason = (reason or "")[:500]
        security.record_in(s, "signup_approved", at=books.now(), user_id=user.id, actor=actor.ref,
                           signup_id=signup.id)
        s.flush()
        return _signup_view(s, books, signup)

    return books.run(work)


def decline_signup(books: Books, actor: Actor, signup_id: int, *, reason: str) -> SignupView:
    """Decline with a reason the resident is told; the password hash is dropped at once."""
    if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= 500:
        raise DomainError(errors.VALIDATION_FAILED, "a reason of 1 to 500 characters", field="reason")

    def work(s: Session) -> SignupView:
        signup = _lock_signup(s, actor, signup_id)
        signup.status, signup.password_hash = "declined", ""
        signup.decided_by_id, signup.decided_at, signup.decision_reason = actor.user_id, books.now(), reason.strip()
        return _signup_view(s, books, signup)

    return books.run(work)
