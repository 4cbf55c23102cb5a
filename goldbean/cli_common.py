"""What every area of the ``goldbean`` command line shares: how a refusal looks, the exit codes, and the app's
books, built only when a command asks for them (offline commands never do).

Domain errors are mapped once here: ``error: <code>: <message>`` on stderr, exit status 2. A failed verification
exits 1. Area modules (``goldbean/*_cli.py``) import this module; it imports none of them, nor ``goldbean.cli``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import ScriptInfo

from doors import current_books
from ledger.errors import DomainError
from ledger.infra.books import Books

EXIT_VERIFY_FAILED = 1
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


def app_books() -> Books:
    """The configured instance's books. Builds the app now if the command runs without one (as ``with_appcontext``
    does), so a command that only sometimes needs the database builds it only then."""
    if not current_app:
        ctx = click.get_current_context()
        app = ctx.ensure_object(ScriptInfo).load_app()
        ctx.with_resource(app.app_context())
    return current_books()


def report_problems(report: Any, prefix: str = "") -> None:
    """Print a verification's verdict; on failure the next problems on stderr and exit 1."""
    click.echo(f"{prefix}{report.verdict()}")
    if not report.ok:
        for problem in report.problems[1:20]:
            click.echo(f"  also: {problem}", err=True)
        sys.exit(EXIT_VERIFY_FAILED)


def safe_url(url: str) -> str:
    """A database URL fit to print: the password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
