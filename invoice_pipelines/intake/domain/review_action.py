"""The action of a person's review of one incoming invoice: confirm, correct, reject, or reopen a
VALIDATED one (review.py `review_document`). It takes the work's parts (`ReviewParts`: the runtime
and system engines, the `report` of whoever asked), the `Organization` and the request
(`Review`); it reviews, tells the UI what the review changed (`incoming_invoices` with its
checks, and `supplier_register` when the confirmation taught it something) and returns the
result, or raises `Refused` with the review's sentence, nothing written. The launchpad's
`review_incoming_invoice` op (intake/jobs.py) and `invoice-pipelines incoming review`
(intake/commands/review_command.py) are adapters over it. A module of its own, so that a
command changing the register never imports the review."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field

from sqlalchemy import Engine

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
from invoice_pipelines.intake.domain.review import ReviewError, ReviewResult, review_document
from invoice_pipelines.lib.read_only import Refused, writable
from invoice_pipelines.resources.dagster_instance.dagster_ui import CheckEvent, Report


@dataclass(frozen=True)
class ReviewParts:
    """The runtime engine (the document), the system engine (the checks over every
    organization), whoever asked."""

    engine: Engine
    system: Engine
    report: Report


@dataclass(frozen=True)
class Review:
    """What the reviewer asks of one document: review.py `review_document`'s request, by its
    names (its module docstring says each)."""

    document_id: int
    reviewed_by: str
    expected_version: int | None
    corrections: Mapping[str, str] = field(default_factory=dict)
    confirm: bool = False
    reject: str | None = None
    reopen: bool = False
    reason: str | None = None


def review(parts: ReviewParts, org: Organization, asked: Review, *, told_as: str) -> ReviewResult:
    """Review one document as `asked`; the result (a confirmation its values do not hold stays
    in review: `result.problems`, nothing written). What changed is told as `told_as`."""
    writable(org)
    register_before = _register(parts.engine, org)
    try:
        result = review_document(parts.engine, org, **asdict(asked))
    except (ReviewError, StaleDocument) as exc:
        raise Refused([str(exc)]) from None
    if not result.refused:
        parts.report.changed(
            _review_events(parts, org, result.document_id, register_before, told_as)
        )
    return result


def _register(engine: Engine, org: Organization) -> dict:
    with tenant_transaction(engine, org.id) as conn:
        return register_figures(conn, org)


def _review_events(
    parts: ReviewParts, org: Organization, document_id: int, register_before: dict, by: str
) -> Iterator:
    """What the review changed, as the UI shows it: the organization's documents with the five
    checks of incoming_invoices (the reviewed document is what this change processed), and the
    register when the confirmation taught it something (its figures differ from before); the
    register's checks in any case, as one reads the documents the review booked or held; the
    checks over every organization, as their runs evaluate them (no partition). Read when
    iterated."""
    with tenant_transaction(parts.engine, org.id) as conn:
        events: list = [event(INCOMING_INVOICES, org, documents_figures(conn, org.id), by)]
        judged = judge_documents(conn, org.id, 1, [document_id])
        events += [
            CheckEvent(INCOMING_INVOICES, name, finding, org.slug)
            for name, finding in judged.findings().items()
        ]
        register = register_figures(conn, org)
        if register != register_before:
            events.append(event(SUPPLIER_REGISTER, org, register, by))
        events += register_check_events(conn, org)
    events += [
        CheckEvent(INCOMING_INVOICES, name, finding)
        for name, finding in scheduled_findings(parts.system).items()
    ]
    yield from events
