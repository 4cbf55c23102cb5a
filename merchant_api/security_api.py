"""The security log and lifting locks.

- ``GET /api/v1/security/events``: the append-only log of security events (auditors, admins); there is
  no endpoint that changes or deletes an event.
- ``POST /api/v1/security/unlock``: an officer lifts a user's sign-in lock (a user in their scope) or a
  source address's guessing throttle; admins may lift any.
"""

from __future__ import annotations

from marshmallow import fields, validate

from doors import current_books
from ledger.access import security

from .auth import current_actor, requires_roles
from .edge import Blueprint
from .schemas import Boolean, In, Out, String, iso

blp = Blueprint("security", __name__, url_prefix="/security",
                description="The security log (auditors) and lifting sign-in locks and throttles (officers)")


class EventsQuery(In):
    kind = String(load_default=None, validate=validate.OneOf(security.EVENT_KINDS))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    before_id = fields.Integer(load_default=None, validate=validate.Range(min=1))


class EventOut(Out):
    id = fields.Integer(required=True)
    at = fields.String(required=True)
    kind = fields.String(required=True)
    user_id = fields.Integer(allow_none=True)
    username = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    actor = fields.String(allow_none=True)
    detail = fields.Dict(required=True)


class UnlockIn(In):
    user_id = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1))
    source = String(load_default=None, validate=validate.Length(min=1, max=64),
                           metadata={"description": "a client address throttled for too many failures"})
    reason = String(load_default="", validate=validate.Length(max=500))


class UnlockOut(Out):
    user_id = fields.Integer(metadata={"description": "when a user's lock was lifted"})
    source = fields.String(metadata={"description": "when an address's throttle was lifted"})
    was_locked = Boolean(metadata={"description": "a user's unlock: whether they were locked"})
    unlocked_at = iso(required=True)


@blp.route("/events", methods=["GET"])
@requires_roles("auditor", "admin")
@blp.arguments(EventsQuery(), location="query")
@blp.response(200, EventOut(many=True))
def events(query: dict):
    """Security events, newest first: sign-ins, refusals, throttles, unlocks, role changes, key rotations."""
    return security.list_events(current_books(), current_actor(), **query)


@blp.route("/unlock", methods=["POST"])
@requires_roles("officer", "admin")
@blp.arguments(UnlockIn())
@blp.response(200, UnlockOut)
def unlock(body: dict):
    """Lift a user's sign-in lock (`user_id`) or an address's guessing throttle (`source`)."""
    return security.unlock(current_books(), current_actor(), **body)
