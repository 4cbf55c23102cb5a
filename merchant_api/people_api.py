"""People: your profile and leaderboard name, the org tree, and (admins) users and role grants."""

from __future__ import annotations

from flask import request
from marshmallow import fields, validate

from doors import current_books
from ledger import people
from ledger.access.identity import ROLES

from .auth import current_actor, requires_roles
from .edge import Blueprint
from .schemas import Boolean, Change, In, Out, ProfileOut, String

blp = Blueprint("people", __name__, url_prefix="", description="People, roles and the org tree")


class ProfileIn(Change):
    display_name = String(validate=validate.Length(min=1, max=100))
    pseudonym = String(validate=validate.Length(max=100))
    show_pseudonym = Boolean()


class UserIn(In):
    username = String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{2,64}$"))
    password = String(required=True, load_only=True, validate=validate.Length(max=200))
    display_name = String(required=True, validate=validate.Length(min=1, max=100))
    phone = String(load_default=None, validate=validate.Regexp(r"^\+?[0-9]{5,20}$"))


class OrgUnitOut(Out):
    id = fields.Integer(required=True)
    parent_id = fields.Integer(required=True, allow_none=True)
    level = fields.String(required=True, metadata={"description": "district, street, community, group, building"})
    code = fields.String(required=True)
    name = fields.String(required=True)


class OrgUnitsOut(Out):
    org_units = fields.List(fields.Nested(OrgUnitOut), required=True)


class GrantIn(In):
    role = String(required=True, validate=validate.OneOf(ROLES))
    org_unit_id = fields.Integer(strict=True, load_default=None)
    merchant_id = fields.Integer(strict=True, load_default=None)


@blp.route("/me", methods=["GET"])
@requires_roles()
@blp.response(200, ProfileOut)
def me():
    """Who you are and the roles you hold."""
    return people.get_profile(current_books(), current_actor())


@blp.route("/me", methods=["PATCH"])
@requires_roles("volunteer", "leader")
@blp.arguments(ProfileIn())
@blp.response(200, ProfileOut)
def update_me(body: dict):
    """Volunteers: change your display name, or choose a pseudonym for the leaderboards. (Auditors and
    other staff are read-only here; an admin changes their names.)"""
    return people.update_profile(current_books(), current_actor(), **body)


@blp.route("/org-units", methods=["GET"])
@requires_roles()
@blp.response(200, OrgUnitsOut)
def org_units():
    """The org tree: district, street offices, communities, resident groups, buildings."""
    return {"org_units": people.list_org_units(current_books())}


@blp.route("/users", methods=["POST"])
@requires_roles("admin")
@blp.arguments(UserIn())
@blp.response(201, ProfileOut)
def register_user(body: dict):
    """Register a person (with a wallet); grant roles separately (admins)."""
    return people.register_user(current_books(), current_actor(), **body)


@blp.route("/users/<int:user_id>/grants", methods=["POST"])
@requires_roles("admin")
@blp.arguments(GrantIn())
@blp.response(200, ProfileOut)
def grant(body: dict, user_id: int):
    """Grant a role on an org unit, a merchant, or district-wide (admins)."""
    return people.grant_role(current_books(), current_actor(), user_id, source=request.remote_addr, **body)


@blp.route("/users/<int:user_id>/grants/revoke", methods=["POST"])
@requires_roles("admin")
@blp.arguments(GrantIn())
@blp.response(200, ProfileOut)
def revoke(body: dict, user_id: int):
    """Revoke a role grant (admins); it takes effect on the user's next request."""
    return people.revoke_role(current_books(), current_actor(), user_id, source=request.remote_addr, **body)
