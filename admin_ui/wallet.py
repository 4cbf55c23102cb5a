"""The volunteer's wallet, an installable phone app: four tabs (付款码 the pay code first, 雷达 the radar's
notices, 巡逻 shifts, 我的 history, claims, certificates and settings), the pay code's QR, barcode and short
number, a 支付成功 screen when a till takes a payment (the event stream's ``payment`` event), offline codes
signed on the phone with a registered device key, 长辈模式, and forms that keep what was typed when refused.

The app shell (``/wallet/shell``, the scripts, styles and icons) is what the service worker (``/wallet/sw.js``)
caches; pages and answers carrying balances or codes are never cached (``Cache-Control: no-store``). See
docs/ui.md, "The wallet app".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from doors import current_books
from ledger import earning, patrols, radar, redemption
from ledger.errors import DomainError
from ledger.redemption import codes
from ledger.views import directory
from ledger.views import wallet as wallet_view

from . import forms, web

bp = Blueprint("ui_wallet", __name__, url_prefix="/wallet")
ROLES = ("volunteer", "leader")
TABS = ("pay", "radar", "patrol", "me")
ELDER_COOKIE = "gb_elder"  # the user ids on this device who chose 长辈模式 (larger type and controls)
STATIC = Path(__file__).resolve().parent / "static"
# the app shell the service worker keeps: no balance, no code, nothing of the person
SHELL_STATIC = ("app.css", "wallet.css", "wallet.js", "radar.js", "icons/icon-192.png", "icons/favicon-32.png",
                "vendor/node_modules/qrcode-generator/dist/qrcode.js",
                "vendor/node_modules/jsbarcode/dist/barcodes/JsBarcode.code128.min.js")


# what a history line was about (``ledger.views.wallet``), in the volunteer's words
HISTORY = {"payment": _l("Payment"), "payment_waiting": _l("Payment waiting for your confirmation"),
           "payment_confirmed": _l("Payment confirmed"), "payment_released": _l("Payment cancelled, beans back"),
           "refund": _l("Refund from the shop"), "claim_award": _l("Reward for your claim"),
           "notice_award": _l("Police radar reward"), "patrol_award": _l("Patrol reward"),
           "survey_award": _l("Survey reward"), "award": _l("Award"),
           "incoming_waiting": _l("Reward waiting for an officer's approval"),
           "incoming_cancelled": _l("Reward not approved")}


def elder_mode() -> bool:
    actor = web.current_actor()
    chosen = (request.cookies.get(ELDER_COOKIE) or "").split(".")
    return actor is not None and str(actor.user_id) in chosen


@bp.app_context_processor
def _globals() -> dict:
    return {"elder_mode": elder_mode, "HISTORY": HISTORY}


# --- the code on the pay tab -------------------------------------------------------------------------

def _fresh_code() -> dict:
    """A payment code through the same use case (and rate limit) as the API's, with its short number."""
    issued = redemption.issue_payment_code(current_books(), g.actor, source=request.remote_addr)
    return {"code": issued.code, "qr_png": codes.qr_png_base64(issued.code), "expires_in": issued.expires_in,
            "number": issued.number}


def _page_code() -> dict:
    try:
        return _fresh_code()
    except DomainError as exc:
        if exc.code != "rate_limited":
            raise
        return {"code": "", "qr_png": "", "expires_in": 10, "number": ""}  # the page opens; the QR comes a bit later


def _tab() -> str:
    tab = request.args.get("tab", "pay")
    return tab if tab in TABS else "pay"


def _claims(books, actor) -> list:
    return [c for c in earning.list_claims(books, actor, limit=20)
            if c.volunteer_id == actor.user_id or c.submitted_by_id == actor.user_id]


@bp.get("")
@web.requires(*ROLES)
def page():
    books, actor = current_books(), g.actor
    overview = redemption.wallet_overview(books, actor, history=0)
    claims = _claims(books, actor)
    home = directory.home_community(books, actor)
    board = earning.volunteer_leaderboard(books, actor, org_unit_id=home["id"], limit=10) if home else None
    notices = [n for n in radar.list_notices(books, actor, limit=20) if n.state == "open"][:10]
    shifts = [s for s in patrols.list_shifts(books, actor, mine=True, limit=20) if s.ends_at >= books.now()][:10]
    devices = redemption.list_devices(books, actor)
    return render_template(
        "ui/wallet.html", tab=_tab(), overview=overview, history=wallet_view.history(books, actor, limit=40),
        code=_page_code(), claims=claims, board=board, home=home, cards=directory.my_cards(books, actor),
        categories=earning.rules_of(books).tip_categories, led=directory.led_volunteers(books, actor),
        names=directory.user_names(books, {c.volunteer_id for c in claims}), notices=notices, shifts=shifts,
        devices=devices, active_kids=[d["kid"] for d in devices if d["status"] == "active"],
        limits=books.settings.redemption, tip=forms.kept("tip"), patrol=forms.kept("patrol"),
        now_local=books.calendar.format(books.now(), "%Y-%m-%dT%H:%M"))


@bp.post("/code")
@web.requires(*ROLES)
def new_code():
    """A fresh payment code for the page's QR (JSON, under the session and its CSRF token)."""
    try:
        return jsonify(_fresh_code())
    except DomainError as exc:
        from doors.errors import status_of

        return jsonify({"error": exc.code, "message": exc.message}), status_of(exc)


@bp.get("/status")
@web.requires(*ROLES)
def status():
    """Balance, payments waiting for confirmation and the last payments (the app asks when the event stream says
    a till took a payment, or every 5 s while visible when there is no stream)."""
    books = current_books()
    overview = redemption.wallet_overview(books, g.actor, history=0)
    return jsonify({"available": overview["available"], "on_hold": overview["on_hold"],
                    "awaiting": [r["redemption_id"] for r in overview["awaiting_confirmation"]],
                    "recent": wallet_view.recent_payments(books, g.actor),
                    "server_time": int(books.now().timestamp())})


# --- the phone's key for offline codes ------------------------------------------------------------------

@bp.post("/devices")
@web.requires(*ROLES)
def register_device():
    """This phone's public key (JSON ``{"public_jwk", "name"}``, session + CSRF header): the app calls it on
    first use, then signs offline codes with the private key it keeps."""
    from doors.errors import status_of

    body = request.get_json(silent=True) or {}
    jwk = body.get("public_jwk") if isinstance(body, dict) else None
    jwk = {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "d")} if isinstance(jwk, dict) else jwk
    name = body.get("name") if isinstance(body.get("name"), str) else ""
    try:
        return jsonify(redemption.register_device(current_books(), g.actor, jwk=jwk, name=name)), 201
    except DomainError as exc:
        return jsonify({"error": exc.code, "message": exc.message}), status_of(exc)


@bp.post("/devices/<int:device_id>/revoke")
@web.requires(*ROLES)
def revoke_device(device_id: int):
    try:
        redemption.revoke_device(current_books(), g.actor, device_id)
        flash(gettext("That phone's offline codes no longer work."), "ok")
    except DomainError as exc:
        web.refuse(exc)
    return redirect(url_for("ui_wallet.page", tab="me") + "#devices")


# --- settings -----------------------------------------------------------------------------------------

@bp.post("/settings/elder")
@web.requires(*ROLES)
def set_elder_mode():
    """长辈模式 on or off for this user on this device (a cookie listing the user ids who chose it)."""
    mine = str(g.actor.user_id)
    chosen = [u for u in (request.cookies.get(ELDER_COOKIE) or "").split(".") if u.isdigit() and u != mine]
    if request.form.get("elder") == "on":
        chosen.append(mine)
    resp = redirect(web.safe_next(request.form.get("next")) or url_for("ui_wallet.page", tab="me"))
    resp.set_cookie(ELDER_COOKIE, ".".join(chosen[-8:]), max_age=5 * 365 * 86400, path="/", samesite="Lax",
                    secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return resp


# --- the installable app ----------------------------------------------------------------------------------

def _shell_version() -> str:
    """Changes whenever a file of the shell changes, so phones fetch the new shell."""
    cached = current_app.extensions.get("goldbean.shell_version")
    if cached:
        return cached
    digest = hashlib.sha256()
    for name in SHELL_STATIC + ("../templates/ui/wallet_shell.html", "../templates/ui/_wallet_tabs.html"):
        path = STATIC / name
        digest.update(path.read_bytes() if path.exists() else b"-")
    version = digest.hexdigest()[:12]
    current_app.extensions["goldbean.shell_version"] = version
    return version


@bp.get("/shell")
@web.public
def shell():
    """The app shell: the wallet's frame with no balance, no code and nothing of the person. The service worker
    keeps it and answers with it when the phone is offline; its script then shows the offline code."""
    return render_template("ui/wallet_shell.html", tab="pay")


@bp.get("/sw.js")
@web.public
def service_worker():
    shell_files = [url_for("ui_wallet.shell"), url_for("ui_wallet.manifest")] + [
        url_for("ui.static", filename=name) for name in SHELL_STATIC]
    body = render_template("ui/wallet_sw.js", version=_shell_version(), files=json.dumps(shell_files),
                           shell=url_for("ui_wallet.shell"), scope=url_for("ui_wallet.page"))
    resp = Response(body, mimetype="text/javascript")
    resp.headers["Service-Worker-Allowed"] = url_for("ui_wallet.page")  # the scope /wallet, above /wallet/
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/manifest.webmanifest")
@web.public
def manifest():
    def icon(name: str, size: str, purpose: str = "any") -> dict:
        return {"src": url_for("ui.static", filename=f"icons/{name}"), "sizes": size, "type": "image/png",
                "purpose": purpose}

    body = {"name": gettext("Gold Bean wallet"), "short_name": gettext("Gold Bean"),
            "description": gettext("Pay with your beans, see police notices and your patrol shifts."),
            "lang": "en" if request.accept_languages.best_match(["zh", "en"]) == "en" else "zh-CN",
            "start_url": url_for("ui_wallet.page"), "scope": url_for("ui_wallet.page"), "display": "standalone",
            "orientation": "portrait", "background_color": "#ffffff", "theme_color": "#8a5a00",
            "icons": [icon("icon-192.png", "192x192"), icon("icon-512.png", "512x512"),
                      icon("icon-maskable-512.png", "512x512", "maskable")]}
    resp = Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json")
    resp.headers["Cache-Control"] = "no-cache"
    return resp


# --- claims ---------------------------------------------------------------------------------------------

def _local_moment(name: str, required: bool = True) -> dt.datetime | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        if required:
            raise DomainError(web.errors.VALIDATION_FAILED, field=name)
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise DomainError(web.errors.VALIDATION_FAILED, field=name) from None
    return current_books().calendar.parse_local(moment)  # a phone's datetime-local field names no zone


def _claim_errors(kind: str, exc: DomainError) -> dict[str, str]:
    """Which field a refusal of a claim is about, and what to do, in plain words."""
    from .messages import sentence_for

    field = exc.details.get("field")
    start, end = ("started_at", "ended_at") if kind == "patrol" else ("occurred_at", "occurred_at")
    if field in ("occurred_at", "started_at", "ended_at"):
        return {field: gettext("Enter the date and the time, for example 2026-11-27 09:30.")}
    if exc.code == "claim_in_future":
        return {end: gettext("This time is later than now. Check the date and the time.")}
    if exc.code == "claim_too_old":
        return {start: gettext("This is more than %(n)s days ago and can no longer be claimed.",
                               n=exc.details.get("max_days", ""))}
    if exc.code == "validation_failed" and kind == "patrol":
        return {"ended_at": gettext("The end must come after the start, and a patrol lasts at most %(n)s hours.",
                                    n=earning.rules_of(current_books()).patrol_max_hours)}
    if exc.code in ("out_of_scope", "not_a_volunteer", "permission_denied") and request.form.get("volunteer_id"):
        # the sentence says why ("a community you do not serve"); beside the field it says for whom
        return {"volunteer_id": sentence_for(exc) if exc.code == "out_of_scope" else
                gettext("You may not claim for this volunteer. Choose yourself or someone you lead.")}
    return {"": sentence_for(exc)}


def _check_tip_fields() -> dict[str, str]:
    errors: dict[str, str] = {}
    if request.form.get("category") not in earning.rules_of(current_books()).tip_categories:
        errors["category"] = gettext("Choose what kind of tip this is.")
    if not (request.form.get("description") or "").strip():
        errors["description"] = gettext("Write what you saw, in a few words.")
    if not (request.form.get("occurred_at") or "").strip():
        errors["occurred_at"] = gettext("Enter when you saw it.")
    return errors


def _check_patrol_fields() -> dict[str, str]:
    errors: dict[str, str] = {}
    if not (request.form.get("started_at") or "").strip():
        errors["started_at"] = gettext("Enter when the patrol started.")
    if not (request.form.get("ended_at") or "").strip():
        errors["ended_at"] = gettext("Enter when the patrol ended.")
    return errors


def _submit(kind: str) -> None:
    books, actor = current_books(), g.actor
    # a group or building leader may claim for a volunteer of their unit (the use case checks it)
    for_id = web.form_int("volunteer_id", required=False)
    volunteer_id = for_id if for_id is not None and for_id != actor.user_id else None
    if kind == "patrol":
        # the volunteers they lead only tell the patrol's unit; whether they may claim for them is the use case's
        led = {v["id"]: v for v in directory.led_volunteers(books, actor)} if volunteer_id else {}
        if volunteer_id is not None and volunteer_id in led:
            unit = led[volunteer_id]["unit_id"]
        else:
            home = directory.home_community(books, actor)
            unit = home["id"] if home else None
        earning.submit_claim(books, actor, kind="patrol", org_unit_id=unit, volunteer_id=volunteer_id,
                             occurred_at=_local_moment("started_at"), ended_at=_local_moment("ended_at"),
                             team=(request.form.get("team") or "").strip()[:100] or None)
    else:
        earning.submit_claim(books, actor, kind="tip", category=request.form.get("category"),
                             volunteer_id=volunteer_id, description=(request.form.get("description") or "").strip()[:2000],
                             location=(request.form.get("location") or "").strip()[:200] or None,
                             occurred_at=_local_moment("occurred_at"))


@bp.post("/claims")
@web.requires(*ROLES)
def submit_claim():
    kind = "patrol" if request.form.get("kind") == "patrol" else "tip"
    errors = _check_patrol_fields() if kind == "patrol" else _check_tip_fields()
    if not errors:
        try:
            _submit(kind)
        except DomainError as exc:
            errors = _claim_errors(kind, exc)
    if errors:
        forms.keep(kind, errors)
        return redirect(url_for("ui_wallet.page", tab="me") + f"#{kind}-form")
    flash(gettext("Thank you. Your claim was sent; an officer will check it."), "ok")
    return redirect(url_for("ui_wallet.page", tab="me") + "#claims")


# --- payments waiting for the volunteer -----------------------------------------------------------------

def _resolve(redemption_id: int, confirm: bool):
    books = current_books()
    try:
        if confirm:
            redemption.confirm_hold(books, g.actor, redemption_id)
            flash(gettext("Payment confirmed."), "ok")
        else:
            redemption.decline_hold(books, g.actor, redemption_id)
            flash(gettext("Payment declined; the beans are yours again."), "ok")
    except DomainError as exc:
        web.refuse(exc)
    return redirect(url_for("ui_wallet.page"))


@bp.post("/holds/<int:redemption_id>/confirm")
@web.requires(*ROLES)
def confirm(redemption_id: int):
    return _resolve(redemption_id, True)


@bp.post("/holds/<int:redemption_id>/decline")
@web.requires(*ROLES)
def decline(redemption_id: int):
    return _resolve(redemption_id, False)
