"""The batch-job queue's part of the assemblies: the commands every kind of job shares
(`batch-status`, `batch-list`, `batch-cancel`, `batch-retry`, `batch-run`: their parsers
queue/commands/cli.py, what they do queue/commands/run.py). Its Dagster objects are built from every area's
kinds (`queue.defs.build_defs`), by definitions.py."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, Area, Command

AREA = Area(
    "queue",
    commands=(
        Command(
            "batch-status",
            "show a batch job",
            run="invoice_pipelines.queue.commands.run:batch_status",
        ),
        Command(
            "batch-list",
            "list recent batch jobs, most recent first",
            run="invoice_pipelines.queue.commands.run:run_batch_list",
        ),
        Command(
            "batch-cancel",
            "cancel a pending or processing batch job",
            run="invoice_pipelines.queue.commands.run:batch_cancel",
        ),
        Command(
            "batch-retry",
            "new batch job over exactly the failed orders of a job",
            run="invoice_pipelines.queue.commands.run:batch_retry",
        ),
        Command(
            "batch-run",
            "process a queued documents, communications or credit notes job here, with progress",
            run="invoice_pipelines.queue.commands.run:run_batch_run",
        ),
    ),
    parsers="invoice_pipelines.queue.commands.cli:add_commands",
    needs=DATABASES | {"batch_kinds"},
)
