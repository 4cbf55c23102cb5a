"""Notices: publish, amend (a new version, the history kept), extend, close; who sees which.

A bounty is reserved when the notice goes out: an earning **reserve** (``ledger.earning.reserves``), a hold on
the paying community's budget until the notice ends plus the verification grace, so the worker's
``expire_holds`` releases an unpaid bounty with nobody asking. Answers are earning claims paid from it;
changing the bounty or the end changes the reserve, closing releases it (each in one linked batch).
Locks: the notice row, then the reserve.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger import earning, errors
from ledger.access import policy
from ledger.access.identity import Actor, community_at_or_above, scope_units
from ledger.access.models import OrgUnit
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.radar.models import NOTICE_KINDS, Event, Notice, NoticeArea, NoticeVersion

MAX_DAYS = 28  # plus the grace, within the journal's 31-day hold limit
MAX_AREA = 20
MAX_BOUNTY = 100_000


@dataclass(frozen=True)
class NoticeView:
    id: int
    kind: str
    state: str  # open, closed or expired (ended, by the clock)
    version: int
    title: str
    body: str
    officer_id: int
    area: list[int]
    bounty: int
    bounty_paid: int
    bounty_left: int
    budget_org_unit_id: int | None
    published_at: dt.datetime
    ends_at: dt.datetime
    closed_at: dt.datetime | None
    circle: dict[str, Any] | None
    photo_ids: list[int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grace(books: Books) -> dt.timedelta:
    return dt.timedelta(seconds=books.settings.radar.verify_grace_s)


def area_of(s: Session, notice_id: int) -> list[int]:
    return list(s.scalars(select(NoticeArea.org_unit_id).where(NoticeArea.notice_id == notice_id)
                          .order_by(NoticeArea.org_unit_id)))


def state_of(n: Notice, now: dt.datetime) -> str:
    if n.status == "open" and utc_from_db(n.ends_at) <= now:
        return "expired"
    return n.status


def view_of(s: Session, n: Notice, now: dt.datetime) -> NoticeView:
    from ledger.radar.photos import photo_ids

    circle = None if n.lat_e6 is None else {"lat": n.lat_e6 / 1e6, "lng": n.lng_e6 / 1e6, "radius_m": n.radius_m}
    paid = earning.reserve_view_in(s, n.reserve_id, now).paid if n.reserve_id is not None else 0
    return NoticeView(n.id, n.kind, state_of(n, now), n.version, n.title, n.body, n.officer_id, area_of(s, n.id),
                      n.bounty, paid, max(0, n.bounty - paid), n.budget_org_unit_id,
                      utc_from_db(n.published_at), utc_from_db(n.ends_at), utc_from_db(n.closed_at), circle,
                      photo_ids(s, notice_id=n.id))


def visible_notice(s: Session, actor: Actor, notice_id: Any, *, lock: bool = False) -> Notice:
    """The notice if ``actor`` may see it, else ``notice_not_found`` (never a hint that it exists)."""
    if type(notice_id) is not int:
        raise DomainError(errors.NOTICE_NOT_FOUND)
    q = select(Notice).where(Notice.id == notice_id)
    n = s.scalar(q.with_for_update() if lock else q)
    if n is None or not policy.may_see(s, actor, n.officer_id, area_of(s, n.id)):
        raise DomainError(errors.NOTICE_NOT_FOUND)
    return n


def _check_end(books: Books, ends_at: Any) -> dt.datetime:
    end = utc_from_db(ends_at) if isinstance(ends_at, dt.datetime) else None
    now = books.now()
    if end is None or end.tzinfo is None or end <= now or end > now + dt.timedelta(days=MAX_DAYS):
        raise DomainError(errors.NOTICE_END_INVALID, max_days=MAX_DAYS)
    return end


def _check_text(title: Any, body: Any) -> tuple[str, str]:
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 120:
        raise DomainError(errors.VALIDATION_FAILED, "a title of 1 to 120 characters")
    if not isinstance(body, str) or len(body) > 5000:
        raise DomainError(errors.VALIDATION_FAILED, "the text is at most 5,000 characters")
    return title.strip(), body




def _event(s: Session, books: Books, kind: str, notice_id: int, *, user_id: int | None = None,
           amount: int | None = None) -> None:
    s.add(Event(kind=kind, notice_id=notice_id, user_id=user_id, amount=amount, at=books.now()))


def _check_circle(circle: dict[str, Any] | None) -> tuple[int | None, int | None, int | None]:
    if circle is None:
        return None, None, None
    try:
        lat, lng, radius = float(circle["lat"]), float(circle["lng"]), int(circle["radius_m"])
    except (KeyError, TypeError, ValueError):
        raise DomainError(errors.VALIDATION_FAILED, "a circle is lat, lng and radius_m") from None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180 and 0 < radius <= 50_000):
        raise DomainError(errors.VALIDATION_FAILED, "lat, lng or radius out of range")
    return round(lat * 1e6), round(lng * 1e6), radius


def _check_area(s: Session, area: Any) -> list[int]:
    if not isinstance(area, list | tuple) or not 1 <= len(area) <= MAX_AREA or any(
            type(u) is not int for u in area):
        raise DomainError(errors.VALIDATION_FAILED, f"the area is 1 to {MAX_AREA} org units")
    units = sorted(set(area))
    found = set(s.scalars(select(OrgUnit.id).where(OrgUnit.id.in_(units))))
    for u in units:
        if u not in found:
            raise DomainError(errors.ORG_UNIT_NOT_FOUND, org_unit_id=u)
    return units


def _check_bounty(bounty: Any) -> int:
    if type(bounty) is not int or not 0 <= bounty <= MAX_BOUNTY:
        raise DomainError(errors.INVALID_AMOUNT, f"a bounty is 0 to {MAX_BOUNTY} beans")
    return bounty


def _budget_community(s: Session, actor: Actor, units: list[int], budget_org_unit_id: int | None) -> int | None:
    """The community whose budget pays: named, or the one community the whole area lies in."""
    if budget_org_unit_id is None:
        found = {community_at_or_above(s, u) for u in units}
        return found.pop() if len(found) == 1 and None not in found else None
    unit = s.get(OrgUnit, budget_org_unit_id) if type(budget_org_unit_id) is int else None
    if unit is None:
        raise DomainError(errors.ORG_UNIT_NOT_FOUND, org_unit_id=budget_org_unit_id)
    if unit.level != "community":
        raise DomainError(errors.NOT_A_COMMUNITY, org_unit_id=budget_org_unit_id)
    policy.require_officer_over(s, actor, [unit.id])
    return unit.id


def _version(n: Notice, actor: Actor, now: dt.datetime, note: str) -> NoticeVersion:
    return NoticeVersion(notice_id=n.id, version=n.version, title=n.title, body=n.body, bounty=n.bounty,
                         ends_at=n.ends_at, edited_by_id=actor.user_id, edited_at=now, note=note[:500])


@dataclass(frozen=True)
class Draft:
    """A notice's content, checked before any transaction (photos already re-encoded)."""

    kind: str
    title: str
    body: str
    end: dt.datetime
    bounty: int
    circle: tuple[int | None, int | None, int | None]
    images: list[Any]


def draft(books: Books, actor: Actor, *, kind: str, title: str, body: str, ends_at: dt.datetime, bounty: int = 0,
          circle: dict[str, Any] | None = None, photos: list[bytes] | None = None) -> Draft:
    from ledger.radar.photos import PER_NOTICE, clean_image

    policy.require_officer(actor)
    if len(photos or []) > PER_NOTICE:
        raise DomainError(errors.TOO_MANY_PHOTOS, max=PER_NOTICE)
    images = [clean_image(p) for p in photos or []]
    if kind not in NOTICE_KINDS:
        raise DomainError(errors.VALIDATION_FAILED, f"kind is one of {', '.join(NOTICE_KINDS)}")
    title, body = _check_text(title, body)
    return Draft(kind, title, body, _check_end(books, ends_at), _check_bounty(bounty), _check_circle(circle), images)


def publish_in(s: Session, books: Books, actor: Actor, d: Draft, *, area: list[int],
               budget_org_unit_id: int | None = None) -> Notice:
    """Publish ``d`` to ``area`` in the caller's transaction: the notice, its areas, first version, photos,
    the bounty's reserve and the stream's event."""
    from ledger.radar.photos import store_in

    now = books.now()
    units = _check_area(s, area)
    policy.require_officer_over(s, actor, units)
    community = _budget_community(s, actor, units, budget_org_unit_id)
    if d.bounty and community is None:
        raise DomainError(errors.NOT_A_COMMUNITY, "name the community whose budget pays the bounty")
    lat, lng, radius = d.circle
    n = Notice(kind=d.kind, status="open", version=1, title=d.title, body=d.body, officer_id=actor.user_id,
               budget_org_unit_id=community, bounty=d.bounty, lat_e6=lat, lng_e6=lng, radius_m=radius,
               published_at=now, ends_at=d.end)
    s.add(n)
    s.flush()
    s.add_all([NoticeArea(notice_id=n.id, org_unit_id=u) for u in units])
    s.add(_version(n, actor, now, "published"))
    for image in d.images:
        store_in(s, image, notice_id=n.id)
    if d.bounty:
        n.reserve_id = earning.open_reserve_in(s, books, actor, community_id=community, amount=d.bounty,
                                               expires_at=d.end + grace(books), reference=f"notice:{n.id}")
    _event(s, books, "notice", n.id)
    s.flush()
    return n


def publish_notice(books: Books, actor: Actor, *, kind: str, title: str, body: str, area: list[int],
                   ends_at: dt.datetime, bounty: int = 0, budget_org_unit_id: int | None = None,
                   circle: dict[str, Any] | None = None, photos: list[bytes] | None = None) -> NoticeView:
    """An officer in scope of every unit of the area publishes a notice (with up to four photos); a bounty
    is reserved from the paying community's budget at once (``insufficient_funds`` if it does not have it)."""
    d = draft(books, actor, kind=kind, title=title, body=body, ends_at=ends_at, bounty=bounty, circle=circle,
              photos=photos)
    return books.run(lambda s: view_of(s, publish_in(s, books, actor, d, area=area,
                                                     budget_org_unit_id=budget_org_unit_id), books.now()))


def amend_notice(books: Books, actor: Actor, notice_id: int, *, title: str | None = None,
                 body: str | None = None, ends_at: dt.datetime | None = None, bounty: int | None = None,
                 note: str = "") -> NoticeView:
    """A new version (the old ones kept); a new end or bounty re-reserves the hold. An open notice only."""
    def work(s: Session) -> NoticeView:
        now = books.now()
        n = visible_notice(s, actor, notice_id, lock=True)
        area = area_of(s, n.id)
        policy.require_officer_over(s, actor, area)
        if state_of(n, now) != "open":
            raise DomainError(errors.NOTICE_NOT_OPEN)
        new_title, new_body = _check_text(n.title if title is None else title, n.body if body is None else body)
        new_end = utc_from_db(n.ends_at) if ends_at is None else _check_end(books, ends_at)
        new_bounty = n.bounty if bounty is None else _check_bounty(bounty)
        if new_bounty and n.budget_org_unit_id is None:
            raise DomainError(errors.NOT_A_COMMUNITY, "this notice has no paying community")
        if n.reserve_id is not None:  # never below what is paid or awaits approval (exceeds_bounty)
            earning.change_reserve_in(s, books, actor, n.reserve_id, amount=new_bounty,
                                      expires_at=new_end + grace(books))
        elif new_bounty:
            n.reserve_id = earning.open_reserve_in(s, books, actor, community_id=n.budget_org_unit_id,
                                                   amount=new_bounty, expires_at=new_end + grace(books),
                                                   reference=f"notice:{n.id}")
        n.title, n.body, n.ends_at, n.bounty = new_title, new_body, new_end, new_bounty
        n.version += 1
        s.add(_version(n, actor, now, note or "amended"))
        _event(s, books, "notice", n.id)
        s.flush()
        return view_of(s, n, now)

    return books.run(work)


def close_notice(books: Books, actor: Actor, notice_id: int, *, reason: str = "") -> NoticeView:
    """Close early (found, solved, withdrawn): no more answers; what is left of the bounty is released."""
    def work(s: Session) -> NoticeView:
        now = books.now()
        n = visible_notice(s, actor, notice_id, lock=True)
        policy.require_officer_over(s, actor, area_of(s, n.id))
        if n.status != "open":
            raise DomainError(errors.NOTICE_NOT_OPEN)
        n.status, n.closed_at, n.closed_by_id, n.close_reason = "closed", now, actor.user_id, reason[:500]
        if n.reserve_id is not None:  # payments awaiting a second officer keep their own holds
            earning.release_reserve_in(s, books, actor, n.reserve_id, why="radar notice closed")
        _event(s, books, "notice_closed", n.id)
        s.flush()
        return view_of(s, n, now)

    return books.run(work)


def get_notice(books: Books, actor: Actor, notice_id: Any) -> NoticeView:
    return books.run(lambda s: view_of(s, visible_notice(s, actor, notice_id), books.now()), readonly=True)


def notice_history(books: Books, actor: Actor, notice_id: Any) -> list[dict[str, Any]]:
    """Every version of a notice, oldest first (officers and whoever may see it)."""
    def work(s: Session) -> list[dict[str, Any]]:
        n = visible_notice(s, actor, notice_id)
        rows = s.scalars(select(NoticeVersion).where(NoticeVersion.notice_id == n.id)
                         .order_by(NoticeVersion.version))
        return [{"version": v.version, "title": v.title, "body": v.body, "bounty": v.bounty,
                 "ends_at": utc_from_db(v.ends_at), "edited_by_id": v.edited_by_id,
                 "edited_at": utc_from_db(v.edited_at), "note": v.note} for v in rows]

    return books.run(work, readonly=True)


def list_notices(books: Books, actor: Actor, *, include_ended: bool = False, limit: int = 100) -> list[NoticeView]:
    """A volunteer's: the notices for their area; an officer's: those of their scope (and their own)."""
    def work(s: Session) -> list[NoticeView]:
        now = books.now()
        conds: list[Any] = [Notice.officer_id == actor.user_id]
        reach = policy.volunteer_reach(s, actor.user_id)
        if reach:
            conds.append(NoticeArea.org_unit_id.in_(reach))
        if actor.has_role("auditor") or actor.has_role("admin"):
            conds.append(Notice.id.is_not(None))
        if actor.has_role("officer"):
            units = scope_units(s, actor, "officer")
            conds.append(Notice.id.is_not(None) if units is None else NoticeArea.org_unit_id.in_(units))
        q = select(Notice).join(NoticeArea, NoticeArea.notice_id == Notice.id).where(or_(*conds)).distinct()
        if not include_ended:
            q = q.where(Notice.status == "open", Notice.ends_at > now)
        found = s.scalars(q.order_by(Notice.id.desc()).limit(max(1, min(limit, 500)))).all()
        return [view_of(s, n, now) for n in found]

    return books.run(work, readonly=True)


def expire_notices(books: Books, *, limit: int = 500) -> int:
    """Mark open notices whose end has passed as expired (the worker; the hold's own timeout releases the
    beans). Returns how many."""
    def work(s: Session) -> int:
        now = books.now()
        found = s.scalars(select(Notice).where(Notice.status == "open", Notice.ends_at <= now)
                          .order_by(Notice.id).limit(limit).with_for_update()).all()
        for n in found:
            n.status = "expired"
            _event(s, books, "notice_closed", n.id)
        return len(found)

    return books.run(work)
