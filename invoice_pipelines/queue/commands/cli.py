"""The parsers of the commands every kind of batch job shares: `batch-status`, `batch-list`,
`batch-cancel`, `batch-retry` and `batch-run`, and the options of an area's command that queues
a job over invoices (`queue_options`): argparse alone, so `--help` imports no SQLAlchemy. What
they do and print is queue/commands/run.py, named by queue/area.py's table (with each help)."""

from __future__ import annotations

from invoice_pipelines.cli_args import positive_int
from invoice_pipelines.core.batch_kinds import BATCH_JOB_STATUSES


def add_commands(sub) -> None:
    p = sub.add_parser("batch-status")
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("batch-list")
    p.add_argument("--org", help="organization id or slug; default: every organization")
    p.add_argument("--status", choices=BATCH_JOB_STATUSES, help="only jobs in this status")
    p.add_argument(
        "--limit", type=positive_int, default=20, help="at most this many jobs (default 20)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON list")

    p = sub.add_parser("batch-cancel")
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--created-by", default=None)

    p = sub.add_parser("batch-retry")
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--created-by", default=None)

    p = sub.add_parser("batch-run")
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--chunk-size", type=positive_int, default=200, help="invoices per chunk")


def queue_options(p) -> None:
    """The options of a command that queues a job over invoices (`batch-documents`,
    `batch-send`)."""
    p.add_argument("--created-by", default=None, help="who asks (audit log); default: you")
    p.add_argument("--wait", action="store_true", help="process now and show progress until done")
    p.add_argument(
        "--chunk-size", type=positive_int, default=200, help="invoices per chunk with --wait"
    )
