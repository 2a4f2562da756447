"""The database's part of the assemblies: `migrate` (its parser db/commands/cli.py, what it does
db/commands/run.py)."""

from __future__ import annotations

from invoice_pipelines.area_parts import Area, Command

AREA = Area(
    "db",
    commands=(
        Command(
            "migrate",
            "upgrade the database named by INVOICE_PIPELINES_DB_URL",
            run="invoice_pipelines.db.commands.run:run_migrate",
        ),
    ),
    parsers="invoice_pipelines.db.commands.cli:add_commands",
)
