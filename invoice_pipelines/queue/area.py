"""The batch-job queue's part of the assemblies: the commands every kind of job shares
(`batch-status`, `batch-list`, `batch-cancel`, `batch-retry`, `batch-run`: queue/cli.py). Its
Dagster objects are built from every area's kinds (`queue.defs.build_defs`), by definitions.py."""

from __future__ import annotations

from invoice_pipelines.area import AddCommands, Area, Command


def _parsers() -> AddCommands:
    from invoice_pipelines.queue.cli import add_commands

    return add_commands


AREA = Area(
    "queue",
    commands=(
        Command("batch-status", "show a batch job"),
        Command("batch-list", "list recent batch jobs, most recent first"),
        Command("batch-cancel", "cancel a pending or processing batch job"),
        Command("batch-retry", "new batch job over exactly the failed orders of a job"),
        Command(
            "batch-run",
            "process a queued documents, communications or credit notes job here, with progress",
        ),
    ),
    parsers=_parsers,
    needs=frozenset({"database", "batch_kinds"}),
)
