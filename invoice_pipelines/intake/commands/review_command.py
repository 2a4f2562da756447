"""What `invoice-pipelines incoming review` does: a person confirms, corrects, rejects or reopens
one document, through the review's action (intake/domain/review_action.py, which the launchpad's
review job calls too), which tells Dagster what the UI shows changed (`incoming_invoices`, and
`supplier_register` when the register learned from it) as runless asset events with the
evaluations of the assets' checks (resources/dagster_instance/dagster_ui.py `Terminal`). The command prints the
result as one JSON line. A module of its own beside intake/commands/run.py (the reading verbs),
which so never imports the review; intake/area.py's table names `run_review_command` for the
verb."""

from __future__ import annotations

import argparse
import json
import sys

from invoice_pipelines.intake.domain.review_action import Review, ReviewParts, review
from invoice_pipelines.lib.read_only import Refused, writable
from invoice_pipelines.resources.dagster_instance.dagster_ui import Terminal


def run_review_command(args: argparse.Namespace) -> int:
    writable(args.organization)  # an offboarded one: one sentence (cli.py), as every command's
    resources = args.resources
    parts = ReviewParts(resources.database, resources.system_database, Terminal())
    try:
        result = review(
            parts, args.organization, _asked(args), told_as=f"incoming review by {args.by}"
        )
    except Refused as exc:
        print(f"invoice-pipelines incoming review: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(_shown(result), ensure_ascii=False))
    return 0 if result.status != "NEEDS_REVIEW" or not args.confirm else 1


def _asked(args: argparse.Namespace) -> Review:
    return Review(
        args.id,
        args.by,
        args.version,
        corrections=dict(args.set),
        confirm=args.confirm,
        reject=args.reject,
        reopen=args.reopen,
        reason=args.reason,
    )


def _shown(result) -> dict:
    """The result as the command prints it: a refused confirmation's corrections, none kept."""
    refused = {}
    if result.refused:
        refused = {
            "refused": {k: {"old": o, "new": n} for k, (o, n) in result.refused.items()},
            "changed": "nothing",
        }
    return {
        "id": result.document_id,
        "status": result.status,
        "corrected": {k: {"old": o, "new": n} for k, (o, n) in result.corrected.items()},
        **refused,
        "problems": result.problems,
    }
