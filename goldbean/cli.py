"""The ``goldbean`` command line (a Flask CLI group bound to ``create_app``).

Domain errors are mapped once here: ``error: <code>: <message>`` on stderr, exit status 2.
A failed verification exits 1.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from doors import current_books
from ledger.errors import DomainError

EXIT_DOMAIN_ERROR = 2


def domain_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            click.echo(f"error: {exc.code}: {exc.message}", err=True)
            sys.exit(EXIT_DOMAIN_ERROR)

    return wrapper


def _create_app() -> Any:
    from goldbean.app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True, add_version_option=False)
def main() -> None:
    """Gold Bean (金豆): the points ledger of the Panlong district volunteers."""



# --- database -------------------------------------------------------------------------------------

@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the configured database to REVISION."""
    from .migrate import upgrade

    upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}: {_safe_url(current_app.config['DATABASE_URL'])}")


@db.command("current")
@with_appcontext
def db_current() -> None:
    """Print the database's migration revision."""
    from .migrate import current

    click.echo(current(current_books().engine) or "(empty)")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- ledger ---------------------------------------------------------------------------------------

@main.group()
def ledger() -> None:
    """The journal: verify, checkpoint, expire holds."""


@ledger.command("verify")
@with_appcontext
@domain_errors
def ledger_verify() -> None:
    """Recompute every total, chain and checkpoint; exit 1 on any mismatch."""
    from ledger.journal.verify import verify_books

    report = verify_books(current_books())
    click.echo(report.verdict())
    if not report.ok:
        for problem in report.problems[1:20]:
            click.echo(f"  also: {problem}", err=True)
        sys.exit(1)


@ledger.command("checkpoint")
@with_appcontext
@domain_errors
def ledger_checkpoint() -> None:
    """Sign every account's chain head as it stands now."""
    from ledger.journal.accounts import make_checkpoint

    cp = make_checkpoint(current_books())
    click.echo(f"checkpoint {cp.id}: {cp.accounts_count} accounts, {cp.entries_count} entries, "
               f"digest {cp.digest[:16]}…, key {cp.key_id}")


@ledger.command("expire-holds")
@with_appcontext
@domain_errors
def ledger_expire_holds() -> None:
    """Release every hold whose time is up."""
    from ledger.journal.accounts import expire_holds

    click.echo(f"released {expire_holds(current_books())} expired holds")


@ledger.command("prune")
@with_appcontext
@domain_errors
def ledger_prune() -> None:
    """Forget spent wallet codes and idempotency keys past their retention (never the journal)."""
    from ledger.redemption.housekeeping import prune

    click.echo(str(prune(current_books())))


# --- demo -----------------------------------------------------------------------------------------

@main.command("seed-demo")
@with_appcontext
@domain_errors
def seed_demo_command() -> None:
    """Seed the demo district (does nothing if it is already there)."""
    from .seed import seed_demo

    summary = seed_demo(current_books())
    click.echo(summary)


# --- operations: serve, worker, backup, restore, db copy (goldbean/ops_cli.py) -----------------------

from .ops_cli import register_ops_commands

register_ops_commands(main, db)

# --- the auditor's desk: statement, audit export/verify/trial-balance/... (goldbean/audit_cli.py) ----

from .audit_cli import register_audit_commands

register_audit_commands(main)

# --- bulk awards (goldbean/awards_cli.py) ------------------------------------------------------------

from .awards_cli import register_awards_commands

register_awards_commands(main)

# --- redemption: settlement run, signing keys (goldbean/redemption_cli.py) ---------------------------

from .redemption_cli import register_redemption_commands

register_redemption_commands(main)

# --- patrols: certificates, recurring shifts (goldbean/patrols_cli.py) --------------------------------

from .patrols_cli import register_patrols_commands

register_patrols_commands(main)


def init_cli(app: Any) -> None:
    """Give ``app.cli`` the same commands, so ``app.test_cli_runner()`` and ``flask --app`` see them."""
    for name, command in main.commands.items():
        if name not in app.cli.commands:
            app.cli.add_command(command, name)


if __name__ == "__main__":  # pragma: no cover
    main()
