"""The radar's event stream (``text/event-stream``), in short-poll mode, shared by both doors.

Each request answers at once with the events after the client's ``Last-Event-ID`` (header, or the
``last_event_id`` query parameter) and ends; the browser's ``EventSource`` reconnects after ``retry``
milliseconds, sending the id of the last event it got. So a sync gunicorn worker is never held by an
open phone (one short read per reconnect), every app server answers from the same outbox table (the
database is the bus, so several servers on one PostgreSQL need no LISTEN/NOTIFY), and an event is only
ever read after its transaction committed. A first connection starts at the newest event (no replay of
history; the radar list shows what is current). docs/radar.md says why and what it costs.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from ledger import radar

RETRY_MS = 1500  # reconnect delay: delivery within ~2 s of the commit


def last_event_id(parsed: int | None = None) -> int | None:
    """The ``Last-Event-ID`` header (what EventSource sends on reconnecting), else the query parameter."""
    raw = request.headers.get("Last-Event-ID") or ""
    if raw.isdigit() and len(raw) <= 18:
        return int(raw)
    if parsed is not None:
        return parsed
    raw = request.args.get("last_event_id") or ""
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


def stream(books: Any, actor: Any, parsed_last_id: int | None = None) -> Response:
    after = last_event_id(parsed_last_id)
    lines = [f"retry: {RETRY_MS}\n", ": radar\n\n"]  # a comment line keeps proxies from buffering nothing
    if after is None:
        lines.append(f"id: {radar.latest_event_id(books)}\n\n")  # sets the cursor, dispatches nothing
    else:
        events, cursor = radar.events_for(books, actor, after=after)
        for e in events:
            lines.append(f"id: {e['id']}\nevent: {e['event']}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n")
        if cursor != (events[-1]["id"] if events else after):
            lines.append(f"id: {cursor}\n\n")  # skipped events (not for this reader) move the cursor too
    resp = Response("".join(lines), mimetype="text/event-stream")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Accel-Buffering"] = "no"
    return resp
