"""Recruitment and accounts pages: the public sign-up (from the front page or a poster's QR code), the
privacy notice, a forgotten password reset with the office's code, changing one's password, and the
community staff's desk (calls, sign-ups to approve, reset codes)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext

from doors import current_books
from doors.downloads import my_data_download
from ledger import errors
from ledger.errors import DomainError
from ledger.people import passwords, recruitment
from ledger.privacy import complete_erasure, list_erasures, request_erasure
from ledger.redemption import codes
from ledger.views import directory

from . import web
from .messages import sentence_for

bp = Blueprint("ui_people", __name__)
FORM_FIELDS = ("name", "phone", "community_id", "building_id", "birth_date", "guardian_name", "guardian_phone")


def _int_or_none(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def _join_page(call: recruitment.CallView | None, form: dict | None = None, error: str | None = None,
               status: int = 200):
    books = current_books()
    return render_template("ui/join.html", call=call, places=recruitment.places(books), form=form or {},
                           error=error, challenge=recruitment.new_challenge(books),
                           notice_version=recruitment.PRIVACY_NOTICE_VERSION), status


@bp.get("/join")
@web.public
def join():
    return _join_page(None)


@bp.get("/join/<int:call_id>")
@web.public
def join_call(call_id: int):
    return _join_page(recruitment.get_call(current_books(), call_id))


@bp.get("/join/<int:call_id>/qr.png")
@web.public
def join_qr(call_id: int):
    """The poster's QR code: this call's sign-up page."""
    recruitment.get_call(current_books(), call_id)
    png = codes.qr_png(url_for("ui_people.join_call", call_id=call_id, _external=True), box_size=8)
    return Response(png, content_type="image/png", headers={"Cache-Control": "public, max-age=3600"})


def _birth_date(raw: str | None) -> dt.date:
    try:
        return dt.date.fromisoformat((raw or "").strip())
    except ValueError:
        raise DomainError(errors.VALIDATION_FAILED, field="birth_date") from None


@bp.post("/join")
@web.public
def join_post():
    form = {k: (request.form.get(k) or "").strip() for k in FORM_FIELDS}
    call_id = _int_or_none(request.form.get("call_id"))
    books = current_books()
    try:
        recruitment.sign_up(
            books, name=form["name"], phone=form["phone"], community_id=_int_or_none(form["community_id"]),
            building_id=_int_or_none(form["building_id"]), call_id=call_id,
            password=request.form.get("password") or "", birth_date=_birth_date(form["birth_date"]),
            consent_version=request.form.get("consent_version") if request.form.get("consent") == "1" else None,
            challenge_id=request.form.get("challenge_id") or "", challenge_answer=request.form.get("answer") or "",
            guardian_name=form["guardian_name"] or None, guardian_phone=form["guardian_phone"] or None,
            guardian_consent=request.form.get("guardian_consent") == "1", source=request.remote_addr)
    except DomainError as exc:
        call = recruitment.get_call(books, call_id) if call_id else None
        return _join_page(call, form, sentence_for(exc), 422)
    return render_template("ui/join_done.html", phone=form["phone"])


@bp.get("/privacy")
@web.public
def privacy():
    return render_template("ui/privacy.html", version=recruitment.PRIVACY_NOTICE_VERSION)


@bp.get("/reset")
@web.public
def reset():
    return render_template("ui/reset.html", error=None, phone="")


@bp.post("/reset")
@web.public
def reset_post():
    phone = (request.form.get("phone") or "").strip()[:32]
    try:
        passwords.reset_password(current_books(), phone=phone, code=(request.form.get("code") or "").strip()[:20],
                                 new_password=request.form.get("new_password") or "", source=request.remote_addr)
    except DomainError as exc:
        return render_template("ui/reset.html", error=sentence_for(exc), phone=phone), 422
    flash(gettext("Your password is set. Sign in with your mobile number and the new password."), "ok")
    return redirect(url_for("ui_auth.sign_in"))


@bp.get("/account/password")
@web.requires()
def password():
    return render_template("ui/password.html", error=None, errors={})


@bp.post("/account/password")
@web.requires()
def password_post():
    try:
        out = passwords.change_password(
            current_books(), g.actor, current_password=request.form.get("current_password") or "",
            new_password=request.form.get("new_password") or "", keep_session=web.session_token(),
            source=request.remote_addr)
    except DomainError as exc:
        # beside the field it is about (passwords are never typed back into a page)
        field = {"wrong_password": "current_password", "weak_password": "new_password"}.get(exc.code)
        return render_template("ui/password.html", error=None if field else sentence_for(exc),
                               errors={field: sentence_for(exc)} if field else {}), 422
    flash(gettext("Password changed; %(n)s other sessions were signed out.", n=out["sessions_ended"]), "ok")
    return redirect(web.landing_for(g.actor))


@bp.get("/account/my-data.<any(json, pdf):fmt>")
@web.requires()
def my_data(fmt: str):
    """Everything held about the signed-in person, as a download (see docs/people.md)."""
    return my_data_download(current_books(), g.actor, fmt)


@bp.post("/account/erasure")
@web.requires()
def erasure_post():
    try:
        request_erasure(current_books(), g.actor)
    except DomainError as exc:
        flash(sentence_for(exc), "error")
        return redirect(url_for("ui_people.password"))
    flash(gettext("Your request is recorded; your community staff will complete it."), "ok")
    return redirect(url_for("ui_people.password"))


# --- the community staff's desk --------------------------------------------------------------------------

@bp.get("/signups")
@web.requires("officer")
def desk():
    books = current_books()
    erasures = list_erasures(books, g.actor)
    return render_template("ui/signups.html", pending=recruitment.list_signups(books, g.actor),
                           calls=recruitment.open_calls(books), communities=directory.communities(books, g.actor),
                           reset=None, erasures=erasures,
                           erasure_names=directory.user_names(books, {e.user_id for e in erasures}))


@bp.post("/erasures/<int:erasure_id>/complete")
@web.requires("officer")
def complete_erasure_post(erasure_id: int):
    """Erasing a person asks first: it cannot be undone."""
    books = current_books()
    request_ = next((e for e in list_erasures(books, g.actor) if e.id == erasure_id), None)
    who = directory.user_names(books, {request_.user_id}).get(request_.user_id, "") if request_ else ""
    page = web.confirm_step(
        f"erase:{erasure_id}", title=gettext("Erase this person's data?"), cancel=url_for("ui_people.desk"),
        facts=[(gettext("Person"), who or "—")], button=gettext("Return the beans and erase"),
        warning=gettext("Their name, phone and personal details are destroyed and their wallet's beans go back to "
                        "the community budget. This cannot be undone."))
    if page is not None:
        return page
    try:
        done = complete_erasure(books, g.actor, erasure_id)
    except DomainError as exc:
        flash(sentence_for(exc), "error")
        return redirect(url_for("ui_people.desk"))
    flash(gettext("Erased; %(n)s beans went back to the community budget.", n=done.returned_beans), "ok")
    return redirect(url_for("ui_people.desk"))


@bp.post("/signups/<int:signup_id>/approve")
@web.requires("officer")
def approve(signup_id: int):
    made = recruitment.approve_signup(current_books(), g.actor, signup_id)
    flash(gettext("Approved: %(name)s can sign in with their mobile number now.", name=made.name), "ok")
    return redirect(url_for("ui_people.desk"))


@bp.post("/signups/<int:signup_id>/decline")
@web.requires("officer")
def decline(signup_id: int):
    """Declining a sign-up asks first, with its reason."""
    books = current_books()
    signup = next((x for x in recruitment.list_signups(books, g.actor) if x.id == signup_id), None)
    page = web.confirm_step(
        f"decline:{signup_id}", title=gettext("Decline this sign-up?"), cancel=url_for("ui_people.desk"),
        facts=[(gettext("Name"), signup.name if signup else "—")], button=gettext("Decline"),
        reason_label=gettext("Reason for declining"),
        warning=gettext("They cannot sign in; they may sign up again later."))
    if page is not None:
        return page
    recruitment.decline_signup(books, g.actor, signup_id, reason=request.form.get("reason") or "")
    flash(gettext("Declined; the reason is kept with the sign-up."), "ok")
    return redirect(url_for("ui_people.desk"))


@bp.post("/recruitment/new")
@web.requires("officer")
def new_call():
    books = current_books()
    days = _int_or_none(request.form.get("days")) or 30
    call = recruitment.publish_call(
        books, g.actor, org_unit_id=_int_or_none(request.form.get("org_unit_id")) or 0,
        title=request.form.get("title") or "", description=request.form.get("description") or "",
        needed=_int_or_none(request.form.get("needed")) or 1, min_age=_int_or_none(request.form.get("min_age")) or 14,
        starter_beans=_int_or_none(request.form.get("starter_beans")) or 0,
        training_required=request.form.get("training") == "1", insurance_required=request.form.get("insurance") == "1",
        closes_at=books.now() + dt.timedelta(days=min(days, 365)))
    flash(gettext("Published. Print the poster with its QR code from the call's page."), "ok")
    return redirect(url_for("ui_people.join_call", call_id=call.id))


@bp.post("/signups/reset-code")
@web.requires("officer", "admin")
def reset_code():
    books = current_books()
    issued = passwords.issue_reset_code(books, g.actor, phone=(request.form.get("phone") or "").strip()[:32],
                                        source=request.remote_addr)
    page = render_template("ui/signups.html", pending=recruitment.desk_signups(books, g.actor),
                           calls=recruitment.open_calls(books),
                           communities=directory.communities(books, g.actor), reset=issued)
    return page, 200, {"Cache-Control": "no-store"}
