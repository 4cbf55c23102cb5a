"""People use cases: your own profile (and the leaderboard name you choose), the org tree, and the
admin's registration of users and role grants. Each opens one transaction; checks are in here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import Actor, create_user_in, grant_role_in, hash_password, revoke_role_in
from ledger.access.masking import mask_phone
from ledger.access.models import ROLES, Merchant, OrgUnit, RoleGrant, User
from ledger.errors import DomainError
from ledger.infra.books import Books

# which roles are scoped to what
ORG_SCOPED = ("volunteer", "leader", "officer")
MERCHANT_SCOPED = ("merchant_owner", "cashier")
DISTRICT_WIDE = ("fund_manager", "auditor", "admin")
MIN_PASSWORD = 8


def _profile(s: Session, user_id: int, viewer: Actor) -> dict[str, Any]:
    """A user's profile as ``viewer`` is shown it: one's own phone number in full, another's masked
    (``mask_phone``: an admin registering or granting someone sees 138****5678, PIPL's minimum necessary)."""
    user = s.get(User, user_id)
    if user is None:
        raise DomainError(errors.USER_NOT_FOUND, user_id=user_id)
    grants = s.execute(select(RoleGrant.role, RoleGrant.org_unit_id, RoleGrant.merchant_id)
                       .where(RoleGrant.user_id == user_id).order_by(RoleGrant.id)).all()
    phone = user.phone if user_id == viewer.user_id else (mask_phone(user.phone) or None)
    return {"id": user.id, "username": user.username, "display_name": user.display_name, "phone": phone,
            "pseudonym": user.pseudonym, "show_pseudonym": user.show_pseudonym, "active": user.active,
            "grants": [{"role": g.role, "org_unit_id": g.org_unit_id, "merchant_id": g.merchant_id} for g in grants]}


def get_profile(books: Books, actor: Actor) -> dict[str, Any]:
    return books.run(lambda s: _profile(s, actor.user_id, actor), readonly=True)


def update_profile(books: Books, actor: Actor, *, pseudonym: str | None = None,
                   show_pseudonym: bool | None = None, display_name: str | None = None) -> dict[str, Any]:
    """Choose how you appear on leaderboards: your display name, or a pseudonym."""

    def work(s: Session) -> dict[str, Any]:
        user = s.get(User, actor.user_id, with_for_update=True)
        if pseudonym is not None:
            user.pseudonym = pseudonym.strip() or None
        if display_name is not None:
            if not display_name.strip():
                raise DomainError(errors.VALIDATION_FAILED, "a display name cannot be empty")
            user.display_name = display_name.strip()
        if show_pseudonym is not None:
            if show_pseudonym and not user.pseudonym:
                raise DomainError(errors.VALIDATION_FAILED, "choose a pseudonym first")
            user.show_pseudonym = show_pseudonym
        if user.pseudonym is None:
            user.show_pseudonym = False
        s.flush()
        return _profile(s, user.id, actor)

    return books.run(work)


def list_org_units(books: Books) -> list[dict[str, Any]]:
    def work(s: Session) -> list[dict[str, Any]]:
        return [{"id": u.id, "parent_id": u.parent_id, "level": u.level, "code": u.code, "name": u.name}
                for u in s.scalars(select(OrgUnit).order_by(OrgUnit.id))]

    return books.run(work, readonly=True)


def register_user(books: Books, actor: Actor, *, username: str, password: str, display_name: str,
                  phone: str | None = None) -> dict[str, Any]:
    """The admin registers a person (with a wallet); roles are granted separately."""
    policy.require_admin(actor)
    if len(password) < MIN_PASSWORD:
        raise DomainError(errors.WEAK_PASSWORD)
    pw_hash = hash_password(password)

    def work(s: Session) -> dict[str, Any]:
        taken = s.scalar(select(User.id).where(or_(User.username == username, User.phone == username,
                                                   *( [User.phone == phone, User.username == phone] if phone else []))))
        if taken is not None:
            raise DomainError(errors.USERNAME_TAKEN)
        user = create_user_in(s, username, password, display_name, phone=phone, password_hash=pw_hash)
        return _profile(s, user.id, actor)

    return books.run(work)


def _check_grant_shape(s: Session, role: str, org_unit_id: int | None, merchant_id: int | None) -> None:
    if role not in ROLES:
        raise DomainError(errors.VALIDATION_FAILED, f"role is one of {', '.join(ROLES)}")
    if role in ORG_SCOPED and (org_unit_id is None or merchant_id is not None):
        raise DomainError(errors.VALIDATION_FAILED, f"a {role} grant names an org unit")
    if role in MERCHANT_SCOPED and (merchant_id is None or org_unit_id is not None):
        raise DomainError(errors.VALIDATION_FAILED, f"a {role} grant names a merchant")
    if role in DISTRICT_WIDE and (org_unit_id is not None or merchant_id is not None):
        raise DomainError(errors.VALIDATION_FAILED, f"{role} is district-wide")
    if org_unit_id is not None and s.get(OrgUnit, org_unit_id) is None:
        raise DomainError(errors.ORG_UNIT_NOT_FOUND, org_unit_id=org_unit_id)
    if merchant_id is not None and s.get(Merchant, merchant_id) is None:
        raise DomainError(errors.NOT_FOUND_ERR, "no such merchant", merchant_id=merchant_id)


def grant_role(books: Books, actor: Actor, user_id: int, *, role: str, org_unit_id: int | None = None,
               merchant_id: int | None = None, source: str | None = None) -> dict[str, Any]:
    """An admin grants a role; the security log records it with the admin and ``source`` (their address)."""
    policy.require_admin(actor)

    def work(s: Session) -> dict[str, Any]:
        if s.get(User, user_id) is None:
            raise DomainError(errors.USER_NOT_FOUND, user_id=user_id)
        _check_grant_shape(s, role, org_unit_id, merchant_id)
        grant_role_in(s, user_id, role, org_unit_id, merchant_id, actor=actor.ref, source=source)
        return _profile(s, user_id, actor)

    return books.run(work)


def revoke_role(books: Books, actor: Actor, user_id: int, *, role: str, org_unit_id: int | None = None,
                merchant_id: int | None = None, source: str | None = None) -> dict[str, Any]:
    """An admin revokes a role; logged like a grant (``role_revoked``)."""
    policy.require_admin(actor)

    def work(s: Session) -> dict[str, Any]:
        if s.get(User, user_id) is None:
            raise DomainError(errors.USER_NOT_FOUND, user_id=user_id)
        if user_id == actor.user_id and role == "admin":
            raise DomainError(errors.PERMISSION_DENIED, "an admin cannot revoke their own admin role")
        revoke_role_in(s, user_id, role, org_unit_id, merchant_id, actor=actor.ref, source=source)
        return _profile(s, user_id, actor)

    return books.run(work)
