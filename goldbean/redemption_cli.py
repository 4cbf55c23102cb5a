"""``goldbean settlement run --period 2026-11`` and ``goldbean keys rotate|retire|list``."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from .cli_common import app_books, domain_errors


@click.group()
def settlement() -> None:
    """Paying merchants for the beans redeemed at their tills."""


@settlement.command("run")
@click.option("--period", required=True, help="a local calendar month that has ended, e.g. 2026-11")
@click.option("--json", "as_json", is_flag=True, help="print the statements as JSON")
@with_appcontext
@domain_errors
def settlement_run(period: str, as_json: bool) -> None:
    """Settle every merchant for PERIOD; running it twice changes nothing."""
    from ledger.redemption.settlement import run_settlement

    statements = run_settlement(app_books(), period, "cli:settlement")
    if as_json:
        click.echo(json.dumps(statements, ensure_ascii=False, indent=2))
        return
    for st in statements:
        m = st["merchant"]
        click.echo(f"{st['period']}  {m['code']:<20} redeemed {st['redeemed']:>8}  refunded {st['refunded']:>6}  "
                   f"settled {st['amount']:>8} beans = {st['rmb_owed']} RMB")
    click.echo(f"{len(statements)} merchants, {sum(s['amount'] for s in statements)} beans settled for {period}")


@click.group()
def keys() -> None:
    """Signing keys by purpose (ledger, access, wallet, card): list, rotate, retire."""


def _purpose(value: str) -> str:
    from ledger.infra.keys import PURPOSES

    if value not in PURPOSES:
        raise click.BadParameter(f"one of {', '.join(PURPOSES)}")
    return value


@keys.command("list")
@click.option("--purpose", default=None)
@with_appcontext
def keys_list(purpose: str | None) -> None:
    """Every key with its id and whether it signs, verifies or is retired."""
    from ledger.infra.keys import PURPOSES

    store = app_books().keys
    for p in [_purpose(purpose)] if purpose else PURPOSES:
        active = store.active(p)
        for key in store.keys(p):
            state = "retired" if key.retired else ("signing" if active and key.kid == active.kid else "verifying")
            click.echo(f"{p:<8} {key.kid}  {state}")


@keys.command("rotate")
@click.option("--purpose", required=True)
@with_appcontext
def keys_rotate(purpose: str) -> None:
    """A new key signs from now on; older keys still verify until retired."""
    from ledger.access import security

    key = app_books().keys.rotate(_purpose(purpose))
    security.record(app_books(), "key_rotated", actor="cli", purpose=purpose, kid=key.kid)
    click.echo(f"{purpose}: new signing key {key.kid}")


@keys.command("retire")
@click.option("--purpose", required=True)
@click.argument("kid")
@with_appcontext
def keys_retire(purpose: str, kid: str) -> None:
    """KID no longer verifies: codes it signed are refused with unknown_key."""
    store = app_books().keys
    try:
        store.retire(_purpose(purpose), kid)
    except KeyError:
        raise click.ClickException(f"no {purpose} key {kid}") from None
    from ledger.access import security

    security.record(app_books(), "key_retired", actor="cli", purpose=purpose, kid=kid)
    click.echo(f"{purpose}: key {kid} retired")


COMMANDS: tuple[click.Command, ...] = (settlement, keys)
