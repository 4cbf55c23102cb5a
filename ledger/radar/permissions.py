"""Who may do what on the radar, in one place (``ledger.access`` has no policy module yet).

- publish, amend, close, see answers, verify, reject: an officer in scope of every org unit of the
  notice's area (and of the community whose budget pays);
- see a notice: a volunteer whose community, group or building lies in the area (at or below one of
  its units); officers in scope of one of its units; the publisher; auditors and admins. Anybody else
  is told the notice does not exist (``notice_not_found``, 404), so its existence leaks nothing;
- answer: a volunteer who may see the notice, never its publisher;
- verify or approve: never one's own answer (``self_dealing``); the second approval is a different
  officer from the one who verified (``own_approval``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access.identity import Actor, ancestors, in_scope
from ledger.access.models import RoleGrant
from ledger.errors import DomainError


def require_officer(actor: Actor) -> None:
    if not actor.has_role("officer"):
        raise DomainError(errors.PERMISSION_DENIED, required_roles=["officer"])


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
