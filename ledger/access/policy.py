"""Every "may X do Y" rule of the programme, in one place.

The doors name the principal (who is calling: a signed-in ``Actor``, a till device, or ``SYSTEM`` for the
CLI, the seed and the worker) and may refuse a caller who holds none of a route's roles before anything is
parsed (the role tuples below, so that the access matrix and the use case agree). Whether *this* principal
may act on *this* merchant, org unit, claim, award, card or user is decided here, called by the use case
inside its transaction. Each rule raises the catalogue's ``permission_denied`` (the caller lacks the role)
or ``out_of_scope`` (they hold it, but not over this object); rules named ``may_*`` answer a bool for the
callers that hide what the principal may not see (``not_found``).

The rules take plain ids and fields, never the capability rooms' models: ``access`` sits below them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access.identity import Actor, ancestors, descendants, in_scope, scope_units, wallet_account_id
from ledger.access.models import RoleGrant
from ledger.errors import DomainError
from ledger.journal.models import Account

# --- who may be a principal -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TillDevice:
    """A till device that proved its key (``ledger.redemption.authenticate_till``): it acts for its merchant."""

    till_id: int
    merchant_id: int

    @property
    def ref(self) -> str:
        return f"till:{self.till_id}"


@dataclass(frozen=True)
class System:
    """The programme itself (CLI, seed, worker, migrations): trusted callers with no web principal."""

    name: str = "system"

    @property
    def ref(self) -> str:
        return self.name


SYSTEM = System()
Principal = Actor | TillDevice | System

# --- roles -------------------------------------------------------------------------------------------------

TILL_ROLES = ("cashier", "merchant_owner")  # serve at a merchant's till
REDEMPTION_READERS = ("auditor", "fund_manager")  # read every merchant's redemptions, district-wide
DISTRICT_ROLES = ("admin", "auditor", "fund_manager")
CARD_ROLES = ("officer", "admin")  # issue, print, revoke and unlock bean cards; lift sign-in locks
SETTLEMENT_READERS = ("fund_manager", "auditor")


def require_role(actor: Actor, *roles: str) -> None:
    """The actor holds at least one of ``roles`` (anywhere): else ``permission_denied``."""
    if not any(actor.has_role(r) for r in roles):
        raise DomainError(errors.PERMISSION_DENIED, required_roles=list(roles))


def is_officer(actor: Actor) -> bool:
    """Does ``actor`` serve as an officer anywhere (the pages show officers' tools)?"""
    return actor.has_role("officer")


def require_admin(actor: Actor) -> None:
    require_role(actor, "admin")


# --- the org tree: officers, claims, awards --------------------------------------------------------------

def require_officer_in_scope(s: Session, actor: Actor, org_unit_id: int | None) -> None:
    """An officer whose grant covers ``org_unit_id`` (on it, above it, or district-wide)."""
    require_role(actor, "officer")
    if not in_scope(s, actor, "officer", org_unit_id):
        raise DomainError(errors.OUT_OF_SCOPE)


def may_read_tip_details(s: Session, actor: Actor, org_unit_id: int | None, *,
                         authors: tuple[int | None, ...] = ()) -> bool:
    """A tip's description, place and police case: for the officers over its unit and the people who wrote it
    (the volunteer, or their leader); not auditors."""
    if actor.user_id in authors:
        return True
    return actor.has_role("officer") and in_scope(s, actor, "officer", org_unit_id)


def require_leader_over(s: Session, actor: Actor, unit_ids: list[int]) -> None:
    """A group or building leader claims for a volunteer of a unit they lead (``out_of_scope`` otherwise)."""
    if not any(in_scope(s, actor, "leader", u) for u in unit_ids):
        raise DomainError(errors.OUT_OF_SCOPE, "the volunteer is not in a unit you lead")


def visible_units(s: Session, actor: Actor, district_roles: tuple[str, ...]) -> set[int] | None:
    """The org units whose claims, awards, budgets or volunteers a list shows the actor: ``None`` (all) for
    ``district_roles`` and district-wide officers, an officer's units and those below, else none."""
    if any(actor.has_role(r) for r in district_roles):
        return None
    if actor.has_role("officer"):
        return scope_units(s, actor, "officer")
    return set()


def require_officer_over_units(s: Session, actor: Actor, unit_ids: list[int | None],
                               readers: tuple[str, ...] = ("admin", "auditor")) -> None:
    """``readers`` see every volunteer; an officer those with a home unit in scope (``out_of_scope``)."""
    if any(actor.has_role(r) for r in readers):
        return
    if not any(in_scope(s, actor, "officer", u) for u in unit_ids if u is not None):
        raise DomainError(errors.OUT_OF_SCOPE)


def may_see_claim(s: Session, actor: Actor, *, volunteer_id: int, submitted_by_id: int | None,
                  org_unit_id: int | None) -> bool:
    """Its volunteer, who submitted it, an officer over its unit, auditors and admins."""
    return (actor.user_id in (volunteer_id, submitted_by_id)
            or in_scope(s, actor, "officer", org_unit_id)
            or actor.has_role("auditor") or actor.has_role("admin"))


def may_see_award(s: Session, actor: Actor, *, volunteer_id: int, officer_id: int | None,
                  org_unit_id: int | None) -> bool:
    """Its volunteer, the officer who granted it, an officer over its unit, auditors, admins, fund managers."""
    return (actor.user_id in (volunteer_id, officer_id)
            or in_scope(s, actor, "officer", org_unit_id)
            or actor.has_role("auditor") or actor.has_role("admin") or actor.has_role("fund_manager"))


def require_officer_over_user(s: Session, actor: Principal | None, user_id: int) -> None:
    """Admins act on every user (their cards, their sign-in lock); an officer on users whose home units they
    serve (``out_of_scope`` otherwise); anyone else: ``permission_denied``. ``None``/``SYSTEM``: the programme."""
    if actor is None or isinstance(actor, System):
        return
    if isinstance(actor, Actor) and actor.has_role("admin"):
        return
    if isinstance(actor, Actor) and actor.has_role("officer"):
        homes = s.scalars(select(RoleGrant.org_unit_id).where(
            RoleGrant.user_id == user_id, RoleGrant.org_unit_id.is_not(None))).all()
        if any(in_scope(s, actor, "officer", unit) for unit in homes):
            return
        raise DomainError(errors.OUT_OF_SCOPE)
    raise DomainError(errors.PERMISSION_DENIED, required_roles=list(CARD_ROLES))


def require_device_holder_or_officer(s: Session, actor: Principal | None, user_id: int) -> None:
    """A phone's key (``ledger.redemption.devices``): its own volunteer; admins and officers over the volunteer's
    home units, as for bean cards (``require_officer_over_user``)."""
    if isinstance(actor, Actor) and actor.user_id == user_id:
        return
    require_officer_over_user(s, actor, user_id)


def may_see_device(s: Session, actor: Principal | None, user_id: int) -> bool:
    """Whether ``actor`` may read (or try to revoke) a phone of ``user_id``; others are told ``not_found``."""
    if isinstance(actor, Actor) and (actor.user_id == user_id or actor.has_role("admin")
                                     or actor.has_role("officer")):
        return True
    return actor is None or isinstance(actor, System)


def resident_home_in(s: Session, actor: Actor, area_unit_ids: set[int] | list[int]) -> int | None:
    """The unit through which ``actor`` lives (as a volunteer) inside one of ``area_unit_ids`` (or below one),
    or None: who may see and answer what a unit's residents are asked (surveys, notices)."""
    area: set[int] = set()
    for unit in area_unit_ids:
        area |= descendants(s, unit)
    homes = s.scalars(select(RoleGrant.org_unit_id).where(RoleGrant.user_id == actor.user_id,
                                                          RoleGrant.role == "volunteer")).all()
    return next((home for home in homes if home in area), None)


def may_run_for(s: Session, actor: Actor, org_unit_id: int) -> bool:
    """Officers over the unit run what it publishes to residents; admins see it too."""
    return actor.has_role("admin") or (actor.has_role("officer") and in_scope(s, actor, "officer", org_unit_id))


def require_reset_code_issuer(s: Session, staff: Actor, user_id: int) -> None:
    """A one-time password reset code: the staff of the person's community (or above it), or an admin;
    nobody makes one for themselves."""
    if staff.user_id == user_id:
        raise DomainError(errors.SELF_DEALING)
    if not (staff.has_role("admin") or staff.has_role("officer")):
        raise DomainError(errors.PERMISSION_DENIED, required_roles=["officer", "admin"])
    require_officer_over_user(s, staff, user_id)



def require_erasure_completer(s: Session, staff: Actor, user_id: int) -> None:
    """Completing a person's erasure (PIPL art. 47): the staff of the person's community (or above it), or an
    admin; nobody completes their own (a second pair of eyes settles the beans first)."""
    require_reset_code_issuer(s, staff, user_id)

# --- merchants: tills, catalogue, redemptions, settlement -----------------------------------------------

def may_serve_at(principal: Principal, merchant_id: int) -> bool:
    """A till of the merchant, or a cashier or owner granted on it."""
    if isinstance(principal, System):
        return True
    if isinstance(principal, TillDevice):
        return principal.merchant_id == merchant_id
    return merchant_id in principal.merchant_ids_for(*TILL_ROLES)


def till_merchant(principal: Principal, merchant_id: int | None) -> int:
    """The merchant a till request acts for, checked: a till device acts for its own merchant only; a
    cashier or owner for a merchant they are granted on (``merchant_id`` may be omitted when there is one)."""
    if isinstance(principal, TillDevice):
        if merchant_id is not None and merchant_id != principal.merchant_id:
            raise DomainError(errors.PERMISSION_DENIED, "This till belongs to another merchant.")
        return principal.merchant_id
    if isinstance(principal, System):
        if merchant_id is None:
            raise DomainError(errors.VALIDATION_FAILED, "Name the merchant_id you are serving at.")
        return merchant_id
    mine = principal.merchant_ids_for(*TILL_ROLES)
    if merchant_id is None:
        if len(mine) != 1:
            raise DomainError(errors.VALIDATION_FAILED, "Name the merchant_id you are serving at.")
        (merchant_id,) = mine
    if merchant_id not in mine:
        raise DomainError(errors.PERMISSION_DENIED, "You do not serve at this merchant.")
    return merchant_id


def till_merchants(principal: Principal) -> list[int]:
    """The merchants a cashier or owner serves at, in id order (a till device: its own)."""
    if isinstance(principal, TillDevice):
        return [principal.merchant_id]
    if isinstance(principal, System):
        return []
    return sorted(principal.merchant_ids_for(*TILL_ROLES))


def default_till_merchant(principal: Principal) -> int:
    """Where a till page opens when no merchant is named: the first the principal serves at."""
    mine = till_merchants(principal)
    if not mine:
        raise DomainError(errors.PERMISSION_DENIED, "You do not serve at any merchant.")
    return mine[0]


def readable_merchants(principal: Principal) -> set[int] | None:
    """The merchants whose redemptions and takings the principal may read; ``None``: all of them."""
    if isinstance(principal, System):
        return None
    if isinstance(principal, TillDevice):
        return {principal.merchant_id}
    if any(principal.is_district_wide(role) for role in REDEMPTION_READERS):
        return None
    return principal.merchant_ids_for(*TILL_ROLES)


def require_reads_merchant(principal: Principal, merchant_id: int) -> None:
    readable = readable_merchants(principal)
    if readable is not None and merchant_id not in readable:
        raise DomainError(errors.PERMISSION_DENIED, "You do not serve at this merchant.")


def is_owner_of(principal: Principal, merchant_id: int) -> bool:
    if isinstance(principal, System):
        return True
    return isinstance(principal, Actor) and merchant_id in principal.merchant_ids_for("merchant_owner")


def require_owner_of(principal: Principal, merchant_id: int) -> None:
    """Till keys and the catalogue are the owner's: ``permission_denied`` for anyone else."""
    if not is_owner_of(principal, merchant_id):
        raise DomainError(errors.PERMISSION_DENIED, "Only this merchant's owner may do this.")


def require_tills_reader(principal: Principal, merchant_id: int) -> None:
    """The owner manages the tills; admins may read them (the admin page lists every merchant's tills)."""
    if isinstance(principal, Actor) and principal.has_role("admin"):
        return
    require_owner_of(principal, merchant_id)


def require_settlement_runner(principal: Principal) -> None:
    """Settling a month moves the fund's money: fund managers only."""
    if isinstance(principal, System):
        return
    if not isinstance(principal, Actor):
        raise DomainError(errors.PERMISSION_DENIED, required_roles=["fund_manager"])
    require_role(principal, "fund_manager")


def require_settlement_reader(principal: Principal, merchant_id: int | None) -> None:
    """Fund managers and auditors read every settlement; an owner those of their own merchant."""
    if isinstance(principal, Actor) and any(principal.has_role(r) for r in SETTLEMENT_READERS):
        return
    if merchant_id is None:
        if isinstance(principal, System):
            return
        raise DomainError(errors.PERMISSION_DENIED, required_roles=list(SETTLEMENT_READERS))
    require_owner_of(principal, merchant_id)


# --- wallets --------------------------------------------------------------------------------------------

def own_wallet(s: Session, principal: Principal) -> int:
    """The principal's own wallet: a volunteer reads and answers for their wallet only."""
    if not isinstance(principal, Actor):
        raise DomainError(errors.PERMISSION_DENIED, "Only a person has a wallet.")
    return wallet_account_id(s, principal.user_id)


def holds_wallet(s: Session, principal: Principal, wallet_id: int) -> bool:
    """Is ``wallet_id`` the principal's own wallet?"""
    if not isinstance(principal, Actor):
        return False
    owner = s.scalar(select(Account.owner_ref).where(Account.id == wallet_id, Account.kind == "wallet"))
    return owner == f"user:{principal.user_id}"


# --- the police radar: notices to an area ---------------------------------------------------------------
#
# - publish, amend, close, see answers, verify, reject: an officer in scope of every org unit of the
#   notice's area (and of the community whose budget pays);
# - see a notice: a volunteer whose community, group or building lies in the area (at or below one of
#   its units); officers in scope of one of its units; the publisher; auditors and admins. Anybody else
#   is told the notice does not exist (``notice_not_found``, 404), so its existence leaks nothing;
# - answer: a volunteer who may see the notice, never its publisher;
# - verify or approve: never one's own answer (``self_dealing``); the second approval is a different
#   officer from the one who verified (``own_approval``).

def require_officer(actor: Actor) -> None:
    require_role(actor, "officer")


def require_officer_over(s: Session, actor: Actor, units: Iterable[int]) -> None:
    require_officer(actor)
    for unit in units:
        if not in_scope(s, actor, "officer", unit):
            raise DomainError(errors.OUT_OF_SCOPE, org_unit_id=unit)


def volunteer_units(s: Session, user_id: int) -> list[int]:
    """The org units a user volunteers in, read now (a move to another community takes effect at once)."""
    return [u for u in s.scalars(select(RoleGrant.org_unit_id).where(
        RoleGrant.user_id == user_id, RoleGrant.role == "volunteer")).all() if u is not None]


def volunteer_reach(s: Session, user_id: int) -> set[int]:
    """Every unit at or above the volunteer's units: a notice whose area names one of them is theirs."""
    reach: set[int] = set()
    for unit in volunteer_units(s, user_id):
        reach.update(ancestors(s, unit))
    return reach


def officer_sees(s: Session, actor: Actor, area: Iterable[int]) -> bool:
    return actor.has_role("officer") and any(in_scope(s, actor, "officer", u) for u in area)


def may_see(s: Session, actor: Actor, officer_id: int, area: list[int]) -> bool:
    if actor.user_id == officer_id or actor.has_role("auditor") or actor.has_role("admin"):
        return True
    if officer_sees(s, actor, area):
        return True
    return bool(volunteer_reach(s, actor.user_id) & set(area))


def may_answer(s: Session, actor: Actor, officer_id: int, area: list[int]) -> bool:
    return actor.user_id != officer_id and bool(volunteer_reach(s, actor.user_id) & set(area))


def may_decide(s: Session, actor: Actor, area: list[int]) -> bool:
    """Verify, reject or approve answers, see the answer board: an officer in scope of the area."""
    return actor.has_role("officer") and all(in_scope(s, actor, "officer", u) for u in area)


# --- patrols: officers lay out posts and shifts, verify attendance and see the board, within their scope

def require_volunteer(actor: Actor) -> None:
    if not (actor.has_role("volunteer") or actor.has_role("leader")):
        raise DomainError(errors.PERMISSION_DENIED, required_roles=["volunteer"])


def may_see_board(s: Session, actor: Actor, org_unit_id: int) -> bool:
    return (in_scope(s, actor, "officer", org_unit_id) or actor.is_district_wide("auditor")
            or actor.is_district_wide("admin"))


def require_not_self(actor: Actor, volunteer_id: int) -> None:
    """Nobody verifies, pays or vouches for their own attendance."""
    if actor.user_id == volunteer_id:
        raise DomainError(errors.SELF_DEALING)
