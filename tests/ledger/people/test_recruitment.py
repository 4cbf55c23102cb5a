"""Recruitment on SQLite and PostgreSQL: a call, a resident's own sign-up with consent and a plain-words
question, the community's approval opening the account and wallet (starter award from the budget), and
every refusal changing nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ledger import errors
from ledger.access.identity import authenticate, budget_account_id, wallet_account_id
from ledger.errors import DomainError
from ledger.journal.accounts import get_account
from ledger.journal.verify import verify_books
from ledger.people import recruitment
from ledger.schema import Consent, Signup, SignupChallenge, User
from tests.earning_world import World, build_world

PHONE = "13912345678"


def answer_of(books, challenge: dict[str, str]) -> str:
    with books.session(readonly=True) as s:
        return s.get(SignupChallenge, challenge["challenge_id"]).answer


def signup(w: World, **over: object) -> recruitment.SignupView:
    challenge = recruitment.new_challenge(w.books)
    body = {"name": "王阿姨", "phone": PHONE, "community_id": w.units["c1"], "building_id": w.units["b1"],
            "password": "jinsha-2026", "birth_date": dt.date(1958, 3, 1),
            "consent_version": recruitment.PRIVACY_NOTICE_VERSION, "challenge_id": challenge["challenge_id"],
            "challenge_answer": answer_of(w.books, challenge), "source": "10.0.0.9"}
    body.update(over)
    return recruitment.sign_up(w.books, **body)


def refused(code: errors.ErrorSpec, fn, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code.code, info.value
    return info.value


def count(books, table) -> int:
    with books.session(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(table))


def test_a_call_a_signup_and_an_approval_open_the_wallet_with_a_starter_award(books) -> None:
    w = build_world(books)
    call = recruitment.publish_call(books, w.actor("officerA2"), org_unit_id=w.units["c1"], title="夜巡志愿者",
                                    needed=20, closes_at=books.now() + dt.timedelta(days=30), starter_beans=10,
                                    description="每周两晚, 19:00-21:00")
    assert [c.id for c in recruitment.open_calls(books)] == [call.id]
    pending = signup(w, call_id=call.id)
    assert pending.status == "pending" and not pending.minor
    refused(errors.INVALID_CREDENTIALS, authenticate, books, PHONE, "jinsha-2026")  # not before approval
    with books.session(readonly=True) as s:
        budget = budget_account_id(s, w.units["c1"])
    before = get_account(books, budget).balance

    approved = recruitment.approve_signup(books, w.actor("officerA2"), pending.id, reason="面谈通过")
    assert approved.status == "approved" and approved.user_id
    actor = authenticate(books, PHONE, "jinsha-2026")  # sign in by mobile number
    assert actor.has_role("volunteer") and actor.org_units_for("volunteer") == {w.units["b1"]}
    with books.session(readonly=True) as s:
        wallet = wallet_account_id(s, approved.user_id)
        consents = s.scalars(select(Consent).where(Consent.user_id == approved.user_id)).all()
    assert get_account(books, wallet).balance == 10
    assert get_account(books, budget).balance == before - 10
    assert [(c.kind, c.version) for c in consents] == [("privacy_notice", recruitment.PRIVACY_NOTICE_VERSION)]
    assert recruitment.get_call(books, call.id).approved == 1
    refused(errors.SIGNUP_NOT_PENDING, recruitment.approve_signup, books, w.actor("officerA2"), pending.id)
    assert get_account(books, wallet).balance == 10
    refused(errors.USERNAME_TAKEN, signup, w)  # the mobile number is registered now
    assert verify_books(books).ok


def test_signup_refusals_change_nothing(books, clock) -> None:
    w = build_world(books)
    # the limits are tested below
    books.settings = books.settings.with_overrides({"rate_limits": {"signup_per_ip": 100, "signup_per_phone": 100}})
    bad_cases = [
        (errors.INVALID_PHONE, {"phone": "12345"}),
        (errors.WEAK_PASSWORD, {"password": "short"}),
        (errors.CONSENT_REQUIRED, {"consent_version": "2020-01"}),
        (errors.CHALLENGE_FAILED, {"challenge_answer": "99"}),
        (errors.NOT_A_COMMUNITY, {"community_id": w.units["b1"]}),
        (errors.VALIDATION_FAILED, {"building_id": w.units["c3"]}),
        (errors.GUARDIAN_CONSENT_REQUIRED, {"birth_date": books.now().date().replace(year=books.now().year - 12)}),
        (errors.VALIDATION_FAILED, {"birth_date": books.now().date() + dt.timedelta(days=1)}),
    ]
    for code, over in bad_cases:
        refused(code, signup, w, **over)
    assert count(books, Signup) == 0
    signup(w)
    refused(errors.SIGNUP_ALREADY_WAITING, signup, w)  # one waiting sign-up per mobile number
    assert count(books, Signup) == 1


def test_a_challenge_answers_once_and_expires(books, clock) -> None:
    w = build_world(books)
    challenge = recruitment.new_challenge(books)
    assert challenge["question"].endswith("等于几？")
    right = answer_of(books, challenge)
    refused(errors.CHALLENGE_FAILED, signup, w, challenge_id=challenge["challenge_id"], challenge_answer="0")
    # the wrong guess used the question up: the right answer no longer passes
    refused(errors.CHALLENGE_FAILED, signup, w, challenge_id=challenge["challenge_id"], challenge_answer=right)
    late = recruitment.new_challenge(books)
    clock.advance(11 * 60)
    refused(errors.CHALLENGE_FAILED, signup, w, challenge_id=late["challenge_id"],
            challenge_answer=answer_of(books, late))


def test_minors_need_a_guardian_under_14_and_are_marked_under_18(books) -> None:
    w = build_world(books)
    today = books.now().date()
    child = signup(w, phone="13900000001", birth_date=today.replace(year=today.year - 13),
                   guardian_name="王先生", guardian_phone="13900000002", guardian_consent=True)
    assert child.minor and child.guardian_consent
    teen = signup(w, phone="13900000003", birth_date=today.replace(year=today.year - 16))
    assert teen.minor and not teen.guardian_consent
    made = recruitment.approve_signup(books, w.actor("officerA2"), teen.id)
    with books.session(readonly=True) as s:
        user = s.get(User, made.user_id)
    assert user.adult_from == today.replace(year=today.year + 2)  # the day they turn 18, not the birth date
    call = recruitment.publish_call(books, w.actor("officerA2"), org_unit_id=w.units["c1"], title="t", needed=1,
                                    closes_at=books.now() + dt.timedelta(days=3), min_age=18)
    refused(errors.TOO_YOUNG, signup, w, phone="13900000004", birth_date=today.replace(year=today.year - 17),
            call_id=call.id)


def test_only_staff_in_scope_decide_and_a_decline_keeps_no_password(books) -> None:
    w = build_world(books)
    pending = signup(w)
    refused(errors.OUT_OF_SCOPE, recruitment.approve_signup, books, w.actor("officerB"), pending.id)
    refused(errors.PERMISSION_DENIED, recruitment.approve_signup, books, w.actor("v1"), pending.id)
    refused(errors.PERMISSION_DENIED, recruitment.list_signups, books, w.actor("v1"))
    assert recruitment.list_signups(books, w.actor("officerB")) == []
    assert [x.id for x in recruitment.list_signups(books, w.actor("officerA"))] == [pending.id]
    refused(errors.VALIDATION_FAILED, recruitment.decline_signup, books, w.actor("officerA"), pending.id, reason="")
    declined = recruitment.decline_signup(books, w.actor("officerA"), pending.id, reason="不在本小区居住")
    assert declined.status == "declined" and declined.decision_reason == "不在本小区居住"
    with books.session(readonly=True) as s:
        assert s.get(Signup, pending.id).password_hash == ""
    again = signup(w)  # a declined resident may sign up again
    assert again.status == "pending"


def test_signups_are_rate_limited_per_address(books) -> None:
    w = build_world(books)
    books.settings = books.settings.with_overrides({"rate_limits": {"signup_per_ip": 2}})
    signup(w, phone="13900000011")
    signup(w, phone="13900000012")
    refused(errors.RATE_LIMITED, signup, w, phone="13900000013")
