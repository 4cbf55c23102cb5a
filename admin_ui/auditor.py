"""The auditor's desk (read-only): trial balance, statements to download, the signed journal export and
the latest verification of the books."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from flask import Blueprint, Response, current_app, flash, g, render_template, request, url_for
from flask_babel import gettext

from doors import current_books
from doors.downloads import export_download
from ledger import errors
from ledger.audit import reports, statements
from ledger.errors import DomainError
from ledger.journal import verify

from . import web

bp = Blueprint("ui_auditor", __name__, url_prefix="/auditor")
AUDIT_ROLES = ("auditor", "admin")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "pdf": "application/pdf"}


def _verify_file() -> Path:
    return Path(current_app.config["INSTANCE_PATH"]) / "last_verify.json"


def _last_verify() -> dict | None:
    try:
        return json.loads(_verify_file().read_text())
    except (OSError, ValueError):
        return None


@bp.get("")
@web.requires(*AUDIT_ROLES)
def page():
    books = current_books()
    today = books.calendar.today(books.now())
    return render_template("ui/auditor.html", tb=reports.trial_balance(books),
                           recon=reports.fund_reconciliation(books), last=_last_verify(),
                           today=today.isoformat(), month_start=today.replace(day=1).isoformat())


@bp.get("/statement")
@web.requires(*AUDIT_ROLES)
def statement():
    fmt = request.args.get("format", "csv")
    try:
        if fmt not in statements.STATEMENT_FORMATS:
            raise DomainError(errors.VALIDATION_FAILED, field="format")
        try:
            from_day = dt.date.fromisoformat(request.args.get("from", ""))
            to_day = dt.date.fromisoformat(request.args.get("to", ""))
        except ValueError:
            raise DomainError(errors.VALIDATION_FAILED, field="from/to") from None
        account = (request.args.get("account") or "").strip()[:80]
        stmt = statements.account_statement(current_books(), account, from_day, to_day)
        data = statements.render_statement(stmt, fmt)
    except DomainError as exc:
        web.refuse(exc)
        return web.back(url_for("ui_auditor.page"))
    resp = Response(data, content_type=CONTENT_TYPES[fmt])
    resp.headers["Content-Disposition"] = (f'attachment; filename="statement-{stmt.account_id}-{stmt.from_day}-'
                                           f'{stmt.to_day}.{fmt}"')
    return resp


@bp.get("/export")
@web.requires(*AUDIT_ROLES)
def export():
    """The whole journal as signed JSON Lines (verify offline with ``goldbean audit verify``)."""
    return export_download(current_books())


@bp.post("/verify")
@web.requires(*AUDIT_ROLES)
def run_verify():
    """Recompute every balance and hash chain now; the verdict is kept as the latest result."""
    report = verify.verify_books(current_books())
    result = {"ok": report.ok, "verdict": report.verdict(), "at": current_books().now().isoformat(),
              "counts": {"accounts": report.accounts, "transfers": report.transfers, "entries": report.entries,
                         "checkpoints": report.checkpoints, "debits": report.debits_posted},
              "by": g.actor.display_name, "problems": [str(p) for p in report.problems[:20]]}
    path = _verify_file()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, ensure_ascii=False))
    os.replace(tmp, path)
    flash(gettext("The books verify.") if report.ok else gettext("Verification FAILED; see below."),
          "ok" if report.ok else "error")
    return web.back(url_for("ui_auditor.page"))
