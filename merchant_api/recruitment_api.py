"""Recruitment (志愿者征集) and accounts: calls for volunteers (public), residents' own sign-ups (public, with
a plain-words question), the community staff's approval, changing one's password, and one-time reset codes.

Thin: parse, name the caller, call one ``ledger.people`` use case; who may do what is decided there."""

from __future__ import annotations

from flask import g, request
from marshmallow import fields, validate

from doors import current_books
from ledger.people import passwords, recruitment

from .auth import current_actor, public, requires_roles
from .edge import Blueprint
from .schemas import Boolean, In, Out, String

blp = Blueprint("recruitment", __name__, url_prefix="", description="Recruitment, sign-ups and passwords")
PHONE = validate.Regexp(r"^1[3-9][0-9]{9}$", error="A mobile number is 11 digits starting with 1.")


class CallIn(In):
    org_unit_id = fields.Integer(strict=True, required=True, metadata={"description": "a community in your scope"})
    title = String(required=True, validate=validate.Length(min=1, max=200))
    description = String(load_default="", validate=validate.Length(max=4000))
    needed = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=10_000))
    min_age = fields.Integer(strict=True, load_default=14, validate=validate.Range(min=0, max=100))
    training_required = Boolean(load_default=False)
    insurance_required = Boolean(load_default=False)
    starter_beans = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=100),
                                   metadata={"description": "paid from the community budget on approval"})
    closes_at = fields.AwareDateTime(required=True)


class CallOut(Out):
    id = fields.Integer(required=True)
    org_unit_id = fields.Integer(required=True)
    community = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    needed = fields.Integer(required=True)
    min_age = fields.Integer(required=True)
    training_required = Boolean(required=True)
    insurance_required = Boolean(required=True)
    starter_beans = fields.Integer(required=True)
    closes_at = fields.DateTime(required=True)
    status = fields.String(required=True)
    approved = fields.Integer(required=True, metadata={"description": "volunteers approved through this call"})


class ChallengeOut(Out):
    challenge_id = fields.String(required=True)
    question = fields.String(required=True, metadata={"description": "a sum in Chinese words; answer in digits"})


class RecruitmentSignupIn(In):
    name = String(required=True, validate=validate.Length(min=1, max=100))
    phone = String(required=True, validate=PHONE)
    community_id = fields.Integer(strict=True, required=True)
    building_id = fields.Integer(strict=True, load_default=None)
    call_id = fields.Integer(strict=True, load_default=None, data_key="recruitment_id")
    password = String(required=True, load_only=True, validate=validate.Length(min=8, max=200))
    birth_date = fields.Date(required=True)
    consent_version = String(required=True, validate=validate.Length(max=20),
                                    metadata={"description": "the version of the privacy notice accepted"})
    challenge_id = String(required=True, validate=validate.Length(max=32))
    challenge_answer = String(required=True, validate=validate.Length(max=10))
    guardian_name = String(load_default=None, validate=validate.Length(max=60))
    guardian_phone = String(load_default=None, validate=PHONE)
    guardian_consent = Boolean(load_default=False, metadata={"description": "required under 14"})


class RecruitmentSignupOut(Out):
    id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "pending, approved or declined"})
    community_id = fields.Integer(required=True)
    building_id = fields.Integer(allow_none=True)
    call_id = fields.Integer(allow_none=True, data_key="recruitment_id")
    name = fields.String(required=True)
    phone = fields.String(required=True, metadata={"description": "shown in part: 138****5678"})
    minor = Boolean(required=True)
    guardian_consent = Boolean(required=True)
    created_at = fields.DateTime(required=True)
    decision_reason = fields.String(allow_none=True)
    user_id = fields.Integer(allow_none=True)
    username = fields.String(allow_none=True)


class SignupReceipt(Out):
    id = fields.Integer(required=True)
    status = fields.String(required=True)


class RecruitmentSignupQuery(In):
    status = String(load_default="pending", validate=validate.OneOf(["pending", "approved", "declined"]))
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=500))


class DecisionIn(In):
    reason = String(load_default="", validate=validate.Length(max=500))


class DeclineIn(In):
    reason = String(required=True, validate=validate.Length(min=1, max=500))


class PasswordIn(In):
    current_password = String(required=True, load_only=True, validate=validate.Length(max=200))
    new_password = String(required=True, load_only=True, validate=validate.Length(min=8, max=200))


class PasswordOut(Out):
    sessions_ended = fields.Integer(required=True)


class ResetCodeOut(Out):
    user_id = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"description": "give it face to face; shown only now"})
    expires_at = fields.DateTime(required=True)
    phone_hint = fields.String(allow_none=True)


class ResetOut(Out):
    status = fields.String(required=True, metadata={"description": "password_set: sign in with the new one"})


class ResetIn(In):
    phone = String(required=True, validate=validate.Length(min=5, max=32))
    code = String(required=True, validate=validate.Length(min=1, max=20))
    new_password = String(required=True, load_only=True, validate=validate.Length(min=8, max=200))


@blp.route("/recruitment", methods=["GET"])
@public
@blp.doc(security=[])
@blp.response(200, CallOut(many=True))
def open_calls():
    """Open calls for volunteers, newest first (public)."""
    return recruitment.open_calls(current_books())


@blp.route("/recruitment/<int:call_id>", methods=["GET"])
@public
@blp.doc(security=[])
@blp.response(200, CallOut)
def get_call(call_id: int):
    """One call for volunteers (public; its page and poster QR point here)."""
    return recruitment.get_call(current_books(), call_id)


@blp.route("/recruitment", methods=["POST"])
@requires_roles("officer")
@blp.arguments(CallIn())
@blp.response(201, CallOut)
def publish_call(body: dict):
    """Publish a call for volunteers for a community in your scope."""
    return recruitment.publish_call(current_books(), current_actor(), **body)


@blp.route("/recruitment/<int:call_id>/close", methods=["POST"])
@requires_roles("officer")
@blp.response(200, CallOut)
def close_call(call_id: int):
    """Close a call early."""
    return recruitment.close_call(current_books(), current_actor(), call_id)


@blp.route("/signups/challenge", methods=["POST"])
@public
@blp.doc(security=[])
@blp.response(201, ChallengeOut)
def new_challenge():
    """A plain question to answer with the sign-up (valid 10 minutes, one try)."""
    return recruitment.new_challenge(current_books())


@blp.route("/signups", methods=["POST"])
@public
@blp.doc(security=[])
@blp.arguments(RecruitmentSignupIn())
@blp.response(202, SignupReceipt)
def sign_up(body: dict):
    """Sign up as a volunteer (public): pending until the community's staff approve it."""
    made = recruitment.sign_up(current_books(), source=request.remote_addr, **body)
    return {"id": made.id, "status": made.status}


@blp.route("/signups", methods=["GET"])
@requires_roles("officer")
@blp.arguments(RecruitmentSignupQuery(), location="query")
@blp.response(200, RecruitmentSignupOut(many=True))
def list_signups(query: dict):
    """Sign-ups for the communities you serve."""
    return recruitment.list_signups(current_books(), current_actor(), **query)


@blp.route("/signups/<int:signup_id>/approve", methods=["POST"])
@requires_roles("officer")
@blp.arguments(DecisionIn())
@blp.response(200, RecruitmentSignupOut)
def approve_signup(body: dict, signup_id: int):
    """Approve: the account and wallet open (and a starter award, if the call offers one)."""
    return recruitment.approve_signup(current_books(), current_actor(), signup_id, **body)


@blp.route("/signups/<int:signup_id>/decline", methods=["POST"])
@requires_roles("officer")
@blp.arguments(DeclineIn())
@blp.response(200, RecruitmentSignupOut)
def decline_signup(body: dict, signup_id: int):
    """Decline, with a reason the resident is told."""
    return recruitment.decline_signup(current_books(), current_actor(), signup_id, **body)


@blp.route("/me/password", methods=["POST"])
@requires_roles()
@blp.arguments(PasswordIn())
@blp.response(200, PasswordOut)
def change_password(body: dict):
    """Change your password; your web sessions end (access tokens live out their 15 minutes)."""
    return passwords.change_password(current_books(), current_actor(), source=request.remote_addr,
                                     keep_session=g.get("goldbean_session_token"), **body)


@blp.route("/users/<int:user_id>/reset-code", methods=["POST"])
@requires_roles("officer", "admin")
@blp.response(201, ResetCodeOut)
def issue_reset_code(user_id: int):
    """A one-time reset code for a person of your community, to hand over face to face (30 minutes, once)."""
    issued = passwords.issue_reset_code(current_books(), current_actor(), user_id, source=request.remote_addr)
    return issued, 201, {"Cache-Control": "no-store"}  # a secret: no cache keeps it


@blp.route("/auth/reset", methods=["POST"])
@public
@blp.doc(security=[])
@blp.arguments(ResetIn())
@blp.response(200, ResetOut)
def reset_password(body: dict):
    """Set a new password with the code from your community office (public)."""
    passwords.reset_password(current_books(), source=request.remote_addr, **body)
    return {"status": "password_set"}
