"""The administrator's page: the org tree, people and roles (disable ends their sessions), merchants and
their tills, the rules and caps in force, and signing-key rotation."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext

from doors import current_books
from ledger import earning, errors, people, redemption
from ledger.access import web_sessions
from ledger.access.identity import ROLES
from ledger.errors import DomainError
from ledger.infra.keys import PURPOSES
from ledger.views import directory

from . import web
from .labels import ROLES as ROLE_LABELS
from .labels import label

bp = Blueprint("ui_admin", __name__, url_prefix="/admin")



def _keys() -> list[dict]:
    store = current_books().keys
    out = []
    for purpose in PURPOSES:
        active = store.active(purpose)
        for key in store.keys(purpose):
            state = "retired" if key.retired else ("signing" if active and key.kid == active.kid else "verifying")
            out.append({"purpose": purpose, "kid": key.kid, "state": state})
    return out


@bp.get("")
@web.requires("admin")
def page():
    books, actor = current_books(), g.actor
    merchants = directory.merchants(books, actor)
    tills = {m["id"]: redemption.list_tills(books, m["id"], by=g.actor) for m in merchants}
    rules = dataclasses.asdict(earning.rules_of(books))
    limits = dataclasses.asdict(books.settings.redemption)
    return render_template("ui/admin.html", tree=directory.org_tree(books, actor),
                           people=directory.people(books, actor), merchants=merchants, tills=tills,
                           rules=rules, limits=limits, keys=_keys(), purposes=PURPOSES, roles=ROLES)


def _person(user_id: int) -> dict:
    for person in directory.people(current_books(), g.actor):
        if person["id"] == user_id:
            return person
    raise DomainError(errors.USER_NOT_FOUND, user_id=user_id)


def _roles_of(person: dict) -> str:
    return "、".join(f"{label(ROLE_LABELS, gr['role'])}{' · ' + gr['where'] if gr['where'] else ''}"
                    for gr in person["grants"]) or "—"


@bp.post("/users/<int:user_id>/active")
@web.requires("admin")
def set_active(user_id: int):
    """Enabling is one press; disabling asks first (the person's sessions end at once)."""
    active = request.form.get("active") == "1"
    back = url_for("ui_admin.page") + "#people"
    if not active:
        person = _person(user_id)
        page = web.confirm_step(
            f"disable:{user_id}", title=gettext("Disable %(name)s?", name=person["name"]), cancel=back,
            facts=[(gettext("Name"), person["name"]), (gettext("Username"), person["username"]),
                   (gettext("Roles"), _roles_of(person))],
            button=gettext("Disable"),
            warning=gettext("They are signed out at once everywhere and cannot sign in until enabled again."))
        if page is not None:
            return page
    try:
        out = web_sessions.set_user_active(current_books(), g.actor, user_id, active, source=request.remote_addr)
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(gettext("User enabled.") if active else
              gettext("User disabled; %(n)s sessions ended.", n=out["sessions_ended"]), "ok")
    return redirect(back)


@bp.post("/keys/rotate")
@web.requires("admin")
def rotate_key():
    purpose = request.form.get("purpose") or ""
    if not web.take_once("rotate-key"):  # the same form sent twice rotates once
        flash(gettext("This form was already sent; the key it rotated is below."), "error")
        return web.back(url_for("ui_admin.page") + "#keys")
    try:
        if purpose not in PURPOSES:
            raise DomainError(errors.VALIDATION_FAILED, field="purpose")
        key = current_books().keys.rotate(purpose)
        from ledger.access import security

        security.record(current_books(), "key_rotated", actor=g.actor.ref, source=request.remote_addr, purpose=purpose,
                        kid=key.kid)
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(gettext("New %(p)s key %(kid)s signs from now on; older keys still verify.", p=purpose, kid=key.kid), "ok")
    return web.back(url_for("ui_admin.page") + "#keys")


@bp.post("/users")
@web.requires("admin")
def register():
    try:
        out = people.register_user(current_books(), g.actor, username=(request.form.get("username") or "").strip()[:64],
                                   password=(request.form.get("password") or "")[:200],
                                   display_name=(request.form.get("display_name") or "").strip()[:100],
                                   phone=(request.form.get("phone") or "").strip()[:20] or None)
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(gettext("User %(name)s registered; now grant a role.", name=out.get("display_name", "")), "ok")
    return web.back(url_for("ui_admin.page") + "#people")


def _scope() -> dict:
    """The grant's scope from one select: ``org:<id>``, ``merchant:<id>`` or empty (district-wide)."""
    raw = request.form.get("scope") or ""
    kind, _, ident = raw.partition(":")
    if kind in ("org", "merchant") and ident.isdigit():
        return {"org_unit_id": int(ident)} if kind == "org" else {"merchant_id": int(ident)}
    if raw:
        raise DomainError(errors.VALIDATION_FAILED, field="scope")
    return {}


@bp.post("/grants")
@web.requires("admin")
def grant():
    try:
        people.grant_role(current_books(), g.actor, web.form_int("user_id"), role=request.form.get("role") or "",
                          source=request.remote_addr, **_scope())
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(gettext("Role granted."), "ok")
    return web.back(url_for("ui_admin.page") + "#people")


@bp.post("/users/<int:user_id>/grants/revoke")
@web.requires("admin")
def revoke(user_id: int):
    """Revoking a role asks first: who, which role, where."""
    back = url_for("ui_admin.page") + "#people"
    role = request.form.get("role") or ""
    try:
        scope = _scope()
        person = _person(user_id)
    except DomainError as exc:
        web.refuse(exc)
        return redirect(back)
    where = next((gr["where"] for gr in person["grants"] if gr["role"] == role
                  and gr["org_unit_id"] == scope.get("org_unit_id") and gr["merchant_id"] == scope.get("merchant_id")),
                 "")
    page = web.confirm_step(
        f"revoke:{user_id}:{role}", title=gettext("Revoke a role of %(name)s?", name=person["name"]), cancel=back,
        facts=[(gettext("Name"), person["name"]), (gettext("Role"), label(ROLE_LABELS, role)),
               (gettext("Where"), where or gettext("Whole district"))],
        button=gettext("Revoke"), warning=gettext("Their pages for this role close at their next click."))
    if page is not None:
        return page
    try:
        people.revoke_role(current_books(), g.actor, user_id, role=role, source=request.remote_addr, **scope)
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(gettext("Role revoked."), "ok")
    return redirect(back)
