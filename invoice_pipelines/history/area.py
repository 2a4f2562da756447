"""The history import as the assemblies see it: `history import` (its parser history/cli.py,
what it does history/commands.py) and the launchpad's `history_import_job` (history/defs.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command

if TYPE_CHECKING:
    from types import ModuleType

    from dagster import Definitions


def _parsers() -> AddCommands:
    from invoice_pipelines.history.cli import add_commands

    return add_commands


def _commands() -> ModuleType:
    """The one import of what the command does (history/commands.py), when it runs."""
    from invoice_pipelines.history import commands

    return commands


def _definitions() -> Definitions:
    from invoice_pipelines.history.defs import defs

    return defs


AREA = Area(
    "history",
    commands=(
        Command(
            "history",
            "onboarding: import an organization's past sales and supplier invoices (CSV, "
            "e-invoices)",
            run=lambda: _commands().run_history_command,
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    needs=frozenset({"database"}),
)
