"""The auditor's desk over HTTP: read-only, for auditors and admins (see docs/audit.md).

- ``GET /api/v1/audit/statement?account=&from=&to=&format=json|csv|pdf``
- ``GET /api/v1/audit/trial-balance?at=``
- ``GET /api/v1/audit/reconciliation?at=``
- ``GET /api/v1/audit/settlements?from=&to=&merchant=``
- ``GET /api/v1/audit/anomalies?from=&to=&threshold=&min_awards=``
- ``GET /api/v1/audit/export``: the signed journal export (JSON Lines), streamed from a file
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from doors import current_books
from doors.downloads import export_download
from ledger.audit import reports, statements

from .auth import requires_roles

blp = Blueprint("audit", __name__, url_prefix="/audit",
                description="The auditor's desk: statements, trial balance, reconciliation, anomalies, export")

AUDIT_ROLES = ("auditor", "admin")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "pdf": "application/pdf"}



class _In(Schema):
    class Meta:
        unknown = RAISE


class StatementQuery(_In):
    account = fields.String(required=True, validate=validate.Length(min=1, max=80),
                            metadata={"description": "account id or code, username (their wallet) or merchant code"})
    from_ = fields.Date(required=True, data_key="from",
                        metadata={"description": "first day, YYYY-MM-DD (local: utc_offset_hours)"})
    to = fields.Date(required=True, metadata={"description": "last day, YYYY-MM-DD (local: utc_offset_hours)"})
    format = fields.String(load_default="json", validate=validate.OneOf(statements.STATEMENT_FORMATS))


class MomentQuery(_In):
    at = fields.String(load_default=None, validate=validate.Length(max=40),
                       metadata={"description": "YYYY-MM-DD (end of that local day) or ISO moment (local unless "
                                                "it names a zone); default now"})


class PeriodQuery(_In):
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)


class SettlementQuery(PeriodQuery):
    merchant = fields.String(load_default=None, validate=validate.Length(min=1, max=80))


class AnomalyQuery(PeriodQuery):
    threshold = fields.Integer(load_default=None, validate=validate.Range(min=1, max=10**9))
    min_awards = fields.Integer(load_default=None, validate=validate.Range(min=1, max=10**6))


def _moment(query: dict[str, Any]) -> dt.datetime | None:
    return statements.parse_moment(query["at"], current_books().calendar) if query.get("at") else None


@blp.route("/statement", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.arguments(StatementQuery(), location="query", unknown=RAISE)
@blp.response(200, content_type="application/json")
@blp.alt_response(200, content_type="text/csv", description="format=csv: UTF-8 with a byte-order mark")
@blp.alt_response(200, content_type="application/pdf", description="format=pdf")
def statement(query: dict[str, Any]) -> Response:
    """An account's statement for a period: opening balance, every entry, closing balance."""
    stmt = statements.account_statement(current_books(), query["account"], query["from_"], query["to"])
    fmt = query["format"]
    data = statements.render_statement(stmt, fmt)
    name = f"statement-{stmt.account_id}-{stmt.from_day}-{stmt.to_day}.{fmt}"
    resp = Response(data, content_type=CONTENT_TYPES[fmt])
    if fmt != "json":
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


@blp.route("/trial-balance", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.arguments(MomentQuery(), location="query", unknown=RAISE)
@blp.response(200)
def trial_balance(query: dict[str, Any]) -> dict[str, Any]:
    """Every account's balance at a moment, by account kind and org unit; the total is zero."""
    return reports.trial_balance(current_books(), _moment(query)).to_dict()


@blp.route("/reconciliation", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.arguments(MomentQuery(), location="query", unknown=RAISE)
@blp.response(200)
def reconciliation(query: dict[str, Any]) -> dict[str, Any]:
    """Donations against fund, budgets, wallets, merchants, payouts, expiry; the difference must be 0."""
    return reports.fund_reconciliation(current_books(), _moment(query)).to_dict()


@blp.route("/settlements", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.arguments(SettlementQuery(), location="query", unknown=RAISE)
@blp.response(200)
def settlements(query: dict[str, Any]) -> dict[str, Any]:
    """Merchant settlement statements for a period: redeemed, refunded, settled, balances."""
    rows = reports.settlement_statements(current_books(), query["from_"], query["to"], query["merchant"])
    return {"from": query["from_"].isoformat(), "to": query["to"].isoformat(),
            "merchants": [r.to_dict() for r in rows]}


@blp.route("/anomalies", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.arguments(AnomalyQuery(), location="query", unknown=RAISE)
@blp.response(200)
def anomalies(query: dict[str, Any]) -> dict[str, Any]:
    """Patterns worth a look: concentrated awards, awards just under the threshold, outliers, bursts."""
    books = current_books()
    params = reports.default_anomaly_params(books, threshold=query["threshold"], min_awards=query["min_awards"])
    return reports.anomaly_report(books, query["from_"], query["to"], params).to_dict()


@blp.route("/export", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.response(200, content_type="application/x-ndjson")
def export() -> Response:
    """The whole journal as signed JSON Lines; verify it offline with `goldbean audit verify FILE --key JWKS`."""
    return export_download(current_books())
