"""What the service shows its operators: JSON logs with a request id on every line, and ``/metrics``.

Logs: one JSON object per line on stderr (``ts``, ``level``, ``logger``, ``msg``, and inside a request
``request_id``, ``method``, ``path``; the access line adds ``status``, ``duration_ms``, ``user_id`` when
known). The request id is the caller's ``X-Request-ID`` when it is sane (1-64 characters of
``[A-Za-z0-9._:-]``), else a new one; it is echoed in the response's ``X-Request-ID`` header, kept in
``flask.g.request_id`` (the API's error bodies carry it) and put on every log line of the request.
Never logged: headers, query strings, bodies, cookies; a last-resort filter also masks anything that
looks like a bearer token, a JWT or a ``pin=``/``password=``/``token=``/``secret=`` value.

Metrics (Prometheus text format at ``/metrics``, via ``prometheus_client``): requests by route and
status, latency histograms by route, transfers posted by kind and phase (a listener on
``ledger.events``), hold expiries, API errors by stable error code and route (redemptions refused are
the ones on the redemption routes), and database pool use. Under gunicorn with several worker
processes, set ``PROMETHEUS_MULTIPROC_DIR`` (``goldbean serve`` does) and every worker's numbers are
summed at scrape time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")

access_log = logging.getLogger("goldbean.access")
REDEMPTION_ROUTE = "/api/v1/redemptions"


# --- logs -----------------------------------------------------------------------------------------

_REDACTIONS = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+"), r"\1 [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"), "[redacted-jwt]"),
    (re.compile(r"(?i)\b(pin|password|passwd|secret|token|api_key|authorization)(\"?\s*[:=]\s*\"?)(?!(?i:bearer|basic)\s)[^\s\",&;]+"),
     r"\1\2[redacted]"),
]
_SECRET_FIELDS = re.compile(r"(?i)(pin|password|passwd|secret|token|authorization|cookie|api_key)")


def redact(text: str) -> str:
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return text


# attributes every LogRecord has; anything else was passed with ``extra=`` and goes into the JSON
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra=`` fields are included, secret-looking ones masked."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key.startswith("_"):
                continue
            if _SECRET_FIELDS.search(key):
                value = "[redacted]"
            elif isinstance(value, str):
                value = redact(value)
            out[key] = value
        if "request_id" not in out and has_request_context():
            _add_request_fields(out)
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def _add_request_fields(out: dict[str, Any]) -> None:
    rid = getattr(g, "request_id", None)
    if rid:
        out["request_id"] = rid
        out.setdefault("method", request.method)
        out.setdefault("path", request.path)


def configure_logging(level: str | None = None, stream: Any = None) -> None:
    """Send every log line (ours, Flask's, SQLAlchemy's, gunicorn's) through the JSON formatter."""
    level = (level or os.environ.get("GOLDBEAN_LOG_LEVEL", "INFO")).upper()
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h.formatter, JsonFormatter)), None)
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler._goldbean = True  # type: ignore[attr-defined]
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    elif stream is not None:
        handler.setStream(stream)  # type: ignore[attr-defined]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))  # /readyz reads the revisions
    # gunicorn and werkzeug log through their own handlers; make them use ours
    for name in ("gunicorn.error", "werkzeug"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True


def user_id_of_request() -> Any:
    """The acting user's id when authentication has put it on ``g``: the API's bearer token
    (``g.goldbean_actor``), the web pages' session (``g.actor``), or a plain ``g.user_id``; a till key
    gives ``till:<id>``."""
    value = getattr(g, "user_id", None)
    if value is not None:
        return value
    for attr in ("goldbean_actor", "actor"):
        obj = getattr(g, attr, None)
        value = getattr(obj, "user_id", None) if obj is not None else None
        if value is not None:
            return value
    till = getattr(g, "goldbean_till", None)
    if till is not None and getattr(till, "till_id", None) is not None:
        return f"till:{till.till_id}"
    return None


# --- metrics --------------------------------------------------------------------------------------

class _Metrics:
    """The process's metric objects, created once (prometheus_client's registry is global)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter("goldbean_http_requests_total", "HTTP requests by route and status",
                                ["method", "route", "status"])
        self.latency = Histogram("goldbean_http_request_duration_seconds", "HTTP request latency by route",
                                 ["method", "route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
        self.api_errors = Counter("goldbean_api_errors_total",
                                  "API error responses by stable error code and route (redemptions refused "
                                  "are those on the redemption routes)", ["route", "code"])
        self.redemptions_refused = Counter("goldbean_redemptions_refused_total",
                                           "Redemptions refused at the till (POST /api/v1/redemptions), by error code",
                                           ["code"])
        self.transfers = Counter("goldbean_transfers_posted_total", "Transfers posted (committed) by kind and phase",
                                 ["kind", "phase"])
        self.beans = Counter("goldbean_beans_posted_total", "Beans moved by posted transfers, by kind and phase",
                             ["kind", "phase"])
        self.hold_expiries = Counter("goldbean_hold_expiries_total", "Holds released because their time was up")
        self.pool_checked_out = Gauge("goldbean_db_pool_checked_out", "Database connections in use",
                                      multiprocess_mode="livesum")
        self.pool_size = Gauge("goldbean_db_pool_size", "Database pool capacity (pool size + overflow)",
                               multiprocess_mode="livesum")

    def on_posted(self, transfers: Sequence[Any]) -> None:
        for t in transfers:
            if getattr(t, "replayed", False):
                continue
            self.transfers.labels(t.kind, t.phase).inc()
            self.beans.labels(t.kind, t.phase).inc(t.amount)
            if t.phase == "expire":
                self.hold_expiries.inc()


_metrics: _Metrics | None = None


def metrics() -> _Metrics:
    global _metrics
    if _metrics is None:
        from ledger.journal import events

        _metrics = _Metrics()
        events.on_posted(_metrics.on_posted)
    return _metrics


def _instrument_pool(engine: Any) -> None:
    from sqlalchemy import event

    if getattr(engine, "_goldbean_pool_metrics", False):
        return
    engine._goldbean_pool_metrics = True
    m = metrics()
    pool = engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", 0)
    if callable(size):
        m.pool_size.inc(size() + max(overflow, 0))

    @event.listens_for(engine, "checkout")
    def _checkout(*_args: Any) -> None:
        m.pool_checked_out.inc()

    @event.listens_for(engine, "checkin")
    def _checkin(*_args: Any) -> None:
        m.pool_checked_out.dec()


def render_metrics() -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --- the Flask hooks ------------------------------------------------------------------------------

# Label values come only from closed sets, so that no request can add series: the standard methods (any
# other name a client invents is "other"), the app's own routes ("(unmatched)" for every other path), and
# error codes of the catalogue (anything else is "other").
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "(unmatched)"


def _method() -> str:
    return request.method if request.method in KNOWN_METHODS else "other"


def _status(code: int) -> str:
    return str(code) if 100 <= code <= 599 else "other"


def _error_code(code: str) -> str:
    from ledger.errors import CATALOGUE
    from merchant_api.errors import CODE_BY_HTTP_STATUS

    known = code in CATALOGUE or code in CODE_BY_HTTP_STATUS.values() or code == "http_error"
    return code if known else "other"


def init_app(app: Flask) -> None:
    """Install request ids, JSON access logs and ``/metrics`` (create_app calls this once)."""
    configure_logging()
    m = metrics()
    books = app.extensions.get("goldbean.books")
    if books is not None:
        _instrument_pool(books.engine)

    def _start() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g._goldbean_t0 = time.perf_counter()

    # first of all before_request hooks, so that an authentication failure's error body has the id too
    app.before_request_funcs.setdefault(None, []).insert(0, _start)

    @app.after_request
    def _finish(resp: Response) -> Response:
        rid = getattr(g, "request_id", None)
        if rid is None:  # a response made before our before_request ran
            rid = g.request_id = uuid.uuid4().hex
        resp.headers[REQUEST_ID_HEADER] = rid
        t0 = getattr(g, "_goldbean_t0", None)
        duration = time.perf_counter() - t0 if t0 is not None else 0.0
        route = _route()
        if route != "/metrics":
            m.requests.labels(_method(), route, _status(resp.status_code)).inc()
            m.latency.labels(_method(), route).observe(duration)
        if resp.status_code >= 400 and resp.mimetype == "application/json" and not resp.direct_passthrough:
            body = resp.get_json(silent=True)
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                code = _error_code(body["error"])
                m.api_errors.labels(route, code).inc()
                if route == REDEMPTION_ROUTE and request.method == "POST":
                    m.redemptions_refused.labels(code).inc()
        fields: dict[str, Any] = {
            "request_id": rid,
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": resp.status_code,
            "duration_ms": round(duration * 1000, 2),
            "remote_addr": request.remote_addr,
        }
        user_id = user_id_of_request()
        if user_id is not None:
            fields["user_id"] = user_id
        access_log.info("%s %s %s", request.method, request.path, resp.status_code, extra=fields)
        return resp

    @app.get("/metrics")
    def prometheus_metrics():
        body, content_type = render_metrics()
        return Response(body, content_type=content_type)
