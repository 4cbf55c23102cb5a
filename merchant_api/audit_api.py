"""The auditor's desk over HTTP: read-only, for auditors and admins (see docs/audit.md).

- ``GET /api/v1/audit/statement?account=&from=&to=&format=json|csv|pdf``
- ``GET /api/v1/audit/trial-balance?at=``
- ``GET /api/v1/audit/reconciliation?at=``
- ``GET /api/v1/audit/settlements?from=&to=&merchant=``
- ``GET /api/v1/audit/anomalies?from=&to=&threshold=&min_awards=``
- ``GET /api/v1/audit/export``: the signed journal export (JSON Lines), streamed from a file

Every one of them reads through ``Books.read``: on a standby when ``GOLDBEAN_READ_DATABASE_URL`` names one,
and says where and as of when it read (``read`` in the JSON bodies; ``X-Read-From`` and ``X-Read-As-Of``
headers on every answer, CSV, PDF and the export included).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, g
from marshmallow import fields, validate

from doors import current_books
from doors.downloads import export_download
from ledger.audit import reports, statements

from .auth import requires_roles
from .edge import Blueprint
from .schemas import BINARY, TEXT, Boolean, In, Out, String, iso

blp = Blueprint("audit", __name__, url_prefix="/audit",
                description="The auditor's desk: statements, trial balance, reconciliation, anomalies, export")

AUDIT_ROLES = ("auditor", "admin")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "pdf": "application/pdf"}



class StatementQuery(In):
    account = String(required=True, validate=validate.Length(min=1, max=80),
                            metadata={"description": "account id or code, username (their wallet) or merchant code"})
    from_ = fields.Date(required=True, data_key="from",
                        metadata={"description": "first day, YYYY-MM-DD (local: utc_offset_hours)"})
    to = fields.Date(required=True, metadata={"description": "last day, YYYY-MM-DD (local: utc_offset_hours); not "
                                              "before `from` (else 422 `validation_failed`)"})
    format = String(load_default="json", validate=validate.OneOf(statements.STATEMENT_FORMATS))


# a day, or a moment down to the second (fraction and offset optional), as parse_moment reads them
MOMENT = (r"^\d{4}-\d{2}-\d{2}$|^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?"
          r"(Z|[+-]\d{2}:\d{2})?$")


class MomentQuery(In):
    at = String(load_default=None, validate=validate.Regexp(MOMENT),
                metadata={"description": "YYYY-MM-DD (end of that day, UTC+8) or an ISO 8601 moment "
                          "(UTC+8 when it names no offset); default now"})


class PeriodQuery(In):
    from_ = fields.Date(required=True, data_key="from", metadata={"description": "first day (UTC+8)"})
    to = fields.Date(required=True, metadata={"description": "last day (UTC+8); not before `from` "
                                              "(else 422 `validation_failed`)"})


class SettlementQuery(PeriodQuery):
    merchant = String(load_default=None, validate=validate.Length(min=1, max=80))


class AnomalyQuery(PeriodQuery):
    threshold = fields.Integer(load_default=None, validate=validate.Range(min=1, max=10**9))
    min_awards = fields.Integer(load_default=None, validate=validate.Range(min=1, max=10**6))


class ReadPointOut(Out):
    source = String(required=True, validate=validate.OneOf(["primary", "standby"]),
                    metadata={"description": "where the report read the books"})
    as_of = iso(required=True, allow_none=True, metadata={
        "description": "every transaction committed up to this moment is in the report (on a standby: its last "
                       "replayed commit; null: none replayed since it started)"})
    read_at = iso(required=True, metadata={"description": "the database's clock when it read"})


READ = {"description": "where and as of when the report read the books (GOLDBEAN_READ_DATABASE_URL: a standby)"}


class StatementLine(Out):
    seq = fields.Integer(required=True)
    entry_id = fields.Integer(required=True)
    transfer_id = fields.Integer(required=True)
    transfer_key = fields.String(required=True)
    kind = fields.String(required=True)
    phase = fields.String(required=True)
    side = fields.String(required=True)
    amount = fields.Integer(required=True)
    change = fields.Integer(required=True)
    pending_change = fields.Integer(required=True)
    balance_after = fields.Integer(required=True)
    counterparty_id = fields.Integer(required=True)
    counterparty_code = fields.String(required=True)
    actor = fields.String(required=True, allow_none=True)
    reason = fields.String(required=True, allow_none=True)
    reference = fields.String(required=True, allow_none=True)
    created_at = iso(required=True)


class StatementOut(Out):
    account_id = fields.Integer(required=True)
    account_code = fields.String(required=True)
    account_kind = fields.String(required=True)
    account_name = fields.String(required=True)
    owner_ref = fields.String(required=True, allow_none=True)
    from_day = fields.String(required=True, metadata={"format": "date"})
    to_day = fields.String(required=True, metadata={"format": "date"})
    start = iso(required=True)
    end = iso(required=True)
    timezone = fields.String(required=True)
    opening_balance = fields.Integer(required=True)
    closing_balance = fields.Integer(required=True)
    total_in = fields.Integer(required=True)
    total_out = fields.Integer(required=True)
    generated_at = iso(required=True, allow_none=True)
    lines = fields.List(fields.Nested(StatementLine), required=True)
    read = fields.Nested(ReadPointOut, required=True, allow_none=True, metadata=READ)


class BalanceOut(Out):
    account_id = fields.Integer(required=True)
    code = fields.String(required=True)
    kind = fields.String(required=True)
    name = fields.String(required=True)
    owner_ref = fields.String(required=True, allow_none=True)
    balance = fields.Integer(required=True)
    entries = fields.Integer(required=True)


class OrgTotals(Out):
    org_unit_id = fields.Integer(required=True, allow_none=True)
    name = fields.String(required=True)
    by_kind = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    total = fields.Integer(required=True)


class TrialBalanceOut(Out):
    at = iso(required=True, allow_none=True)
    total = fields.Integer(required=True, metadata={"description": "always 0"})
    balanced = Boolean(required=True)
    by_kind = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    by_org = fields.List(fields.Nested(OrgTotals), required=True)
    accounts = fields.List(fields.Nested(BalanceOut), required=True)
    read = fields.Nested(ReadPointOut, required=True, allow_none=True, metadata=READ)


class ReconciliationOut(Out):
    at = iso(required=True, allow_none=True)
    donated = fields.Integer(required=True)
    held_by_kind = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    accounted = fields.Integer(required=True)
    difference = fields.Integer(required=True, metadata={"description": "must be 0"})
    ok = Boolean(required=True)
    on_hold = fields.Integer(required=True, allow_none=True, metadata={"description": "now only; null at a past moment"})
    read = fields.Nested(ReadPointOut, required=True, allow_none=True, metadata=READ)


class PayoutOut(Out):
    transfer_key = fields.String(required=True)
    amount = fields.Integer(required=True)
    payout_account = fields.String(required=True)
    reference = fields.String(required=True, allow_none=True)
    at = iso(required=True)


class MerchantStatementOut(Out):
    account_id = fields.Integer(required=True)
    account_code = fields.String(required=True)
    name = fields.String(required=True)
    opening_balance = fields.Integer(required=True)
    redeemed = fields.Integer(required=True)
    refunded = fields.Integer(required=True)
    settled = fields.Integer(required=True)
    other = fields.Integer(required=True)
    closing_balance = fields.Integer(required=True)
    settlements = fields.List(fields.Nested(PayoutOut), required=True)


class SettlementReportOut(Out):
    from_ = fields.String(required=True, data_key="from", metadata={"format": "date"})
    to = fields.String(required=True, metadata={"format": "date"})
    merchants = fields.List(fields.Nested(MerchantStatementOut), required=True)
    read = fields.Nested(ReadPointOut, required=True, allow_none=True, metadata=READ)


class AnomalyParamsOut(Out):
    min_awards = fields.Integer(required=True)
    top = fields.Integer(required=True)
    concentration = fields.Float(required=True)
    one_source_share = fields.Float(required=True)
    threshold = fields.Integer(required=True, allow_none=True)
    under_margin = fields.Float(required=True)
    redeem_factor = fields.Float(required=True)
    redeem_min_beans = fields.Integer(required=True)
    refund_window_minutes = fields.Integer(required=True)
    refund_burst = fields.Integer(required=True)
    backfill_days = fields.Integer(required=True)


FINDINGS = {"description": "one finding per item (who, how many, how much); see docs/audit.md"}


class AnomalyOut(Out):
    from_day = fields.String(required=True, metadata={"format": "date"})
    to_day = fields.String(required=True, metadata={"format": "date"})
    params = fields.Nested(AnomalyParamsOut, required=True)
    officer_concentration = fields.List(fields.Dict(), required=True, metadata=FINDINGS)
    single_source_volunteers = fields.List(fields.Dict(), required=True, metadata=FINDINGS)
    under_threshold = fields.List(fields.Dict(), required=True, metadata=FINDINGS)
    redemption_outliers = fields.List(fields.Dict(), required=True, metadata=FINDINGS)
    refund_bursts = fields.List(fields.Dict(), required=True, metadata=FINDINGS)
    backfilled_claims = fields.List(fields.Dict(), required=True, allow_none=True, metadata=FINDINGS)
    notes = fields.List(fields.String(), required=True)
    read = fields.Nested(ReadPointOut, required=True, allow_none=True, metadata=READ)


def read_headers(resp: Response, read: Any) -> Response:
    """``X-Read-From`` and ``X-Read-As-Of``: where and as of when a report read (see the module doc)."""
    if read is not None:
        point = read.to_dict()
        resp.headers["X-Read-From"] = point["source"]
        resp.headers["X-Read-As-Of"] = point["as_of"] or ""
    return resp


@blp.after_request
def _read_point_headers(resp: Response) -> Response:
    read = g.pop("goldbean_read", None)
    return read_headers(resp, read)


def _report(result: Any) -> Any:
    g.goldbean_read = getattr(result, "read", None)
    return result


def _moment(query: dict[str, Any]) -> dt.datetime | None:
    return statements.parse_moment(query["at"], current_books().calendar) if query.get("at") else None


@blp.route("/statement", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.arguments(StatementQuery(), location="query")
@blp.response(200, StatementOut, content_type="application/json", description="format=json")
@blp.alt_response(200, schema=TEXT, content_type="text/csv", description="format=csv: UTF-8 with a byte-order mark",
                  success=True)
@blp.alt_response(200, schema=BINARY, content_type="application/pdf", description="format=pdf", success=True)
def statement(query: dict[str, Any]) -> Response:
    """An account's statement for a period: opening balance, every entry, closing balance."""
    stmt = _report(statements.account_statement(current_books(), query["account"], query["from_"], query["to"]))
    fmt = query["format"]
    data = statements.render_statement(stmt, fmt)
    name = f"statement-{stmt.account_id}-{stmt.from_day}-{stmt.to_day}.{fmt}"
    resp = Response(data, content_type=CONTENT_TYPES[fmt])
    if fmt != "json":
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


@blp.route("/trial-balance", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.arguments(MomentQuery(), location="query")
@blp.response(200, TrialBalanceOut)
def trial_balance(query: dict[str, Any]) -> dict[str, Any]:
    """Every account's balance at a moment, by account kind and org unit; the total is zero."""
    return _report(reports.trial_balance(current_books(), _moment(query))).to_dict()


@blp.route("/reconciliation", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.arguments(MomentQuery(), location="query")
@blp.response(200, ReconciliationOut)
def reconciliation(query: dict[str, Any]) -> dict[str, Any]:
    """Donations against fund, budgets, wallets, merchants, payouts, expiry; the difference must be 0."""
    return _report(reports.fund_reconciliation(current_books(), _moment(query))).to_dict()


@blp.route("/settlements", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.arguments(SettlementQuery(), location="query")
@blp.response(200, SettlementReportOut)
def settlements(query: dict[str, Any]) -> dict[str, Any]:
    """Merchant settlement statements for a period: redeemed, refunded, settled, balances."""
    rows = _report(reports.settlement_statements(current_books(), query["from_"], query["to"], query["merchant"]))
    return {"from_": query["from_"].isoformat(), "to": query["to"].isoformat(),
            "merchants": [r.to_dict() for r in rows], "read": rows.read.to_dict() if rows.read else None}


@blp.route("/anomalies", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.arguments(AnomalyQuery(), location="query")
@blp.response(200, AnomalyOut)
def anomalies(query: dict[str, Any]) -> dict[str, Any]:
    """Patterns worth a look: concentrated awards, awards just under the threshold, outliers, bursts."""
    books = current_books()
    params = reports.default_anomaly_params(books, threshold=query["threshold"], min_awards=query["min_awards"])
    return _report(reports.anomaly_report(books, query["from_"], query["to"], params)).to_dict()


@blp.route("/export", methods=["GET"])
@requires_roles(*AUDIT_ROLES)
@blp.response(200, TEXT, content_type="application/x-ndjson",
              description="JSON Lines: a header, every account, transfer and checkpoint, a signed trailer")
def export() -> Response:
    """The whole journal as signed JSON Lines; verify it offline with `goldbean audit verify FILE --key JWKS`."""
    return export_download(current_books())
