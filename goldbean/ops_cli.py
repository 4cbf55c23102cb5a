"""The operator's commands (issue 9): ``serve``, ``events``, ``worker``, ``backup``, ``restore`` (``db copy`` is in
goldbean/db_cli.py). Failures print ``error: <message>`` on stderr and exit 2; a failed verification after a
restore exits 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from .backup_keys import PASSPHRASE_ENV
from .cli_common import EXIT_DOMAIN_ERROR as EXIT_FAILED
from .cli_common import EXIT_VERIFY_FAILED, app_books, report_problems, safe_url


def _keys_dir() -> Path:
    return Path(current_app.config["INSTANCE_PATH"]) / "keys"


def _protected() -> list[Path]:
    from .safe_output import protected_paths

    return protected_paths(current_app.config["DATABASE_URL"], current_app.config["INSTANCE_PATH"])


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_FAILED)


def _report_verify(report) -> None:
    report_problems(report, prefix="ledger verify: ")


@click.command("serve")
@click.option("--app-only", is_flag=True,
              help="gunicorn alone on GOLDBEAN_BIND, without the held-stream server in front (event streams "
                   "then short-poll, or a reverse proxy routes them to `goldbean events`).")
@with_appcontext
def serve(app_only: bool) -> None:
    """Serve: gunicorn with the app, behind the held-stream server on GOLDBEAN_BIND (docs/operations.md)."""
    from .guards import StartupRefused, check
    from .serve import exec_gunicorn, serve_with_events

    try:
        check(current_app)  # GOLDBEAN_ENV=production: refuse an unsafe configuration, saying why
    except StartupRefused as exc:
        _fail(str(exc))
    if app_only:
        exec_gunicorn()
    sys.exit(serve_with_events(current_app._get_current_object()))


@click.command("events")
@click.option("--bind", default=lambda: os.environ.get("GOLDBEAN_EVENTS_BIND", "127.0.0.1:8001"), show_default=True,
              help="Where to listen (host:port or unix:/path; a comma-separated list).")
@click.option("--upstream", default=lambda: os.environ.get("GOLDBEAN_EVENTS_UPSTREAM") or None,
              help="The app (gunicorn) to pass every other request to: host:port or unix:/path. Without it, "
                   "only the two event paths are served.")
@with_appcontext
def events_command(bind: str, upstream: str | None) -> None:
    """Hold the radar's event streams (/api/v1/events, /radar/events) for thousands of phones."""
    import logging.config

    from .events import run
    from .guards import StartupRefused, check
    from .serve import logconfig_dict

    try:
        check(current_app)
    except StartupRefused as exc:
        _fail(str(exc))
    logging.config.dictConfig(logconfig_dict)
    run(current_app._get_current_object(), bind=bind, upstream=upstream)


@click.command("worker")
@click.option("--once", is_flag=True, help="Run every job once and exit (for cron and tests).")
@with_appcontext
def worker(once: bool) -> None:
    """Scheduled work: expire holds, make checkpoints (safe on several servers at once)."""
    import threading

    from . import worker as w

    books = app_books()
    if once:
        failures = w.run(books, once=True)
    else:
        stop = threading.Event()
        w.install_signal_handlers(stop)
        w.start_metrics_server()
        failures = w.run(books, stop=stop)
    if once and failures:
        sys.exit(1)


@click.command("backup")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The backup file to write (database, public keys, private keys if a passphrase is given).")
@click.option("--force", is_flag=True, help="Replace an existing file (never the database or a key).")
@click.option("--passphrase-file", type=click.Path(dir_okay=False),
              help=f"Encrypt the private signing keys into the backup with this file's first line "
                   f"(or set {PASSPHRASE_ENV}); without one the backup has only the public keys.")
@with_appcontext
def backup_command(out: str, force: bool, passphrase_file: str | None) -> None:
    """Back up the configured database and the signing keys while the service runs."""
    from .backup_keys import KeysError, read_passphrase
    from .ops import OpsError, backup

    url = current_app.config["DATABASE_URL"]
    try:
        passphrase = read_passphrase(passphrase_file)
        result = backup(url, out, keys_dir=_keys_dir(), passphrase=passphrase, force=force,
                        protected=_protected())
    except (OpsError, KeysError) as exc:
        _fail(str(exc))
    click.echo(f"backup of {safe_url(url)}: {result.path} ({result.kind}, {result.size} bytes)")
    if result.private_keys:
        click.echo("with the public and the private signing keys (encrypted under the passphrase)")
    else:
        click.echo(f"warning: with the public signing keys only; to restore on a new machine give a passphrase "
                   f"(--passphrase-file or {PASSPHRASE_ENV}) or keep a copy of {_keys_dir()}", err=True)


@click.command("restore")
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--to", "to_url", default=None,
              help="Database URL to restore into (default: the configured GOLDBEAN_DATABASE_URL).")
@click.option("--force", is_flag=True, help="Replace a database that has data (it is kept aside).")
@click.option("--passphrase-file", type=click.Path(dir_okay=False),
              help=f"The backup's passphrase, to install its signing keys (or set {PASSPHRASE_ENV}).")
@with_appcontext
def restore_command(backup_file: str, to_url: str | None, force: bool, passphrase_file: str | None) -> None:
    """Restore BACKUP_FILE into a scratch database, verify it, then swap it in (nothing changes on failure)."""
    from .backup_keys import KeysError, read_passphrase
    from .config import normalise_url
    from .ops import OpsError, RestoreRefused, restore

    url = normalise_url(to_url) if to_url else current_app.config["DATABASE_URL"]
    try:
        result = restore(backup_file, url, force=force, keys_dir=_keys_dir(),
                         passphrase=read_passphrase(passphrase_file))
    except RestoreRefused as exc:
        click.echo(f"error: nothing restored: {exc}", err=True)
        sys.exit(EXIT_VERIFY_FAILED if exc.report is not None else EXIT_FAILED)
    except (OpsError, KeysError) as exc:
        _fail(f"nothing restored: {exc}")
    for line in result.lines:
        click.echo(line)
    _report_verify(result.report)


COMMANDS: tuple[click.Command, ...] = (serve, events_command, worker, backup_command, restore_command)
