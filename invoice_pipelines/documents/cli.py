"""`invoice-pipelines documents`: the function the documents asset calls, from the command line
(JSON summary on the last line); `batch-documents`: a documents job of the batch jobs queue over
invoices in print order (`batch-run` runs a queued one: queue/cli.py). Each command's help is in
documents/area.py."""

from __future__ import annotations

import argparse
import json

from invoice_pipelines.cli_args import id_list
from invoice_pipelines.core.batch_kinds import KindName
from invoice_pipelines.queue.cli import queue_options


def add_commands(sub) -> None:
    p = sub.add_parser("documents")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--invoices", type=id_list, default=[], help="sales invoice ids, e.g. 1,2; default: all new"
    )
    p.set_defaults(func=run_documents)

    p = sub.add_parser("batch-documents")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", required=True, help="sales invoice ids in print order, e.g. 3,1,2")
    p.add_argument("--combined-pdf", action="store_true", help="also one PDF of them all")
    queue_options(p)
    p.set_defaults(func=run_batch_documents)


def run_documents(args: argparse.Namespace) -> int:
    from invoice_pipelines.documents.pipeline import generate_documents

    summary = generate_documents(
        args.resources.database, args.resources.document_store, args.org, args.invoices or None
    )
    print(
        json.dumps(
            {
                "generated": summary.generated,
                "xrechnung": summary.xrechnung,
                "already": summary.already,
                "failed": {str(k): v for k, v in summary.failed.items()},
                "paths": summary.paths,
            }
        )
    )
    return 1 if summary.failed else 0


def run_batch_documents(args: argparse.Namespace) -> int:
    from invoice_pipelines.queue.commands import queue_invoice_job

    return queue_invoice_job(
        args, KindName.DOCUMENTS, "batch-documents", combined_pdf=args.combined_pdf
    )
