"""My data: download everything the system holds about you (JSON, or a readable PDF)."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from doors import current_books
from doors.downloads import my_data_download

from .auth import current_actor, requires_roles

blp = Blueprint("privacy", __name__, url_prefix="", description="My data: export of one's personal data")


class ExportQuery(Schema):
    class Meta:
        unknown = RAISE

    format = fields.String(load_default="json", validate=validate.OneOf(("json", "pdf")))


@blp.route("/me/export", methods=["GET"])
@requires_roles()
@blp.arguments(ExportQuery(), location="query")
@blp.response(200, content_type="application/json")
def my_export(query: dict):
    """Everything held about you (profile, consents, sign-ups, claims and tips, awards, redemptions, patrol
    shifts, service records and certificates, surveys answered, security-log events, wallet history) as one
    JSON file; ``?format=pdf`` for a readable PDF. Never anyone else's data."""
    return my_data_download(current_books(), current_actor(), query["format"])
