"""Housekeeping as the assemblies see it: `housekeeping` (its parser
housekeeping/cli.py, what it does housekeeping/commands.py), its jobs and schedules
(housekeeping/defs.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command

if TYPE_CHECKING:
    from types import ModuleType

    from dagster import Definitions


def _parsers() -> AddCommands:
    from invoice_pipelines.housekeeping.cli import add_commands

    return add_commands


def _commands() -> ModuleType:
    """The one import of what the command does (housekeeping/commands.py), when it runs."""
    from invoice_pipelines.housekeeping import commands

    return commands


def _definitions() -> Definitions:
    from invoice_pipelines.housekeeping.defs import defs

    return defs


AREA = Area(
    "housekeeping",
    commands=(
        Command(
            "housekeeping",
            "remove archived uploads and export files past their retention period (JSON per "
            "organization)",
            run=lambda: _commands().run_housekeeping_command,
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    needs=frozenset({"database", "upload_store", "export_store"}),
)
