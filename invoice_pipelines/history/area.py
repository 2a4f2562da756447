"""The history import as the assemblies see it: `history import` (its parser history/commands/cli.py,
what it does history/commands/run.py) and the launchpad's `history_import_job` (history/defs.py)."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, Area, Command

AREA = Area(
    "history",
    commands=(
        Command(
            "history",
            "onboarding: import an organization's past sales and supplier invoices (CSV, "
            "e-invoices)",
            run="invoice_pipelines.history.commands.run:run_history_command",
        ),
    ),
    parsers="invoice_pipelines.history.commands.cli:add_commands",
    definitions="invoice_pipelines.history.defs:defs",
    needs=DATABASES,
)
