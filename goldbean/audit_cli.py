"""The auditor's commands: ``goldbean statement`` and ``goldbean audit ...`` (see docs/audit.md).

- ``goldbean statement ACCOUNT --from D --to D --format csv|json|pdf --out FILE``
- ``goldbean audit export --out FILE``: the journal as JSON Lines, signed; progress bar on a terminal
- ``goldbean audit verify FILE [--key JWKS]``: offline check; exit 1 naming the first bad line
- ``goldbean audit compare OLDER NEWER``: the newer export continues the older one (no rewritten history)
- ``goldbean audit trial-balance [--at MOMENT]``, ``audit reconcile [--at MOMENT]``,
  ``audit settlements --from --to [--merchant M]``, ``audit anomalies --from --to [--threshold N]``

Domain errors exit 2 (``goldbean.cli_common.domain_errors``); a failed check exits 1. ``audit verify --key``
and ``audit compare`` read only files: they never build the app nor open the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from .cli_common import EXIT_DOMAIN_ERROR, EXIT_VERIFY_FAILED, app_books, domain_errors, report_problems

EXIT_FAILED = EXIT_VERIFY_FAILED



def _day(_ctx: Any, _param: Any, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD") from None


def _moment(_ctx: Any, _param: Any, value: str | None) -> str | None:
    """A moment: ``YYYY-MM-DD`` (the end of that local day) or an ISO timestamp (local time if no zone).
    Checked here, read by ``_at`` once the app (and its calendar) exists."""
    if value is None:
        return None
    from ledger.audit.statements import parse_moment
    from ledger.errors import DomainError
    from ledger.infra.settings import Calendar

    try:
        parse_moment(value, Calendar())
    except DomainError:
        raise click.BadParameter("use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+08:00]") from None
    return value


def _at(value: str | None) -> dt.datetime | None:
    from ledger.audit.statements import parse_moment

    return parse_moment(value, app_books().calendar) if value else None


class _Bar:
    """A click progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def start(self, total: int) -> None:
        if sys.stderr.isatty():
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _protected() -> list[Path]:
    from .safe_output import protected_paths

    return protected_paths(current_app.config["DATABASE_URL"], current_app.config["INSTANCE_PATH"])


def _check_out(out: str, force: bool) -> None:
    from .safe_output import OutputRefused, check_output

    try:
        check_output(out, force=force, protected=_protected())
    except OutputRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_DOMAIN_ERROR)


@contextlib.contextmanager
def _output(out: str, force: bool) -> Iterator[Path]:
    """``--out`` by goldbean/safe_output.py's rules; a refusal is one line on stderr and exit status 2."""
    from .safe_output import OutputRefused, safe_output

    try:
        with safe_output(out, force=force, protected=_protected()) as tmp:
            yield tmp
    except OutputRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_DOMAIN_ERROR)


@click.command("statement")
@click.argument("account")
@click.option("--from", "from_day", required=True, callback=_day, help="first day, YYYY-MM-DD (UTC+8)")
@click.option("--to", "to_day", required=True, callback=_day, help="last day, YYYY-MM-DD (UTC+8)")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "pdf"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="file to write ('-' for standard output)")
@click.option("--force", is_flag=True, help="replace an existing file (never the database or a key)")
@with_appcontext
@domain_errors
def statement(account: str, from_day: dt.date, to_day: dt.date, fmt: str, out: str, force: bool) -> None:
    """The statement (对账单) of ACCOUNT: an account id or code, a username (their wallet) or a merchant code."""
    from ledger.audit.statements import account_statement, render_statement

    if out != "-":
        _check_out(out, force)  # before the work: a wrong --out is said at once
    stmt = account_statement(app_books(), account, from_day, to_day)
    data = render_statement(stmt, fmt)
    if out == "-":
        click.echo(data, nl=False)
        return
    with _output(out, force) as tmp:
        tmp.write_bytes(data)
    click.echo(f"statement of {stmt.account_code} {from_day}..{to_day}: opening {stmt.opening_balance}, "
               f"{len(stmt.lines)} entries, closing {stmt.closing_balance} -> {out}")


@click.group()
def audit() -> None:
    """The auditor's desk: exports, offline verification, trial balance, reconciliation, anomalies."""


@audit.command("export")
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--force", is_flag=True, help="replace an existing file (never the database or a key)")
@with_appcontext
@domain_errors
def audit_export(out: str, force: bool) -> None:
    """Write the whole journal (accounts, checkpoints, transfers, entries) as signed JSON Lines."""
    from ledger.journal.export import export_journal

    bar = _Bar("exporting")
    with _output(out, force) as tmp:
        try:
            summary = export_journal(app_books(), tmp, progress=bar)
        finally:
            bar.close()
    click.echo(f"exported {summary.lines} lines ({summary.accounts} accounts, {summary.checkpoints} checkpoints, "
               f"{summary.transfers} transfers, {summary.entries} entries) to {out}; sha256 "
               f"{summary.sha256}, signed by ledger key {summary.key_id}")


@audit.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False),
              help="a JWK set to trust (as published at GET /api/v1/keys); default: this instance's ledger keys")
@domain_errors
def audit_verify(file: str, key_file: str | None) -> None:
    """Check an export offline; exit 1 naming the first line that breaks."""
    import os

    from ledger.journal.export import trusted_keys, verify_export

    # with --key nothing of this instance is needed: no app, no database (an auditor's own machine)
    keys = trusted_keys(None if key_file else app_books(), key_file)
    bar = _Bar("verifying")
    bar.start(os.path.getsize(file))
    try:
        report = verify_export(file, keys, progress=bar.advance)
    finally:
        bar.close()
    report_problems(report)


@audit.command("compare")
@click.argument("older", type=click.Path(exists=True, dir_okay=False))
@click.argument("newer", type=click.Path(exists=True, dir_okay=False))
@domain_errors
def audit_compare(older: str, newer: str) -> None:
    """Check that NEWER continues OLDER: no chain rewritten since (verify both first)."""
    from ledger.journal.export import compare_exports

    report_problems(compare_exports(older, newer))  # two files: no app, no database


@audit.command("trial-balance")
@click.option("--at", callback=_moment, help="YYYY-MM-DD (end of that day) or an ISO moment; default now")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
@domain_errors
def audit_trial_balance(at: str | None, as_json: bool) -> None:
    """Every balance at a moment, by account kind and org unit; the total must be zero."""
    from ledger.audit.reports import trial_balance

    tb = trial_balance(app_books(), _at(at))
    if as_json:
        click.echo(json.dumps(tb.to_dict(), ensure_ascii=False, indent=1))
    else:
        click.echo(f"trial balance at {tb.at.isoformat() if tb.at else 'now'}")
        for kind, amount in tb.by_kind.items():
            click.echo(f"  {kind:<12}{amount:>14}")
        for org in tb.by_org:
            label = (f"org {org['org_unit_id']} {org['name']}" if org["org_unit_id"] is not None
                     else "district accounts (no org unit)")
            click.echo(f"  [{label}] {org['total']}: " + ", ".join(f"{k} {v}" for k, v in org["by_kind"].items()))
        click.echo(f"  {'total':<12}{tb.total:>14}  {'balanced' if tb.balanced else 'NOT BALANCED'}")
    if not tb.balanced:
        sys.exit(EXIT_FAILED)


@audit.command("reconcile")
@click.option("--at", callback=_moment, help="YYYY-MM-DD (end of that day) or an ISO moment; default now")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
@domain_errors
def audit_reconcile(at: str | None, as_json: bool) -> None:
    """Donations against fund + budgets + wallets + merchants + payouts + expiry; the difference must be 0."""
    from ledger.audit.reports import fund_reconciliation

    rec = fund_reconciliation(app_books(), _at(at))
    if as_json:
        click.echo(json.dumps(rec.to_dict(), ensure_ascii=False, indent=1))
    else:
        click.echo("\n".join(rec.lines()))
    if not rec.ok:
        sys.exit(EXIT_FAILED)


@audit.command("settlements")
@click.option("--from", "from_day", required=True, callback=_day)
@click.option("--to", "to_day", required=True, callback=_day)
@click.option("--merchant", help="one merchant (account id or code, or merchant code); default all")
@with_appcontext
@domain_errors
def audit_settlements(from_day: dt.date, to_day: dt.date, merchant: str | None) -> None:
    """Merchant settlement statements for a period (JSON)."""
    from ledger.audit.reports import settlement_statements

    rows = settlement_statements(app_books(), from_day, to_day, merchant)
    click.echo(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=1))


@audit.command("anomalies")
@click.option("--from", "from_day", required=True, callback=_day)
@click.option("--to", "to_day", required=True, callback=_day)
@click.option("--threshold", type=click.IntRange(min=1), help="the second-approval threshold, in beans; default the earning rules'")
@click.option("--min-awards", type=click.IntRange(min=1), default=5, show_default=True)
@with_appcontext
@domain_errors
def audit_anomalies(from_day: dt.date, to_day: dt.date, threshold: int | None, min_awards: int) -> None:
    """Patterns worth a look (JSON): concentrated awards, awards just under the threshold, outliers."""
    from ledger.audit.reports import anomaly_report, default_anomaly_params

    books = app_books()
    params = default_anomaly_params(books, min_awards=min_awards, threshold=threshold)
    report = anomaly_report(books, from_day, to_day, params)
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))


COMMANDS: tuple[click.Command, ...] = (statement, audit)
