"""Read-only lookups the web pages need (issue 5): the org tree, people in scope, merchants, cards and
the district dashboard's figures. Each opens one read-only transaction and checks the actor's role and
scope with ``ledger.identity``; the pages never query the database themselves."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import Actor, ancestors, descendants, scope_units, wallet_account_id
from ledger.access.masking import mask_phone
from ledger.access.models import Merchant, OrgUnit, RoleGrant, User
from ledger.access.policy import Principal
from ledger.earning.models import Award
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import read_point_in, utc_from_db
from ledger.journal.models import Account, Transfer
from ledger.redemption.models import Card, Redemption, Settlement

DISTRICT_ROLES = policy.DISTRICT_ROLES


def org_tree(books: Books, actor: Actor) -> list[dict[str, Any]]:
    """Every org unit in depth-first order with its depth (admins, fund managers, auditors, officers)."""
    policy.require_role(actor, *DISTRICT_ROLES, "officer")

    def work(s: Session) -> list[dict[str, Any]]:
        units = s.execute(select(OrgUnit.id, OrgUnit.parent_id, OrgUnit.level, OrgUnit.code, OrgUnit.name)
                          .order_by(OrgUnit.id)).all()
        children: dict[int | None, list[Any]] = defaultdict(list)
        for u in units:
            children[u.parent_id].append(u)
        out: list[dict[str, Any]] = []

        def walk(parent: int | None, depth: int) -> None:
            for u in children.get(parent, []):
                out.append({"id": u.id, "level": u.level, "code": u.code, "name": u.name, "depth": depth})
                walk(u.id, depth + 1)

        walk(None, 0)
        return out

    return books.run(work, readonly=True)


def communities(books: Books, actor: Actor) -> list[dict[str, Any]]:
    """Communities the actor may award in (officers: in scope) or allocate to (fund managers: all)."""

    def work(s: Session) -> list[dict[str, Any]]:
        q = select(OrgUnit.id, OrgUnit.name).where(OrgUnit.level == "community").order_by(OrgUnit.id)
        rows = s.execute(q).all()
        units = policy.visible_units(s, actor, ("fund_manager", "admin"))
        return [{"id": r.id, "name": r.name} for r in rows if units is None or r.id in units]

    return books.run(work, readonly=True)


def _names(s: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(s.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())


def user_names(books: Books, ids: set[int]) -> dict[int, str]:
    return books.run(lambda s: _names(s, ids), readonly=True)


def unit_names(books: Books) -> dict[int, str]:
    return books.run(lambda s: dict(s.execute(select(OrgUnit.id, OrgUnit.name)).all()), readonly=True)


def home_community(books: Books, actor: Actor) -> dict[str, Any] | None:
    """The community of the actor's first volunteer (or leader) grant: where their leaderboard is."""

    def work(s: Session) -> dict[str, Any] | None:
        for unit_id in [g.org_unit_id for g in actor.grants if g.role in ("volunteer", "leader") and g.org_unit_id]:
            for up in ancestors(s, unit_id):
                unit = s.get(OrgUnit, up)
                if unit is not None and unit.level == "community":
                    return {"id": unit.id, "name": unit.name}
        return None

    return books.run(work, readonly=True)


def _matches(query: str, name: str, phone: str | None) -> bool:
    """A search by name (any part, any case) or by phone (three or more digits, anywhere in the number)."""
    text = query.strip().casefold()
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) >= 3 and digits == text.replace(" ", "").replace("-", ""):
        return digits in "".join(ch for ch in (phone or "") if ch.isdigit())
    return bool(text) and text in (name or "").casefold()


def volunteers_in_scope(books: Books, actor: Actor, *, query: str | None = None) -> list[dict[str, Any]]:
    """Volunteers whose home unit the officer serves (everyone for admins and auditors), with balances.
    ``query``: only those whose name holds it, or whose phone holds its digits (three or more). A phone
    number is personal data: it is matched but only ever answered masked (``138****5678``)."""
    policy.require_role(actor, "officer", "admin", "auditor")

    def work(s: Session) -> list[dict[str, Any]]:
        units = policy.visible_units(s, actor, ("admin", "auditor"))
        q = (select(User.id, User.display_name, User.phone, User.active, RoleGrant.org_unit_id)
             .join(RoleGrant, RoleGrant.user_id == User.id).where(RoleGrant.role == "volunteer"))
        if units is not None:
            q = q.where(RoleGrant.org_unit_id.in_(units))
        seen: dict[int, dict[str, Any]] = {}
        unit_name = dict(s.execute(select(OrgUnit.id, OrgUnit.name)).all())
        for r in s.execute(q.order_by(User.id)).all():
            if r.id in seen or (query and not _matches(query, r.display_name, r.phone)):
                continue
            acc = s.scalar(select(Account).where(Account.kind == "wallet", Account.owner_ref == f"user:{r.id}"))
            seen[r.id] = {"id": r.id, "name": r.display_name, "phone": mask_phone(r.phone), "active": r.active,
                          "unit": unit_name.get(r.org_unit_id, ""),
                          "balance": acc.balance if acc else 0, "available": acc.available if acc else 0}
        return list(seen.values())

    return books.run(work, readonly=True)


def led_volunteers(books: Books, actor: Actor) -> list[dict[str, Any]]:
    """Volunteers in the units a group or building leader leads (they may claim for them)."""
    if not actor.has_role("leader"):
        return []

    def work(s: Session) -> list[dict[str, Any]]:
        units = scope_units(s, actor, "leader") or set()
        rows = s.execute(select(User.id, User.display_name, RoleGrant.org_unit_id)
                         .join(RoleGrant, RoleGrant.user_id == User.id)
                         .where(RoleGrant.role == "volunteer", RoleGrant.org_unit_id.in_(units), User.active.is_(True),
                                User.id != actor.user_id).order_by(User.id)).all()
        seen: dict[int, dict[str, Any]] = {}
        for r in rows:
            seen.setdefault(r.id, {"id": r.id, "name": r.display_name, "unit_id": r.org_unit_id})
        return list(seen.values())

    return books.run(work, readonly=True)


def volunteer_profile(books: Books, actor: Actor, user_id: int) -> dict[str, Any]:
    """One volunteer for an officer in scope (or an admin/auditor): name, units, wallet, cards, awards; the phone
    masked (personal data, not needed to verify or award)."""
    policy.require_role(actor, "officer", "admin", "auditor")

    def work(s: Session) -> dict[str, Any]:
        user = s.get(User, user_id)
        homes = s.scalars(select(RoleGrant.org_unit_id).where(
            RoleGrant.user_id == user_id, RoleGrant.role == "volunteer")).all() if user else []
        if user is None or not homes:
            raise DomainError(errors.USER_NOT_FOUND, user_id=user_id)
        policy.require_officer_over_units(s, actor, list(homes))
        acc = s.get(Account, wallet_account_id(s, user_id))
        unit_name = dict(s.execute(select(OrgUnit.id, OrgUnit.name)).all())
        cards = [{"id": c.id, "status": c.status, "failed_pins": c.failed_pins, "created_at": utc_from_db(c.created_at)}
                 for c in s.scalars(select(Card).where(Card.user_id == user_id).order_by(Card.id.desc()))]
        awards = [{"id": a.id, "amount": a.amount, "status": a.status, "reason": a.reason, "source": a.source,
                   "awarded_at": utc_from_db(a.awarded_at), "reversed": a.reversed_amount}
                  for a in s.scalars(select(Award).where(Award.volunteer_id == user_id)
                                     .order_by(Award.id.desc()).limit(50))]
        return {"id": user.id, "name": user.display_name, "phone": mask_phone(user.phone), "active": user.active,
                "units": [unit_name.get(u, "") for u in homes if u is not None],
                "wallet_account_id": acc.id, "balance": acc.balance, "available": acc.available,
                "on_hold": acc.debits_pending, "cards": cards, "awards": awards}

    return books.run(work, readonly=True)


def my_cards(books: Books, actor: Actor) -> list[dict[str, Any]]:
    """The actor's own bean cards (the wallet page shows their status)."""

    def work(s: Session) -> list[dict[str, Any]]:
        return [{"id": c.id, "status": c.status, "created_at": utc_from_db(c.created_at)}
                for c in s.scalars(select(Card).where(Card.user_id == actor.user_id).order_by(Card.id.desc()))]

    return books.run(work, readonly=True)


def people(books: Books, actor: Actor) -> list[dict[str, Any]]:
    """Every user with their role grants (admins and auditors)."""
    policy.require_role(actor, "admin", "auditor")

    def work(s: Session) -> list[dict[str, Any]]:
        unit_name = dict(s.execute(select(OrgUnit.id, OrgUnit.name)).all())
        merchant_name = dict(s.execute(select(Merchant.id, Merchant.name)).all())
        grants: dict[int, list[str]] = defaultdict(list)
        for g in s.execute(select(RoleGrant).order_by(RoleGrant.id)).scalars():
            where = unit_name.get(g.org_unit_id) or merchant_name.get(g.merchant_id) or ""
            grants[g.user_id].append({"role": g.role, "where": where, "org_unit_id": g.org_unit_id,
                                      "merchant_id": g.merchant_id})
        return [{"id": u.id, "username": u.username, "name": u.display_name, "phone": mask_phone(u.phone), "active": u.active,
                 "grants": grants.get(u.id, [])}
                for u in s.scalars(select(User).order_by(User.id))]

    return books.run(work, readonly=True)


def merchants(books: Books, actor: Actor) -> list[dict[str, Any]]:
    """Every merchant with its community, status, daily limit and what the fund owes it."""
    policy.require_role(actor, *DISTRICT_ROLES)

    def work(s: Session) -> list[dict[str, Any]]:
        unit_name = dict(s.execute(select(OrgUnit.id, OrgUnit.name)).all())
        out = []
        for m in s.scalars(select(Merchant).order_by(Merchant.id)):
            acc = s.get(Account, m.account_id)
            out.append({"id": m.id, "code": m.code, "name": m.name, "unit": unit_name.get(m.org_unit_id, ""),
                        "status": m.status, "daily_limit": m.daily_limit_beans, "balance": acc.balance if acc else 0})
        return out

    return books.run(work, readonly=True)


def merchant_of(books: Books, merchant_id: int) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        m = s.get(Merchant, merchant_id)
        if m is None:
            raise DomainError(errors.NOT_FOUND_ERR, merchant_id=merchant_id)
        return {"id": m.id, "code": m.code, "name": m.name, "status": m.status}

    return books.run(work, readonly=True)


def takings_today(books: Books, merchant_id: int, *, by: Principal) -> dict[str, int]:
    """Today's (local day: ``books.calendar``) completed redemptions at a merchant, less refunds: count and
    beans (for who may read the merchant's redemptions)."""
    policy.require_reads_merchant(by, merchant_id)

    def work(s: Session) -> dict[str, int]:
        start, end = books.calendar.day_bounds(books.now())
        rows = s.execute(select(func.count(Redemption.id), func.coalesce(func.sum(Redemption.amount), 0),
                                func.coalesce(func.sum(Redemption.refunded), 0))
                         .where(Redemption.merchant_id == merchant_id, Redemption.status == "completed",
                                Redemption.requested_at >= start, Redemption.requested_at < end)).one()
        return {"count": int(rows[0]), "redeemed": int(rows[1]), "refunded": int(rows[2]),
                "net": int(rows[1]) - int(rows[2])}

    return books.run(work, readonly=True)


# --- the district dashboard -------------------------------------------------------------------------

DASHBOARD_KINDS = ("donate", "award", "redeem", "settle")


def _week_start(books: Books, moment: dt.datetime) -> dt.date:
    return books.calendar.week_start(books.calendar.today(utc_from_db(moment)))


def dashboard(books: Books, actor: Actor, *, weeks: int = 8) -> dict[str, Any]:
    """Beans donated, awarded, redeemed and settled per local week (``books.calendar``) over the last
    ``weeks`` weeks, and awarded/redeemed per street office. Posted money only: holds count when posted;
    reversals and refunds are netted out of awards and redemptions."""
    policy.require_role(actor, *DISTRICT_ROLES, "officer")
    weeks = max(1, min(int(weeks), 52))

    def work(s: Session) -> dict[str, Any]:
        now = books.now()
        first = _week_start(books, now) - dt.timedelta(weeks=weeks - 1)
        since = books.calendar.day_start(first)
        series = {w: dict.fromkeys(DASHBOARD_KINDS, 0)
                  for w in (first + dt.timedelta(weeks=i) for i in range(weeks))}
        pending_kind = {}
        rows = s.execute(select(Transfer.kind, Transfer.phase, Transfer.amount, Transfer.created_at, Transfer.id,
                                Transfer.pending_id)
                         .where(Transfer.created_at >= since, Transfer.phase.in_(("single", "post")))).all()
        for r in rows:
            kind = r.kind
            if r.phase == "post":
                kind = pending_kind.get(r.pending_id) or s.scalar(
                    select(Transfer.kind).where(Transfer.id == r.pending_id))
                pending_kind[r.pending_id] = kind
            week = _week_start(books, r.created_at)
            if kind in DASHBOARD_KINDS and week in series:
                series[week][kind] += int(r.amount)
        # per street: awards by the award's community, redemptions by the merchant's community
        unit_parent = dict(s.execute(select(OrgUnit.id, OrgUnit.parent_id)).all())
        unit_level = dict(s.execute(select(OrgUnit.id, OrgUnit.level)).all())
        unit_name = dict(s.execute(select(OrgUnit.id, OrgUnit.name)).all())

        def street_of(unit_id: int | None) -> int | None:
            seen = 0
            while unit_id is not None and seen < 16:
                if unit_level.get(unit_id) == "street":
                    return unit_id
                unit_id = unit_parent.get(unit_id)
                seen += 1
            return None

        streets: dict[int, dict[str, Any]] = {
            u: {"id": u, "name": unit_name[u], "award": 0, "redeem": 0}
            for u, level in unit_level.items() if level == "street"}
        for unit_id, beans in s.execute(select(Award.org_unit_id, func.sum(Award.amount - Award.reversed_amount))
                                        .where(Award.status == "posted", Award.awarded_at >= since)
                                        .group_by(Award.org_unit_id)).all():
            st = street_of(unit_id)
            if st in streets:
                streets[st]["award"] += int(beans or 0)
        for unit_id, beans in s.execute(
                select(Merchant.org_unit_id, func.sum(Redemption.amount - Redemption.refunded))
                .join(Merchant, Merchant.id == Redemption.merchant_id)
                .where(Redemption.status == "completed", Redemption.requested_at >= since)
                .group_by(Merchant.org_unit_id)).all():
            st = street_of(unit_id)
            if st in streets:
                streets[st]["redeem"] += int(beans or 0)
        settled = int(s.scalar(select(func.coalesce(func.sum(Settlement.amount), 0))) or 0)
        return {"weeks": [{"week": w, **v} for w, v in sorted(series.items())],
                "streets": sorted(streets.values(), key=lambda e: e["id"]),
                "settled_total": settled, "district_id": next(
                    (u for u, level in unit_level.items() if level == "district"), None)}

    # a report: on the standby when one is configured, saying as of when it read ("read" first)
    return books.read(lambda s: {"read": read_point_in(s), **work(s)})


def descendants_of(books: Books, org_unit_id: int) -> set[int]:
    return books.run(lambda s: descendants(s, org_unit_id), readonly=True)


def units_in_scope(books: Books, actor: Actor, role: str = "officer") -> list[dict[str, Any]]:
    """The org tree's units ``actor`` covers in ``role`` (all of it when district-wide), as ``org_tree`` lists them."""
    tree = org_tree(books, actor)

    def work(s: Session) -> set[int] | None:
        return scope_units(s, actor, role)

    covered = books.run(work, readonly=True)
    return tree if covered is None else [u for u in tree if u["id"] in covered]
