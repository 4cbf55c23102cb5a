"""Proofs of presence: the leader's rotating code, the post sign with a location, and every refusal."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from ledger import patrols
from ledger.errors import DomainError
from ledger.patrols import Proof, codes
from ledger.schema import PatrolSignup, UsedLeaderCode
from tests.patrol_world import FAR, NEAR, build_patrol_world


def _at_start(pw, clock, minutes: int = 0) -> None:
    clock.now = pw.start + dt.timedelta(minutes=minutes)


def _state(books) -> tuple:
    with books.session(readonly=True) as s:
        return (tuple(s.execute(select(PatrolSignup.id, PatrolSignup.status, PatrolSignup.checked_in_at,
                                       PatrolSignup.checked_out_at).order_by(PatrolSignup.id)).all()),
                tuple(s.scalars(select(UsedLeaderCode.jti).order_by(UsedLeaderCode.id))))


def _refused(code: str, fn, books, *args, **kwargs) -> None:
    """Refused with ``code``, and nothing changed (no sign-up moved, no leader code spent)."""
    before = _state(books)
    with pytest.raises(DomainError) as exc:
        fn(books, *args, **kwargs)
    assert exc.value.code == code, exc.value
    assert _state(books) == before, "a refusal changed something"


@pytest.fixture
def pw(books, clock):
    pw = build_patrol_world(books)
    v1 = pw.w.actor("v1")
    patrols.sign_up(books, v1, pw.shift_id)
    return pw


def test_leader_code_checks_in_within_its_lifetime_only(books, clock, pw) -> None:
    v1 = pw.w.actor("v1")
    _at_start(pw, clock)
    code = pw.leader_code()
    clock.advance(120)  # far past its 30 s (and the leeway)
    _refused("code_expired", patrols.check_in, books, v1, pw.shift_id, Proof(code=code))
    row = patrols.check_in(books, v1, pw.shift_id, pw.by_code())
    assert row.status == "checked_in" and row.check_in_proof == "leader_code"


def test_leader_code_lives_30_seconds_and_15_of_leeway_to_the_second(books, clock, pw) -> None:
    patrols.sign_up(books, pw.w.actor("v3"), pw.shift_id)
    _at_start(pw, clock)
    first, second = pw.leader_code(), pw.leader_code()
    clock.advance(30 + 15 - 1)  # the last second it is accepted
    assert patrols.check_in(books, pw.w.actor("v1"), pw.shift_id, Proof(code=first)).status == "checked_in"
    clock.advance(1)
    _refused("code_expired", patrols.check_in, books, pw.w.actor("v3"), pw.shift_id, Proof(code=second))


def test_a_code_from_the_future_or_claiming_a_long_life_is_refused(books, clock, pw) -> None:
    _at_start(pw, clock)
    ahead = pw.w.books.now() + dt.timedelta(seconds=60)
    clock.now = ahead
    future = codes.issue_leader_code(books, pw.post_id, pw.shift_id, pw.w.users["leader"], 30).code
    _at_start(pw, clock)
    _refused("code_not_yet_valid", patrols.check_in, books, pw.w.actor("v1"), pw.shift_id, Proof(code=future))
    long_lived = codes.issue_leader_code(books, pw.post_id, pw.shift_id, pw.w.users["leader"], 3600).code
    _refused("invalid_code", patrols.check_in, books, pw.w.actor("v1"), pw.shift_id, Proof(code=long_lived))


def test_a_code_for_the_next_shift_at_the_same_post_is_refused(books, clock, pw) -> None:
    officer = pw.w.actor("officerA2")
    later = patrols.publish_shift(books, officer, post_id=pw.post_id, starts_at=pw.end,
                                  ends_at=pw.end + dt.timedelta(hours=2), needed=2, leader_id=pw.w.users["leader"])
    clock.now = pw.end - dt.timedelta(minutes=10)  # both windows open: the code names the current shift
    code = codes.issue_leader_code(books, pw.post_id, later.id, pw.w.users["leader"], 30).code
    _refused("wrong_post", patrols.check_in, books, pw.w.actor("v1"), pw.shift_id, Proof(code=code))


def test_a_leader_does_not_check_in_by_their_own_code(books, clock, pw) -> None:
    patrols.sign_up(books, pw.w.actor("leader"), pw.shift_id)
    _at_start(pw, clock)
    _refused("self_dealing", patrols.check_in, books, pw.w.actor("leader"), pw.shift_id, pw.by_code())
    assert patrols.check_in(books, pw.w.actor("leader"), pw.shift_id, pw.by_sign()).check_in_proof == "post_sign"


def test_a_leader_code_is_not_a_post_sign(books, clock, pw) -> None:
    _at_start(pw, clock)
    _refused("invalid_code", patrols.check_in, books, pw.w.actor("v1"), pw.shift_id,
             Proof(post_sign=pw.leader_code(), latitude=NEAR[0], longitude=NEAR[1], accuracy_m=5))


def test_one_code_shown_to_two_phones_at_once_checks_in_one(books, clock, pw) -> None:
    patrols.sign_up(books, pw.w.actor("v3"), pw.shift_id)
    _at_start(pw, clock)
    code = pw.leader_code()
    actors = [pw.w.actor("v1"), pw.w.actor("v3")]
    barrier, outcomes = threading.Barrier(2), []

    def scan(i: int) -> None:
        barrier.wait()
        try:
            patrols.check_in(books, actors[i], pw.shift_id, Proof(code=code))
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=scan, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["leader_code_replayed", "ok"]
    # the phone that owns the code may send it again within its life (a retried request): still one use
    winner = actors[0] if patrols.get_shift(books, actors[0], pw.shift_id).my_status == "checked_in" else actors[1]
    clock.advance(5)
    assert patrols.check_out(books, winner, pw.shift_id, Proof(code=code)).status == "checked_out"


def test_leader_code_from_another_post_is_refused(books, clock, pw) -> None:
    officer = pw.w.actor("officerA2")
    other = patrols.create_post(books, officer, org_unit_id=pw.w.units["c1"], name="别的岗", latitude=25.1,
                                longitude=102.8, radius_m=50)
    patrols.publish_shift(books, officer, post_id=other.id, starts_at=pw.start, ends_at=pw.end, needed=2,
                          leader_id=pw.w.users["leader"])
    _at_start(pw, clock)
    foreign = patrols.leader_code(books, pw.w.actor("leader"), other.id)["code"]
    _refused("wrong_post", patrols.check_in, books, pw.w.actor("v1"), pw.shift_id, Proof(code=foreign))
    sign = patrols.post_sign(books, officer, other.id)["code"]
    _refused("wrong_post", patrols.check_in, books, pw.w.actor("v1"), pw.shift_id,
             Proof(post_sign=sign, latitude=NEAR[0], longitude=NEAR[1], accuracy_m=5))


def test_a_code_replayed_from_another_volunteers_phone_is_refused(books, clock, pw) -> None:
    patrols.sign_up(books, pw.w.actor("v3"), pw.shift_id)
    _at_start(pw, clock)
    code = pw.leader_code()
    patrols.check_in(books, pw.w.actor("v1"), pw.shift_id, Proof(code=code))
    _refused("leader_code_replayed", patrols.check_in, books, pw.w.actor("v3"), pw.shift_id, Proof(code=code))
    assert patrols.check_in(books, pw.w.actor("v3"), pw.shift_id, pw.by_code()).status == "checked_in"


def test_post_sign_needs_the_phone_inside_the_radius(books, clock, pw) -> None:
    v1 = pw.w.actor("v1")
    _at_start(pw, clock)
    _refused("outside_post_radius", patrols.check_in, books, v1, pw.shift_id, pw.by_sign(FAR))
    _refused("location_too_vague", patrols.check_in, books, v1, pw.shift_id, pw.by_sign(NEAR, accuracy=500))
    _refused("proof_required", patrols.check_in, books, v1, pw.shift_id, Proof(post_sign=pw.sign()))
    _refused("proof_required", patrols.check_in, books, v1, pw.shift_id, Proof())
    row = patrols.check_in(books, v1, pw.shift_id, pw.by_sign(NEAR))
    assert row.check_in_proof == "post_sign"
    # only the distance is kept, never the coordinates
    with books.session(readonly=True) as s:
        from ledger.schema import PatrolSignup

        stored = s.get(PatrolSignup, row.id)
        assert 20 <= stored.check_in_distance_m <= 40


def test_a_reprinted_sign_retires_the_old_one(books, clock, pw) -> None:
    old = pw.sign()
    patrols.post_sign(books, pw.w.actor("officerA2"), pw.post_id, reprint=True)
    _at_start(pw, clock)
    _refused("sign_reprinted", patrols.check_in, books, pw.w.actor("v1"), pw.shift_id,
             Proof(post_sign=old, latitude=NEAR[0], longitude=NEAR[1], accuracy_m=5))


def test_check_in_far_outside_the_shift_window_is_refused(books, clock, pw) -> None:
    v1 = pw.w.actor("v1")
    _at_start(pw, clock, -60)
    _refused("outside_shift_window", patrols.check_in, books, v1, pw.shift_id, pw.by_sign())
    _at_start(pw, clock, 121)
    _refused("outside_shift_window", patrols.check_in, books, v1, pw.shift_id, pw.by_sign())
    _at_start(pw, clock, -29)
    assert patrols.check_in(books, v1, pw.shift_id, pw.by_sign()).status == "checked_in"


def test_a_forged_or_foreign_typ_code_is_refused(books, clock, pw) -> None:
    v1 = pw.w.actor("v1")
    _at_start(pw, clock)
    code = pw.leader_code()
    head, body, sig = code.split(".")
    tampered = f"{head}.{body}.{sig[:-4]}AAAA"
    _refused("invalid_code", patrols.check_in, books, v1, pw.shift_id, Proof(code=tampered))
    # a post sign is not a leader code
    _refused("invalid_code", patrols.check_in, books, v1, pw.shift_id, Proof(code=pw.sign()))
    _refused("invalid_code", patrols.check_in, books, v1, pw.shift_id, Proof(code="x" * 30))


def test_twice_in_out_without_in_and_not_signed_up(books, clock, pw) -> None:
    v1 = pw.w.actor("v1")
    _at_start(pw, clock)
    _refused("not_checked_in", patrols.check_out, books, v1, pw.shift_id, pw.by_code())
    _refused("not_signed_up", patrols.check_in, books, pw.w.actor("v3"), pw.shift_id, pw.by_code())
    patrols.check_in(books, v1, pw.shift_id, pw.by_code())
    _refused("already_checked_in", patrols.check_in, books, v1, pw.shift_id, pw.by_code())


def test_leader_checks_in_a_member_without_a_phone(books, clock, pw) -> None:
    leader = pw.w.actor("leader")
    _at_start(pw, clock)
    row = patrols.check_in(books, leader, pw.shift_id, Proof(), volunteer_id=pw.w.users["v1"])
    assert row.check_in_proof == "leader_manual" and row.recorded_by_id == leader.user_id
    # nobody else may vouch for a member
    _refused("permission_denied", patrols.check_out, books, pw.w.actor("v3"), pw.shift_id, Proof(),
             volunteer_id=pw.w.users["v1"])
