"""The exports as the assemblies see them: `export` and `export-reopen` (exports/cli.py) and
their assets, jobs and schedule (exports/defs.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command

if TYPE_CHECKING:
    from dagster import Definitions


def _parsers() -> AddCommands:
    from invoice_pipelines.exports.cli import add_commands

    return add_commands


def _definitions() -> Definitions:
    from invoice_pipelines.exports.defs import defs

    return defs


AREA = Area(
    "exports",
    commands=(
        Command("export", "export one organization's month (CSV + DATEV files)"),
        Command(
            "export-reopen",
            "EXPORTED -> VALIDATED (a correction); the next export is a new version",
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    needs=frozenset({"database", "upload_store", "export_store", "document_store"}),
)
