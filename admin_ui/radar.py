"""警务雷达 pages: the volunteer's radar list and notice page (answer form), the officer's radar desk
(publish, amend, close; reports to triage), the answer board (each answer is a claim: its verify, reject
and approve forms post to the officer's claim and award pages, ``admin_ui.officer``), and the public
report page (在线举报) anyone may open. Every page calls ``ledger.radar`` with the signed-in actor."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext

from doors import current_books, sse
from ledger import earning, radar
from ledger.access import policy
from ledger.errors import DomainError
from ledger.views import directory

from . import forms, web

bp = Blueprint("ui_radar", __name__, url_prefix="/radar")
public_bp = Blueprint("ui_report", __name__)


PHOTO_FORMS = {"ui_radar.publish", "ui_radar.answer", "ui_report.report_post"}
# the kind a report's category most often becomes (the officer may choose another)
SUGGESTED_KIND = {"missing": "寻人", "theft": "协查", "drugs": "协查", "suspicious": "协查", "fraud": "安全提示",
                  "fire_hazard": "安全提示", "traffic": "安全提示", "dispute": "求助", "other": "求助"}


@bp.before_app_request
def _room_for_photos() -> None:
    """The app's body limit is 256 KB; the forms that carry photos may take four of 5 MB (each is checked)."""
    if request.endpoint in PHOTO_FORMS:
        request.max_content_length = 22 * 1024 * 1024


def _photos(name: str, most: int) -> list[bytes]:
    files = [f for f in request.files.getlist(name) if f and f.filename][:most + 1]
    return [f.read(6 * 1024 * 1024) for f in files]


def public(view):
    """A page open to anyone (the access matrix reads this mark)."""
    view.access_policy = "public"
    return view


def _text(name: str, limit: int) -> str:
    return (request.form.get(name) or "").strip()[:limit]


def _local_time(name: str) -> dt.datetime | None:
    """A ``datetime-local`` field, read as Beijing time."""
    value = request.form.get(name) or ""
    try:
        return dt.datetime.fromisoformat(value).replace(tzinfo=current_books().calendar.tz) if value else None
    except ValueError:
        return None


def _try(action, done: str, back: str):
    try:
        result = action()
    except DomainError as exc:
        web.refuse(exc)
        return web.back(back), None
    flash(done, "ok")
    return None, result


def _scope_units(actor) -> list[dict]:
    return directory.units_in_scope(current_books(), actor, "officer")


@bp.get("")
@web.requires()
def radar_list():
    books, actor = current_books(), g.actor
    notices = radar.list_notices(books, actor)
    prefs = radar.preferences(books, actor)
    hhmm = lambda m: "" if m is None else f"{m // 60:02d}:{m % 60:02d}"
    return render_template("ui/radar.html", notices=notices, units=directory.unit_names(books), prefs=prefs,
                           kinds=radar.NOTICE_KINDS, quiet=(hhmm(prefs["quiet_from"]), hhmm(prefs["quiet_to"])))


@bp.get("/events")
@web.requires()
def events():
    """The live stream for the signed-in page (the web session; see ``doors.sse``)."""
    return sse.stream(current_books(), g.actor, credential=("session", web.session_token()))


@bp.post("/preferences")
@web.requires()
def save_preferences():
    quiet = [_minutes(request.form.get(k) or "") for k in ("quiet_from", "quiet_to")]
    refused, _ = _try(lambda: radar.set_preferences(current_books(), g.actor, kinds=request.form.getlist("kinds"),
                                                    quiet_from=quiet[0], quiet_to=quiet[1]),
                      gettext("Saved."), url_for("ui_radar.radar_list"))
    return refused or redirect(url_for("ui_radar.radar_list"))


def _minutes(value: str) -> int | None:
    """"22:00" → 1320; empty → None."""
    hours, _, minutes = value.partition(":")
    return int(hours) * 60 + int(minutes) if hours.isdigit() and minutes.isdigit() else None


@bp.get("/<int:notice_id>")
@web.requires()
def notice_page(notice_id: int):
    books, actor = current_books(), g.actor
    notice = radar.get_notice(books, actor, notice_id)
    answers = radar.list_answers(books, actor, notice_id)
    names = directory.user_names(books, {a.volunteer_id for a in answers} | {notice.officer_id})
    return render_template("ui/radar_notice.html", n=notice, answers=answers, names=names,
                           tiers=earning.rules_of(books).tip_tiers, kept=forms.kept("answer"),
                           units=directory.unit_names(books), history=radar.notice_history(books, actor, notice_id),
                           officer=policy.is_officer(actor), mine=[a for a in answers if a.volunteer_id == actor.user_id])


def _answer_errors() -> dict[str, str]:
    """The answer form's fields, checked before the use case so each sentence lands beside its field."""
    errors: dict[str, str] = {}
    if not _text("text", 2000):
        errors["text"] = gettext("Write what you saw, in a few words.")
    raw = (request.form.get("occurred_at") or "").strip()
    moment = _local_time("occurred_at")
    if raw and moment is None:
        errors["occurred_at"] = gettext("Enter the date and the time, for example 2026-11-27 09:30.")
    elif moment is not None and moment > current_books().now():
        errors["occurred_at"] = gettext("This time is later than now. Check the date and the time.")
    return errors


@bp.post("/<int:notice_id>/answer")
@web.requires("volunteer")
def answer(notice_id: int):
    here = url_for("ui_radar.notice_page", notice_id=notice_id)
    errors = _answer_errors()
    if not errors:
        try:
            radar.answer_notice(current_books(), g.actor, notice_id, text=_text("text", 2000),
                                place=_text("place", 200) or None, occurred_at=_local_time("occurred_at"),
                                photo=(_photos("photo", 1) or [None])[0])
        except DomainError as exc:
            from .messages import sentence_for

            errors = {"photo" if exc.code.startswith("photo") else "": sentence_for(exc)}
    if errors:  # what was typed stays, the sentence beside its field (admin_ui/forms.py); a photo is chosen again
        forms.keep("answer", errors, fields=("text", "place", "occurred_at"))
        return redirect(here + "#answer-form")
    flash(gettext("Thank you: your tip was sent to the officer."), "ok")
    return redirect(here)


@bp.get("/photos/<int:photo_id>")
@web.requires()
def photo(photo_id: int):
    kind, data = radar.get_photo(current_books(), g.actor, photo_id)
    resp = Response(data, mimetype=kind)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@bp.get("/desk")
@web.requires("officer")
def desk():
    books, actor = current_books(), g.actor
    return render_template("ui/radar_desk.html", notices=radar.list_notices(books, actor, include_ended=True),
                           reports=radar.list_reports(books, actor) + radar.list_reports(books, actor, status="linked"),
                           suggested=SUGGESTED_KIND, scope=_scope_units(actor),
                           communities=directory.communities(books, actor), units=directory.unit_names(books),
                           kinds=radar.NOTICE_KINDS, default_end=(books.calendar.local(books.now())
                                                                  + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"))


@bp.post("/publish")
@web.requires("officer")
def publish():
    area = [int(v) for v in request.form.getlist("area") if v.isdigit()]
    budget = web.form_int("budget_org_unit_id", required=False)
    refused, notice = _try(lambda: radar.publish_notice(
        current_books(), g.actor, kind=request.form.get("kind", ""), title=_text("title", 120),
        body=_text("body", 5000), area=area, ends_at=_local_time("ends_at"),
        bounty=web.form_int("bounty", required=False, minimum=0) or 0, budget_org_unit_id=budget,
        photos=_photos("photos", 4)),
        gettext("The notice was published."), url_for("ui_radar.desk"))
    return refused or redirect(url_for("ui_radar.notice_page", notice_id=notice.id))


@bp.post("/<int:notice_id>/amend")
@web.requires("officer")
def amend(notice_id: int):
    here = url_for("ui_radar.notice_page", notice_id=notice_id)
    refused, _ = _try(lambda: radar.amend_notice(
        current_books(), g.actor, notice_id, body=_text("body", 5000) or None, ends_at=_local_time("ends_at"),
        bounty=web.form_int("bounty", required=False, minimum=0), note=_text("note", 500)),
        gettext("The notice was amended; the earlier version is kept."), here)
    return refused or redirect(here)


@bp.post("/<int:notice_id>/close")
@web.requires("officer")
def close(notice_id: int):
    """Closing a notice asks first, with why (volunteers stop answering; the rest of the bounty goes back)."""
    here = url_for("ui_radar.notice_page", notice_id=notice_id)
    try:
        notice = radar.get_notice(current_books(), g.actor, notice_id)
    except DomainError as exc:
        web.refuse(exc)
        return web.back(here)
    page = web.confirm_step(
        f"close-notice:{notice_id}", title=gettext("Close this notice?"), cancel=here,
        button=gettext("Close the notice"),
        facts=[(gettext("Notice"), notice.title), (gettext("Reward left"), notice.bounty_left)],
        reason_label=gettext("Why close it (found, solved, withdrawn)"),
        warning=gettext("Volunteers can no longer answer it; the rest of its reward goes back to the budget. "
                        "This cannot be undone."))
    if page is not None:
        return page
    refused, _ = _try(lambda: radar.close_notice(current_books(), g.actor, notice_id, reason=_text("reason", 500)),
                      gettext("The notice was closed; the rest of its bounty went back to the budget."), here)
    return refused or redirect(here)


@bp.post("/reports/<int:report_id>/triage")
@web.requires("officer")
def triage(report_id: int):
    """Closing a report (it leaves the desk) asks first; linking it to a case does not."""
    if request.form.get("status") == "closed":
        page = web.confirm_step(
            f"close-report:{report_id}", title=gettext("Close report No. %(id)s?", id=report_id),
            cancel=url_for("ui_radar.desk") + f"#report-{report_id}", button=gettext("Close the report"),
            facts=[(gettext("Report"), gettext("No. %(id)s", id=report_id)),
                   (gettext("Note"), request.form.get("note") or "—")],
            warning=gettext("The report leaves the desk; no notice or case will come of it."))
        if page is not None:
            return page
    refused, _ = _try(lambda: radar.triage_report(
        current_books(), g.actor, report_id, status=request.form.get("status", ""), note=_text("note", 500),
        case_ref=_text("case_ref", 60) or None, notice_id=web.form_int("notice_id", required=False)),
        gettext("Report No. %(id)s triaged.", id=report_id), url_for("ui_radar.desk"))
    return refused or redirect(url_for("ui_radar.desk"))


@bp.post("/reports/<int:report_id>/notice")
@web.requires("officer")
def convert(report_id: int):
    """One step: the report becomes a notice (published) and is recorded as converted."""
    area = [int(v) for v in request.form.getlist("area") if v.isdigit()]
    refused, report = _try(lambda: radar.convert_report(
        current_books(), g.actor, report_id, kind=request.form.get("kind", ""), title=_text("title", 120),
        body=_text("body", 5000), area=area or None, ends_at=_local_time("ends_at"),
        bounty=web.form_int("bounty", required=False, minimum=0) or 0,
        with_photos=request.form.get("with_photos") == "yes"),
        gettext("Report No. %(id)s became a notice.", id=report_id), url_for("ui_radar.desk"))
    return refused or redirect(url_for("ui_radar.notice_page", notice_id=report.notice_id))


@bp.post("/reports/<int:report_id>/phone")
@web.requires("officer")
def reveal_phone(report_id: int):
    """显示电话: the full call-back number of one report, on a page of its own with a tel: link. A POST, since
    every reveal is written to the security log; the number goes into this answer only (no session, no URL,
    no cache: pages are ``no-store``)."""
    back = url_for("ui_radar.desk") + f"#report-{report_id}"
    try:
        shown = radar.reveal_phone(current_books(), g.actor, report_id, source=request.remote_addr)
    except DomainError as exc:
        web.refuse(exc)
        return redirect(back)
    return render_template("ui/radar_phone.html", shown=shown, back=back)


@public_bp.get("/report")
@public
def report_form():
    return render_template("ui/report.html", categories=radar.REPORT_CATEGORIES, days=radar.RETENTION_DAYS,
                           consent_version=radar.CONSENT_VERSION, places=radar.report_places(current_books()))


@public_bp.post("/report")
@public
def report_post():
    refused, receipt = _try(lambda: radar.submit_report(
        current_books(), category=request.form.get("category", ""), text=_text("text", 2000),
        place=_text("place", 200) or None, phone=_text("phone", 32) or None, source=request.remote_addr,
        org_unit_id=web.form_int("org_unit_id", required=False),
        consent=request.form.get("consent") == "yes", photo=(_photos("photo", 1) or [None])[0]),
        gettext("Thank you. Your report was received."), url_for("ui_report.report_form"))
    if refused:
        return refused
    return render_template("ui/report.html", receipt=receipt, categories=radar.REPORT_CATEGORIES,
                           days=radar.RETENTION_DAYS, consent_version=radar.CONSENT_VERSION,
                           places=radar.report_places(current_books()))
