"""`invoice-pipelines documents`: the function the documents asset calls, from the command line
(JSON summary on the last line). Queued documents jobs (`batch-documents`, `batch-run`) are in
delivery/cli.py, beside the communications jobs they share their runner with."""

from __future__ import annotations

import argparse
import json


def add_commands(sub) -> None:
    p = sub.add_parser(
        "documents", help="write the documents (Factur-X PDF, XRechnung) of invoices"
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", default="", help="sales invoice ids, e.g. 1,2; default: all new")
    p.set_defaults(func=run_documents)


def invoice_ids(text: str) -> list[int] | None:
    """The ids of an `--invoices 1,2` option; None when it names none (then: all)."""
    ids = [int(part) for part in text.split(",") if part.strip()]
    return ids or None


def run_documents(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.documents.pipeline import generate_documents
    from invoice_pipelines.resources.stores import file_store_from_env

    summary = generate_documents(
        make_engine(), file_store_from_env("documents"), args.org, invoice_ids(args.invoices)
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
