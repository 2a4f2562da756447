"""The history import as the assemblies see it: `history import` (history/cli.py) and the
launchpad's `history_import_job` (history/defs.py)."""

from __future__ import annotations

from invoice_pipelines.area import Area, Command


def _parsers():
    from invoice_pipelines.history.cli import add_commands

    return add_commands


def _definitions():
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
