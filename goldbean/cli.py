"""The ``goldbean`` command line: a Flask CLI group that assembles the areas' command groups (goldbean/cli_areas.py
lists them; each lives in its own ``goldbean/*_cli.py``). The app is built only when a command needs it: offline
commands (``audit verify --key``, ``audit compare``, ``certificate verify --jwks``) and ``--help`` work without a
usable database. How refusals look and the exit codes are in goldbean/cli_common.py.
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import FlaskGroup

from .cli_areas import add_commands


def _create_app() -> Any:
    from goldbean.app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True, add_version_option=False)
def main() -> None:
    """Gold Bean (金豆): the points ledger of the Panlong district volunteers."""


add_commands(main)


if __name__ == "__main__":  # pragma: no cover
    main()
