"""Housekeeping as the assemblies see it: `housekeeping` (its parser housekeeping/commands/cli.py, what it
does housekeeping/commands/run.py), its jobs and schedules (housekeeping/defs.py)."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, Area, Command

AREA = Area(
    "housekeeping",
    commands=(
        Command(
            "housekeeping",
            "remove archived uploads and export files past their retention period (JSON per "
            "organization)",
            run="invoice_pipelines.housekeeping.commands.run:run_housekeeping_command",
        ),
    ),
    parsers="invoice_pipelines.housekeeping.commands.cli:add_commands",
    definitions="invoice_pipelines.housekeeping.defs:defs",
    needs=DATABASES | {"upload_store", "export_store"},
)
