"""My data: download everything the system holds about you (JSON, or a readable PDF)."""

from __future__ import annotations

from marshmallow import fields, validate

from doors import current_books
from doors.downloads import my_data_download
from ledger import privacy

from .auth import current_actor, requires_roles
from .edge import Blueprint
from .schemas import BINARY, In, Out, String

blp = Blueprint("privacy", __name__, url_prefix="", description="My data: export of one's personal data")


class ExportQuery(In):
    format = String(load_default="json", validate=validate.OneOf(("json", "pdf")))


@blp.route("/me/export", methods=["GET"])
@requires_roles()
@blp.arguments(ExportQuery(), location="query")
@blp.response(200, {"type": "object", "description": "one key per section (profile, consents, ...)"},
              content_type="application/json")
@blp.alt_response(200, schema=BINARY, content_type="application/pdf", description="format=pdf", success=True)
def my_export(query: dict):
    """Everything held about you (profile, consents, sign-ups, claims and tips, awards, redemptions, patrol
    shifts, service records and certificates, surveys answered, security-log events, wallet history) as one
    JSON file; ``?format=pdf`` for a readable PDF. Never anyone else's data."""
    return my_data_download(current_books(), current_actor(), query["format"])


class ErasureOut(Out):
    id = fields.Integer()
    user_id = fields.Integer()
    status = fields.String()
    requested_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    returned_beans = fields.Integer()


@blp.route("/me/erasure", methods=["POST"])
@requires_roles()
@blp.response(202, ErasureOut)
def request_erasure():
    """Ask that your personal data be erased (PIPL art. 47). The staff of your community complete it: your
    remaining beans go back to the community budget first; beans on hold must be settled before."""
    return privacy.request_erasure(current_books(), current_actor())


class ErasureList(Out):
    erasures = fields.List(fields.Nested(ErasureOut), required=True)


@blp.route("/erasures", methods=["GET"])
@requires_roles("officer", "admin")
@blp.response(200, ErasureList)
def list_erasures():
    """Erasure requests waiting, of the people you serve (officers over their community, admins)."""
    return {"erasures": privacy.list_erasures(current_books(), current_actor())}


@blp.route("/erasures/<int:erasure_id>/complete", methods=["POST"])
@requires_roles("officer", "admin")
@blp.response(200, ErasureOut)
def complete_erasure(erasure_id: int):
    """Complete an erasure: refused with ``erasure_beans_on_hold`` while beans are on hold; otherwise the
    wallet's rest is returned by a recorded transfer and the person's data is destroyed, in one transaction."""
    return privacy.complete_erasure(current_books(), current_actor(), erasure_id)
