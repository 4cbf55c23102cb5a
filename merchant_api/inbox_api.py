"""The signed-in person's inbox (``/api/v1/me/inbox``): notifications from the outbox (``ledger.notify``),
newest first, and marking them read. Anyone signed in, for their own inbox only."""

from __future__ import annotations

from marshmallow import fields, validate

from doors import current_books
from ledger import notify

from .auth import current_actor, requires_roles
from .edge import Blueprint
from .schemas import In, Out, QueryBoolean

blp = Blueprint("inbox", __name__, url_prefix="", description="Inbox: notifications and marking them read")


class InboxQuery(In):
    unread_only = QueryBoolean(load_default=False)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class NoteOut(Out):
    id = fields.Integer()
    user_id = fields.Integer()
    topic = fields.String(metadata={"description": "award, claim_decided, patrol_reminder, shift_changed"})
    title = fields.String()
    body = fields.String()
    link = fields.String(allow_none=True, metadata={"description": "the page it is about"})
    subject = fields.String(allow_none=True)
    amount = fields.Integer(allow_none=True)
    urgent = fields.Boolean()
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class InboxOut(Out):
    unread = fields.Integer()
    items = fields.List(fields.Nested(NoteOut))


class ReadAllOut(Out):
    marked = fields.Integer(metadata={"description": "how many were unread"})


@blp.route("/me/inbox", methods=["GET"])
@requires_roles()
@blp.arguments(InboxQuery(), location="query")
@blp.response(200, InboxOut)
def my_inbox(query: dict):
    """Your notifications, newest first, and how many are unread."""
    return notify.inbox(current_books(), current_actor(), **query)


@blp.route("/me/inbox/<int:notification_id>/read", methods=["POST"])
@requires_roles()
@blp.response(200, NoteOut)
def mark_read(notification_id: int):
    """Mark one of your notifications read (anyone else's is `not_found`)."""
    return notify.mark_read(current_books(), current_actor(), notification_id)


@blp.route("/me/inbox/read-all", methods=["POST"])
@requires_roles()
@blp.response(200, ReadAllOut)
def mark_all_read():
    """Mark all your notifications read."""
    return {"marked": notify.mark_all_read(current_books(), current_actor())}
