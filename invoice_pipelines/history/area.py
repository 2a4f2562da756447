"""The history import as the assemblies see it: `history import` (history/cli.py) and the
launchpad's `history_import_job` (history/defs.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command

if TYPE_CHECKING:
    from dagster import Definitions


def _parsers() -> AddCommands:
    from invoice_pipelines.history.cli import add_commands

    return add_commands


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
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    needs=frozenset({"database"}),
)
