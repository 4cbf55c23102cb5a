"""What every ``/api`` request goes through before a view sees it, once for every route:

- the request's size: URL length, header count and size, the ``Idempotency-Key``, each bounded below the
  limits of the server in front (``goldbean/serve.py``), so that a refusal is the API's JSON, not the
  server's HTML page (docs/api.md lists the limits);
- its query string: a parameter the document does not name for this operation is refused;
- its JSON body: parsed strictly (UTF-8, no lone surrogates, no NaN or Infinity, nesting and integer
  size bounded); a body that is not such JSON is a 400 in the JSON error shape, never a 500.
"""

from __future__ import annotations

import json
import re
from typing import Any

import flask_smorest
from flask import Flask, Request, current_app, g, request
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

MAX_URL_LENGTH = 4096  # path and query, as sent; gunicorn's request line stops at 8190
MAX_HEADER_FIELDS = 64  # gunicorn's limit_request_fields is set above it
MAX_HEADER_BYTES = 8192  # one field, name and value; gunicorn's limit_request_field_size is set above it
MAX_IDEMPOTENCY_KEY = 100
MAX_JSON_DEPTH = 32  # our deepest body (a redemption's items) is 3 levels
MAX_JSON_DIGITS = 30  # a 64-bit integer has 19 digits; Python refuses more than 4,300 with a ValueError
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class BadJson(ValueError):
    """A body that is not the strict JSON the API reads."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise BadJson(f"an integer of more than {MAX_JSON_DIGITS} digits")
    return int(text)


def _constant(name: str) -> Any:
    raise BadJson(f"{name} is not JSON")


def _check_tree(value: Any) -> None:
    """Depth and text, walked without recursion: every string (keys too) must be encodable as UTF-8."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadJson(f"nested more than {MAX_JSON_DEPTH} levels deep")
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            for text in (key, child):
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        raise BadJson("a string holds a lone surrogate (not valid Unicode)") from None
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def parse_body(data: bytes) -> Any:
    """The request body as JSON, or ``BadJson`` saying why not."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadJson("the body is not UTF-8") from None
    try:
        value = json.loads(text, parse_int=_int, parse_constant=_constant)
    except RecursionError:
        raise BadJson(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    except BadJson:
        raise
    except ValueError as exc:  # JSONDecodeError, and the interpreter's own integer limits
        raise BadJson(str(exc)[:200]) from None
    _check_tree(value)
    return value


def json_body(req: Request) -> Any:
    """The request's JSON body, parsed once per request (``missing`` when there is none); aborts 400."""
    if "goldbean_json" in g:
        return g.goldbean_json
    body: Any = core.missing
    if is_json_request(req):
        data = req.get_data(cache=True)
        if data.strip():
            try:
                body = parse_body(data)
            except BadJson as exc:
                abort(400, messages={"json": [f"Not valid JSON: {exc}"]})
    g.goldbean_json = body
    return body


class StrictJsonParser(FlaskParser):
    """webargs' parser reading bodies with ``parse_body`` (its own ``json.loads`` lets the three through)."""

    def _raw_load_json(self, req: Request) -> Any:
        return json_body(req)


class Blueprint(flask_smorest.Blueprint):
    """Every API blueprint: bodies read by ``StrictJsonParser``; unknown query parameters are left to each
    schema's ``Meta.unknown`` (RAISE for all our inputs; webargs would otherwise drop them silently)."""

    ARGUMENTS_PARSER = StrictJsonParser(unknown=None)


# --- limits and query parameters, before any view ---------------------------------------------------------

def _refuse(status: int, code: str, message: str, details: Any = None) -> Any:
    from .errors import error_response

    return error_response(status, code, message, details)


def check_request() -> Any:
    """``before_request`` for ``/api/``: a refusal (JSON) or None."""
    if not request.path.startswith("/api/"):
        return None
    environ = request.environ
    url = environ.get("RAW_URI") or environ.get("REQUEST_URI") or (
        environ.get("PATH_INFO", "") + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else ""))
    if len(url) > MAX_URL_LENGTH:
        return _refuse(414, "uri_too_long", f"The URL is longer than {MAX_URL_LENGTH} characters.")
    headers = list(request.headers.items())
    if len(headers) > MAX_HEADER_FIELDS:
        return _refuse(431, "headers_too_large", f"More than {MAX_HEADER_FIELDS} header fields.")
    key = request.headers.get("Idempotency-Key")
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        return _refuse(422, "validation_failed", "The request is malformed.",
                       {"headers": {"Idempotency-Key": [f"Longer than maximum length {MAX_IDEMPOTENCY_KEY}."]}})
    for name, value in headers:
        if len(name) + len(value) > MAX_HEADER_BYTES:
            return _refuse(431, "headers_too_large", f"The header {name[:40]} is longer than {MAX_HEADER_BYTES} bytes.")
        if CONTROL.search(value):
            return _refuse(400, "bad_request", f"The header {name[:40]} holds a control character.")
    refusal = _unknown_query_parameters()
    if refusal is None:
        json_body(request)  # a malformed body is refused on every route, those that ignore bodies too
    return refusal


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _query_names(app: Flask) -> dict[tuple[str, str], set[str]]:
    """(path, method) → the query parameters the document names for it (built once, from the document)."""
    cached = app.extensions.get("goldbean.api_query_names")
    if cached is None:
        spec = app.extensions["goldbean.api"].spec.to_dict()
        cached = {}
        for path, ops in spec["paths"].items():
            shared = [p for p in ops.get("parameters", []) if p.get("in") == "query"]
            for method, op in ops.items():
                if method != "parameters":
                    cached[(path, method.upper())] = {
                        p["name"] for p in shared + op.get("parameters", []) if p.get("in") == "query"}
        app.extensions["goldbean.api_query_names"] = cached
    return cached


def _unknown_query_parameters() -> Any:
    if not request.args or request.url_rule is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    allowed = _query_names(current_app).get((_openapi_path(request.url_rule.rule), method))
    if allowed is None:  # not an operation of the document (the document itself, the docs page)
        return None
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        return _refuse(422, "validation_failed", "The request is malformed.",
                       {"query": {name[:100]: ["Unknown field."] for name in unknown[:20]}})
    return None


def install(app: Flask) -> None:
    app.before_request(check_request)
