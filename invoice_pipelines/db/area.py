"""The database's part of the assemblies: `migrate` (its parser db/cli.py, what it does
db/commands.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command

if TYPE_CHECKING:
    from types import ModuleType


def _parsers() -> AddCommands:
    from invoice_pipelines.db.cli import add_commands

    return add_commands


def _commands() -> ModuleType:
    """The one import of what `migrate` does (db/commands.py), when it runs."""
    from invoice_pipelines.db import commands

    return commands


AREA = Area(
    "db",
    commands=(
        Command(
            "migrate",
            "upgrade the database named by INVOICE_PIPELINES_DB_URL",
            run=lambda: _commands().run_migrate,
        ),
    ),
    parsers=_parsers,
)
