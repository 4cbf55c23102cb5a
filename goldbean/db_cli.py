"""``goldbean db upgrade|current|copy``: the database's schema (Alembic migrations) and moving it to another
database (``db copy``, the operator's way from the SQLite demo to PostgreSQL; see docs/operations.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from .cli_common import EXIT_DOMAIN_ERROR, EXIT_VERIFY_FAILED, app_books, report_problems, safe_url


@click.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the configured database to REVISION."""
    from .migrate import upgrade

    upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}: {safe_url(current_app.config['DATABASE_URL'])}")


@db.command("current")
@with_appcontext
def db_current() -> None:
    """Print the database's migration revision."""
    from .migrate import current

    click.echo(current(app_books().engine) or "(empty)")


@db.command("copy")
@click.option("--to", "to_url", required=True, help="The empty target database, e.g. postgresql://...")
@with_appcontext
def db_copy(to_url: str) -> None:
    """Copy the configured database (e.g. the SQLite demo, even while it runs) into TO, then verify."""
    from .config import normalise_url
    from .ops import OpsError, copy_database

    source = current_app.config["DATABASE_URL"]
    target = normalise_url(to_url)
    try:
        result = copy_database(source, target, keys=Path(current_app.config["INSTANCE_PATH"]) / "keys")
    except OpsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_DOMAIN_ERROR)
    click.echo(f"copied {result.rows} rows from {safe_url(source)} to {safe_url(target)}: "
               + ", ".join(f"{name} {n}" for name, n in result.tables.items()))
    if result.problems:
        for problem in result.problems[:20]:
            click.echo(f"  mismatch: {problem}", err=True)
        click.echo("FAILED: the copy differs from the source", err=True)
        sys.exit(EXIT_VERIFY_FAILED)
    click.echo("same row counts, balances and chain heads as the source")
    report_problems(result.report, prefix="ledger verify: ")


COMMANDS: tuple[click.Command, ...] = (db,)
