"""Passwords on SQLite and PostgreSQL: changing one's own ends the other sessions; a reset code from the
community's staff works once, for 30 minutes, for the right mobile number, and is in the security log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger import errors
from ledger.access import web_sessions
from ledger.access.identity import authenticate, create_user_in, grant_role_in
from ledger.errors import DomainError
from ledger.people import passwords
from ledger.schema import SecurityEvent
from tests.earning_world import build_world

PHONE = "13812345678"


@pytest.fixture
def w(books):
    world = build_world(books)

    def work(s):
        user = create_user_in(s, "laowang", "old-password-1", "老王", phone=PHONE)
        grant_role_in(s, user.id, "volunteer", world.units["b1"])
        world.users["laowang"] = user.id

    books.run(work)
    return world


def refused(spec: errors.ErrorSpec, fn, *args, **kwargs) -> None:
    with pytest.raises(DomainError) as info:
        fn(*args, **kwargs)
    assert info.value.code == spec.code, info.value


def kinds(books) -> list[str]:
    with books.session(readonly=True) as s:
        return list(s.scalars(select(SecurityEvent.kind).order_by(SecurityEvent.id)))


def test_changing_ones_password_ends_the_other_sessions(books, w) -> None:
    me = w.actor("laowang")
    here = web_sessions.start_session(books, user_id=me.user_id, data={})
    there = web_sessions.start_session(books, user_id=me.user_id, data={})
    refused(errors.WRONG_PASSWORD, passwords.change_password, books, me, current_password="nope",
            new_password="new-password-2", keep_session=here)
    refused(errors.WEAK_PASSWORD, passwords.change_password, books, me, current_password="old-password-1",
            new_password="short")
    out = passwords.change_password(books, me, current_password="old-password-1", new_password="new-password-2",
                                    keep_session=here)
    assert out == {"sessions_ended": 1}
    assert web_sessions.load_session(books, here) is not None
    assert web_sessions.load_session(books, there) is None
    refused(errors.INVALID_CREDENTIALS, authenticate, books, PHONE, "old-password-1")
    assert authenticate(books, PHONE, "new-password-2").user_id == me.user_id
    assert "password_changed" in kinds(books) and "password_change_refused" in kinds(books)


def test_a_reset_code_works_once_for_its_person(books, w, clock) -> None:
    issued = passwords.issue_reset_code(books, w.actor("officerA2"), w.users["laowang"], source="10.1.1.1")
    assert len(issued["code"]) == 8 and issued["phone_hint"] == "138****5678"
    refused(errors.RESET_CODE_INVALID, passwords.reset_password, books, phone=PHONE, code="00000000",
            new_password="brand-new-pw")
    refused(errors.RESET_CODE_INVALID, passwords.reset_password, books, phone="13800000000", code=issued["code"],
            new_password="brand-new-pw")
    passwords.reset_password(books, phone=PHONE, code=issued["code"], new_password="brand-new-pw")
    assert authenticate(books, PHONE, "brand-new-pw").user_id == w.users["laowang"]
    refused(errors.RESET_CODE_INVALID, passwords.reset_password, books, phone=PHONE, code=issued["code"],
            new_password="another-pw-3")
    late = passwords.issue_reset_code(books, w.actor("officerA2"), w.users["laowang"])
    clock.advance(31 * 60)
    refused(errors.RESET_CODE_INVALID, passwords.reset_password, books, phone=PHONE, code=late["code"],
            new_password="another-pw-3")
    log = kinds(books)
    assert log.count("reset_code_issued") == 2 and "password_reset" in log and "password_reset_failed" in log
    with books.session(readonly=True) as s:
        details = " ".join(s.scalars(select(SecurityEvent.detail)))
    assert issued["code"] not in details  # the code itself is never logged


def test_a_new_code_replaces_the_old_and_only_staff_in_scope_issue_codes(books, w) -> None:
    first = passwords.issue_reset_code(books, w.actor("officerA2"), w.users["laowang"])
    second = passwords.issue_reset_code(books, w.actor("admin"), w.users["laowang"])
    refused(errors.RESET_CODE_INVALID, passwords.reset_password, books, phone=PHONE, code=first["code"],
            new_password="brand-new-pw")
    passwords.reset_password(books, phone=PHONE, code=second["code"], new_password="brand-new-pw")
    refused(errors.OUT_OF_SCOPE, passwords.issue_reset_code, books, w.actor("officerB"), w.users["laowang"])
    refused(errors.PERMISSION_DENIED, passwords.issue_reset_code, books, w.actor("v1"), w.users["laowang"])
    refused(errors.SELF_DEALING, passwords.issue_reset_code, books, w.actor("officerA2"), w.users["officerA2"])
    refused(errors.USER_NOT_FOUND, passwords.issue_reset_code, books, w.actor("admin"), 10**9)


def test_reset_attempts_are_rate_limited_per_phone(books, w) -> None:
    books.settings = books.settings.with_overrides({"rate_limits": {"reset_per_phone": 2}})
    for _ in range(2):
        refused(errors.RESET_CODE_INVALID, passwords.reset_password, books, phone=PHONE, code="1",
                new_password="brand-new-pw")
    refused(errors.RATE_LIMITED, passwords.reset_password, books, phone=PHONE, code="1", new_password="brand-new-pw")
