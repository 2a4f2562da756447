"""The exports as the assemblies see them: `export` and `export-reopen` (their parsers
exports/commands/cli.py, what they do exports/commands/run.py) and their assets, jobs and sensor
(exports/defs.py)."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, FILE_STORES, Area, Command

AREA = Area(
    "exports",
    commands=(
        Command(
            "export",
            "export one organization's month (CSV + DATEV files)",
            run="invoice_pipelines.exports.commands.run:run_export_command",
        ),
        Command(
            "export-reopen",
            "EXPORTED -> VALIDATED (a correction); the next export is a new version",
            run="invoice_pipelines.exports.commands.run:run_reopen_command",
        ),
    ),
    parsers="invoice_pipelines.exports.commands.cli:add_commands",
    definitions="invoice_pipelines.exports.defs:defs",
    needs=DATABASES | FILE_STORES,
)
