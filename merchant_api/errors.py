"""Domain errors and HTTP errors as JSON: ``{"error": "<stable_code>", "message": "..."}``.

The one mapping from an error's category to an HTTP status lives in ``doors.errors``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from doors.errors import status_of
from ledger.errors import DomainError

API_PREFIX = "/api/"


# HTTP errors raised by Flask or werkzeug before our code runs, as stable codes
CODE_BY_HTTP_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    431: "headers_too_large",
}




def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    request_id = getattr(g, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    resp = jsonify(body)
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="goldbean"'
    return resp


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def domain_error_json(exc: DomainError) -> Response:
    resp = error_response(status_of(exc), exc.code, exc.message, exc.details or None)
    if resp.status_code == 503:  # busy, or the database failing over: a retry in a moment may well succeed
        resp.headers["Retry-After"] = "2"
    return resp


def http_error_json(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = CODE_BY_HTTP_STATUS.get(status, "http_error")
    details = None
    data = getattr(exc, "data", None)
    if status == 422 and data:
        details = data.get("messages")
        return error_response(422, "validation_failed", "The request is malformed.", details)
    if status == 400 and data:  # a body that is not JSON (merchant_api.edge): say what was wrong
        details = data.get("messages")
        return error_response(400, code, "The request body is not valid JSON.", details)
    resp = error_response(status, code, exc.description or exc.name)
    allow = dict(exc.get_headers()).get("Allow")
    if allow:  # 405: which methods the resource does take (RFC 9110)
        resp.headers["Allow"] = allow
    return resp


def install(app: Flask) -> None:
    """Installed after flask-smorest so that ours win; pages outside /api/ get the HTML handlers."""

    # looked up when an error happens: the web pages register their HTML handlers after the API
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        html_domain = app.extensions.get("goldbean.html_domain_error")
        if is_api_request() or html_domain is None:
            return domain_error_json(exc)
        return html_domain(exc)

    @app.errorhandler(OverflowError)
    def _out_of_range(exc: Exception):  # a number the database cannot hold
        if not is_api_request():
            raise exc
        return error_response(422, "validation_failed", "A number is out of range (64-bit integers).")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        original = getattr(exc, "original_exception", None)
        if isinstance(original, DomainError):  # raised outside a view (loading or saving a web session): the
            return _domain(original)           # refusal it is (e.g. 503 database_unavailable), not a 500
        html_http = app.extensions.get("goldbean.html_http_error")
        if is_api_request() or html_http is None:
            return http_error_json(exc)
        return html_http(exc)
