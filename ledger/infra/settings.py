"""The ledger's settings: ONE typed, frozen ``Settings`` with ONE ``Calendar``, validated when it is built.

Operators write a mapping (``LEDGER_SETTINGS`` in the app configuration); ``Settings.from_mapping`` turns
it into frozen dataclasses at start-up and refuses unknown keys, wrong types and out-of-range values with
a ``SettingsError`` naming the key, so a typo stops the server instead of being silently ignored. The
mapping keeps the shape operators already write:

- ``earning``: a mapping of ``EarningRules`` fields (caps, tiers, thresholds);
- ``rate_limits``: a mapping of ``RateLimits`` fields;
- ``utc_offset_hours`` and ``week_starts_on``: the district's ``Calendar``;
- every ``RedemptionLimits`` and ``Retention`` field, ``rmb_per_bean`` and ``code_issuer`` at the top level.

Every "today", "this month" and "this week" of the programme (earning caps, redemption limits, till
takings, settlement periods, statements, leaderboards, dashboards, the pages) comes from
``Settings.calendar``: changing ``utc_offset_hours`` moves them all together. Instants are UTC everywhere
else (the database, the journal, the API); the calendar only decides where local days begin and how a
moment is shown.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Optional

UTC = dt.timezone.utc


class SettingsError(ValueError):
    """A setting is unknown, of the wrong type or out of range: raised at start-up, before serving."""


# --- the calendar -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Calendar:
    """The district's local time: a fixed offset from UTC (Kunming: UTC+8, no daylight saving).

    Every method takes and returns aware datetimes; bounds are UTC instants, half-open ``[start, end)``."""

    utc_offset_hours: int = 8
    week_starts_on: int = 0  # 0 Monday ... 6 Sunday

    @property
    def tz(self) -> dt.timezone:
        return dt.timezone(dt.timedelta(hours=self.utc_offset_hours))

    @property
    def label(self) -> str:
        """The offset as people read it: ``UTC+08:00``."""
        return f"UTC{self.utc_offset_hours:+03d}:00"

    def local(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` in local time. A naive datetime is refused: nobody can tell which instant it is."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("a naive datetime has no instant; attach a time zone (the database gives UTC)")
        return moment.astimezone(self.tz)

    def today(self, now: dt.datetime) -> dt.date:
        return self.local(now).date()

    def day_start(self, day: dt.date) -> dt.datetime:
        """The UTC instant the local ``day`` begins."""
        return dt.datetime.combine(day, dt.time(0), self.tz).astimezone(UTC)

    def day_bounds(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        day = self.today(now)
        return self.day_start(day), self.day_start(day + dt.timedelta(days=1))

    def month_of(self, now: dt.datetime) -> tuple[int, int]:
        local = self.local(now)
        return local.year, local.month

    def month_bounds(self, year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
        start = dt.date(year, month, 1)
        end = dt.date(year + (month == 12), month % 12 + 1, 1)
        return self.day_start(start), self.day_start(end)

    def week_start(self, day: dt.date) -> dt.date:
        """The first local day of the week holding ``day``."""
        return day - dt.timedelta(days=(day.weekday() - self.week_starts_on) % 7)

    def format(self, moment: dt.datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return self.local(moment).strftime(fmt)

    def parse_local(self, moment: dt.datetime) -> dt.datetime:
        """A datetime typed on a page: a naive one is local time (what the person sees on the wall)."""
        return moment.replace(tzinfo=self.tz) if moment.tzinfo is None else moment


# --- the rule sets --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EarningRules:
    tip_tiers: Mapping[str, int] = field(
        default_factory=lambda: {"low": 10, "medium": 30, "high": 80, "critical": 200})
    patrol_beans_per_hour: int = 10
    patrol_cap_beans: int = 40
    patrol_max_hours: int = 12
    volunteer_daily_cap: int = 300
    volunteer_monthly_cap: int = 1500
    officer_daily_cap: int = 2000
    approval_threshold: int = 100
    backfill_days: int = 7
    max_claim_age_days: int = 90
    approval_timeout_s: int = 14 * 24 * 3600
    tip_categories: tuple[str, ...] = ("theft", "fraud", "drugs", "fire_hazard", "traffic", "dispute",
                                       "suspicious", "other")


@dataclass(frozen=True)
class RedemptionLimits:
    redemption_hold_threshold: int = 200  # above this many beans a redemption waits for the volunteer
    redemption_hold_timeout_s: int = 600  # unconfirmed holds void themselves after this
    volunteer_daily_limit: Optional[int] = 1000  # beans one wallet may redeem per local day (None: no limit)
    merchant_daily_limit: Optional[int] = None  # default for merchants without their own daily_limit_beans
    refund_window_days: int = 14
    max_pin_tries: int = 5
    # offline codes signed by a registered phone (ledger.redemption.devices), per wallet and local day
    offline_daily_beans: int = 200  # beans all of a wallet's offline codes may pay per day
    offline_daily_codes: int = 5  # offline codes a wallet may spend per day
    devices_per_user: int = 3  # phones with an active key per volunteer


@dataclass(frozen=True)
class RateLimits:
    token_per_ip: int = 60  # access tokens issued (or tried) per source address per minute
    token_per_user: int = 20  # per username per minute
    code_per_user: int = 30  # wallet payment codes per user per minute
    failed_sign_ins_per_ip: int = 20  # failed sign-ins from one address per throttle window (15 minutes)
    failed_pin_cards_per_till: int = 3  # card holders with a wrong PIN at one till per throttle window
    signup_per_ip: int = 10  # volunteer sign-ups per source address per minute
    signup_per_phone: int = 3  # per mobile number per minute
    reset_per_ip: int = 10  # password resets with a code, per source address per minute
    reset_per_phone: int = 5  # per mobile number per minute
    phone_reveals_per_officer: int = 30  # residents' call-back numbers one officer reveals per hour


@dataclass(frozen=True)
class PatrolRules:
    """The patrol rule table (``ledger.patrols.rules`` says what each does)."""

    default_beans_per_hour: int = 10
    min_beans_per_hour: int = 0
    max_beans_per_hour: int = 30
    max_shift_hours: int = 12
    withdraw_cutoff_minutes: int = 120
    early_checkin_minutes: int = 30
    grace_minutes: int = 30
    rounding_minutes: int = 15
    hold_minutes_over: int = 240
    hold_beans_over: int = 60
    volunteer_daily_beans: int = 120
    max_accuracy_m: int = 100
    accuracy_slack_m: int = 30
    leader_code_ttl_s: int = 30
    series_horizon_days: int = 14
    # night, local wall time in minutes after midnight: a shift with any minute from night_starts_minute to
    # night_ends_minute (across midnight) is a night shift, which a minor may not take (22:00 to 06:00)
    night_starts_minute: int = 22 * 60
    night_ends_minute: int = 6 * 60
    # the coverage board names who signed up and has not checked in this long after the start
    late_after_minutes: int = 10
    reminder_minutes: int = 180


@dataclass(frozen=True)
class RadarRules:
    """The police radar's rules (``ledger.radar``)."""

    verify_grace_s: int = 3 * 24 * 3600  # an ended notice's unpaid bounty is released this long after its end
    reports_per_address: int = 5  # residents' online reports per address per hour
    reports_per_phone: int = 3  # per phone number per hour
    answer_service_minutes: int = 30  # a verified answer's service record (志愿服务记录): this many minutes


@dataclass(frozen=True)
class NotifyRules:
    """The notification outbox (``ledger.notify``): retries, retention and the SMS channel (off by default)."""

    # the SMS provider's URL (an HTTP POST of JSON, docs/notifications.md); None: no SMS is ever sent
    sms_url: Optional[str] = None
    sms_topics: tuple[str, ...] = ("patrol_reminder", "shift_changed")  # which notifications also go by SMS
    sms_timeout_s: int = 5
    max_attempts: int = 6  # then the delivery is marked failed (the inbox still has it)
    retry_base_s: int = 30  # the first retry after this, then doubling
    retry_max_s: int = 3600
    lease_s: int = 120  # a send not finished in this time (a crashed worker) is tried again
    retention_days: int = 180  # notifications and their delivery records are deleted after this


@dataclass(frozen=True)
class Retention:
    idempotency_retention_days: int = 30  # a retry with the same Idempotency-Key gets the stored answer this long
    spent_code_retention_s: int = 86_400  # spent wallet codes are forgotten after this (at least a code's life)
    # tips' text and location (and, when they come, photos and report contents) are erased this long after
    # their case closes (the claim verified or rejected): docs/people.md, "Personal data"
    tip_retention_days: int = 730


# ranges checked at start-up: (minimum, maximum or None); every other int must be >= 0
_RANGES: dict[str, tuple[int, int | None]] = {
    "utc_offset_hours": (-12, 14),
    "week_starts_on": (0, 6),
    "rmb_per_bean": (1, None),
    "max_pin_tries": (1, None),
    "redemption_hold_timeout_s": (1, None),
    "idempotency_retention_days": (1, None),
    "spent_code_retention_s": (1, None),
    "tip_retention_days": (30, None),  # housekeeping refuses less than a wallet code's lifetime
    "patrol_max_hours": (1, 24),
    "max_attempts": (1, 100),
    "retry_base_s": (1, None),
    "sms_timeout_s": (1, 60),
    "lease_s": (10, None),
    "retention_days": (1, None),
    "night_starts_minute": (0, 1439),
    "night_ends_minute": (0, 1439),
}


@dataclass(frozen=True)
class Settings:
    calendar: Calendar = field(default_factory=Calendar)
    earning: EarningRules = field(default_factory=EarningRules)
    redemption: RedemptionLimits = field(default_factory=RedemptionLimits)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    retention: Retention = field(default_factory=Retention)
    patrols: PatrolRules = field(default_factory=PatrolRules)
    radar: RadarRules = field(default_factory=RadarRules)
    notify: NotifyRules = field(default_factory=NotifyRules)
    rmb_per_bean: int = 1  # one bean is this many RMB owed to a merchant at settlement
    code_issuer: str = "goldbean"  # the ``iss`` of wallet codes

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None = None) -> Settings:
        """Settings from an operator's mapping (see the module doc); refuses anything it does not know."""
        return cls().with_overrides(mapping or {})

    def with_overrides(self, mapping: Mapping[str, Any]) -> Settings:
        """A copy with ``mapping`` applied over these settings, validated the same way."""
        if not isinstance(mapping, Mapping):
            raise SettingsError(f"ledger settings must be a mapping, not {type(mapping).__name__}")
        groups: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for key, value in mapping.items():
            if key in ("earning", "rate_limits", "patrols", "radar", "notify"):
                if not isinstance(value, Mapping):
                    raise SettingsError(f"setting {key!r} must be a mapping of its fields")
                groups.setdefault(key, {}).update(value)
            elif key in _TOP_LEVEL:
                groups.setdefault(_TOP_LEVEL[key], {})[key] = value
            elif key in ("rmb_per_bean", "code_issuer"):
                top[key] = value
            else:
                raise SettingsError(f"unknown setting {key!r}; known: {', '.join(sorted(_KNOWN))}")
        changed = {group: _apply(getattr(self, group), values, group) for group, values in groups.items()}
        for key, value in top.items():
            _check(key, value, _TYPES[key])
        return replace(self, **changed, **top)

    def as_mapping(self) -> dict[str, Any]:
        """The settings written the way operators write them (for the admin page and the docs)."""
        out: dict[str, Any] = {"earning": _fields_of(self.earning), "rate_limits": _fields_of(self.rate_limits),
                               "patrols": _fields_of(self.patrols), "radar": _fields_of(self.radar),
                               "notify": _fields_of(self.notify)}
        for group in ("calendar", "redemption", "retention"):
            out.update(_fields_of(getattr(self, group)))
        out.update(rmb_per_bean=self.rmb_per_bean, code_issuer=self.code_issuer)
        return out


def _fields_of(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


_GROUP_CLASSES: dict[str, type] = {"calendar": Calendar, "earning": EarningRules, "redemption": RedemptionLimits,
                                   "rate_limits": RateLimits, "retention": Retention,
                                   "patrols": PatrolRules, "radar": RadarRules, "notify": NotifyRules}
_TOP_LEVEL = {f.name: group for group in ("calendar", "redemption", "retention")
              for f in fields(_GROUP_CLASSES[group])}
_TYPES: dict[str, Any] = {"rmb_per_bean": int, "code_issuer": str}
_KNOWN = set(_TOP_LEVEL) | {"earning", "rate_limits", "patrols", "radar", "notify"} | set(_TYPES)


def _apply(current: Any, values: Mapping[str, Any], group: str) -> Any:
    hints = typing.get_type_hints(type(current))
    known = {f.name for f in fields(current)}
    for key, value in values.items():
        if key not in known:
            raise SettingsError(f"unknown setting {group}.{key!s}; known: {', '.join(sorted(known))}")
        _check(key, value, hints[key])
    converted = {k: (tuple(v) if k in ("tip_categories", "sms_topics") else dict(v) if k == "tip_tiers" else v)
                 for k, v in values.items()}
    return replace(current, **converted)


def _check(key: str, value: Any, hint: Any) -> None:
    """Refuse ``value`` unless it has the type ``hint`` names and lies in the key's range."""
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
    if optional:
        if value is None:
            return
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    origin = typing.get_origin(hint)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"setting {key!r} must be a whole number, not {value!r}")
        low, high = _RANGES.get(key, (0, None))
        if value < low or (high is not None and value > high):
            raise SettingsError(f"setting {key!r} must be between {low} and {high if high is not None else 'any'}"
                                f", not {value!r}")
    elif hint is str:
        if not isinstance(value, str) or not value:
            raise SettingsError(f"setting {key!r} must be non-empty text, not {value!r}")
    elif origin is tuple:
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple) or not value or \
                not all(isinstance(v, str) and v for v in value):
            raise SettingsError(f"setting {key!r} must be a non-empty list of names, not {value!r}")
    elif origin is Mapping:
        if not isinstance(value, Mapping) or not value or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
                for k, v in value.items()):
            raise SettingsError(f"setting {key!r} must map names to positive whole numbers, not {value!r}")
    else:  # pragma: no cover - a field type this module does not know how to check
        raise SettingsError(f"setting {key!r} has no validator")
