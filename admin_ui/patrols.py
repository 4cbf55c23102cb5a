"""Patrol pages (卫星布防), phone first: the volunteer's shifts (open, mine, check-in and check-out by the
leader's code or the post sign with the phone's location), the leader's rotating code big on screen, the
officer's posts, shifts and held attendances, the coverage board (a list and a map of the posts: Leaflet
from npm with the posts as points over a plain background, no tile server being reachable; without the
library or without JavaScript a server-rendered SVG plan; kept fresh by polling ``/patrols/board.json``),
service records with the certificate download, and the public certificate check."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import format_datetime, gettext
from flask_babel import lazy_gettext as _l

from doors import current_books
from ledger import patrols, service
from ledger.errors import DomainError
from ledger.redemption import codes as qr

from . import web

bp = Blueprint("ui_patrols", __name__, url_prefix="/patrols")
VOLUNTEERS = ("volunteer", "leader")
LABELS = {
    # sign-up states
    "pending": _l("Waiting for an officer (insurance)"), "signed_up": _l("Signed up"), "withdrawn": _l("Withdrawn"),
    "checked_in": _l("On duty"), "checked_out": _l("Done"), "no_show": _l("Did not come"),
    # proofs
    "leader_code": _l("leader's code"), "post_sign": _l("post sign and location"),
    "leader_manual": _l("checked in by the leader"),
    # why an attendance waits
    "location_only": _l("location only"), "long_time": _l("long shift"), "many_beans": _l("many beans"),
    "daily_limit": _l("daily limit"), "budget_short": _l("budget too small"), "no_check_out": _l("no check-out"),
    # the board
    "covered": _l("Covered"), "short": _l("Short"), "uncovered": _l("Uncovered"), "no_shift": _l("No shift"),
}


@bp.app_context_processor
def _labels() -> dict:
    return {"patrol_label": lambda key: str(LABELS.get(key, "")) if key else ""}


def _float(name: str) -> float | None:
    raw = (request.form.get(name) or "").strip()
    try:
        return float(raw) if raw else None
    except ValueError:
        raise DomainError(web.errors.VALIDATION_FAILED, field=name) from None


def _local(name: str) -> dt.datetime:
    raw = (request.form.get(name) or "").strip()
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise DomainError(web.errors.VALIDATION_FAILED, field=name) from None
    return moment.replace(tzinfo=current_books().calendar.tz) if moment.tzinfo is None else moment


def _day(name: str) -> dt.date:
    try:
        return dt.date.fromisoformat((request.form.get(name) or "").strip())
    except ValueError:
        raise DomainError(web.errors.VALIDATION_FAILED, field=name) from None


# --- the volunteer ------------------------------------------------------------------------------------

@bp.get("")
@web.requires(*VOLUNTEERS)
def shifts():
    books, actor = current_books(), g.actor
    mine = patrols.list_shifts(books, actor, mine=True, limit=30)
    mine_ids = {s.id for s in mine}
    open_ = [s for s in patrols.list_shifts(books, actor, limit=30) if s.id not in mine_ids]
    now = books.now()
    led = [s for s in patrols.list_shifts(books, actor, limit=200) if s.leader_id == actor.user_id]
    return render_template("ui/patrols.html", mine=mine, open_shifts=open_, now=now, led=led[:5])


def _act(fn, ok: str, *args, **kwargs):
    try:
        fn(current_books(), g.actor, *args, **kwargs)
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(ok, "ok")
    return redirect(url_for("ui_patrols.shifts"))


@bp.post("/shifts/<int:shift_id>/signup")
@web.requires(*VOLUNTEERS)
def sign_up(shift_id: int):
    return _act(patrols.sign_up, gettext("You are on the shift. Thank you!"), shift_id)


@bp.post("/shifts/<int:shift_id>/withdraw")
@web.requires(*VOLUNTEERS)
def withdraw(shift_id: int):
    """Leaving a shift asks first (a place given up may be taken by someone else)."""
    try:
        shift = patrols.get_shift(current_books(), g.actor, shift_id)
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_patrols.shifts"))
    page = web.confirm_step(
        f"withdraw:{shift_id}", title=gettext("Leave this shift?"), cancel=url_for("ui_patrols.shifts"),
        facts=_shift_facts(shift), button=gettext("Leave this shift"),
        warning=gettext("Your place goes to someone else. You can sign up again while places are free."))
    if page is not None:
        return page
    return _act(patrols.withdraw, gettext("You left the shift."), shift_id)


def _shift_facts(shift: patrols.ShiftView) -> list[tuple[str, str]]:
    return [(gettext("Post"), shift.post_name),
            (gettext("When"), f"{format_datetime(shift.starts_at, 'short')} – {format_datetime(shift.ends_at, 'short')}")]


def _proof() -> patrols.Proof:
    scanned = (request.form.get("code") or "").strip()
    if request.form.get("how") == "sign":
        return patrols.Proof(post_sign=scanned, latitude=_float("latitude"), longitude=_float("longitude"),
                             accuracy_m=_float("accuracy_m"))
    return patrols.Proof(code=scanned)


@bp.post("/shifts/<int:shift_id>/check-in")
@web.requires(*VOLUNTEERS)
def check_in(shift_id: int):
    try:
        return _act(patrols.check_in, gettext("Checked in. Stay safe!"), shift_id, _proof())
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_patrols.shifts"))


@bp.post("/shifts/<int:shift_id>/check-out")
@web.requires(*VOLUNTEERS)
def check_out(shift_id: int):
    try:
        return _act(patrols.check_out, gettext("Checked out. Thank you for your service!"), shift_id, _proof())
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_patrols.shifts"))


# --- the leader ---------------------------------------------------------------------------------------

@bp.get("/posts/<int:post_id>/leader")
@web.requires(*VOLUNTEERS, "officer")
def leader(post_id: int):
    code = patrols.leader_code(current_books(), g.actor, post_id)
    return render_template("ui/patrol_leader.html", code=code, qr_png=qr.qr_png_base64(code["code"]),
                           roster=patrols.roster(current_books(), g.actor, code["shift_id"]))


@bp.post("/posts/<int:post_id>/leader/code")
@web.requires(*VOLUNTEERS, "officer")
def leader_code(post_id: int):
    """A fresh code for the leader's page (JSON, polled every few seconds)."""
    code = patrols.leader_code(current_books(), g.actor, post_id)
    return jsonify({**code, "qr_png": qr.qr_png_base64(code["code"])})


@bp.get("/posts/<int:post_id>/leader/used")
@web.requires(*VOLUNTEERS, "officer")
def leader_code_used(post_id: int):
    """Whether the code on the leader's screen was scanned (the page then shows the next one at once)."""
    return jsonify({"used": patrols.leader_code_used(current_books(), request.args.get("jti"))})


@bp.post("/shifts/<int:shift_id>/member")
@web.requires(*VOLUNTEERS, "officer")
def member(shift_id: int):
    """The leader checks a member without a phone in or out (recorded as checked in by the leader)."""
    books = current_books()
    action = patrols.check_out if request.form.get("action") == "out" else patrols.check_in
    try:
        volunteer_id = web.form_int("volunteer_id")
        action(books, g.actor, shift_id, patrols.Proof(), volunteer_id=volunteer_id)
        flash(gettext("Checked out for the member.") if action is patrols.check_out
              else gettext("Checked in for the member."), "ok")
    except DomainError as exc:
        web.refuse(exc)
    try:
        shift = patrols.get_shift(books, g.actor, shift_id)
    except DomainError:
        return redirect(url_for("ui_patrols.shifts"))
    if shift.leader_id != g.actor.user_id:
        return redirect(url_for("ui_patrols.shifts"))
    return redirect(url_for("ui_patrols.leader", post_id=shift.post_id))


# --- records and certificates ------------------------------------------------------------------------

@bp.get("/records")
@web.requires()
def records():
    books = current_books()
    rows = service.my_service_records(books, g.actor)
    today = books.calendar.today(books.now())
    return render_template("ui/patrol_records.html", records=rows, total=sum(r.minutes for r in rows),
                           first=today.replace(month=1, day=1), last=today)


@bp.post("/certificate")
@web.requires()
def certificate():
    try:
        cert = service.issue_certificate(current_books(), g.actor, first_day=_day("first_day"),
                                         last_day=_day("last_day"))
        pdf = service.certificate_pdf(cert, verify_url=url_for("ui_patrols.verify_page", _external=True))
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_patrols.records"))
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="service-{cert.first_day}-{cert.last_day}.pdf"'})


@bp.get("/verify")
def verify_page():
    """Anyone, without an account: paste or scan a certificate's code and see what it states."""
    code = (request.args.get("code") or "").strip()
    result, error = None, None
    if code:
        try:
            result = service.verify_certificate(current_books(), code)
        except DomainError as exc:
            error = exc.code
    return render_template("ui/patrol_verify.html", code=code, result=result, error=error)


verify_page.access_policy = "public"  # type: ignore[attr-defined]


# --- the officer -----------------------------------------------------------------------------------------

@bp.get("/desk")
@web.requires("officer")
def desk():
    books, actor = current_books(), g.actor
    now_local = books.calendar.local(books.now())
    return render_template("ui/patrol_desk.html", posts=patrols.list_posts(books, actor),
                           shifts=patrols.list_shifts(books, actor, limit=50),
                           held=patrols.awaiting(books, actor), pending=patrols.pending_signups(books, actor),
                           today=now_local.date(),
                           now_local=now_local.strftime("%Y-%m-%dT%H:%M"))


def _desk(fn, ok: str, *args, **kwargs):
    try:
        fn(current_books(), g.actor, *args, **kwargs)
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(ok, "ok")
    return redirect(url_for("ui_patrols.desk"))


@bp.post("/desk/posts")
@web.requires("officer")
def create_post():
    try:
        kwargs = {"org_unit_id": web.form_int("org_unit_id"), "name": request.form.get("name") or "",
                      "latitude": _float("latitude"), "longitude": _float("longitude"),
                      "radius_m": web.form_int("radius_m", minimum=10)}
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_patrols.desk"))
    return _desk(patrols.create_post, gettext("Post created."), **kwargs)


@bp.post("/desk/shifts")
@web.requires("officer")
def publish():
    try:
        post_id = web.form_int("post_id")
        common = {"post_id": post_id, "needed": web.form_int("needed", minimum=1),
                      "beans_per_hour": web.form_int("beans_per_hour", required=False),
                      "insurance_required": request.form.get("insurance") == "1",
                      "leader_id": web.form_int("leader_id", required=False)}
        if request.form.get("repeat") == "daily":
            start = _local("starts_at")
            minutes = web.form_int("duration_minutes", minimum=15)
            return _desk(patrols.publish_series, gettext("Recurring shift published."),
                         start_time=start.strftime("%H:%M"), duration_minutes=minutes, first_day=start.date(),
                         **common)
        start = _local("starts_at")
        end = start + dt.timedelta(minutes=web.form_int("duration_minutes", minimum=15))
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_patrols.desk"))
    return _desk(patrols.publish_shift, gettext("Shift published."), starts_at=start, ends_at=end, **common)


@bp.post("/desk/attendance/<int:signup_id>/verify")
@web.requires("officer")
def verify(signup_id: int):
    return _desk(patrols.verify_attendance, gettext("Attendance verified; hours recorded and beans paid."),
                 signup_id)


@bp.post("/desk/attendance/<int:signup_id>/refuse")
@web.requires("officer")
def refuse(signup_id: int):
    """Refusing an attendance asks first, with its reason (the volunteer is not paid for it)."""
    books = current_books()
    held = next((r for r in patrols.awaiting(books, g.actor) if r.id == signup_id), None)
    page = web.confirm_step(
        f"refuse-attendance:{signup_id}", title=gettext("Refuse this attendance?"),
        cancel=url_for("ui_patrols.desk") + f"#held-{signup_id}", button=gettext("Refuse"),
        facts=[(gettext("Volunteer"), held.volunteer_name if held else "—"),
               (gettext("Beans"), held.beans if held and held.beans is not None else "—")],
        reason_label=gettext("Reason for refusing"),
        warning=gettext("The volunteer gets no beans for this shift; this cannot be undone."))
    if page is not None:
        return page
    return _desk(patrols.refuse_attendance, gettext("Attendance refused."), signup_id,
                 reason=(request.form.get("reason") or "").strip()[:40])


@bp.post("/desk/signups/<int:signup_id>/confirm")
@web.requires("officer")
def confirm(signup_id: int):
    return _desk(patrols.confirm_signup, gettext("Insurance confirmed; the volunteer is on the shift."), signup_id)


@bp.post("/desk/shifts/<int:shift_id>/close")
@web.requires("officer")
def close(shift_id: int):
    """Closing a shift asks first: whoever did not check in is recorded as not having come."""
    try:
        shift = patrols.get_shift(current_books(), g.actor, shift_id)
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_patrols.desk"))
    page = web.confirm_step(
        f"close-shift:{shift_id}", title=gettext("Close this shift?"),
        cancel=url_for("ui_patrols.desk") + f"#shift-{shift_id}", button=gettext("Close the shift"),
        facts=[*_shift_facts(shift), (gettext("Signed up"), shift.taken)],
        warning=gettext("Whoever did not check in is recorded as not having come; this cannot be undone."))
    if page is not None:
        return page
    return _desk(patrols.close_shift, gettext("Shift closed; no-shows recorded."), shift_id)


@bp.get("/desk/posts/<int:post_id>/sign")
@web.requires("officer")
def sign(post_id: int):
    data = patrols.post_sign(current_books(), g.actor, post_id)
    return render_template("ui/patrol_sign.html", sign=data, qr_png=qr.qr_png_base64(data["code"]))


# --- the coverage board ------------------------------------------------------------------------------------

def _map(board: list) -> list[dict]:
    """Each post as a point on a 320×320 plan, centred on the posts and scaled to their spread (north up)."""
    if not board:
        return []
    lats = [b.latitude for b in board]
    lons = [b.longitude for b in board]
    mid_lat, mid_lon = (max(lats) + min(lats)) / 2, (max(lons) + min(lons)) / 2
    span = max(max(lats) - min(lats), max(lons) - min(lons), 1e-3)
    return [{"x": round(160 + (b.longitude - mid_lon) / span * 240, 1),
             "y": round(160 - (b.latitude - mid_lat) / span * 240, 1), "b": b} for b in board]


STATES = ("covered", "short", "uncovered", "no_shift")


def _counts(rows: list) -> dict[str, int]:
    return {state: sum(1 for r in rows if r.state == state) for state in STATES}


@bp.get("/board")
@web.requires("officer", "auditor", "admin")
def board():
    books = current_books()
    rows = patrols.coverage(books, g.actor)
    poll_s = int(current_app.config.get("PATROL_BOARD_POLL_S", BOARD_POLL_S))
    return render_template("ui/patrol_board.html", board=rows, points=_map(rows), counts=_counts(rows),
                           now=books.now(), poll_s=max(1, poll_s))


BOARD_POLL_S = 30  # seconds between the board's polls (app config PATROL_BOARD_POLL_S)


@bp.get("/board.json")
@web.requires("officer", "auditor", "admin")
def board_json():
    """The board's state now, for the page's map and list to redraw themselves (polled)."""
    books = current_books()
    rows = patrols.coverage(books, g.actor)
    posts = [{"post_id": r.post_id, "name": r.name, "org_unit": r.org_unit, "latitude": r.latitude,
              "longitude": r.longitude, "radius_m": r.radius_m, "state": r.state, "label": patrol_state(r.state),
              "present": r.present, "needed": r.needed, "on_post": list(r.on_post), "late": list(r.late),
              "shift_id": r.shift_id,
              "until": format_datetime(r.ends_at, "HH:mm") if r.ends_at else None} for r in rows]
    return jsonify({"posts": posts, "counts": _counts(rows), "updated": format_datetime(books.now(), "short")})


def patrol_state(state: str) -> str:
    return str(LABELS.get(state, state))
