"""The exports as the assemblies see them: `export` and `export-reopen` (their parsers
exports/cli.py, what they do exports/commands.py) and their assets, jobs and schedule
(exports/defs.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command

if TYPE_CHECKING:
    from types import ModuleType

    from dagster import Definitions


def _parsers() -> AddCommands:
    from invoice_pipelines.exports.cli import add_commands

    return add_commands


def _commands() -> ModuleType:
    """The one import of what the commands do (exports/commands.py), when one of them runs."""
    from invoice_pipelines.exports import commands

    return commands


def _definitions() -> Definitions:
    from invoice_pipelines.exports.defs import defs

    return defs


AREA = Area(
    "exports",
    commands=(
        Command(
            "export",
            "export one organization's month (CSV + DATEV files)",
            run=lambda: _commands().run_export_command,
        ),
        Command(
            "export-reopen",
            "EXPORTED -> VALIDATED (a correction); the next export is a new version",
            run=lambda: _commands().run_reopen_command,
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    needs=frozenset({"database", "upload_store", "export_store", "document_store"}),
)
