"""The database's part of the assemblies: `migrate` (db/cli.py)."""

from __future__ import annotations

from invoice_pipelines.area import AddCommands, Area, Command


def _parsers() -> AddCommands:
    from invoice_pipelines.db.cli import add_commands

    return add_commands


AREA = Area(
    "db",
    commands=(Command("migrate", "upgrade the database named by INVOICE_PIPELINES_DB_URL"),),
    parsers=_parsers,
)
