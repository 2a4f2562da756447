"""The database's part of the assemblies: `migrate` (its parser db/cli.py, what it does
db/commands.py)."""

from __future__ import annotations

from invoice_pipelines.area import Area, Command

AREA = Area(
    "db",
    commands=(
        Command(
            "migrate",
            "upgrade the database named by INVOICE_PIPELINES_DB_URL",
            run="invoice_pipelines.db.commands:run_migrate",
        ),
    ),
    parsers="invoice_pipelines.db.cli:add_commands",
)
