"""Sign-ups, attendance, paying once, holds for an officer, no-shows, the board, records and certificates."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from ledger import patrols, service
from ledger.access.identity import wallet_of
from ledger.errors import DomainError
from ledger.journal.accounts import get_account
from ledger.journal.verify import verify_books
from ledger.patrols.rules import round_minutes
from tests.patrol_world import build_patrol_world


def balance(pw, who: str) -> int:
    return get_account(pw.w.books, wallet_of(pw.w.books, pw.w.users[who])).balance


def _refused(code: str, fn, *args, **kwargs) -> None:
    with pytest.raises(DomainError) as exc:
        fn(*args, **kwargs)
    assert exc.value.code == code, exc.value


def _race(n: int, fn) -> list[str]:
    barrier = threading.Barrier(n)
    outcomes: list[str] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            fn(i)
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


def test_rounding_is_to_the_nearest_quarter_hour() -> None:
    assert [round_minutes(m * 60) for m in (0, 7, 8, 22, 23, 60, 119, 127)] == [0, 0, 15, 15, 30, 60, 120, 120]
    # half a quarter hour, to the second: 7 min 30 s rounds up, 7 min 29 s down
    assert [round_minutes(s) for s in (449, 450, 1349, 1350, -5)] == [0, 15, 15, 30, 0]


def test_a_full_shift_by_leader_code_is_paid_at_check_out_once(books, clock) -> None:
    pw = build_patrol_world(books)
    v1 = pw.w.actor("v1")
    patrols.sign_up(books, v1, pw.shift_id)
    clock.now = pw.start - dt.timedelta(minutes=10)
    patrols.check_in(books, v1, pw.shift_id, pw.by_code())
    clock.now = pw.end + dt.timedelta(minutes=5)
    row = patrols.check_out(books, v1, pw.shift_id, pw.by_code())
    # counted from the start (not the early check-in) to the check-out: 125 min → 120 (nearest quarter)
    assert (row.minutes, row.beans, row.attendance) == (120, 20, "paid")
    assert balance(pw, "v1") == 20
    _refused("already_checked_out", patrols.check_out, books, v1, pw.shift_id, pw.by_code())
    assert balance(pw, "v1") == 20
    [record] = service.my_service_records(books, v1)
    assert record.minutes == 120 and record.activity == "patrol" and record.verified_by == "rule:patrol"
    assert verify_books(books).ok


def test_half_a_quarter_hour_rounds_up_to_the_second(books, clock) -> None:
    pw = build_patrol_world(books)
    for who in ("v1", "v3"):
        patrols.sign_up(books, pw.w.actor(who), pw.shift_id)
    clock.now = pw.start
    patrols.check_in(books, pw.w.actor("v1"), pw.shift_id, pw.by_code())
    patrols.check_in(books, pw.w.actor("v3"), pw.shift_id, pw.by_code())
    clock.now = pw.end - dt.timedelta(minutes=7, seconds=30)  # 112 min 30 s: 120 minutes
    assert patrols.check_out(books, pw.w.actor("v1"), pw.shift_id, pw.by_code()).minutes == 120
    clock.advance(-1)  # was 112 min 29 s: 105 minutes (the other volunteer, one second earlier)
    assert patrols.check_out(books, pw.w.actor("v3"), pw.shift_id, pw.by_code()).minutes == 105


def test_time_never_counts_beyond_the_end_plus_grace(books, clock) -> None:
    pw = build_patrol_world(books)
    v1 = pw.w.actor("v1")
    patrols.sign_up(books, v1, pw.shift_id)
    clock.now = pw.start
    patrols.check_in(books, v1, pw.shift_id, pw.by_code())
    clock.now = pw.end + dt.timedelta(minutes=31)
    _refused("outside_shift_window", patrols.check_out, books, v1, pw.shift_id, pw.by_sign())
    # the officer closes the shift: the time counts to the end plus grace, and waits for verification
    [row] = patrols.close_shift(books, pw.w.actor("officerA2"), pw.shift_id)
    assert (row.minutes, row.attendance, row.hold_reason) == (150, "awaiting_verification", "no_check_out")
    assert balance(pw, "v1") == 0


def test_two_check_outs_at_once_pay_exactly_once(books, clock) -> None:
    pw = build_patrol_world(books)
    v1 = pw.w.actor("v1")
    patrols.sign_up(books, v1, pw.shift_id)
    clock.now = pw.start
    patrols.check_in(books, v1, pw.shift_id, pw.by_code())
    clock.now = pw.end
    proofs = [pw.by_code() for _ in range(4)]
    outcomes = _race(4, lambda i: patrols.check_out(books, v1, pw.shift_id, proofs[i]))
    assert outcomes == ["already_checked_out"] * 3 + ["ok"]
    assert balance(pw, "v1") == 20
    assert verify_books(books).ok


def test_the_head_count_holds_under_concurrent_sign_ups(books, clock) -> None:
    pw = build_patrol_world(books, needed=2)
    people = ["v1", "v2", "v3", "leader"]
    actors = [pw.w.actor(p) for p in people]
    outcomes = _race(4, lambda i: patrols.sign_up(books, actors[i], pw.shift_id))
    assert outcomes == ["ok", "ok", "shift_full", "shift_full"]
    assert patrols.get_shift(books, actors[0], pw.shift_id).taken == 2


def test_sign_up_rules(books, clock) -> None:
    pw = build_patrol_world(books, needed=1)
    v1, v3 = pw.w.actor("v1"), pw.w.actor("v3")
    patrols.sign_up(books, v1, pw.shift_id)
    _refused("already_signed_up", patrols.sign_up, books, v1, pw.shift_id)
    _refused("shift_full", patrols.sign_up, books, v3, pw.shift_id)
    # an overlapping shift at another post
    officer = pw.w.actor("officerA2")
    post = patrols.create_post(books, officer, org_unit_id=pw.w.units["c1"], name="二号岗", latitude=25.06,
                               longitude=102.73)
    other = patrols.publish_shift(books, officer, post_id=post.id, starts_at=pw.start + dt.timedelta(hours=1),
                                  ends_at=pw.end + dt.timedelta(hours=1), needed=5)
    _refused("shift_overlaps", patrols.sign_up, books, v1, other.id)
    # withdraw up to two hours before; then the place is free again
    patrols.withdraw(books, v1, pw.shift_id)
    assert patrols.sign_up(books, v3, pw.shift_id).status == "signed_up"
    clock.now = pw.start - dt.timedelta(minutes=119)
    _refused("withdraw_cutoff_passed", patrols.withdraw, books, v3, pw.shift_id)
    clock.now = pw.start + dt.timedelta(hours=1)
    _refused("signup_closed", patrols.sign_up, books, v1, other.id)


def test_beans_per_hour_stay_within_the_rule_table(books, clock) -> None:
    _refused("beans_per_hour_out_of_limits", build_patrol_world, books, beans_per_hour=31)


def test_insurance_required_holds_the_sign_up_for_an_officer(books, clock) -> None:
    pw = build_patrol_world(books)
    officer = pw.w.actor("officerA2")
    shift = patrols.publish_shift(books, officer, post_id=pw.post_id, starts_at=pw.start + dt.timedelta(days=1),
                                  ends_at=pw.end + dt.timedelta(days=1), needed=2, insurance_required=True)
    row = patrols.sign_up(books, pw.w.actor("v1"), shift.id)
    assert row.status == "pending"
    clock.now = pw.start + dt.timedelta(days=1)
    _refused("signup_pending", patrols.check_in, books, pw.w.actor("v1"), shift.id, patrols.Proof())
    assert [r.id for r in patrols.pending_signups(books, officer)] == [row.id]
    assert patrols.pending_signups(books, pw.w.actor("officerB")) == []
    assert patrols.confirm_signup(books, officer, row.id).status == "signed_up"
    assert patrols.pending_signups(books, officer) == []


def test_location_only_is_held_for_an_officer_who_then_pays_once(books, clock) -> None:
    pw = build_patrol_world(books)
    v1 = pw.w.actor("v1")
    patrols.sign_up(books, v1, pw.shift_id)
    clock.now = pw.start
    patrols.check_in(books, v1, pw.shift_id, pw.by_sign())
    clock.now = pw.end
    row = patrols.check_out(books, v1, pw.shift_id, pw.by_sign())
    assert (row.attendance, row.hold_reason, row.beans) == ("awaiting_verification", "location_only", 20)
    assert balance(pw, "v1") == 0 and service.my_service_records(books, v1) == []
    _refused("permission_denied", patrols.verify_attendance, books, v1, row.id)
    _refused("out_of_scope", patrols.verify_attendance, books, pw.w.actor("officerB"), row.id)
    paid = patrols.verify_attendance(books, pw.w.actor("officerA"), row.id)
    assert paid.attendance == "paid" and balance(pw, "v1") == 20
    _refused("attendance_not_awaiting", patrols.verify_attendance, books, pw.w.actor("officerA2"), row.id)
    assert balance(pw, "v1") == 20 and len(service.my_service_records(books, v1)) == 1
    assert verify_books(books).ok


def test_no_shows_and_the_coverage_board(books, clock) -> None:
    pw = build_patrol_world(books, needed=2)
    officer = pw.w.actor("officerA2")
    for who in ("v1", "v3"):
        patrols.sign_up(books, pw.w.actor(who), pw.shift_id)
    [board] = patrols.coverage(books, officer)
    assert board.state == "no_shift"
    clock.now = pw.start + dt.timedelta(minutes=5)
    assert patrols.coverage(books, officer)[0].state == "uncovered"
    patrols.check_in(books, pw.w.actor("v1"), pw.shift_id, pw.by_code())
    board = patrols.coverage(books, officer)[0]
    assert (board.state, board.present, board.needed, board.on_post) == ("short", 1, 2, ("V1",))
    assert patrols.coverage(books, pw.w.actor("officerB")) == []
    _refused("permission_denied", patrols.coverage, books, pw.w.actor("v1"))
    clock.now = pw.end + dt.timedelta(minutes=31)
    rows = {r.volunteer_id: r for r in patrols.close_shift(books, officer, pw.shift_id)}
    assert rows[pw.w.users["v3"]].status == "no_show"


def test_the_board_names_who_is_late(books, clock) -> None:
    pw = build_patrol_world(books, needed=2)
    officer = pw.w.actor("officerA2")
    for who in ("v1", "v3"):
        patrols.sign_up(books, pw.w.actor(who), pw.shift_id)
    clock.now = pw.start + dt.timedelta(minutes=9)
    patrols.check_in(books, pw.w.actor("v1"), pw.shift_id, pw.by_code())
    assert patrols.coverage(books, officer)[0].late == ()  # not late yet
    clock.now = pw.start + dt.timedelta(minutes=10)
    board = patrols.coverage(books, officer)[0]
    assert (board.state, board.on_post, board.late) == ("short", ("V1",), ("V3",))
    patrols.check_in(books, pw.w.actor("v3"), pw.shift_id, pw.by_code())
    board = patrols.coverage(books, officer)[0]
    assert (board.state, board.late) == ("covered", ())


def test_the_leaders_page_learns_that_its_code_was_used(books, clock) -> None:
    pw = build_patrol_world(books)
    patrols.sign_up(books, pw.w.actor("v1"), pw.shift_id)
    clock.now = pw.start
    shown = patrols.leader_code(books, pw.w.actor("leader"), pw.post_id)
    assert not patrols.leader_code_used(books, shown["jti"])
    patrols.check_in(books, pw.w.actor("v1"), pw.shift_id, patrols.Proof(code=shown["code"]))
    assert patrols.leader_code_used(books, shown["jti"])
    assert not patrols.leader_code_used(books, "x" * 65) and not patrols.leader_code_used(books, None)


def test_a_recurring_evening_shift_is_one_definition(books, clock) -> None:
    pw = build_patrol_world(books)
    series = patrols.publish_series(books, pw.w.actor("officerA2"), post_id=pw.post_id, start_time="19:00",
                                    duration_minutes=120, first_day=dt.date(2026, 11, 27), needed=2)
    assert series.shifts_created == 15  # today (still ahead at 17:00) and 14 more days
    assert patrols.extend_series(books) == 0  # expanding again adds nothing
    clock.advance(3 * 86400)
    assert patrols.extend_series(books) == 3
    shifts = [s for s in patrols.list_shifts(books, pw.w.actor("v1"), limit=500) if s.series_id == series.id]
    assert all(s.starts_at.astimezone(dt.timezone(dt.timedelta(hours=8))).hour == 19 for s in shifts)


def test_a_shift_crossing_midnight_counts_on_the_day_it_started(books, clock) -> None:
    pw = build_patrol_world(books)
    start = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.timezone.utc)  # 23:00 Beijing
    shift = patrols.publish_shift(books, pw.w.actor("officerA2"), post_id=pw.post_id, starts_at=start,
                                  ends_at=start + dt.timedelta(hours=2), needed=1, leader_id=pw.w.users["leader"])
    assert shift.service_day == dt.date(2026, 11, 27)


def test_an_edit_after_sign_up_is_shown_to_the_volunteer(books, clock) -> None:
    pw = build_patrol_world(books)
    v1 = pw.w.actor("v1")
    patrols.sign_up(books, v1, pw.shift_id)
    patrols.edit_shift(books, pw.w.actor("officerA2"), pw.shift_id, starts_at=pw.start + dt.timedelta(minutes=30))
    [mine] = patrols.list_shifts(books, v1, mine=True)
    assert mine.changed_since_signup
    assert not patrols.acknowledge_change(books, v1, pw.shift_id).changed_since_signup


def test_certificate_verifies_and_one_changed_digit_fails(books, clock) -> None:
    pw = build_patrol_world(books)
    v1 = pw.w.actor("v1")
    patrols.sign_up(books, v1, pw.shift_id)
    clock.now = pw.start
    patrols.check_in(books, v1, pw.shift_id, pw.by_code())
    clock.now = pw.end
    patrols.check_out(books, v1, pw.shift_id, pw.by_code())
    cert = service.issue_certificate(books, v1, first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 30))
    checked = service.verify_certificate(books, cert.code)
    assert (checked["minutes"], checked["records"], checked["name"]) == (120, 1, "V1")
    head, body, sig = cert.code.split(".")
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["minutes"] = 1200
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _refused("invalid_certificate", service.verify_certificate, books, f"{head}.{forged}.{sig}")
    _refused("invalid_certificate", service.verify_certificate, books, "not a certificate at all")
