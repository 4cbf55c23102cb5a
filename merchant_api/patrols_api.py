"""Patrols (卫星布防) under ``/api/v1`` (``/posts``, ``/shifts``, ``/coverage``, ``/me/...``, ``/certificates``): posts and their signs, the leader's rotating code, shifts and
recurring series, sign-ups, check-in and check-out with proof of presence, officers' verification and
no-shows, the coverage board, service records and certificates (the verify endpoint is public).

Every view is thin: parse (unknown fields rejected, strict integers), call one ``ledger.patrols`` use case
with the signed-in actor, return the result. Who may do what is checked by the use case.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from marshmallow import fields, validate

from doors import current_books
from ledger import patrols, service

from .auth import current_actor, public, requires_roles
from .edge import Blueprint
from .schemas import BINARY, Boolean, In, Out, QueryBoolean, String

blp = Blueprint("patrols", __name__, url_prefix="",
                description="Patrol deployment: posts, shifts, check-in with proof of presence, coverage")


class PostIn(In):
    org_unit_id = fields.Integer(strict=True, required=True, metadata={"description": "community, group or building"})
    name = String(required=True, validate=validate.Length(min=1, max=100))
    latitude = fields.Float(required=True, validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(required=True, validate=validate.Range(min=-180, max=180))
    radius_m = fields.Integer(strict=True, load_default=50, validate=validate.Range(min=10, max=2000))


class PostOut(Out):
    id = fields.Integer()
    org_unit_id = fields.Integer()
    org_unit = fields.String()
    name = fields.String()
    latitude = fields.Float()
    longitude = fields.Float()
    radius_m = fields.Integer()
    sign_serial = fields.Integer()
    active = Boolean()


class SignQuery(In):
    reprint = QueryBoolean(load_default=False, metadata={"description": "retire every earlier sign"})


class SignOut(Out):
    post_id = fields.Integer()
    name = fields.String()
    serial = fields.Integer()
    code = fields.String(metadata={"description": "print as a QR on the post sign (typ gb-post-sign+jwt)"})


class LeaderCodeOut(Out):
    post_id = fields.Integer()
    shift_id = fields.Integer()
    code = fields.String(metadata={"description": "show as a QR; typ gb-patrol-code+jwt; one volunteer per code"})
    expires_in = fields.Integer()
    exp = fields.Integer()
    jti = fields.String(metadata={"description": "the code's id: once a phone has used it, show a fresh code"})


class ShiftIn(In):
    post_id = fields.Integer(strict=True, required=True)
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    needed = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=500))
    beans_per_hour = fields.Integer(strict=True, load_default=None, metadata={"description": "default: the rule table"})
    insurance_required = Boolean(load_default=False)
    leader_id = fields.Integer(strict=True, load_default=None)


class ShiftEditIn(In):
    starts_at = fields.AwareDateTime(load_default=None)
    ends_at = fields.AwareDateTime(load_default=None)
    needed = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1, max=500))
    beans_per_hour = fields.Integer(strict=True, load_default=None)
    leader_id = fields.Integer(strict=True, load_default=None)
    cancel = Boolean(load_default=False)


class SeriesIn(In):
    post_id = fields.Integer(strict=True, required=True)
    start_time = String(required=True, validate=validate.Regexp(r"^\d\d:\d\d$"),
                               metadata={"description": "HH:MM Beijing time, e.g. 19:00"})
    duration_minutes = fields.Integer(strict=True, required=True)
    first_day = fields.Date(required=True)
    last_day = fields.Date(load_default=None)
    weekdays = fields.Integer(strict=True, load_default=127, metadata={"description": "bit 0 Monday … bit 6 Sunday"})
    needed = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=500))
    beans_per_hour = fields.Integer(strict=True, load_default=None)
    insurance_required = Boolean(load_default=False)
    leader_id = fields.Integer(strict=True, load_default=None)


class SeriesOut(Out):
    id = fields.Integer()
    post_id = fields.Integer()
    start_time = fields.String()
    duration_minutes = fields.Integer()
    weekdays = fields.Integer()
    first_day = fields.Date()
    last_day = fields.Date(allow_none=True)
    needed = fields.Integer()
    beans_per_hour = fields.Integer()
    insurance_required = Boolean()
    leader_id = fields.Integer(allow_none=True)
    shifts_created = fields.Integer()


class ShiftOut(Out):
    id = fields.Integer()
    post_id = fields.Integer()
    post_name = fields.String()
    org_unit_id = fields.Integer()
    series_id = fields.Integer(allow_none=True)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    service_day = fields.Date()
    needed = fields.Integer()
    taken = fields.Integer()
    beans_per_hour = fields.Integer()
    insurance_required = Boolean()
    leader_id = fields.Integer(allow_none=True)
    status = fields.String()
    version = fields.Integer()
    my_status = fields.String(allow_none=True)
    changed_since_signup = Boolean()
    my_minutes = fields.Integer(allow_none=True, metadata={"description": "your counted time, once checked out"})
    my_beans = fields.Integer(allow_none=True)
    my_attendance = fields.String(allow_none=True, metadata={"description": "paid, recorded, awaiting_verification, refused"})
    my_hold_reason = fields.String(allow_none=True)


class ShiftQuery(In):
    mine = QueryBoolean(load_default=False)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class SignupOut(Out):
    id = fields.Integer()
    shift_id = fields.Integer()
    volunteer_id = fields.Integer()
    volunteer_name = fields.String()
    status = fields.String()
    checked_in_at = fields.DateTime(allow_none=True)
    check_in_proof = fields.String(allow_none=True)
    checked_out_at = fields.DateTime(allow_none=True)
    check_out_proof = fields.String(allow_none=True)
    recorded_by_id = fields.Integer(allow_none=True)
    minutes = fields.Integer(allow_none=True)
    beans = fields.Integer(allow_none=True)
    attendance = fields.String(allow_none=True)
    hold_reason = fields.String(allow_none=True)
    verified_by_id = fields.Integer(allow_none=True)


class PresenceIn(In):
    code = String(load_default=None, validate=validate.Length(max=4096),
                         metadata={"description": "the leader's rotating code, as scanned"})
    post_sign = String(load_default=None, validate=validate.Length(max=4096),
                              metadata={"description": "the printed post sign's code, with the location below"})
    latitude = fields.Float(load_default=None)
    longitude = fields.Float(load_default=None)
    accuracy_m = fields.Float(load_default=None, validate=validate.Range(min=0, max=100_000))
    volunteer_id = fields.Integer(strict=True, load_default=None,
                                  metadata={"description": "leaders: a member without a phone"})


class AttendanceVerifyIn(In):
    minutes = fields.Integer(strict=True, load_default=None, metadata={"description": "to lower the counted time"})


class RefuseIn(In):
    reason = String(required=True, validate=validate.Length(min=1, max=40))


class CoverageOut(Out):
    post_id = fields.Integer()
    name = fields.String()
    org_unit_id = fields.Integer()
    org_unit = fields.String()
    latitude = fields.Float()
    longitude = fields.Float()
    radius_m = fields.Integer()
    state = fields.String(metadata={"description": "covered, short, uncovered or no_shift"})
    shift_id = fields.Integer(allow_none=True)
    needed = fields.Integer()
    present = fields.Integer()
    on_post = fields.List(fields.String())
    ends_at = fields.DateTime(allow_none=True)
    late = fields.List(fields.String(), metadata={"description": "signed up, not checked in 10 minutes after the start"})


class RecordOut(Out):
    id = fields.Integer()
    activity = fields.String()
    description = fields.String()
    organiser = fields.String()
    service_day = fields.Date()
    minutes = fields.Integer()
    verified_by = fields.String()
    verified_at = fields.DateTime()


class CertificateIn(In):
    first_day = fields.Date(required=True)
    last_day = fields.Date(required=True)
    format = String(load_default="pdf", validate=validate.OneOf(["pdf", "json"]))


class CertificateOut(Out):
    code = fields.String()
    volunteer_id = fields.Integer()
    name = fields.String()
    first_day = fields.Date()
    last_day = fields.Date()
    minutes = fields.Integer()
    records = fields.List(fields.Nested(RecordOut), metadata={"description": "the service records it covers"})
    issued_at = fields.DateTime()


class VerifyQuery(In):
    code = String(required=True, validate=validate.Length(min=1, max=4096))


class VerifiedOut(Out):
    valid = Boolean()
    volunteer_id = fields.Integer()
    name = fields.String()
    first_day = fields.Date()
    last_day = fields.Date()
    minutes = fields.Integer()
    hours = fields.Float()
    records = fields.Integer()
    issued_at = fields.DateTime()
    certificate_id = fields.String()


# --- posts ------------------------------------------------------------------------------------------------

@blp.route("/posts", methods=["POST"])
@requires_roles("officer")
@blp.arguments(PostIn())
@blp.response(201, PostOut)
def create_post(body: dict[str, Any]):
    """Lay out a patrol post on a community, resident group or building in your scope."""
    return patrols.create_post(current_books(), current_actor(), **body)


@blp.route("/posts", methods=["GET"])
@requires_roles()
@blp.response(200, PostOut(many=True))
def list_posts():
    """Posts in your scope (officers) or your community (volunteers)."""
    return patrols.list_posts(current_books(), current_actor())


@blp.route("/posts/<int:post_id>/sign", methods=["GET"])
@requires_roles("officer")
@blp.arguments(SignQuery(), location="query")
@blp.response(200, SignOut)
def post_sign(query: dict[str, Any], post_id: int):
    """The printed post sign's code; ``reprint=true`` retires the earlier signs."""
    return patrols.post_sign(current_books(), current_actor(), post_id, reprint=query["reprint"])


@blp.route("/posts/<int:post_id>/code", methods=["GET"])
@requires_roles()
@blp.response(200, LeaderCodeOut)
def leader_code(post_id: int):
    """A fresh rotating code for the shift you lead at this post now (30 s, one volunteer per code)."""
    return patrols.leader_code(current_books(), current_actor(), post_id)


# --- shifts -----------------------------------------------------------------------------------------------

@blp.route("/shifts", methods=["POST"])
@requires_roles("officer")
@blp.arguments(ShiftIn())
@blp.response(201, ShiftOut)
def publish_shift(body: dict[str, Any]):
    """Publish a shift at a post in your scope."""
    return patrols.publish_shift(current_books(), current_actor(), **body)


@blp.route("/series", methods=["POST"])
@requires_roles("officer")
@blp.arguments(SeriesIn())
@blp.response(201, SeriesOut)
def publish_series(body: dict[str, Any]):
    """Publish a recurring shift (e.g. every evening 19:00–21:00), expanded 14 days ahead."""
    return patrols.publish_series(current_books(), current_actor(), **body)


@blp.route("/shifts", methods=["GET"])
@requires_roles()
@blp.arguments(ShiftQuery(), location="query")
@blp.response(200, ShiftOut(many=True))
def list_shifts(query: dict[str, Any]):
    """Open shifts to come (your community first), or ``mine=true``: your own sign-ups."""
    return patrols.list_shifts(current_books(), current_actor(), **query)


@blp.route("/shifts/<int:shift_id>", methods=["GET"])
@requires_roles()
@blp.response(200, ShiftOut)
def get_shift(shift_id: int):
    """One shift, with your own sign-up's state."""
    return patrols.get_shift(current_books(), current_actor(), shift_id)


@blp.route("/shifts/<int:shift_id>", methods=["PATCH"])
@requires_roles("officer")
@blp.arguments(ShiftEditIn())
@blp.response(200, ShiftOut)
def edit_shift(body: dict[str, Any], shift_id: int):
    """Edit or cancel a shift; volunteers signed up see that it changed."""
    return patrols.edit_shift(current_books(), current_actor(), shift_id, **body)


@blp.route("/shifts/<int:shift_id>/roster", methods=["GET"])
@requires_roles()
@blp.response(200, SignupOut(many=True))
def roster(shift_id: int):
    """Everyone on the shift (officers in scope, the shift's leader)."""
    return patrols.roster(current_books(), current_actor(), shift_id)


@blp.route("/shifts/<int:shift_id>/signups", methods=["POST"])
@requires_roles("volunteer", "leader")
@blp.response(201, SignupOut)
def sign_up(shift_id: int):
    """Take a place on the shift (held for an officer if it requires insurance)."""
    return patrols.sign_up(current_books(), current_actor(), shift_id)


@blp.route("/shifts/<int:shift_id>/signups/me", methods=["DELETE"])
@requires_roles("volunteer", "leader")
@blp.response(200, SignupOut)
def withdraw(shift_id: int):
    """Give your place back, up to the cut-off before the shift."""
    return patrols.withdraw(current_books(), current_actor(), shift_id)


@blp.route("/shifts/<int:shift_id>/signups/me/ack", methods=["POST"])
@requires_roles("volunteer", "leader")
@blp.response(200, ShiftOut)
def acknowledge(shift_id: int):
    """You have seen the shift's edit."""
    return patrols.acknowledge_change(current_books(), current_actor(), shift_id)


def _presence(body: dict[str, Any]) -> tuple[patrols.Proof, int | None]:
    who = body.pop("volunteer_id")
    return patrols.Proof(**body), who


@blp.route("/shifts/<int:shift_id>/check-in", methods=["POST"])
@requires_roles("volunteer", "leader")
@blp.arguments(PresenceIn())
@blp.response(200, SignupOut)
def check_in(body: dict[str, Any], shift_id: int):
    """Check in with ``{code}`` (the leader's) or ``{post_sign, latitude, longitude, accuracy_m}``."""
    proof, who = _presence(body)
    return patrols.check_in(current_books(), current_actor(), shift_id, proof, volunteer_id=who)


@blp.route("/shifts/<int:shift_id>/check-out", methods=["POST"])
@requires_roles("volunteer", "leader")
@blp.arguments(PresenceIn())
@blp.response(200, SignupOut)
def check_out(body: dict[str, Any], shift_id: int):
    """Check out with the same proofs; the time is counted and the beans paid or held for an officer."""
    proof, who = _presence(body)
    return patrols.check_out(current_books(), current_actor(), shift_id, proof, volunteer_id=who)


@blp.route("/shifts/<int:shift_id>/close", methods=["POST"])
@requires_roles("officer")
@blp.response(200, SignupOut(many=True))
def close_shift(shift_id: int):
    """After the end plus grace: record no-shows, close who never checked out (held)."""
    return patrols.close_shift(current_books(), current_actor(), shift_id)


# --- officers ---------------------------------------------------------------------------------------------

@blp.route("/attendance", methods=["GET"])
@requires_roles("officer")
@blp.response(200, SignupOut(many=True))
def awaiting():
    """Attendances held for an officer in your scope."""
    return patrols.awaiting(current_books(), current_actor())


@blp.route("/attendance/<int:signup_id>/verify", methods=["POST"])
@requires_roles("officer")
@blp.arguments(AttendanceVerifyIn())
@blp.response(200, SignupOut)
def verify_attendance(body: dict[str, Any], signup_id: int):
    """Accept a held attendance: service hours recorded, beans paid once."""
    return patrols.verify_attendance(current_books(), current_actor(), signup_id, **body)


@blp.route("/attendance/<int:signup_id>/refuse", methods=["POST"])
@requires_roles("officer")
@blp.arguments(RefuseIn())
@blp.response(200, SignupOut)
def refuse_attendance(body: dict[str, Any], signup_id: int):
    """Refuse a held attendance, with a reason."""
    return patrols.refuse_attendance(current_books(), current_actor(), signup_id, **body)


@blp.route("/signups/<int:signup_id>/confirm", methods=["POST"])
@requires_roles("officer")
@blp.response(200, SignupOut)
def confirm_signup(signup_id: int):
    """Confirm a sign-up held for insurance."""
    return patrols.confirm_signup(current_books(), current_actor(), signup_id)


@blp.route("/coverage", methods=["GET"])
@requires_roles("officer", "auditor", "admin")
@blp.response(200, CoverageOut(many=True))
def coverage():
    """Every post in your scope with its state now: covered, short, uncovered or no_shift."""
    return patrols.coverage(current_books(), current_actor())


# --- records and certificates -----------------------------------------------------------------------------

@blp.route("/me/service-records", methods=["GET"])
@requires_roles()
@blp.response(200, RecordOut(many=True))
def my_records():
    """Your 志愿服务记录: verified service time, apart from beans."""
    return service.my_service_records(current_books(), current_actor())


@blp.route("/me/certificates", methods=["POST"])
@requires_roles("volunteer", "leader")
@blp.arguments(CertificateIn())
@blp.response(201, CertificateOut)
@blp.alt_response(201, schema=BINARY, content_type="application/pdf", description="format=pdf (the default)",
                  success=True)
def issue_certificate(body: dict[str, Any]):
    """A 志愿服务记录证明 for a period: a PDF (Chinese) with the signed statement's QR, or the statement."""
    fmt = body.pop("format")
    cert = service.issue_certificate(current_books(), current_actor(), **body)
    if fmt == "json":
        return cert
    pdf = service.certificate_pdf(cert, verify_url=request.url_root.rstrip("/") + "/patrols/verify")
    resp = Response(pdf, status=201, content_type="application/pdf")
    resp.headers["Content-Disposition"] = f'attachment; filename="service-{cert.first_day}-{cert.last_day}.pdf"'
    return resp


@blp.route("/certificates/verify", methods=["GET"])
@public
@blp.doc(security=[])
@blp.arguments(VerifyQuery(), location="query")
@blp.response(200, VerifiedOut)
def verify_certificate(query: dict[str, Any]):
    """Anyone, without an account: is this certificate genuine, and what does it state?"""
    return service.verify_certificate(current_books(), query["code"])

