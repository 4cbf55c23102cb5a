"""Who is acting: users, their role grants, sign-in and scope checks against the org tree.

An ``Actor`` is an immutable snapshot of a signed-in user and their grants, loaded once per request.
Scope: a grant on an org unit covers that unit and everything below it (an officer at a street office
covers all its communities, groups and buildings). A grant with no org unit and no merchant is
district-wide (admin, auditor, fund manager).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Connection, any_, bindparam, delete, or_, select, text
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access.models import ROLES as ROLES  # re-exported for the doors' role pickers
from ledger.access.models import OrgUnit, RoleGrant, User
from ledger.access.passwords import hash_secret, needs_rehash, verify_secret
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.journal.models import Account

MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
# verified against when the user does not exist, so that timing does not reveal who exists
_DUMMY_HASH = hash_secret("not a password of anyone")


@dataclass(frozen=True)
class Grant:
    role: str
    org_unit_id: int | None = None
    merchant_id: int | None = None


@dataclass(frozen=True)
class Actor:
    user_id: int
    username: str
    display_name: str
    grants: tuple[Grant, ...]

    def has_role(self, role: str) -> bool:
        return any(g.role == role for g in self.grants)

    def org_units_for(self, role: str) -> set[int]:
        return {g.org_unit_id for g in self.grants if g.role == role and g.org_unit_id is not None}

    def merchant_ids_for(self, *roles: str) -> set[int]:
        return {g.merchant_id for g in self.grants if g.role in roles and g.merchant_id is not None}

    def is_district_wide(self, role: str) -> bool:
        return any(g.role == role and g.org_unit_id is None and g.merchant_id is None for g in self.grants)

    @property
    def ref(self) -> str:
        """How the actor is written in the journal's ``actor`` column."""
        return f"user:{self.user_id}"


def hash_password(pw: str) -> str:
    return hash_secret(pw)


def _verify(hash_: str, pw: str) -> bool:
    return verify_secret(hash_, pw)


def verify_password(hash_: str, secret: str) -> bool:
    """Does ``secret`` match ``hash_`` (passwords and one-time codes share the one hasher)?"""
    return bool(hash_) and isinstance(secret, str) and _verify(hash_, secret)


def authenticate(books: Books, username_or_phone: str, password: str) -> Actor:
    """The actor with this username (or phone) and password, or ``invalid_credentials``.

    Five wrong passwords in a row lock the user for 15 minutes (``account_locked``); the failure count
    is written even though the sign-in is refused.
    """
    if not isinstance(username_or_phone, str) or not isinstance(password, str) or not username_or_phone:
        raise DomainError(errors.INVALID_CREDENTIALS)
    now = books.now()
    result = books.run(lambda s: authenticate_in(s, now, username_or_phone, password))
    if isinstance(result, DomainError):
        raise result
    return result


def authenticate_in(s: Session, now: dt.datetime, username_or_phone: str, password: str) -> Actor | DomainError:
    """``authenticate`` inside the caller's transaction: the actor, or the refusal *returned* (not raised)
    so that the failure count (and the caller's security log) commit with it."""
    user = s.scalar(select(User).where(or_(User.username == username_or_phone,
                                           User.phone == username_or_phone)).with_for_update())
    if user is None:
        _verify(_DUMMY_HASH, password)
        return DomainError(errors.INVALID_CREDENTIALS)
    locked_until = utc_from_db(user.locked_until)
    if locked_until is not None and locked_until > now:
        return DomainError(errors.ACCOUNT_LOCKED)
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        return DomainError(errors.INVALID_CREDENTIALS)
    if not user.active:
        return DomainError(errors.INVALID_CREDENTIALS)
    if user.failed_logins or user.locked_until is not None:
        user.failed_logins = 0
        user.locked_until = None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return load_actor(s, user.id)


_USERS = User.__table__
_GRANTS = RoleGrant.__table__
# the user and every grant in one statement (an access token is checked on every API call)
_ACTOR_ROWS = (
    select(_USERS.c.id, _USERS.c.username, _USERS.c.display_name, _USERS.c.active, _GRANTS.c.role,
           _GRANTS.c.org_unit_id, _GRANTS.c.merchant_id)
    .select_from(_USERS.outerjoin(_GRANTS, _GRANTS.c.user_id == _USERS.c.id))
    .where(_USERS.c.id == bindparam("user_id")).order_by(_GRANTS.c.id))


def load_actor(session: Session | Connection, user_id: int) -> Actor:
    """The user with their grants (a ``Session`` or a plain ``Connection``): one statement."""
    rows = session.execute(_ACTOR_ROWS, {"user_id": user_id}).all()
    if not rows:
        raise DomainError(errors.USER_NOT_FOUND, user_id=user_id)
    user = rows[0]
    if not user.active:
        raise DomainError(errors.USER_INACTIVE)
    return Actor(user.id, user.username, user.display_name,
                 tuple(Grant(r.role, r.org_unit_id, r.merchant_id) for r in rows if r.role is not None))


_ANCESTORS = text(
    "WITH RECURSIVE up(id, parent_id, depth) AS ("
    "SELECT id, parent_id, 0 FROM org_units WHERE id = :unit_id "
    "UNION ALL SELECT o.id, o.parent_id, up.depth + 1 FROM org_units o JOIN up ON o.id = up.parent_id "
    "WHERE up.depth < 15) SELECT id FROM up ORDER BY depth")


def ids_among(session: Session, column: Any, ids: Iterable[int]) -> list[Any]:
    """``column IN ids`` for a long list of ids, as few clauses as the database takes well: one array
    parameter on PostgreSQL (``= ANY``), chunks of 500 bound values on SQLite."""
    wanted = sorted(set(ids))
    if session.get_bind().dialect.name == "postgresql":
        return [column == any_(bindparam(None, wanted, type_=ARRAY(BigInteger)))] if wanted else []
    return [column.in_(wanted[i:i + 500]) for i in range(0, len(wanted), 500)]


def active_user_ids(session: Session, user_ids: Iterable[int]) -> set[int]:
    """Which of ``user_ids`` are users still active (one query on PostgreSQL)."""
    return {uid for where in ids_among(session, User.id, user_ids)
            for uid in session.scalars(select(User.id).where(where, User.active))}


def grants_of(session: Session, user_ids: Iterable[int]) -> dict[int, tuple[tuple[str, int | None, int | None], ...]]:
    """The grants of the active users among ``user_ids``, read now, as plain ``(role, org unit, merchant)``
    tuples: one query on PostgreSQL whatever their number (a held-stream server deciding for thousands
    of readers groups those whose grants are alike; ``Actor(user_id, "", "", grants)`` for a rule)."""
    out: dict[int, list[tuple[str, int | None, int | None]]] = {}
    for where in ids_among(session, User.id, user_ids):
        for uid, role, unit, merchant in session.execute(
                select(User.id, RoleGrant.role, RoleGrant.org_unit_id, RoleGrant.merchant_id)
                .outerjoin(RoleGrant, RoleGrant.user_id == User.id).where(where, User.active).order_by(RoleGrant.id)):
            held = out.setdefault(uid, [])
            if role is not None:
                held.append((role, unit, merchant))
    return {uid: tuple(held) for uid, held in out.items()}


def org_parents(session: Session) -> dict[int, int | None]:
    """The whole org tree as ``{unit: parent}``, read in one query (for ``ancestors_in``)."""
    return {r.id: r.parent_id for r in session.execute(select(OrgUnit.id, OrgUnit.parent_id))}


def ancestors_in(parents: dict[int, int | None], org_unit_id: int) -> list[int]:
    """``ancestors`` over a tree already read by ``org_parents``: the same walk, no queries."""
    chain: list[int] = []
    current: int | None = org_unit_id
    while current is not None and current not in chain and len(chain) < 16:
        chain.append(current)
        current = parents.get(current)
    return chain


def ancestors(session: Session, org_unit_id: int) -> list[int]:
    """``org_unit_id`` and every unit above it, nearest first (the tree is five levels deep): one statement."""
    chain: list[int] = [org_unit_id]
    for (unit_id,) in session.execute(_ANCESTORS, {"unit_id": org_unit_id}).all()[1:]:
        if unit_id in chain:  # a cycle (never made by the app): stop where it closes
            break
        chain.append(unit_id)
    return chain


def community_at_or_above(session: Session, org_unit_id: int) -> int | None:
    """The community ``org_unit_id`` is, or lies in (budgets belong to communities); None above one."""
    for unit_id in ancestors(session, org_unit_id):
        if session.scalar(select(OrgUnit.level).where(OrgUnit.id == unit_id)) == "community":
            return unit_id
    return None


def descendants(session: Session, org_unit_id: int) -> set[int]:
    """``org_unit_id`` and every unit below it."""
    found = {org_unit_id}
    frontier = [org_unit_id]
    while frontier:
        children = session.scalars(select(OrgUnit.id).where(OrgUnit.parent_id.in_(frontier))).all()
        frontier = [c for c in children if c not in found]
        found.update(frontier)
    return found


def in_scope(session: Session, actor: Actor, role: str, org_unit_id: int | None) -> bool:
    """Does ``actor`` hold ``role`` over ``org_unit_id`` (on it, on a unit above it, or district-wide)?"""
    if actor.is_district_wide(role):
        return True
    units = actor.org_units_for(role)
    if not units or org_unit_id is None:
        return False
    if org_unit_id in units:  # a grant on the unit itself: nothing to read
        return True
    return any(u in units for u in ancestors(session, org_unit_id))


def scope_units(session: Session, actor: Actor, role: str) -> set[int] | None:
    """Every org unit ``actor`` covers in ``role``; ``None`` means district-wide."""
    if actor.is_district_wide(role):
        return None
    out: set[int] = set()
    for unit in actor.org_units_for(role):
        out |= descendants(session, unit)
    return out


def wallet_account_id(session: Session, user_id: int) -> int:
    acc = session.scalar(select(Account.id).where(Account.kind == "wallet", Account.owner_ref == f"user:{user_id}")
                         .order_by(Account.id))
    if acc is None:
        raise DomainError(errors.ACCOUNT_NOT_FOUND, f"user {user_id} has no wallet", user_id=user_id)
    return acc


def wallet_of(books: Books, user_id: int) -> int:
    """The user's wallet account, in a read of its own (``wallet_account_id`` inside a use case)."""
    return books.run(lambda s: wallet_account_id(s, user_id), readonly=True)


def budget_account_id(session: Session, org_unit_id: int) -> int:
    acc = session.scalar(select(Account.id).where(Account.kind == "budget",
                                                  Account.owner_ref == f"org:{org_unit_id}").order_by(Account.id))
    if acc is None:
        raise DomainError(errors.ACCOUNT_NOT_FOUND, f"org unit {org_unit_id} has no budget",
                          org_unit_id=org_unit_id)
    return acc


# --- administration helpers (seed, tests, admin use cases call these inside their transaction) --------

def create_org_unit_in(session: Session, code: str, name: str, level: str, parent_id: int | None = None) -> OrgUnit:
    existing = session.scalar(select(OrgUnit).where(OrgUnit.code == code))
    if existing is not None:
        return existing
    unit = OrgUnit(code=code, name=name, level=level, parent_id=parent_id)
    session.add(unit)
    session.flush()
    return unit


def create_user_in(session: Session, username: str, password: str, display_name: str, *,
                   phone: str | None = None, pseudonym: str | None = None, show_pseudonym: bool = False,
                   password_hash: str | None = None) -> User:
    """A user (or the existing one with this username), with a wallet account ``user:<id>``."""
    from ledger.journal.accounts import open_account_in

    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, phone=phone, display_name=display_name, pseudonym=pseudonym,
                    show_pseudonym=show_pseudonym, password_hash=password_hash or hash_password(password),
                    active=True, failed_logins=0)
        session.add(user)
        session.flush()
    if session.scalar(select(Account.id).where(Account.kind == "wallet",
                                               Account.owner_ref == f"user:{user.id}")) is None:
        open_account_in(session, f"wallet:user:{user.id}", "wallet", name=f"用户{user.id}的钱包",  # no name: the journal export carries it
                        owner_ref=f"user:{user.id}")
    return user


def grant_role_in(session: Session, user_id: int, role: str, org_unit_id: int | None = None,
                  merchant_id: int | None = None, *, actor: str = "system", source: str | None = None) -> RoleGrant:
    """Grant ``role`` (or return the grant already there); a new grant goes to the security log with who
    granted it (``actor``: a user ref, ``cli``, ``seed``) and from where (``source``: the request's address)."""
    existing = session.scalar(select(RoleGrant).where(
        RoleGrant.user_id == user_id, RoleGrant.role == role,
        RoleGrant.org_unit_id.is_(None) if org_unit_id is None else RoleGrant.org_unit_id == org_unit_id,
        RoleGrant.merchant_id.is_(None) if merchant_id is None else RoleGrant.merchant_id == merchant_id))
    if existing is not None:
        return existing
    grant = RoleGrant(user_id=user_id, role=role, org_unit_id=org_unit_id, merchant_id=merchant_id)
    session.add(grant)
    session.flush()
    _record_role_change(session, "role_granted", user_id, role, org_unit_id, merchant_id, actor=actor, source=source)
    return grant


def revoke_role_in(session: Session, user_id: int, role: str, org_unit_id: int | None = None,
                   merchant_id: int | None = None, *, actor: str, source: str | None = None) -> int:
    """Remove a grant; a removal goes to the security log like a grant (``role_revoked``). Returns how many
    grants were removed (0: there was none, nothing is logged)."""
    removed = session.execute(delete(RoleGrant).where(
        RoleGrant.user_id == user_id, RoleGrant.role == role,
        RoleGrant.org_unit_id.is_(None) if org_unit_id is None else RoleGrant.org_unit_id == org_unit_id,
        RoleGrant.merchant_id.is_(None) if merchant_id is None else RoleGrant.merchant_id == merchant_id)).rowcount
    if removed:
        _record_role_change(session, "role_revoked", user_id, role, org_unit_id, merchant_id, actor=actor,
                            source=source)
    return int(removed or 0)


def _record_role_change(session: Session, kind: str, user_id: int, role: str, org_unit_id: int | None,
                        merchant_id: int | None, *, actor: str, source: str | None) -> None:
    from ledger.access.security import record_in  # the security log records every role change

    user = session.get(User, user_id)
    record_in(session, kind, user_id=user_id, username=user.username if user else None, actor=actor,
              source=source, role=role, org_unit_id=org_unit_id, merchant_id=merchant_id)
