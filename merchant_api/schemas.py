"""The API's edge, both ways: the base classes every input and output schema derives from, and the
out-schemas of bodies that several blueprints send.

- ``In``: unknown fields (and unknown query parameters) are refused, as docs/api.md promises.
- ``String``: the one string field of every input schema. A NUL character is refused here, naming the
  field, so that SQLite (which would store it) and PostgreSQL (which cannot) answer alike.
- ``Out``: what the server sends. Under ``TESTING`` a body carrying a key its schema does not declare is
  an error, so that a field added in the domain cannot silently vanish from the answer (or from the
  document): the document describes every body the server sends.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import current_app, has_app_context
from marshmallow import RAISE, Schema, ValidationError, fields, pre_dump, validate, validates_schema

# what the document says of every input string (a field with a pattern of its own says more)
NO_NUL_PATTERN = "^[^\\u0000]*$"
NUL_REFUSED = "A NUL character (\\u0000) is not allowed."


class String(fields.String):
    """A string that holds no NUL character (PostgreSQL's text cannot; SQLite would keep it), and the
    document says so (a ``pattern``), so that no client is refused what the document allowed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "pattern" not in self.metadata and not any(isinstance(v, validate.Regexp) for v in self.validators):
            self.metadata = {**self.metadata, "pattern": NO_NUL_PATTERN}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        out = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in out:
            raise ValidationError(NUL_REFUSED)
        return out


def no_nul_inside(value: Any) -> None:
    """The same rule for free-form input (a dict of answers, whose values may be text or lists of text): no
    string in it, at any depth, holds a NUL character. A validator: ``fields.Dict(..., validate=no_nul_inside)``."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise ValidationError(NUL_REFUSED)
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


class Boolean(fields.Boolean):
    """Only JSON's ``true`` and ``false``: the document says boolean, so 0, 0.0, "1" or "yes" are refused
    (a set of {True} would let 1 and 1.0 in: they are equal to True)."""

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class QueryBoolean(fields.Boolean):
    """A boolean in the query string, where every value is text: ``true`` or ``false`` only."""

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        if value not in ("true", "false") or not isinstance(value, str):
            raise self.make_error("invalid", input=value)
        return value == "true"


class In(Schema):
    """Every request body and query string: unknown names refused (422 ``validation_failed``)."""

    class Meta:
        unknown = RAISE


class Change(In):
    """A change to an object (PATCH): every field optional, but at least one (the body is required)."""

    JSON_SCHEMA_EXTRA: dict[str, Any] = {"minProperties": 1}

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError(f"Send at least one of {', '.join(sorted(self.fields))}.")


def document_extras(spec: Any, refs: dict[Any, str]) -> None:
    """Rules marshmallow cannot say in JSON Schema (``minProperties``, "one of these fields"), copied into
    the document from each schema class's ``JSON_SCHEMA_EXTRA``, so that the document says what is refused."""
    for key, name in refs.items():
        extra = getattr(key[0], "JSON_SCHEMA_EXTRA", None)
        if extra:
            for store in (spec.components.schemas, spec.components.schemas_lazy):
                if name in store:
                    store[name].update(extra)


class Out(Schema):
    """Every response body."""

    @pre_dump
    def _declared_only(self, data: Any, **kwargs: Any) -> Any:
        if has_app_context() and current_app.testing:
            names = (data.keys() if isinstance(data, dict)
                     else {f.name for f in dataclasses.fields(data)} if dataclasses.is_dataclass(data) else ())
            undeclared = set(names) - {f.data_key or n for n, f in self.fields.items()} - set(self.fields)
            if undeclared:
                raise AssertionError(f"{type(self).__name__} does not declare {sorted(undeclared)}")
        return data


def iso(**kwargs: Any) -> fields.String:
    """An instant or day the domain already wrote as ISO 8601 text."""
    metadata = {"format": "date-time", **kwargs.pop("metadata", {})}
    return fields.String(metadata=metadata, **kwargs)


class Empty(Out):
    """No body to speak of (documented so that every response has a schema)."""


# answers carrying a credential (an access token, a payment code) are never stored by a cache
NO_STORE = {"Cache-Control": "no-store"}
NO_STORE_DOC = {"Cache-Control": {"schema": {"type": "string", "enum": ["no-store"]}}}

# bodies that are not JSON (a PDF, a PNG, an HTML page, JSON Lines), as the document names them
BINARY = {"type": "string", "format": "binary"}
TEXT = {"type": "string"}


class ErrorBody(Out):
    """What every API error looks like (each operation's ``default`` response, and named 4xx ones)."""

    error = fields.String(required=True, metadata={"description": "stable snake_case code (ledger/errors.py)"})
    message = fields.String(required=True, metadata={"description": "English default; clients translate by code"})
    details = fields.Raw(metadata={"description": "what was wrong, when known (e.g. field messages)"})
    request_id = fields.String(metadata={"description": "the X-Request-ID of this request"})


class MerchantRef(Out):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class ReceiptLine(Out):
    item_id = fields.Integer(required=True)
    name = fields.String(required=True)
    price = fields.Integer(required=True)
    qty = fields.Integer(required=True)


class Receipt(Out):
    """A redemption as the till receives it (stored and replayed byte for byte on a retry)."""

    redemption_id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={
        "description": "completed, or awaiting_confirmation above the threshold"})
    amount = fields.Integer(required=True)
    items = fields.List(fields.Nested(ReceiptLine), required=True,
                        metadata={"description": "catalogue lines; empty for an amount"})
    merchant = fields.Nested(MerchantRef, required=True)
    time = iso(required=True)
    method = fields.String(required=True, metadata={"description": "wallet_code or card"})
    confirm_by = iso(metadata={"description": "awaiting_confirmation only: when the hold runs out"})


class RefundLine(Out):
    refund_id = fields.Integer(required=True)
    amount = fields.Integer(required=True)
    time = iso(required=True)
    reason = fields.String(required=True)


class RedemptionOut(Receipt):
    """A redemption with what happened since: its current status, refunds."""

    refunded = fields.Integer(required=True)
    wallet_account_id = fields.Integer(required=True)
    completed_at = iso(required=True, allow_none=True)
    actor = fields.String(required=True)
    refunds = fields.List(fields.Nested(RefundLine), required=True)


class GrantOut(Out):
    role = fields.String(required=True)
    org_unit_id = fields.Integer(required=True, allow_none=True)
    merchant_id = fields.Integer(required=True, allow_none=True)


class ProfileOut(Out):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    phone = fields.String(required=True, allow_none=True, metadata={
        "description": "your own number in full (/me); another user's masked, 138****5678"})
    pseudonym = fields.String(required=True, allow_none=True)
    show_pseudonym = fields.Boolean(required=True)
    active = fields.Boolean(required=True)
    grants = fields.List(fields.Nested(GrantOut), required=True)
