"""The officer's desk: the queue of claims in scope, verify or reject with a reason, direct awards,
approvals waiting for a second officer, volunteers and their histories, bean cards (issue, unlock,
cancel, print)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import format_datetime, gettext

from doors import current_books
from ledger import earning, redemption
from ledger.errors import DomainError
from ledger.redemption import codes
from ledger.views import directory

from . import web
from .labels import CLAIM_KINDS, label

bp = Blueprint("ui_officer", __name__, url_prefix="/officer")



def _when(value) -> str:
    return format_datetime(value, "short") if value else ""


def _reason() -> str:
    return (request.form.get("reason") or "").strip()[:2000]


def _pending_context(books, actor, pending: list) -> dict[int, Any]:
    """For the second officer: the claim behind each award waiting for approval (the tip text, where, and the
    first officer's note), so they decide on what the first one saw."""
    out = {}
    for award in pending:
        if award.claim_id is None:
            continue
        try:
            out[award.id] = earning.get_claim(books, actor, award.claim_id)
        except DomainError:
            continue
    return out


@bp.get("")
@web.requires("officer")
def queue():
    books, actor = current_books(), g.actor
    claims = [c for c in earning.list_claims(books, actor, status="submitted", limit=200)
              if c.volunteer_id != actor.user_id]
    pending = earning.list_awards(books, actor, status="pending_approval", limit=200)
    behind = _pending_context(books, actor, pending)
    names = directory.user_names(books, {c.volunteer_id for c in claims} | {c.submitted_by_id for c in claims}
                                 | {a.volunteer_id for a in pending} | {a.officer_id for a in pending})
    rules = earning.rules_of(books)
    # what verifying pays, shown before the officer verifies: a patrol's beans follow from its hours
    values = {c.id: earning.claim_amount(rules, c, None) for c in claims if c.kind == "patrol" and c.ended_at}
    return render_template("ui/officer.html", claims=claims, pending=pending, names=names, behind=behind,
                           units=directory.unit_names(books), tiers=rules.tip_tiers, values=values,
                           threshold=rules.approval_threshold,
                           volunteers=directory.volunteers_in_scope(books, actor),
                           communities=directory.communities(books, actor), award_key=uuid.uuid4().hex)


def _done(message: str):
    flash(message, "ok")
    return web.back(url_for("ui_officer.queue"))


@bp.post("/claims/<int:claim_id>/verify")
@web.requires("officer")
def verify(claim_id: int):
    try:
        view = earning.verify_claim(current_books(), g.actor, claim_id, reason=_reason(),
                                    tier=request.form.get("tier") or None,
                                    amount=web.form_int("amount", required=False, minimum=1))
    except DomainError as exc:
        web.refuse(exc)
        return web.back(url_for("ui_officer.queue"))
    if view.award_status == "pending_approval":
        return _done(gettext("Claim No. %(id)s verified; the award waits for a second officer.", id=claim_id))
    return _done(gettext("Claim No. %(id)s verified; %(n)s beans awarded.", id=claim_id, n=view.amount or 0))


@bp.post("/claims/<int:claim_id>/reject")
@web.requires("officer")
def reject(claim_id: int):
    """Rejecting asks first, showing the claim and its reason (the volunteer reads that reason)."""
    books = current_books()
    try:
        claim = earning.get_claim(books, g.actor, claim_id)
    except DomainError as exc:
        web.refuse(exc)
        return web.back(url_for("ui_officer.queue"))
    names = directory.user_names(books, {claim.volunteer_id})
    page = web.confirm_step(
        f"reject:{claim_id}", title=gettext("Reject claim No. %(id)s?", id=claim_id),
        cancel=url_for("ui_officer.queue") + f"#claim-{claim_id}", button=gettext("Reject"),
        facts=[(gettext("Volunteer"), names.get(claim.volunteer_id, "")),
               (gettext("Claim"), label(CLAIM_KINDS, claim.kind)), (gettext("When"), _when(claim.occurred_at))],
        reason_label=gettext("Reason for rejecting (the volunteer reads it)"),
        warning=gettext("The volunteer gets no beans for this claim; a rejection cannot be undone."))
    if page is not None:
        return page
    try:
        earning.reject_claim(books, g.actor, claim_id, reason=_reason())
    except DomainError as exc:
        web.refuse(exc)
        return web.back(url_for("ui_officer.queue"))
    return _done(gettext("Claim No. %(id)s rejected.", id=claim_id))


@bp.post("/awards")
@web.requires("officer")
def award():
    try:
        view = earning.award_directly(current_books(), g.actor, volunteer_id=web.form_int("volunteer_id"),
                                      org_unit_id=web.form_int("org_unit_id"),
                                      amount=web.form_int("amount", minimum=1),
                                      reference=(request.form.get("reference") or "").strip()[:200],
                                      reason=_reason()[:500], key=(request.form.get("award_key") or None))
    except DomainError as exc:
        web.refuse(exc)
        return web.back(url_for("ui_officer.queue"))
    if view.status == "pending_approval":
        return _done(gettext("The award waits for a second officer."))
    return _done(gettext("%(n)s beans awarded.", n=view.amount))


@bp.post("/awards/<int:award_id>/approve")
@web.requires("officer")
def approve(award_id: int):
    try:
        earning.approve_award(current_books(), g.actor, award_id, reason=_reason())
    except DomainError as exc:
        web.refuse(exc)
        return web.back(url_for("ui_officer.queue"))
    return _done(gettext("Award No. %(id)s approved and paid.", id=award_id))


@bp.post("/awards/<int:award_id>/void")
@web.requires("officer")
def void(award_id: int):
    """Refusing an award waiting for a second officer asks first, with its reason."""
    books = current_books()
    try:
        award = earning.get_award(books, g.actor, award_id)
    except DomainError as exc:
        web.refuse(exc)
        return web.back(url_for("ui_officer.queue"))
    names = directory.user_names(books, {award.volunteer_id, award.officer_id})
    page = web.confirm_step(
        f"void:{award_id}", title=gettext("Refuse award No. %(id)s?", id=award_id),
        cancel=url_for("ui_officer.queue") + f"#award-{award_id}", button=gettext("Refuse"),
        facts=[(gettext("Volunteer"), names.get(award.volunteer_id, "")),
               (gettext("Beans"), award.amount), (gettext("Proposed by"), names.get(award.officer_id, ""))],
        reason_label=gettext("Reason for refusing"),
        warning=gettext("The beans go back to the community budget and the volunteer is not paid."))
    if page is not None:
        return page
    try:
        earning.void_award(books, g.actor, award_id, reason=_reason())
    except DomainError as exc:
        web.refuse(exc)
        return web.back(url_for("ui_officer.queue"))
    return _done(gettext("Award No. %(id)s refused; the beans went back to the budget.", id=award_id))


@bp.get("/volunteers")
@web.requires("officer")
def volunteers():
    """Volunteers in scope; ``q`` searches by name or phone (phones are shown masked)."""
    query = (request.args.get("q") or "").strip()[:50]
    return render_template("ui/volunteers.html", query=query,
                           volunteers=directory.volunteers_in_scope(current_books(), g.actor, query=query or None))


@bp.get("/volunteers/<int:user_id>")
@web.requires("officer")
def volunteer(user_id: int):
    books = current_books()
    profile = directory.volunteer_profile(books, g.actor, user_id)
    claims = [c for c in earning.list_claims(books, g.actor, limit=500) if c.volunteer_id == user_id][:50]
    # a card just issued (post-redirect-get): its PIN is shown on this one page view, then forgotten
    shown = session.pop("new_card", None)
    new_card = shown if isinstance(shown, dict) and shown.get("user_id") == user_id else None
    return render_template("ui/volunteer.html", v=profile, claims=claims, new_card=new_card,
                           card_key=web.once_key(f"card:{user_id}"),
                           devices=redemption.list_devices(books, g.actor, user_id=user_id))


@bp.post("/volunteers/<int:user_id>/cards")
@web.requires("officer")
def issue_card(user_id: int):
    """Issue a card, then redirect (a reload shows the page, never issues again). A volunteer who holds a card
    is asked first (the new card cancels it). The form carries a one-time key: a second submit of the same form
    issues nothing."""
    books = current_books()
    back = url_for("ui_officer.volunteer", user_id=user_id)
    try:
        profile = directory.volunteer_profile(books, g.actor, user_id)
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_officer.volunteers"))
    # the page's form is used up by its first press (a resend of it says so), even when it leads to the question
    if request.form.get("confirmed") != "1" and not web.take_once(f"card:{user_id}"):
        flash(gettext("This form was already sent; the card issued then is below."), "error")
        return redirect(back)
    old = [c for c in profile["cards"] if c["status"] != "revoked"]
    if old or request.form.get("confirmed") == "1":
        page = web.confirm_step(
            f"card:{user_id}", title=gettext("Issue a new card for %(name)s?", name=profile["name"]), cancel=back,
            facts=[(gettext("Volunteer"), profile["name"]),
                   (gettext("Card cancelled"), ", ".join(gettext("No. %(id)s", id=c["id"]) for c in old) or "—")],
            button=gettext("Issue the new card"),
            warning=gettext("The old card stops working at once. Give the new card and its PIN to the volunteer."))
        if page is not None:
            return page
    try:
        out = redemption.issue_card(books, user_id, g.actor.ref, None, by=g.actor)
    except DomainError as exc:
        web.refuse(exc)
        return redirect(back)
    session["new_card"] = {"user_id": user_id, "card": {"id": out["card"]["id"]}, "pin": out["pin"]}
    return redirect(back)


def _card_action(card_id: int, action: str):
    books = current_books()
    try:
        card = redemption.get_card(books, card_id, by=g.actor)
        if action == "unlock":
            redemption.unlock_card(books, card_id, by=g.actor)
            flash(gettext("Card No. %(id)s unlocked.", id=card_id), "ok")
        else:
            redemption.revoke_card(books, card_id, by=g.actor)
            flash(gettext("Card No. %(id)s cancelled.", id=card_id), "ok")
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_officer.volunteers"))
    return redirect(url_for("ui_officer.volunteer", user_id=card["user_id"]))


@bp.post("/cards/<int:card_id>/unlock")
@web.requires("officer")
def unlock_card(card_id: int):
    return _card_action(card_id, "unlock")


@bp.post("/cards/<int:card_id>/revoke")
@web.requires("officer")
def revoke_card(card_id: int):
    """Cancelling a card asks first: whose card, and that it stops working at once."""
    try:
        card = redemption.get_card(current_books(), card_id, by=g.actor)
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_officer.volunteers"))
    page = web.confirm_step(
        f"revoke-card:{card_id}", title=gettext("Cancel card No. %(id)s?", id=card_id),
        cancel=url_for("ui_officer.volunteer", user_id=card["user_id"]), button=gettext("Cancel the card"),
        facts=[(gettext("Holder"), directory.user_names(current_books(), {card["user_id"]}).get(card["user_id"], "")),
               (gettext("Card"), gettext("No. %(id)s", id=card_id))],
        warning=gettext("The card stops working at once, at every till; this cannot be undone. A new card can be "
                        "issued afterwards."))
    if page is not None:
        return page
    return _card_action(card_id, "revoke")


@bp.post("/devices/<int:device_id>/revoke")
@web.requires("officer")
def revoke_device(device_id: int):
    """Switching off a volunteer's phone (a lost one: its offline codes) asks first; the use case checks that the
    officer is over the volunteer."""
    books = current_books()
    try:
        device = redemption.get_device(books, g.actor, device_id)
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_officer.volunteers"))
    back = url_for("ui_officer.volunteer", user_id=device["user_id"]) + "#devices"
    page = web.confirm_step(
        f"revoke-device:{device_id}", title=gettext("Switch off this phone's offline codes?"), cancel=back,
        button=gettext("Switch off"),
        facts=[(gettext("Volunteer"), directory.user_names(books, {device["user_id"]}).get(device["user_id"], "")),
               (gettext("Phone"), device["name"] or gettext("My phone"))],
        warning=gettext("The phone's offline codes are refused at once, at every till; this cannot be undone. "
                        "Payment codes shown online still work."))
    if page is not None:
        return page
    try:
        redemption.revoke_device(books, g.actor, device_id)
    except DomainError as exc:
        web.refuse(exc)
        return redirect(back)
    flash(gettext("The phone's offline codes are switched off."), "ok")
    return redirect(back)


@bp.get("/cards/<int:card_id>/print")
@web.requires("officer")
def print_card(card_id: int):
    card = redemption.get_card(current_books(), card_id, with_code=True, by=g.actor)
    png = base64.b64encode(codes.qr_png(card["code"], box_size=5)).decode()
    return render_template("ui/card_print.html", card=card, qr=png)
