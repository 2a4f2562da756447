"""The batch-job queue's part of the assemblies: the commands every kind of job shares
(`batch-status`, `batch-list`, `batch-cancel`, `batch-retry`, `batch-run`: their parsers
queue/cli.py, what they do queue/commands.py). Its Dagster objects are built from every area's kinds (`queue.defs.build_defs`), by definitions.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command

if TYPE_CHECKING:
    from types import ModuleType


def _parsers() -> AddCommands:
    from invoice_pipelines.queue.cli import add_commands

    return add_commands


def _commands() -> ModuleType:
    """The one import of what the commands do (queue/commands.py), when one of them runs."""
    from invoice_pipelines.queue import commands

    return commands


AREA = Area(
    "queue",
    commands=(
        Command("batch-status", "show a batch job", run=lambda: _commands().batch_status),
        Command(
            "batch-list",
            "list recent batch jobs, most recent first",
            run=lambda: _commands().run_batch_list,
        ),
        Command(
            "batch-cancel",
            "cancel a pending or processing batch job",
            run=lambda: _commands().batch_cancel,
        ),
        Command(
            "batch-retry",
            "new batch job over exactly the failed orders of a job",
            run=lambda: _commands().batch_retry,
        ),
        Command(
            "batch-run",
            "process a queued documents, communications or credit notes job here, with progress",
            run=lambda: _commands().run_batch_run,
        ),
    ),
    parsers=_parsers,
    needs=frozenset({"database", "batch_kinds"}),
)
