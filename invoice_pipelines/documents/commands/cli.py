"""The parsers of `invoice-pipelines documents` and `batch-documents`: argparse alone, so
`--help` imports none of the documents' work. What each command does is in
documents/commands/run.py, named by documents/area.py's table (with each help)."""

from __future__ import annotations

from invoice_pipelines.cli_args import id_list
from invoice_pipelines.queue.commands.cli import queue_options


def add_commands(sub) -> None:
    p = sub.add_parser("documents")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--invoices", type=id_list, default=[], help="sales invoice ids, e.g. 1,2; default: all new"
    )

    p = sub.add_parser("batch-documents")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", required=True, help="sales invoice ids in print order, e.g. 3,1,2")
    p.add_argument("--combined-pdf", action="store_true", help="also one PDF of them all")
    queue_options(p)
