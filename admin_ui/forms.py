"""Refused forms keep what was typed and say what to fix beside the field.

A page posts, the use case refuses, and the view redirects back (post/redirect/get, so a reload never sends the
form twice). ``keep`` stores the typed values and a plain sentence per field in the server-side session for
that one next page; ``kept`` takes them back (once). The templates' ``ui/_fields.html`` macros put each value
back into its field and the sentence beside it (``aria-describedby``, ``aria-invalid``), and the form's first
wrong field gets the focus.
"""

from __future__ import annotations

from typing import Any

from flask import request, session

MAX_VALUE = 4000  # a kept value is at most this long (the session row stays small)


def keep(form: str, errors: dict[str, str], *, fields: tuple[str, ...] | None = None) -> None:
    """Remember ``form``'s submitted values (``fields``, or every field but the CSRF token; a list where a field
    was sent several times, as ticked boxes are) and ``errors`` (field name, or ``""`` for the form as a whole,
    to a sentence) for the next page."""
    names = fields if fields is not None else tuple(k for k in request.form if k not in ("csrf_token", "once"))
    values: dict[str, Any] = {}
    for k in names:
        many = request.form.getlist(k)
        values[k] = [v[:MAX_VALUE] for v in many] if len(many) > 1 else (request.form.get(k) or "")[:MAX_VALUE]
    kept_forms = dict(session.get("forms") or {})
    kept_forms[form] = {"values": values, "errors": {k: str(v) for k, v in errors.items()}}
    session["forms"] = kept_forms


def kept(form: str) -> dict[str, Any]:
    """``{"values": {...}, "errors": {...}, "prefix": "<form>-"}`` kept for ``form`` by the last refusal (then
    forgotten), or empty ones; ``prefix`` keeps the ids of two forms' error sentences apart on one page."""
    kept_forms = dict(session.get("forms") or {}) if "forms" in session else {}
    out = kept_forms.pop(form, None)
    if out is not None:
        session["forms"] = kept_forms
    return {"values": {}, "errors": {}, **(out or {}), "prefix": f"{form}-"}
