"""What `invoice-pipelines incoming review` does: a person confirms, corrects, rejects or reopens
one document (intake/review.py), and Dagster is told what the UI shows changed
(`incoming_invoices`, and `supplier_register` when the register learned from it: reports.py).
A module of its own beside intake/commands.py (the reading verbs), which so never imports the
review; intake/area.py's table names `run_review_command` for the verb."""

from __future__ import annotations

import argparse
import json
import sys

from invoice_pipelines.db.incoming_status import StaleDocument
from invoice_pipelines.intake.review import ReviewError, review_document


def run_review_command(args: argparse.Namespace) -> int:
    try:
        result = review_document(
            args.resources.database,
            args.org,
            args.id,
            reviewed_by=args.by,
            corrections=dict(args.set),
            confirm=args.confirm,
            reject=args.reject,
            expected_version=args.version,
            reopen=args.reopen,
            reason=args.reason,
        )
    except (ReviewError, StaleDocument) as exc:
        print(f"invoice-pipelines incoming review: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "id": result.document_id,
                "status": result.status,
                "corrected": {k: {"old": o, "new": n} for k, (o, n) in result.corrected.items()},
                **_refused(result),
                "problems": result.problems,
            },
            ensure_ascii=False,
        )
    )
    return 0 if result.status != "NEEDS_REVIEW" or not args.confirm else 1


def _refused(result) -> dict:
    """A refused confirmation's corrections, none kept (what the review command prints)."""
    if not result.refused:
        return {}
    return {
        "refused": {k: {"old": o, "new": n} for k, (o, n) in result.refused.items()},
        "changed": "nothing",
    }
