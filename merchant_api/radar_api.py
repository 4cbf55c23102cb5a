"""The police radar (警务雷达): notices for an area, answers (tips), the answer board, public reports.

Paths are the ones issue 15 fixes for tools (``/api/v1/notices``, ``/api/v1/reports``). An answer is an
earning claim: ``POST /notices/{id}/answers`` answers 201 with it, and it is verified, rejected and (above
the threshold) approved through the claim and award routes (``/api/v1/claims/{id}/verify``, ``/reject``,
``/api/v1/awards/{id}/approve``). Every view is thin: parse (unknown fields rejected, strict integers), call
one ``ledger.radar`` use case with the signed-in actor, return.
A notice the caller may not see is ``notice_not_found`` (404), never 403: its existence is not told.
"""

from __future__ import annotations

import base64
import binascii
import re

from flask import Response, request
from marshmallow import ValidationError, fields, validate

from doors import current_books, sse
from ledger import radar

from .auth import bearer_token, current_actor, public, requires_roles
from .edge import Blueprint
from .schemas import NO_STORE, NO_STORE_DOC, Boolean, In, Out, QueryBoolean, String

blp = Blueprint("radar", __name__, url_prefix="", description="警务雷达: notices, answers, public reports")
PHOTO_BODY_LIMIT = 30 * 1024 * 1024  # four photos of 5 MB each, base64 (4/3) and the JSON around them
PHOTO_ENDPOINTS = {"radar.publish_notice", "radar.answer_notice", "radar.submit_report", "radar.add_notice_photo"}


@blp.before_app_request
def _room_for_photos() -> None:
    """The app's body limit is 256 KB; the routes that carry photos may take more (each photo is checked)."""
    if request.endpoint in PHOTO_ENDPOINTS:
        request.max_content_length = PHOTO_BODY_LIMIT


BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class Base64Image(String):
    """A photo as base64 text (JPEG, PNG or WebP; at most 5 MB once decoded; checked by its bytes)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).update({"format": "byte", "pattern": BASE64,
                                                   "description": "base64 of a JPEG, PNG or WebP, at most 5 MB"})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 7 * 1024 * 1024:
            raise ValidationError("at most 5 MB")
        if not re.fullmatch(BASE64, text):
            raise ValidationError("not base64")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("not base64") from None


class NoticeIn(In):
    kind = String(required=True, validate=validate.OneOf(radar.NOTICE_KINDS))
    title = String(required=True, validate=validate.Length(min=1, max=120))
    body = String(load_default="", validate=validate.Length(max=5000))
    area = fields.List(fields.Integer(strict=True), required=True, validate=validate.Length(min=1, max=20),
                       metadata={"description": "org unit ids: street office, community, group or building"})
    ends_at = fields.AwareDateTime(required=True, metadata={"description": "within 28 days"})
    bounty = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=100_000))
    budget_org_unit_id = fields.Integer(strict=True, load_default=None, metadata={
        "description": "the community whose budget pays; default the one community the area lies in"})
    # an optional circle within the area (all three, or none)
    lat = fields.Float(load_default=None, validate=validate.Range(min=-90, max=90))
    lng = fields.Float(load_default=None, validate=validate.Range(min=-180, max=180))
    radius_m = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1, max=50_000))
    photos = fields.List(Base64Image(), load_default=None, validate=validate.Length(max=4))


class AmendIn(In):
    title = String(load_default=None, validate=validate.Length(min=1, max=120))
    body = String(load_default=None, validate=validate.Length(max=5000))
    ends_at = fields.AwareDateTime(load_default=None, metadata={"description": "a later end extends the notice"})
    bounty = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=0, max=100_000))
    note = String(load_default="", validate=validate.Length(max=500))


class CloseIn(In):
    reason = String(load_default="", validate=validate.Length(max=500))


class NoticeOut(Out):
    id = fields.Integer()
    kind = fields.String()
    state = fields.String(metadata={"description": "open, closed or expired"})
    version = fields.Integer()
    title = fields.String()
    body = fields.String()
    officer_id = fields.Integer()
    area = fields.List(fields.Integer())
    bounty = fields.Integer()
    bounty_paid = fields.Integer()
    bounty_left = fields.Integer()
    budget_org_unit_id = fields.Integer(allow_none=True)
    published_at = fields.DateTime()
    ends_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)
    circle = fields.Dict(allow_none=True)
    photo_ids = fields.List(fields.Integer(), metadata={"description": "GET /api/v1/photos/{id}"})


class VersionOut(Out):
    version = fields.Integer()
    title = fields.String()
    body = fields.String()
    bounty = fields.Integer()
    ends_at = fields.DateTime()
    edited_by_id = fields.Integer()
    edited_at = fields.DateTime()
    note = fields.String()


class NoticeQuery(In):
    include_ended = QueryBoolean(load_default=False)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class AnswerIn(In):
    text = String(required=True, validate=validate.Length(min=1, max=2000))
    place = String(load_default=None, validate=validate.Length(max=200))
    occurred_at = fields.AwareDateTime(load_default=None)
    photo = Base64Image(load_default=None)


class AnswerOut(Out):
    id = fields.Integer(metadata={"description": "the claim's id: POST /api/v1/claims/{id}/verify or /reject"})
    notice_id = fields.Integer()
    volunteer_id = fields.Integer()
    status = fields.String(metadata={"description": "the claim's: submitted, verified or rejected"})
    award_id = fields.Integer(allow_none=True, metadata={"description": "above the threshold: "
                                                                        "POST /api/v1/awards/{id}/approve"})
    award_status = fields.String(allow_none=True, metadata={
        "description": "posted, pending_approval (a second officer), voided or reversed"})
    amount = fields.Integer(allow_none=True)
    text = fields.String(allow_none=True, metadata={"description": "the tip: its author and the deciding officers"})
    place = fields.String(allow_none=True)
    occurred_at = fields.DateTime()
    submitted_at = fields.DateTime()
    decided_by_id = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    paid_from_bounty = fields.Boolean(metadata={"description": "true: verified with an amount of the notice's "
                                                               "bounty; false: with a tip tier"})
    photo_ids = fields.List(fields.Integer())


class ReportIn(In):
    category = String(required=True, validate=validate.OneOf(radar.REPORT_CATEGORIES))
    text = String(required=True, validate=validate.Length(min=5, max=2000))
    place = String(load_default=None, validate=validate.Length(max=200))
    phone = String(load_default=None, validate=validate.Length(max=32),
                          metadata={"description": "only if you want a call back"})
    org_unit_id = fields.Integer(strict=True, load_default=None, metadata={"description": "your community"})
    photo = Base64Image(load_default=None)
    consent = Boolean(required=True, metadata={
        "description": "true: you agree to the consent text (GET the report page); refused otherwise"})


class ReceiptOut(Out):
    id = fields.Integer()
    status = fields.String()
    submitted_at = fields.DateTime()
    purge_after = fields.DateTime(metadata={"description": "when its text, place and phone are erased"})


class ReportOut(Out):
    id = fields.Integer()
    category = fields.String()
    text = fields.String()
    place = fields.String(allow_none=True)
    phone = fields.String(allow_none=True, metadata={"description": "shown in part: 138****0000"})
    org_unit_id = fields.Integer(allow_none=True)
    status = fields.String()
    notice_id = fields.Integer(allow_none=True)
    case_ref = fields.String(allow_none=True)
    triage_note = fields.String(allow_none=True)
    submitted_at = fields.DateTime()
    purge_after = fields.DateTime()
    photo_ids = fields.List(fields.Integer())


class ReportQuery(In):
    status = String(load_default="new", validate=validate.OneOf(["new", "converted", "linked", "closed"]))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class TriageIn(In):
    status = String(required=True, validate=validate.OneOf(["converted", "linked", "closed"]))
    note = String(load_default="", validate=validate.Length(max=500))
    notice_id = fields.Integer(strict=True, load_default=None)
    case_ref = String(load_default=None, validate=validate.Length(max=60))


# --- notices --------------------------------------------------------------------------------------

@blp.route("/notices", methods=["POST"])
@requires_roles("officer")
@blp.arguments(NoticeIn())
@blp.response(201, NoticeOut)
def publish_notice(body: dict):
    """Publish a notice to an area in your scope; a bounty is reserved from the community budget at once."""
    circle = {k: body.pop(k) for k in ("lat", "lng", "radius_m")}
    given = [v is not None for v in circle.values()]
    return radar.publish_notice(current_books(), current_actor(), **body,
                                circle=circle if all(given) else None if not any(given) else {})


@blp.route("/notices", methods=["GET"])
@requires_roles()
@blp.arguments(NoticeQuery(), location="query")
@blp.response(200, NoticeOut(many=True))
def list_notices(query: dict):
    """Volunteers: the notices for your area. Officers: those of your scope and your own."""
    return radar.list_notices(current_books(), current_actor(), **query)


@blp.route("/notices/<int:notice_id>", methods=["GET"])
@requires_roles()
@blp.response(200, NoticeOut)
def get_notice(notice_id: int):
    """One notice, if it is for your area or scope (otherwise `notice_not_found`)."""
    return radar.get_notice(current_books(), current_actor(), notice_id)


@blp.route("/notices/<int:notice_id>/history", methods=["GET"])
@requires_roles()
@blp.response(200, VersionOut(many=True))
def notice_history(notice_id: int):
    """Every version of a notice, oldest first."""
    return radar.notice_history(current_books(), current_actor(), notice_id)


@blp.route("/notices/<int:notice_id>/amend", methods=["POST"])
@requires_roles("officer")
@blp.arguments(AmendIn())
@blp.response(200, NoticeOut)
def amend_notice(body: dict, notice_id: int):
    """Amend (a new version; the old kept), extend, or change the bounty of an open notice."""
    return radar.amend_notice(current_books(), current_actor(), notice_id, **body)


@blp.route("/notices/<int:notice_id>/close", methods=["POST"])
@requires_roles("officer")
@blp.arguments(CloseIn())
@blp.response(200, NoticeOut)
def close_notice(body: dict, notice_id: int):
    """Close a notice early; what is left of its bounty goes back to the budget."""
    return radar.close_notice(current_books(), current_actor(), notice_id, **body)


class PhotoIn(In):
    data = Base64Image(required=True)


class PhotoOut(Out):
    id = fields.Integer()


@blp.route("/notices/<int:notice_id>/photos", methods=["POST"])
@requires_roles("officer")
@blp.arguments(PhotoIn())
@blp.response(201, PhotoOut)
def add_notice_photo(body: dict, notice_id: int):
    """Add a photo to a notice (at most four); it is re-encoded without EXIF or GPS."""
    return {"id": radar.add_notice_photo(current_books(), current_actor(), notice_id, body["data"])}


@blp.route("/photos/<int:photo_id>", methods=["GET"])
@requires_roles()
@blp.doc(responses={"200": {"description": "the image", "content": {
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}}}}})
def get_photo(photo_id: int):
    """A photo, for whoever may see the notice, answer or report it belongs to (otherwise `not_found`)."""
    kind, data = radar.get_photo(current_books(), current_actor(), photo_id)
    resp = Response(data, mimetype=kind)
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


# --- answers --------------------------------------------------------------------------------------

@blp.route("/notices/<int:notice_id>/answers", methods=["POST"])
@requires_roles("volunteer")
@blp.arguments(AnswerIn())
@blp.response(201, AnswerOut)
def answer_notice(body: dict, notice_id: int):
    """Answer an open notice of your area with a tip (once per notice): 201 with the claim it becomes."""
    return radar.answer_notice(current_books(), current_actor(), notice_id, **body)


@blp.route("/notices/<int:notice_id>/answers", methods=["GET"])
@requires_roles()
@blp.response(200, AnswerOut(many=True))
def list_answers(notice_id: int):
    """The answer board (officers in scope of the whole area); a volunteer sees their own answer. Decide each
    with the claim routes."""
    return radar.list_answers(current_books(), current_actor(), notice_id)


# --- public reports -------------------------------------------------------------------------------

@blp.route("/reports", methods=["POST"])
@public
@blp.doc(security=[])
@blp.arguments(ReportIn())
@blp.response(201, ReceiptOut)
def submit_report(body: dict):
    """在线举报: anyone reports, without an account; rate limited per address and per phone; never rewarded."""
    made = radar.submit_report(current_books(), source=request.remote_addr, **body)
    # the receipt only: what was reported stays with the officers
    return {"id": made.id, "status": made.status, "submitted_at": made.submitted_at, "purge_after": made.purge_after}


@blp.route("/reports", methods=["GET"])
@requires_roles("officer")
@blp.arguments(ReportQuery(), location="query")
@blp.response(200, ReportOut(many=True))
def list_reports(query: dict):
    """Reports for the units of your scope (unplaced ones: district-wide officers)."""
    return radar.list_reports(current_books(), current_actor(), **query)


@blp.route("/reports/<int:report_id>/triage", methods=["POST"])
@requires_roles("officer")
@blp.arguments(TriageIn())
@blp.response(200, ReportOut)
def triage_report(body: dict, report_id: int):
    """Close a report, link it to a case, or record the notice it became."""
    return radar.triage_report(current_books(), current_actor(), report_id, **body)


class PhoneRevealIn(In):
    """Nothing to send (an empty body or ``{}``); any field is refused."""


class PhoneOut(Out):
    report_id = fields.Integer(required=True)
    phone = fields.String(required=True, metadata={"description": "the full call-back number, for calling the "
                                                                  "resident back; never stored or passed on"})
    revealed_at = fields.DateTime(required=True, metadata={"description": "when (the security log's entry)"})


@blp.route("/reports/<int:report_id>/phone", methods=["POST"])
@requires_roles("officer")
@blp.arguments(PhoneRevealIn(), required=False)
@blp.response(200, PhoneOut, headers=NO_STORE_DOC)
def reveal_phone(body: dict, report_id: int):
    """Reveal the full call-back number of one report, to call the resident back (logged).

    Lists show the number masked. An officer who may handle the report (its community's officers;
    district-wide officers for an unplaced one) gets the full number; anyone else `permission_denied` or
    `report_not_found`. Every reveal is written to the security log (`report_phone_revealed`: who, which
    report, when; never the number); `report_has_no_phone` if the resident gave none or it was erased after
    the retention period."""
    return radar.reveal_phone(current_books(), current_actor(), report_id, source=request.remote_addr), NO_STORE


class ConvertIn(In):
    kind = String(required=True, validate=validate.OneOf(radar.NOTICE_KINDS))
    title = String(required=True, validate=validate.Length(min=1, max=120))
    body = String(load_default="", validate=validate.Length(max=5000),
                         metadata={"description": "the notice's text, written by the officer (the report's is not "
                                                  "copied: it may name people)"})
    area = fields.List(fields.Integer(strict=True), load_default=None, validate=validate.Length(min=1, max=20),
                       metadata={"description": "default: the report's community"})
    ends_at = fields.AwareDateTime(required=True, metadata={"description": "within 28 days"})
    bounty = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=100_000))
    budget_org_unit_id = fields.Integer(strict=True, load_default=None)
    with_photos = Boolean(load_default=False, metadata={"description": "carry the report's photos onto the notice"})
    note = String(load_default="", validate=validate.Length(max=500))


@blp.route("/reports/<int:report_id>/notice", methods=["POST"])
@requires_roles("officer")
@blp.arguments(ConvertIn())
@blp.response(201, ReportOut)
def convert_report(body: dict, report_id: int):
    """Turn a report into a notice in one step: the notice is published and the report recorded `converted`
    with its `notice_id` (`report_not_open` if it was closed or converted already)."""
    return radar.convert_report(current_books(), current_actor(), report_id, **body)


# --- live ------------------------------------------------------------------------------------------

class EventsQuery(In):
    last_event_id = fields.Integer(strict=False, load_default=None, validate=validate.Range(min=0, max=2**63 - 1), metadata={
        "description": "resume after this event (EventSource sends the Last-Event-ID header itself)"})


class PreferencesIn(In):
    kinds = fields.List(String(validate=validate.OneOf(radar.NOTICE_KINDS)), required=True)
    quiet_from = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=0, max=1439),
                                metadata={"description": "minutes after midnight, Beijing time"})
    quiet_to = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=0, max=1439))


class PreferencesOut(Out):
    kinds = fields.List(fields.String())
    quiet_from = fields.Integer(allow_none=True)
    quiet_to = fields.Integer(allow_none=True)


@blp.route("/events", methods=["GET"])
@requires_roles()
@blp.arguments(EventsQuery(), location="query")
@blp.doc(responses={"200": {"description": "events notice, notice_closed, payment (each with an id). Under "
                                           "`goldbean serve` the stream is held open (heartbeat comments every "
                                           "15 s); served by the app alone it ends at once and EventSource "
                                           "reconnects after retry ms",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
def events(query: dict):
    """The live stream: notices for your area, closures and your payments, after `Last-Event-ID`."""
    return sse.stream(current_books(), current_actor(), query["last_event_id"], credential=("bearer", bearer_token()))


@blp.route("/radar/preferences", methods=["GET"])
@requires_roles()
@blp.response(200, PreferencesOut)
def get_preferences():
    """Which kinds you receive live and your quiet hours."""
    return radar.preferences(current_books(), current_actor())


@blp.route("/radar/preferences", methods=["PUT"])
@requires_roles()
@blp.arguments(PreferencesIn())
@blp.response(200, PreferencesOut)
def put_preferences(body: dict):
    """Choose kinds (安全提示 is always delivered, in quiet hours too) and quiet hours."""
    return radar.set_preferences(current_books(), current_actor(), **body)
