"""Minors and night shifts: a volunteer under 18 on the shift's day (``users.adult_from``, by the one Calendar)
may not sign up for, nor lead, a shift with any minute between 22:00 and 06:00 local time; an edit that would
turn a shift with a minor on it into a night shift is refused; the night is a rule of ``PatrolRules``."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger import patrols
from ledger.errors import DomainError
from ledger.infra.settings import Calendar, PatrolRules
from ledger.patrols.rules import is_minor_on, is_night
from ledger.schema import User
from tests.patrol_world import build_patrol_world

BEIJING = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2026, 11, 27)  # the patrol world's evening (its shift: 19:00–21:00 Beijing)


def _at(hh: int, mm: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), BEIJING).astimezone(dt.timezone.utc)


def _refused(code: str, fn, *args, **kwargs) -> None:
    with pytest.raises(DomainError) as exc:
        fn(*args, **kwargs)
    assert exc.value.code == code, exc.value


def _set_adult_from(books, user_id: int, day: dt.date | None) -> None:
    with books.session() as s:
        s.get(User, user_id).adult_from = day


@pytest.mark.parametrize(("start", "end", "night"), [
    ((19, 0), (22, 0), False),   # ends at 22:00 sharp: not a minute of night
    ((19, 0), (22, 1), True),    # one minute after 22:00
    ((6, 0), (8, 0), False),
    ((5, 59), (8, 0), True),
    ((23, 0), (1, 0), True),     # crosses midnight
    ((12, 0), (14, 0), False),
])
def test_what_counts_as_night(start, end, night) -> None:
    s = _at(*start)
    e = _at(*end) if end > start else _at(*end, day=DAY + dt.timedelta(days=1))
    assert is_night(PatrolRules(), Calendar(), s, e) is night


def test_the_night_is_a_rule() -> None:
    early = PatrolRules(night_starts_minute=21 * 60)
    assert is_night(early, Calendar(), _at(19), _at(21, 30))
    assert not is_night(PatrolRules(), Calendar(), _at(19), _at(21, 30))


def test_minor_means_under_18_on_that_day() -> None:
    assert is_minor_on(DAY + dt.timedelta(days=1), DAY)
    assert not is_minor_on(DAY, DAY)  # the 18th birthday itself
    assert not is_minor_on(None, DAY)


def test_a_minor_may_not_sign_up_for_a_night_shift(books, clock) -> None:
    pw = build_patrol_world(books, needed=5)
    officer, v1 = pw.w.actor("officerA2"), pw.w.actor("v1")
    _set_adult_from(books, pw.w.users["v1"], DAY + dt.timedelta(days=1))  # 18 tomorrow
    late = patrols.publish_shift(books, officer, post_id=pw.post_id, starts_at=_at(20), ends_at=_at(22, 30), needed=2)
    _refused("minor_night_shift", patrols.sign_up, books, v1, late.id)
    assert patrols.get_shift(books, officer, late.id).taken == 0
    # the evening shift (19:00–21:00) is fine, and tomorrow night they are 18
    assert patrols.sign_up(books, v1, pw.shift_id).status == "signed_up"
    tomorrow = patrols.publish_shift(books, officer, post_id=pw.post_id, starts_at=_at(20, day=DAY + dt.timedelta(days=1)),
                                     ends_at=_at(22, 30, day=DAY + dt.timedelta(days=1)), needed=2)
    assert patrols.sign_up(books, v1, tomorrow.id).status == "signed_up"


def test_an_edit_into_the_night_with_a_minor_on_the_shift_is_refused(books, clock) -> None:
    pw = build_patrol_world(books)
    officer = pw.w.actor("officerA2")
    _set_adult_from(books, pw.w.users["v1"], DAY + dt.timedelta(days=400))
    patrols.sign_up(books, pw.w.actor("v1"), pw.shift_id)
    _refused("minor_night_shift", patrols.edit_shift, books, officer, pw.shift_id, ends_at=_at(23))
    assert patrols.get_shift(books, officer, pw.shift_id).version == 1  # nothing changed
    # an edit that stays in the evening is fine; once the minor withdraws, the night is too
    assert patrols.edit_shift(books, officer, pw.shift_id, ends_at=_at(21, 30)).version == 2
    patrols.withdraw(books, pw.w.actor("v1"), pw.shift_id)
    assert patrols.edit_shift(books, officer, pw.shift_id, ends_at=_at(23)).version == 3


def test_a_minor_does_not_lead_a_night_shift(books, clock) -> None:
    pw = build_patrol_world(books)
    officer = pw.w.actor("officerA2")
    _set_adult_from(books, pw.w.users["leader"], DAY + dt.timedelta(days=30))
    _refused("minor_night_shift", patrols.publish_shift, books, officer, post_id=pw.post_id, starts_at=_at(21),
             ends_at=_at(23), needed=1, leader_id=pw.w.users["leader"])
    _refused("minor_night_shift", patrols.publish_series, books, officer, post_id=pw.post_id, start_time="21:00",
             duration_minutes=120, first_day=DAY, needed=1, leader_id=pw.w.users["leader"])
    # the world's evening shift is already led by them: moving it into the night is refused
    _refused("minor_night_shift", patrols.edit_shift, books, officer, pw.shift_id, starts_at=_at(21),
             ends_at=_at(23))
