"""The radar's event stream (``text/event-stream``), shared by both doors, held or short-polled.

- **Held** (``goldbean serve``): the events server (``goldbean.events``) runs the stream's opening request
  through this same app, so that authentication, refusals, rate limits and logs are the app's own, with a
  ``HoldTicket`` in the WSGI environ (a client cannot put one there: headers arrive as ``HTTP_*``). The door
  answers what the client missed up to the server's horizon (every event at or below it is final), names
  the reader in the ticket, and the server keeps the connection open: later events, heartbeat comments and
  the end of the stream are its business (docs/radar.md).
- **Short poll** (the app served alone, e.g. ``gunicorn -c python:goldbean.serve``, or a server holding as
  many streams as it may): each request answers at once with the events after the client's
  ``Last-Event-ID`` and ends; ``EventSource`` reconnects after ``retry`` milliseconds.

Either way a first connection starts at the newest final event (no replay of history; the radar list
shows what is current) and each event's ``id`` is the cursor a reconnecting client sends back.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import jwt
from flask import Response, request

from ledger import radar
from ledger.access import web_sessions

RETRY_MS = 1500  # short poll: reconnect delay, delivery within ~2 s of the commit
HOLD_KEY = "goldbean.events.hold"
CATCH_UP_LIMIT = 200


@dataclass
class StreamGrant:
    """Whom a held stream serves and what the server checks again while it holds it."""

    user_id: int
    cursor: int  # the last id the client has been told about
    session_digest: str | None = None  # a web session: the stream ends when the session does
    expires: int | None = None  # a bearer token: the stream ends when the token expires (unix time)


@dataclass
class HoldTicket:
    """Put in the environ by the events server: its horizon, whether it has room for one more stream,
    and (filled here) the grant when the door lets the stream be held."""

    horizon: int
    room: bool = True
    grant: StreamGrant | None = None


def last_event_id(parsed: int | None = None) -> int | None:
    """The ``Last-Event-ID`` header (what EventSource sends on reconnecting), else the query parameter."""
    raw = request.headers.get("Last-Event-ID") or ""
    if raw.isdigit() and len(raw) <= 18:
        return int(raw)
    if parsed is not None:
        return parsed
    raw = request.args.get("last_event_id") or ""
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


def frame(e: dict[str, Any]) -> str:
    """One event on the wire: ``id``, ``event`` and the event as JSON ``data`` (the same held or polled)."""
    return f"id: {e['id']}\nevent: {e['event']}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n"


def _event_lines(events: list[dict[str, Any]], cursor: int, after: int) -> list[str]:
    lines = [frame(e) for e in events]
    if cursor != (events[-1]["id"] if events else after):
        lines.append(f"id: {cursor}\n\n")  # skipped events (not for this reader) move the cursor too
    return lines


def _response(lines: list[str]) -> Response:
    resp = Response("".join(lines), mimetype="text/event-stream")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Accel-Buffering"] = "no"
    return resp


def _grant(actor: Any, cursor: int, credential: tuple[str, str | None] | None) -> StreamGrant:
    kind, secret = credential or ("", None)
    grant = StreamGrant(actor.user_id, cursor)
    if kind == "session" and secret:
        grant.session_digest = web_sessions.session_token_hash(secret)
    elif kind == "bearer" and secret:  # verified by the door a moment ago; only its end is read here
        exp = jwt.decode(secret, options={"verify_signature": False}).get("exp")
        grant.expires = exp if isinstance(exp, int) else 0
    return grant


def _held(books: Any, actor: Any, after: int | None, ticket: HoldTicket,
          credential: tuple[str, str | None] | None) -> Response:
    # reconnects spread over 1-4 s: a restarted server is not met by every phone in the same instant
    lines = [f"retry: {random.randint(1000, 4000)}\n", ": radar\n\n"]
    if after is None:
        cursor = ticket.horizon
        lines.append(f"id: {cursor}\n\n")  # sets the cursor, dispatches nothing
    elif after >= ticket.horizon:
        cursor = after
    else:
        events, cursor = radar.events_for(books, actor, after=after, upto=ticket.horizon, limit=CATCH_UP_LIMIT)
        lines += _event_lines(events, cursor, after)
        if cursor < ticket.horizon:  # far behind: this batch now, the rest on an immediate reconnect
            lines[0] = "retry: 10\n"
            return _response(lines)
    ticket.grant = _grant(actor, cursor, credential)
    return _response(lines)


def stream(books: Any, actor: Any, parsed_last_id: int | None = None, *,
           credential: tuple[str, str | None] | None = None) -> Response:
    """The stream for ``actor``; ``credential`` (``("session", cookie)`` or ``("bearer", token)``) tells a
    holding server what to check again while the stream is open."""
    after = last_event_id(parsed_last_id)
    ticket = request.environ.get(HOLD_KEY)
    if isinstance(ticket, HoldTicket) and ticket.room:
        return _held(books, actor, after, ticket, credential)
    # a full events server: come back in 5-10 s (the server may have room again, or another may)
    retry = random.randint(5000, 10000) if isinstance(ticket, HoldTicket) else RETRY_MS
    lines = [f"retry: {retry}\n", ": radar\n\n"]  # a comment line keeps proxies from buffering nothing
    if after is None:
        lines.append(f"id: {radar.latest_event_id(books)}\n\n")  # sets the cursor, dispatches nothing
    else:
        events, cursor = radar.events_for(books, actor, after=after)
        lines += _event_lines(events, cursor, after)
    return _response(lines)
