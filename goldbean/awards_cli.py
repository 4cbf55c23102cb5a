"""``goldbean awards import FILE [--commit] --officer USERNAME``: bulk awards from a CSV.

Columns: ``username, community`` (org unit code), ``amount`` or ``hours`` (patrol rule), ``reference``,
optional ``reason`` and ``key``. Without ``--commit`` nothing changes: the whole import runs and is
rolled back, and the report says what would happen. Importing the same file twice awards once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from .cli_common import EXIT_DOMAIN_ERROR, app_books, domain_errors


def read_csv_text(file: Path) -> str:
    """The CSV's text, whatever Excel saved it as: UTF-8 (with or without a byte-order mark), or GBK/GB18030
    (Chinese Excel's "CSV (逗号分隔)"). Anything else (UTF-16 "Unicode text", binary) is refused with a
    sentence saying how to save it, exit status 2."""
    data = file.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        _refuse(f"{file} is UTF-16 (Excel's \"Unicode text\"); save it as \"CSV UTF-8\" or \"CSV (逗号分隔)\"")
    for encoding in ("utf-8-sig", "gb18030"):  # GB18030 is a superset of GBK and GB2312
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    _refuse(f"{file} is neither UTF-8 nor GBK/GB18030 text; save it as \"CSV UTF-8\" or \"CSV (逗号分隔)\"")
    raise AssertionError  # not reached


def _refuse(message: str) -> None:
    click.echo(f"error: unreadable_file: {message}", err=True)
    sys.exit(EXIT_DOMAIN_ERROR)


@click.group()
def awards() -> None:
    """Awards: bulk import from a CSV (e.g. a night's patrol roster)."""


@awards.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--officer", required=True, help="username of the officer making the awards (scope applies)")
@click.option("--commit", is_flag=True, help="really award; without it nothing changes")
@with_appcontext
@domain_errors
def awards_import(file: Path, officer: str, commit: bool) -> None:
    """Award the rows of FILE (a dry run unless --commit)."""
    from sqlalchemy import select

    from ledger import errors
    from ledger.access.identity import load_actor
    from ledger.earning.core import import_awards, parse_award_csv
    from ledger.errors import DomainError
    from ledger.schema import User

    books = app_books()
    with books.session(readonly=True) as s:
        user_id = s.scalar(select(User.id).where(User.username == officer))
        if user_id is None:
            raise DomainError(errors.USER_NOT_FOUND, f"no user {officer!r}")
        actor = load_actor(s, user_id)
    rows = parse_award_csv(read_csv_text(file))
    report = import_awards(books, actor, rows, commit=commit)
    for line in report.lines:
        if line.outcome == "error":
            click.echo(f"row {line.row}: ERROR {line.error}: {line.message} ({line.username}, {line.community})")
        elif line.outcome == "already_imported":
            click.echo(f"row {line.row}: already imported as award {line.award_id} ({line.amount} beans to "
                       f"{line.username})")
        else:
            verb = "awarded" if report.committed else "would award"
            extra = " (held for a second officer's approval)" if line.outcome == "needs_approval" else ""
            click.echo(f"row {line.row}: {verb} {line.amount} beans to {line.username} in {line.community}"
                       f"{extra}")
    new = sum(1 for line in report.lines if line.outcome in ("award", "needs_approval"))
    if not report.ok:
        bad = sum(1 for line in report.lines if line.outcome == "error")
        click.echo(f"error: import_failed: {bad} of {len(report.lines)} rows have errors; nothing was imported",
                   err=True)
        sys.exit(EXIT_DOMAIN_ERROR)
    if report.committed:
        click.echo(f"committed: {new} awards, {report.total} beans")
    else:
        click.echo(f"dry run: {new} awards, {report.total} beans would be made; nothing changed "
                   f"(rerun with --commit)")


COMMANDS: tuple[click.Command, ...] = (awards,)
