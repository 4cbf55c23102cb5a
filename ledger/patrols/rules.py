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
- the leader's rotating code lives ``leader_code_ttl_s`` seconds and serves one volunteer.
"""

from __future__ import annotations

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.settings import PatrolRules


def rules_of(books: Books) -> PatrolRules:
    return books.settings.patrols


def round_minutes(raw_seconds: int, step: int = 15) -> int:
    """Whole minutes rounded to the nearest ``step`` (half a step rounds up)."""
    minutes = max(0, raw_seconds) // 60
    return ((minutes * 2 + step) // (2 * step)) * step


def beans_for(minutes: int, beans_per_hour: int) -> int:
    return minutes * beans_per_hour // 60


def check_beans_per_hour(rules: PatrolRules, value: int | None) -> int:
    if value is None:
        return rules.default_beans_per_hour
    if type(value) is not int or not rules.min_beans_per_hour <= value <= rules.max_beans_per_hour:
        raise DomainError(errors.BEANS_PER_HOUR_OUT_OF_LIMITS, minimum=rules.min_beans_per_hour,
                          maximum=rules.max_beans_per_hour)
    return value
