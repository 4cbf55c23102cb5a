"""Posts, shifts (one-off and recurring) and sign-ups.

Every use case takes the ``Books`` and the acting ``Actor`` and opens exactly one transaction.

Locks: signing up locks the shift row, then the volunteer's user row, so that two volunteers racing for
the last place, or one volunteer racing into two overlapping shifts, cannot both pass the count.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import Actor, ancestors, descendants, scope_units
from ledger.access.models import OrgUnit, RoleGrant, User
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.infra.settings import Calendar
from ledger.patrols import codes
from ledger.patrols.models import PatrolPost, PatrolShift, PatrolSignup, ShiftSeries
from ledger.patrols.reminders import tell_changed_in
from ledger.patrols.rules import (
    check_beans_per_hour,
    is_minor_on,
    is_night,
    rules_of,
)

POST_LEVELS = ("community", "group", "building")
# sign-ups that hold a place on the shift
HOLDING = ("pending", "signed_up", "checked_in", "checked_out")


@dataclass(frozen=True)
class PostView:
    id: int
    org_unit_id: int
    org_unit: str
    name: str
    latitude: float
    longitude: float
    radius_m: int
    sign_serial: int
    active: bool

    @classmethod
    def of(cls, p: PatrolPost, unit_name: str) -> PostView:
        return cls(p.id, p.org_unit_id, unit_name, p.name, p.latitude_e6 / 1e6, p.longitude_e6 / 1e6, p.radius_m,
                   p.sign_serial, p.active)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShiftView:
    id: int
    post_id: int
    post_name: str
    org_unit_id: int
    series_id: int | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    service_day: dt.date
    needed: int
    taken: int
    beans_per_hour: int
    insurance_required: bool
    leader_id: int | None
    status: str
    version: int
    # the actor's own sign-up, if any, and once checked out what it counted
    my_status: str | None = None
    changed_since_signup: bool = False
    my_minutes: int | None = None
    my_beans: int | None = None
    my_attendance: str | None = None
    my_hold_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- helpers --------------------------------------------------------------------------------------------

def service_day(starts_at: dt.datetime, calendar: Calendar) -> dt.date:
    """The district's local date a shift counts on: the day it started (a shift crossing midnight included)."""
    return calendar.today(utc_from_db(starts_at))


def _id(value: Any) -> int | None:
    return value if type(value) is int and 0 < value < 2**63 else None


def get_post_in(s: Session, post_id: Any, *, lock: bool = False) -> PatrolPost:
    post = s.get(PatrolPost, post_id, with_for_update=lock) if _id(post_id) else None
    if post is None:
        raise DomainError(errors.POST_NOT_FOUND, post_id=post_id)
    return post


def get_shift_and_post_in(s: Session, shift_id: Any) -> tuple[PatrolShift, PatrolPost]:
    """The shift and its post in one round trip (the check-in path)."""
    found = s.execute(select(PatrolShift, PatrolPost).join(PatrolPost, PatrolPost.id == PatrolShift.post_id)
                      .where(PatrolShift.id == shift_id)).first() if _id(shift_id) else None
    if found is None:
        raise DomainError(errors.SHIFT_NOT_FOUND, shift_id=shift_id)
    return found[0], found[1]


def get_shift_in(s: Session, shift_id: Any, *, lock: bool = False) -> PatrolShift:
    shift = s.get(PatrolShift, shift_id, with_for_update=lock) if _id(shift_id) else None
    if shift is None:
        raise DomainError(errors.SHIFT_NOT_FOUND, shift_id=shift_id)
    return shift


def community_of(s: Session, org_unit_id: int) -> int:
    for unit_id in ancestors(s, org_unit_id):
        if s.scalar(select(OrgUnit.level).where(OrgUnit.id == unit_id)) == "community":
            return unit_id
    raise DomainError(errors.NOT_A_COMMUNITY, org_unit_id=org_unit_id)


def _taken(s: Session, shift_id: int) -> int:
    return int(s.scalar(select(func.count(PatrolSignup.id)).where(
        PatrolSignup.shift_id == shift_id, PatrolSignup.status.in_(HOLDING))) or 0)


def shift_view(s: Session, shift: PatrolShift, actor: Actor | None = None, *, calendar: Calendar) -> ShiftView:
    post = s.get(PatrolPost, shift.post_id)
    mine = None
    if actor is not None:
        mine = s.scalar(select(PatrolSignup).where(PatrolSignup.shift_id == shift.id,
                                                   PatrolSignup.volunteer_id == actor.user_id))
    changed = mine is not None and mine.status in HOLDING and mine.seen_version < shift.version
    return ShiftView(shift.id, shift.post_id, post.name, post.org_unit_id, shift.series_id,
                     utc_from_db(shift.starts_at), utc_from_db(shift.ends_at), service_day(shift.starts_at, calendar),
                     shift.needed, _taken(s, shift.id), shift.beans_per_hour, shift.insurance_required,
                     shift.leader_id, shift.status, shift.version, mine.status if mine else None, changed,
                     *((mine.minutes, mine.beans, mine.attendance, mine.hold_reason) if mine else ()))


def _check_leader(s: Session, books: Books, leader_id: Any, starts_at: dt.datetime,
                  ends_at: dt.datetime) -> int | None:
    if leader_id is None:
        return None
    user = s.get(User, leader_id) if _id(leader_id) else None
    roles = set(s.scalars(select(RoleGrant.role).where(RoleGrant.user_id == leader_id))) if user else set()
    if user is None or not user.active or not roles & {"volunteer", "leader"}:
        raise DomainError(errors.NOT_A_VOLUNTEER, "the team leader must be an active volunteer or leader",
                          volunteer_id=leader_id)
    _refuse_minor_at_night(books, user.adult_from, starts_at, ends_at)
    return user.id


def _refuse_minor_at_night(books: Books, adult_from: dt.date | None, starts_at: dt.datetime,
                           ends_at: dt.datetime) -> None:
    """A volunteer under 18 on the shift's service day does not take a night shift (``PatrolRules``)."""
    if is_minor_on(adult_from, service_day(starts_at, books.calendar)) and is_night(
            rules_of(books), books.calendar, utc_from_db(starts_at), utc_from_db(ends_at)):
        raise DomainError(errors.MINOR_NIGHT_SHIFT)


def _minors_on(s: Session, books: Books, shift: PatrolShift, starts_at: dt.datetime, ends_at: dt.datetime) -> int:
    """How many volunteers holding a place on ``shift`` (or leading it) would be minors on a night shift
    at these times."""
    if not is_night(rules_of(books), books.calendar, starts_at, ends_at):
        return 0
    day = service_day(starts_at, books.calendar)
    holders = select(PatrolSignup.volunteer_id).where(PatrolSignup.shift_id == shift.id,
                                                      PatrolSignup.status.in_(HOLDING))
    ids = set(s.scalars(holders)) | ({shift.leader_id} if shift.leader_id else set())
    return sum(1 for adult_from in s.scalars(select(User.adult_from).where(User.id.in_(ids)))
               if is_minor_on(adult_from, day))


def _check_times(rules: Any, starts_at: dt.datetime, ends_at: dt.datetime) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise DomainError(errors.VALIDATION_FAILED, "times carry their time zone")
    if not ends_at > starts_at or ends_at - starts_at > dt.timedelta(hours=rules.max_shift_hours):
        raise DomainError(errors.VALIDATION_FAILED,
                          f"a shift ends after it starts and lasts at most {rules.max_shift_hours} hours")
    if ends_at - starts_at < dt.timedelta(minutes=15):
        raise DomainError(errors.VALIDATION_FAILED, "a shift lasts at least 15 minutes")


def _check_needed(needed: Any) -> int:
    if type(needed) is not int or not 1 <= needed <= 500:
        raise DomainError(errors.VALIDATION_FAILED, "needed is 1 to 500")
    return needed


# --- posts ------------------------------------------------------------------------------------------------

def create_post(books: Books, actor: Actor, *, org_unit_id: int, name: str, latitude: float, longitude: float,
                radius_m: int = 50) -> PostView:
    """An officer in scope lays out a patrol post on a community, resident group or building."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise DomainError(errors.VALIDATION_FAILED, "a post has a name of 1 to 100 characters")
    if not (isinstance(latitude, (int, float)) and isinstance(longitude, (int, float))
            and -90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise DomainError(errors.VALIDATION_FAILED, "latitude -90..90, longitude -180..180")
    if type(radius_m) is not int or not 10 <= radius_m <= 2000:
        raise DomainError(errors.VALIDATION_FAILED, "radius_m is 10 to 2000 metres")

    def work(s: Session) -> PostView:
        unit = s.get(OrgUnit, org_unit_id) if _id(org_unit_id) else None
        if unit is None:
            raise DomainError(errors.ORG_UNIT_NOT_FOUND, org_unit_id=org_unit_id)
        if unit.level not in POST_LEVELS:
            raise DomainError(errors.NOT_A_POST_UNIT, org_unit_id=org_unit_id)
        policy.require_officer_in_scope(s, actor, unit.id)
        post = PatrolPost(org_unit_id=unit.id, name=name, latitude_e6=round(latitude * 1e6),
                          longitude_e6=round(longitude * 1e6), radius_m=radius_m, sign_serial=1, active=True,
                          created_by_id=actor.user_id)
        s.add(post)
        s.flush()
        return PostView.of(post, unit.name)

    return books.run(work)


def _unit_name(s: Session, unit_id: int) -> str:
    return s.scalar(select(OrgUnit.name).where(OrgUnit.id == unit_id)) or ""


def list_posts(books: Books, actor: Actor) -> list[PostView]:
    """The posts in the officer's scope (everyone may see posts: their places are printed on the signs)."""

    def work(s: Session) -> list[PostView]:
        q = select(PatrolPost).where(PatrolPost.active.is_(True)).order_by(PatrolPost.id)
        units = scope_units(s, actor, "officer") if actor.has_role("officer") else _home_units(s, actor)
        if units is not None:
            q = q.where(PatrolPost.org_unit_id.in_(units))
        return [PostView.of(p, _unit_name(s, p.org_unit_id)) for p in s.scalars(q.limit(1000))]

    return books.run(work, readonly=True)


def _home_units(s: Session, actor: Actor) -> set[int]:
    """Everything in the communities a volunteer belongs to."""
    out: set[int] = set()
    for unit in actor.org_units_for("volunteer") | actor.org_units_for("leader"):
        try:
            out |= descendants(s, community_of(s, unit))
        except DomainError:
            out |= descendants(s, unit)
    return out


def post_sign(books: Books, actor: Actor, post_id: int, *, reprint: bool = False) -> dict[str, Any]:
    """The printed post sign's code; ``reprint`` retires every earlier sign of the post (a new serial)."""

    def work(s: Session) -> dict[str, Any]:
        post = get_post_in(s, post_id, lock=reprint)
        policy.require_officer_in_scope(s, actor, post.org_unit_id)
        if reprint:
            post.sign_serial += 1
            s.flush()
        return {"post_id": post.id, "name": post.name, "serial": post.sign_serial,
                "code": codes.issue_post_sign(books, post.id, post.sign_serial)}

    return books.run(work, readonly=not reprint)


# --- shifts -----------------------------------------------------------------------------------------------

def publish_shift(books: Books, actor: Actor, *, post_id: int, starts_at: dt.datetime, ends_at: dt.datetime,
                  needed: int, beans_per_hour: int | None = None, insurance_required: bool = False,
                  leader_id: int | None = None) -> ShiftView:
    """An officer in scope publishes one shift at a post."""
    rules = rules_of(books)
    _check_times(rules, starts_at, ends_at)
    _check_needed(needed)
    rate = check_beans_per_hour(rules, beans_per_hour)

    def work(s: Session) -> ShiftView:
        post = get_post_in(s, post_id)
        policy.require_officer_in_scope(s, actor, post.org_unit_id)
        shift = PatrolShift(post_id=post.id, starts_at=starts_at, ends_at=ends_at, needed=needed,
                            beans_per_hour=rate, insurance_required=bool(insurance_required),
                            leader_id=_check_leader(s, books, leader_id, starts_at, ends_at), status="open", version=1,
                            created_by_id=actor.user_id)
        s.add(shift)
        s.flush()
        return shift_view(s, shift, calendar=books.calendar)

    return books.run(work)


@dataclass(frozen=True)
class SeriesView:
    id: int
    post_id: int
    start_time: str
    duration_minutes: int
    weekdays: int
    first_day: dt.date
    last_day: dt.date | None
    needed: int
    beans_per_hour: int
    insurance_required: bool
    leader_id: int | None
    shifts_created: int


def publish_series(books: Books, actor: Actor, *, post_id: int, start_time: str, duration_minutes: int,
                   first_day: dt.date, last_day: dt.date | None = None, weekdays: int = 127, needed: int = 1,
                   beans_per_hour: int | None = None, insurance_required: bool = False,
                   leader_id: int | None = None) -> SeriesView:
    """A recurring shift ("every evening 19:00–21:00"): one definition, expanded day by day up to
    ``series_horizon_days`` ahead (the worker's ``extend_series`` keeps the horizon)."""
    rules = rules_of(books)
    try:
        hh, mm = start_time.split(":")
        start_minute = int(hh) * 60 + int(mm)
        if len(start_time) != 5 or not 0 <= start_minute < 1440:
            raise ValueError
    except (ValueError, AttributeError):
        raise DomainError(errors.VALIDATION_FAILED, "start_time is HH:MM, Beijing time") from None
    if type(duration_minutes) is not int or not 15 <= duration_minutes <= rules.max_shift_hours * 60:
        raise DomainError(errors.VALIDATION_FAILED, "duration_minutes is 15 to the longest shift")
    if type(weekdays) is not int or not 1 <= weekdays <= 127:
        raise DomainError(errors.VALIDATION_FAILED, "weekdays is a bit mask 1..127 (bit 0 Monday)")
    if last_day is not None and last_day < first_day:
        raise DomainError(errors.VALIDATION_FAILED, "last_day is on or after first_day")
    _check_needed(needed)
    rate = check_beans_per_hour(rules, beans_per_hour)

    def work(s: Session) -> SeriesView:
        post = get_post_in(s, post_id)
        policy.require_officer_in_scope(s, actor, post.org_unit_id)
        series = ShiftSeries(post_id=post.id, start_minute=start_minute, duration_minutes=duration_minutes,
                             weekdays=weekdays, first_day=first_day, last_day=last_day, needed=needed,
                             beans_per_hour=rate, insurance_required=bool(insurance_required),
                             leader_id=_check_leader(s, books, leader_id, *_first_times(books, first_day,
                                                                                     start_minute, duration_minutes)),
                             created_by_id=actor.user_id)
        s.add(series)
        s.flush()
        made = _expand(s, series, books.now(), rules.series_horizon_days, books.calendar)
        return SeriesView(series.id, post.id, start_time, duration_minutes, weekdays, first_day, last_day, needed,
                          rate, bool(insurance_required), series.leader_id, made)

    return books.run(work)


def _first_times(books: Books, day: dt.date, start_minute: int, minutes: int) -> tuple[dt.datetime, dt.datetime]:
    """A series' first shift (a leader who is an adult on the first day is one on every later day)."""
    start = books.calendar.day_start(day) + dt.timedelta(minutes=start_minute)
    return start, start + dt.timedelta(minutes=minutes)


def _expand(s: Session, series: ShiftSeries, now: dt.datetime, horizon_days: int, calendar: Calendar) -> int:
    """Create the series' missing shifts from today (local) up to the horizon; returns how many."""
    today = calendar.today(now)
    day = max(series.first_day, today)
    until = today + dt.timedelta(days=horizon_days)
    if series.last_day is not None:
        until = min(until, series.last_day)
    have = {utc_from_db(t) for t in s.scalars(select(PatrolShift.starts_at).where(
        PatrolShift.series_id == series.id, PatrolShift.starts_at >= dt.datetime.combine(
            day, dt.time(), calendar.tz)))}
    made = 0
    while day <= until:
        if series.weekdays >> day.weekday() & 1:
            start = dt.datetime.combine(day, dt.time(), calendar.tz) + dt.timedelta(minutes=series.start_minute)
            start = start.astimezone(dt.timezone.utc)
            if start not in have and start > now:
                s.add(PatrolShift(post_id=series.post_id, series_id=series.id, starts_at=start,
                                  ends_at=start + dt.timedelta(minutes=series.duration_minutes),
                                  needed=series.needed, beans_per_hour=series.beans_per_hour,
                                  insurance_required=series.insurance_required, leader_id=series.leader_id,
                                  status="open", version=1, created_by_id=series.created_by_id))
                made += 1
        day += dt.timedelta(days=1)
    s.flush()
    return made


def extend_series(books: Books) -> int:
    """The worker's job: every series expanded up to the horizon. Returns how many shifts it added."""
    rules = rules_of(books)

    def work(s: Session) -> int:
        today = books.calendar.today(books.now())
        live = s.scalars(select(ShiftSeries).where(
            (ShiftSeries.last_day.is_(None)) | (ShiftSeries.last_day >= today)).order_by(ShiftSeries.id))
        return sum(_expand(s, series, books.now(), rules.series_horizon_days, books.calendar) for series in live)

    return books.run(work)


def edit_shift(books: Books, actor: Actor, shift_id: int, *, starts_at: dt.datetime | None = None,
               ends_at: dt.datetime | None = None, needed: int | None = None, beans_per_hour: int | None = None,
               leader_id: int | None = None, cancel: bool = False) -> ShiftView:
    """An officer in scope edits or cancels a shift; its version goes up, so every volunteer signed up sees
    ``changed_since_signup`` until they look again, and is told in their inbox (``reminders``). A shift
    already under way keeps its times and rate."""
    rules = rules_of(books)

    def work(s: Session) -> ShiftView:
        shift = get_shift_in(s, shift_id, lock=True)
        post = s.get(PatrolPost, shift.post_id)
        policy.require_officer_in_scope(s, actor, post.org_unit_id)
        if shift.status == "cancelled":
            raise DomainError(errors.SHIFT_CANCELLED)
        started = utc_from_db(shift.starts_at) <= books.now()
        if started and (starts_at or ends_at or beans_per_hour is not None):
            raise DomainError(errors.SIGNUP_CLOSED, "the shift has started: its times and rate stay")
        new_start = starts_at or utc_from_db(shift.starts_at)
        new_end = ends_at or utc_from_db(shift.ends_at)
        _check_times(rules, new_start, new_end)
        if needed is not None:
            _check_needed(needed)
            shift.needed = needed
        if beans_per_hour is not None:
            shift.beans_per_hour = check_beans_per_hour(rules, beans_per_hour)
        if leader_id is not None:
            shift.leader_id = _check_leader(s, books, leader_id, new_start, new_end)
        if (starts_at or ends_at) and not cancel and _minors_on(s, books, shift, new_start, new_end):
            raise DomainError(errors.MINOR_NIGHT_SHIFT, "volunteers under 18 are on this shift: these times "
                              "would make it a night shift")
        shift.starts_at, shift.ends_at = new_start, new_end
        if cancel:
            shift.status = "cancelled"
        shift.version += 1
        s.flush()
        tell_changed_in(s, books, shift, post, cancelled=cancel)  # the volunteers signed up are told
        return shift_view(s, shift, calendar=books.calendar)

    return books.run(work)


def list_shifts(books: Books, actor: Actor, *, mine: bool = False, limit: int = 100) -> list[ShiftView]:
    """Open shifts still to come (a volunteer's own community first, then by start), or with ``mine`` the
    actor's own sign-ups (past ones included, newest first). Officers see every shift in their scope."""

    def work(s: Session) -> list[ShiftView]:
        now = books.now()
        if mine:
            q = (select(PatrolShift).join(PatrolSignup, PatrolSignup.shift_id == PatrolShift.id)
                 .where(PatrolSignup.volunteer_id == actor.user_id).order_by(PatrolShift.starts_at.desc()))
            return [shift_view(s, t, actor, calendar=books.calendar) for t in s.scalars(q.limit(max(1, min(limit, 500))))]
        q = (select(PatrolShift).join(PatrolPost, PatrolPost.id == PatrolShift.post_id)
             .where(PatrolShift.ends_at > now, PatrolShift.status == "open").order_by(PatrolShift.starts_at))
        if actor.has_role("officer"):
            units = scope_units(s, actor, "officer")
            if units is not None:
                q = q.where(PatrolPost.org_unit_id.in_(units))
        rows = [shift_view(s, t, actor, calendar=books.calendar) for t in s.scalars(q.limit(2000))]
        home = _home_units(s, actor)
        rows.sort(key=lambda v: (v.org_unit_id not in home, v.starts_at, v.id))
        return rows[:max(1, min(limit, 500))]

    return books.run(work, readonly=True)


def get_shift(books: Books, actor: Actor, shift_id: int) -> ShiftView:
    return books.run(lambda s: shift_view(s, get_shift_in(s, shift_id), actor, calendar=books.calendar), readonly=True)


# --- sign-ups ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignupView:
    id: int
    shift_id: int
    volunteer_id: int
    volunteer_name: str
    status: str
    checked_in_at: dt.datetime | None
    check_in_proof: str | None
    checked_out_at: dt.datetime | None
    check_out_proof: str | None
    recorded_by_id: int | None
    minutes: int | None
    beans: int | None
    attendance: str | None
    hold_reason: str | None
    verified_by_id: int | None

    @classmethod
    def of(cls, s: Session, r: PatrolSignup, name: str | None = None) -> SignupView:
        if name is None:
            name = s.scalar(select(User.display_name).where(User.id == r.volunteer_id)) or ""
        return cls(r.id, r.shift_id, r.volunteer_id, name, r.status, utc_from_db(r.checked_in_at),
                   r.check_in_proof, utc_from_db(r.checked_out_at), r.check_out_proof, r.recorded_by_id, r.minutes,
                   r.beans, r.attendance, r.hold_reason, r.verified_by_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lock_user(s: Session, user_id: int) -> dt.date | None:
    """Lock the volunteer's row; returns the day they turn 18 (None: adult, or not known)."""
    return s.execute(select(User.adult_from).where(User.id == user_id).with_for_update()).scalar()


def _overlapping(s: Session, volunteer_id: int, shift: PatrolShift) -> int | None:
    return s.scalar(select(PatrolShift.id).join(PatrolSignup, PatrolSignup.shift_id == PatrolShift.id).where(
        PatrolSignup.volunteer_id == volunteer_id, PatrolSignup.status.in_(HOLDING),
        PatrolShift.id != shift.id, PatrolShift.status == "open",
        and_(PatrolShift.starts_at < shift.ends_at, PatrolShift.ends_at > shift.starts_at)).limit(1))


def sign_up(books: Books, actor: Actor, shift_id: int) -> SignupView:
    """A volunteer takes a place on an open shift that has not started. A shift that requires accident
    insurance holds the sign-up (``pending``) until an officer confirms it; the place is kept meanwhile."""
    policy.require_volunteer(actor)

    def work(s: Session) -> SignupView:
        shift = get_shift_in(s, shift_id, lock=True)  # serialises the head count
        if shift.status != "open":
            raise DomainError(errors.SHIFT_CANCELLED)
        if utc_from_db(shift.starts_at) <= books.now():
            raise DomainError(errors.SIGNUP_CLOSED)
        adult_from = _lock_user(s, actor.user_id)  # serialises one volunteer's overlapping sign-ups
        _refuse_minor_at_night(books, adult_from, shift.starts_at, shift.ends_at)
        row = s.scalar(select(PatrolSignup).where(PatrolSignup.shift_id == shift.id,
                                                  PatrolSignup.volunteer_id == actor.user_id))
        if row is not None and row.status in HOLDING:
            raise DomainError(errors.ALREADY_SIGNED_UP, status=row.status)
        if _overlapping(s, actor.user_id, shift) is not None:
            raise DomainError(errors.SHIFT_OVERLAPS)
        if _taken(s, shift.id) >= shift.needed:
            raise DomainError(errors.SHIFT_FULL, needed=shift.needed)
        status = "pending" if shift.insurance_required else "signed_up"
        if row is None:
            row = PatrolSignup(shift_id=shift.id, volunteer_id=actor.user_id, status=status)
            s.add(row)
        row.status, row.signed_up_at, row.seen_version, row.withdrawn_at = status, books.now(), shift.version, None
        s.flush()
        return SignupView.of(s, row)

    return books.run(work)


def withdraw(books: Books, actor: Actor, shift_id: int) -> SignupView:
    """A volunteer gives their place back, up to the cut-off before the shift."""
    rules = rules_of(books)

    def work(s: Session) -> SignupView:
        shift = get_shift_in(s, shift_id, lock=True)
        row = s.scalar(select(PatrolSignup).where(PatrolSignup.shift_id == shift.id,
                                                  PatrolSignup.volunteer_id == actor.user_id).with_for_update())
        if row is None or row.status not in ("pending", "signed_up"):
            raise DomainError(errors.NOT_SIGNED_UP, status=row.status if row else None)
        cutoff = utc_from_db(shift.starts_at) - dt.timedelta(minutes=rules.withdraw_cutoff_minutes)
        if shift.status == "open" and books.now() > cutoff:
            raise DomainError(errors.WITHDRAW_CUTOFF_PASSED, cutoff=cutoff.isoformat())
        row.status, row.withdrawn_at = "withdrawn", books.now()
        s.flush()
        return SignupView.of(s, row)

    return books.run(work)


def acknowledge_change(books: Books, actor: Actor, shift_id: int) -> ShiftView:
    """The volunteer has seen the shift's edit (``changed_since_signup`` clears)."""

    def work(s: Session) -> ShiftView:
        shift = get_shift_in(s, shift_id)
        row = s.scalar(select(PatrolSignup).where(PatrolSignup.shift_id == shift.id,
                                                  PatrolSignup.volunteer_id == actor.user_id))
        if row is None:
            raise DomainError(errors.NOT_SIGNED_UP)
        row.seen_version = shift.version
        s.flush()
        return shift_view(s, shift, actor, calendar=books.calendar)

    return books.run(work)


def confirm_signup(books: Books, actor: Actor, signup_id: int) -> SignupView:
    """An officer in scope confirms a held sign-up (the volunteer's accident insurance was checked)."""

    def work(s: Session) -> SignupView:
        row = s.get(PatrolSignup, signup_id, with_for_update=True) if _id(signup_id) else None
        if row is None:
            raise DomainError(errors.NOT_FOUND_ERR, signup_id=signup_id)
        post = s.get(PatrolPost, s.get(PatrolShift, row.shift_id).post_id)
        policy.require_officer_in_scope(s, actor, post.org_unit_id)
        if actor.user_id == row.volunteer_id:
            raise DomainError(errors.SELF_DEALING)
        if row.status != "pending":
            raise DomainError(errors.NOT_SIGNED_UP, status=row.status)
        row.status = "signed_up"
        s.flush()
        return SignupView.of(s, row)

    return books.run(work)


def roster(books: Books, actor: Actor, shift_id: int) -> list[SignupView]:
    """Everyone on a shift, for an officer in scope or the shift's leader."""

    def work(s: Session) -> list[SignupView]:
        shift = get_shift_in(s, shift_id)
        if shift.leader_id != actor.user_id:
            policy.require_officer_in_scope(s, actor, s.get(PatrolPost, shift.post_id).org_unit_id)
        rows = s.scalars(select(PatrolSignup).where(PatrolSignup.shift_id == shift.id).order_by(PatrolSignup.id))
        return [SignupView.of(s, r) for r in rows]

    return books.run(work, readonly=True)


def pending_signups(books: Books, actor: Actor, *, limit: int = 200) -> list[SignupView]:
    """Sign-ups held for an officer in scope (the shift requires insurance), soonest shift first."""

    def work(s: Session) -> list[SignupView]:
        q = (select(PatrolSignup).join(PatrolShift, PatrolShift.id == PatrolSignup.shift_id)
             .join(PatrolPost, PatrolPost.id == PatrolShift.post_id)
             .where(PatrolSignup.status == "pending", PatrolShift.ends_at > books.now())
             .order_by(PatrolShift.starts_at, PatrolSignup.id))
        units = scope_units(s, actor, "officer") if actor.has_role("officer") else set()
        if units is not None:
            q = q.where(PatrolPost.org_unit_id.in_(units))
        return [SignupView.of(s, r) for r in s.scalars(q.limit(max(1, min(limit, 500))))]

    return books.run(work, readonly=True)
