"""What `invoice-pipelines incoming review` does: a person confirms, corrects, rejects or reopens
one document (intake/domain/review.py), and Dagster is told what the UI shows changed
(`incoming_invoices`, and `supplier_register` when the register learned from it) as runless
asset events (resources/dagster_instance/dagster_ui.py), so the UI shows the change without a run, each with
the evaluations of the asset's checks (check_findings.py, figures.py: the rules the runs'
checks apply), so none shows "Not evaluated" on the materialization the review reported.
A module of its own beside intake/commands/run.py (the reading verbs), which so never imports the
review; intake/area.py's table names `run_review_command` for the verb."""

from __future__ import annotations

import argparse
import json
import sys

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.incoming_status import StaleDocument
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.intake.domain.check_findings import judge_documents, scheduled_findings
from invoice_pipelines.intake.domain.figures import (
    INCOMING_INVOICES,
    SUPPLIER_REGISTER,
    documents_figures,
    event,
    register_check_events,
    register_figures,
)
from invoice_pipelines.intake.domain.review import ReviewError, review_document
from invoice_pipelines.lib.read_only import writable
from invoice_pipelines.resources.dagster_instance.dagster_ui import CheckEvent, tell_dagster


def run_review_command(args: argparse.Namespace) -> int:
    engine = args.resources.database
    org = writable(args.organization)
    register_before = _register(engine, org)
    try:
        result = review_document(
            engine,
            args.organization,
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
    if not result.refused:
        by = f"incoming review by {args.by}"
        _tell_dagster(
            (engine, args.resources.system_database), org, result.document_id, register_before, by
        )
    return 0 if result.status != "NEEDS_REVIEW" or not args.confirm else 1


def _register(engine, org: Organization) -> dict:
    with tenant_transaction(engine, org.id) as conn:
        return register_figures(conn, org.id)


def _tell_dagster(
    engines, org: Organization, document_id: int, register_before: dict, by: str
) -> None:
    """What the review changed, as the UI shows it: the organization's documents with the five
    checks of incoming_invoices (the reviewed document is what this change processed), and the
    register when the confirmation taught it something (its figures differ from before); the
    register's checks in any case, as one reads the documents the review booked or held.
    `engines`: the runtime engine and the system engine (the checks over every organization)."""
    engine, system = engines
    with tenant_transaction(engine, org.id) as conn:
        events: list = [event(INCOMING_INVOICES, org, documents_figures(conn, org.id), by)]
        judged = judge_documents(conn, org.id, 1, [document_id])
        events += [
            CheckEvent(INCOMING_INVOICES, name, finding, org.slug)
            for name, finding in judged.findings().items()
        ]
        register = register_figures(conn, org.id)
        if register != register_before:
            events.append(event(SUPPLIER_REGISTER, org, register, by))
        events += register_check_events(conn, org)
    # over every organization, as their runs evaluate them (no partition)
    events += [
        CheckEvent(INCOMING_INVOICES, name, finding)
        for name, finding in scheduled_findings(system).items()
    ]
    tell_dagster(events)


def _refused(result) -> dict:
    """A refused confirmation's corrections, none kept (what the review command prints)."""
    if not result.refused:
        return {}
    return {
        "refused": {k: {"old": o, "new": n} for k, (o, n) in result.refused.items()},
        "changed": "nothing",
    }
