"""``goldbean ledger verify|checkpoint|expire-holds|prune`` (the journal) and ``goldbean seed-demo``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .cli_common import app_books, domain_errors, report_problems


@click.group()
def ledger() -> None:
    """The journal: verify, checkpoint, expire holds."""


@ledger.command("verify")
@with_appcontext
@domain_errors
def ledger_verify() -> None:
    """Recompute every total, chain and checkpoint; exit 1 on any mismatch."""
    from ledger.journal.verify import verify_books

    report_problems(verify_books(app_books()))


@ledger.command("checkpoint")
@with_appcontext
@domain_errors
def ledger_checkpoint() -> None:
    """Sign every account's chain head as it stands now."""
    from ledger.journal.accounts import make_checkpoint

    cp = make_checkpoint(app_books())
    click.echo(f"checkpoint {cp.id}: {cp.accounts_count} accounts, {cp.entries_count} entries, "
               f"digest {cp.digest[:16]}…, key {cp.key_id}")


@ledger.command("expire-holds")
@with_appcontext
@domain_errors
def ledger_expire_holds() -> None:
    """Release every hold whose time is up."""
    from ledger.journal.accounts import expire_holds

    click.echo(f"released {expire_holds(app_books())} expired holds")


@ledger.command("prune")
@with_appcontext
@domain_errors
def ledger_prune() -> None:
    """Forget spent wallet codes and idempotency keys past their retention (never the journal)."""
    from ledger.redemption.housekeeping import prune

    click.echo(str(prune(app_books())))


@click.command("seed-demo")
@with_appcontext
@domain_errors
def seed_demo_command() -> None:
    """Seed the demo district (does nothing if it is already there)."""
    from .seed import seed_demo

    click.echo(seed_demo(app_books()))


COMMANDS: tuple[click.Command, ...] = (ledger, seed_demo_command)
