"""`invoice-pipelines documents`: the function the documents asset calls, from the command line
(JSON summary on the last line). Queued documents jobs (`batch-documents`, `batch-run`) are in
delivery/cli.py, beside the communications jobs; the documents kind is registered here."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from invoice_pipelines.cli_args import id_list
from invoice_pipelines.cli_commands import help_of
from invoice_pipelines.documents.kind import DOCUMENTS
from invoice_pipelines.queue.kinds import register

if TYPE_CHECKING:
    from invoice_pipelines.resources.letter_types import Letters


def _documents_kind():
    from invoice_pipelines.documents.batch import DOCUMENTS_KIND

    return DOCUMENTS_KIND


def add_commands(sub) -> None:
    register(DOCUMENTS, _documents_kind)  # batch-run writes queued documents jobs
    p = sub.add_parser("documents", help=help_of("documents"))
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--invoices", type=id_list, default=[], help="sales invoice ids, e.g. 1,2; default: all new"
    )
    p.set_defaults(func=run_documents)


def letter_writer() -> Letters:
    """The writer the runs' `letter_writer` wraps (definitions.py), for the console script to hand
    to a command that writes letters: the plain one, so that command imports no Dagster."""
    from invoice_pipelines.documents.letters import PdfaLetters

    return PdfaLetters()


def run_documents(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.engine import command_line_engine
    from invoice_pipelines.documents.pipeline import generate_documents
    from invoice_pipelines.resources.stores import files_from_env

    summary = generate_documents(
        command_line_engine(), files_from_env("documents"), args.org, args.invoices or None
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
