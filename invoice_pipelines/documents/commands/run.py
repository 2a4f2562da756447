"""What `invoice-pipelines documents` and `batch-documents` do. `documents`: the function the
documents asset calls, from the command line (JSON summary on the last line); `batch-documents`:
a documents job of the batch jobs queue over invoices in print order (`batch-run` runs a queued
one: queue/commands/run.py). Their parsers are documents/commands/cli.py's; documents/area.py's table names
each function here, and the console script imports this module only when one of them runs."""

from __future__ import annotations

import argparse
import json

from invoice_pipelines.core.batch_kinds import KindName
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.queue.commands.run import queue_invoice_job


def run_documents(args: argparse.Namespace) -> int:
    resources = args.resources
    summary = generate_documents(
        resources.database, resources.document_store, args.organization, args.invoices or None
    )
    print(json.dumps(summary.as_line()))
    return 1 if summary.failed else 0


def run_batch_documents(args: argparse.Namespace) -> int:
    return queue_invoice_job(
        args, KindName.DOCUMENTS, "batch-documents", combined_pdf=args.combined_pdf
    )
