"""Every area's commands, one module per area, each with its own click group(s) (listed as ``COMMANDS``):

- ``db_cli``: ``db upgrade|current|copy``;       - ``ledger_cli``: ``ledger ...``, ``seed-demo``;
- ``audit_cli``: ``statement``, ``audit ...``;  - ``awards_cli``: ``awards import``;
- ``redemption_cli``: ``settlement run``, ``keys ...``; - ``patrols_cli``: ``certificate verify``, ``patrols extend``;
- ``ops_cli``: ``serve``, ``events``, ``worker``, ``backup``, ``restore``.

The ``goldbean`` group (goldbean/cli.py) and ``app.cli`` (goldbean/app.py, for ``app.test_cli_runner()`` and
``flask --app``) both take their commands from here, so neither imports the other. An area module imports only
goldbean/cli_common.py, never ``goldbean.cli``, this module or another area (the import contract in pyproject.toml).
A new area: add its module here and to that contract.
"""

from __future__ import annotations

import click

from . import audit_cli, awards_cli, db_cli, ledger_cli, ops_cli, patrols_cli, redemption_cli

AREAS = (db_cli, ledger_cli, audit_cli, awards_cli, redemption_cli, patrols_cli, ops_cli)


def all_commands() -> list[click.Command]:
    return [command for area in AREAS for command in area.COMMANDS]


def add_commands(group: click.Group) -> None:
    """Give GROUP every area's commands (a name it already has is kept, e.g. Flask's own ``run``)."""
    for command in all_commands():
        if command.name not in group.commands:
            group.add_command(command)
