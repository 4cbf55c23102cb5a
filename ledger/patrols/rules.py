"""The patrol rule table and every "may X do Y" of the room, in one place.

Rules (``PatrolRules`` in ``ledger.infra.settings``; an operator overrides them with the ``patrols`` group):

- beans per hour: ``default_beans_per_hour`` unless the officer sets another within
  [``min_beans_per_hour``, ``max_beans_per_hour``]; a shift lasts at most ``max_shift_hours``;
- sign-up closes when the shift starts; a volunteer withdraws up to ``withdraw_cutoff_minutes`` before it;
- check-in from ``early_checkin_minutes`` before the start until the end; check-out until the end plus
  ``grace_minutes``; beyond that, the volunteer is checked out at the end plus grace by the officer;
- service time = min(check-out, end + grace) − max(check-in, start), rounded to the nearest quarter hour
  (7½ minutes and up rounds up); beans = minutes × beans per hour ÷ 60, whole beans, rounded down;
- the award is posted at check-out (rule ``rule:patrol``) unless held for an officer: a proof was the
  post sign with a location only, the time is above ``hold_minutes_over``, the beans above
  ``hold_beans_over``, or the volunteer's patrol beans that day would pass ``volunteer_daily_beans``;
- location: a phone claiming an accuracy worse than ``max_accuracy_m`` is refused; it is inside when its
  distance to the post is at most the radius plus its accuracy (the accuracy counted up to ``accuracy_slack_m``);
- the leader's rotating code lives ``leader_code_ttl_s`` seconds and serves one volunteer;
- minors: a volunteer under 18 on the shift's service day (``users.adult_from``, the day they turn 18, by
  the one Calendar) may not sign up for, nor lead, a night shift: one with any minute between
  ``night_starts_minute`` and ``night_ends_minute`` local time (22:00 to 06:00).
"""

from __future__ import annotations

import datetime as dt

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.settings import Calendar, PatrolRules


def rules_of(books: Books) -> PatrolRules:
    return books.settings.patrols


def round_minutes(raw_seconds: int, step: int = 15) -> int:
    """The time rounded to the nearest ``step`` minutes, in whole minutes: half a step and more rounds up
    (to the quarter hour: 7 min 30 s counts 15 minutes, 7 min 29 s counts none), on the seconds counted."""
    seconds = max(0, int(raw_seconds))
    return (seconds * 2 + step * 60) // (step * 120) * step


def beans_for(minutes: int, beans_per_hour: int) -> int:
    return minutes * beans_per_hour // 60


def check_beans_per_hour(rules: PatrolRules, value: int | None) -> int:
    if value is None:
        return rules.default_beans_per_hour
    if type(value) is not int or not rules.min_beans_per_hour <= value <= rules.max_beans_per_hour:
        raise DomainError(errors.BEANS_PER_HOUR_OUT_OF_LIMITS, minimum=rules.min_beans_per_hour,
                          maximum=rules.max_beans_per_hour)
    return value


def is_night(rules: PatrolRules, calendar: Calendar, starts_at: dt.datetime, ends_at: dt.datetime) -> bool:
    """Whether any minute of [starts_at, ends_at) lies in the night (local wall time; the night of a day
    runs from ``night_starts_minute`` to ``night_ends_minute`` of the next day, or of the same day when the
    start is the earlier)."""
    first = calendar.local(starts_at).date() - dt.timedelta(days=1)
    last = calendar.local(ends_at).date()
    day = first
    while day <= last:
        night_start = calendar.day_start(day) + dt.timedelta(minutes=rules.night_starts_minute)
        night_end = calendar.day_start(day) + dt.timedelta(minutes=rules.night_ends_minute)
        if night_end <= night_start:
            night_end += dt.timedelta(days=1)
        if starts_at < night_end and ends_at > night_start:
            return True
        day += dt.timedelta(days=1)
    return False


def is_minor_on(adult_from: dt.date | None, day: dt.date) -> bool:
    """Under 18 on ``day``: ``adult_from`` is the day they turn 18 (None: an adult, or no birth date known)."""
    return adult_from is not None and day < adult_from
