"""Credit notes in batches: the queue's kind `credit_notes` (`CREDIT_NOTES_KIND`, brought by billing/area.py). A request lists credit notes for one
organization (invoice number, reason, optionally lines or net amounts per VAT rate, optionally a
date); each is issued exactly once (`queue/domain/atomic.py`: the credit note and its item's outcome
commit together), a refused one is recorded with its reason and the others go on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from invoice_pipelines import sales_ledger
from invoice_pipelines.billing.domain.credit_notes import (
    CreditNoteRefused,
    amounts_from,
    amounts_json,
    issue_credit_note_in,
    lines_from,
    lines_json,
    plausible_credit_note_date,
)
from invoice_pipelines.billing.domain.invoicing_kinds import CREDIT_NOTES
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import batch_job_items
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.queue.domain.atomic import ItemFailed, ItemWork, run_atomic_job
from invoice_pipelines.queue.domain.batch_job import BatchJob
from invoice_pipelines.queue.domain.job_kind import (
    JobKind,
    Reading,
    Requests,
    Retry,
    RunSettings,
    RunsItself,
    dated,
)
from invoice_pipelines.queue.domain.jobs import get_batch_job
from invoice_pipelines.queue.domain.requests import (
    BatchRequestError,
    insert_job,
    lookup_organization,
    parse_day,
)

if TYPE_CHECKING:
    from invoice_pipelines.billing.credit_note_request import CreditNotesJobRequest

DEFAULT_CHUNK_SIZE = 50  # credit notes between two progress reports (and cancel checks)
ITEM_FIELDS = ("invoice_number", "reason", "lines", "amounts", "issue_date")


def credit_note_item(entry: object) -> dict:
    """One credit note of a request as it is stored: lines and amounts as decimal strings (exact
    in JSON). CreditNoteRefused (with its code) when it cannot be read."""
    if not isinstance(entry, Mapping):
        raise CreditNoteRefused(
            f"{entry!r} is not an object with invoice_number and reason", "invalid_item"
        )
    unknown = sorted(set(entry) - set(ITEM_FIELDS))
    if unknown:
        raise CreditNoteRefused(
            f"unknown field {', '.join(unknown)} (an item has {', '.join(ITEM_FIELDS)})",
            "invalid_item",
        )
    number = str(entry.get("invoice_number") or "").strip()
    if not number:
        raise CreditNoteRefused("no invoice_number", "invalid_item")
    reason = str(entry.get("reason") or "").strip()
    if not reason:
        raise CreditNoteRefused(
            "a credit note needs a reason (it is printed and audit-logged)", "no_reason"
        )
    lines = lines_from(entry.get("lines"))
    amounts = amounts_from(entry.get("amounts"))
    if lines is not None and amounts is not None:
        raise CreditNoteRefused(
            "give lines or amounts per VAT rate, not both (two credit notes if you need both)",
            "lines_and_amounts",
        )
    try:
        raw_day = entry.get("issue_date")
        if raw_day is not None and not isinstance(raw_day, str):
            raise BatchRequestError(f"issue_date must be a date like 2026-11-30, not {raw_day!r}")
        day = parse_day(raw_day, "issue_date")
    except BatchRequestError as exc:
        raise CreditNoteRefused(str(exc), "invalid_date") from None
    if day is not None:
        plausible_credit_note_date(day)
    item: dict[str, Any] = {"invoice_number": number, "reason": reason}
    if lines is not None:
        item["lines"] = lines_json(lines)
    if amounts is not None:
        item["amounts"] = amounts_json(amounts)
    if day is not None:
        item["issue_date"] = day.isoformat()
    return item


def normalize_items(items: Sequence[Mapping[str, Any]]) -> list[dict]:
    """A request's credit notes, each checked (`credit_note_item`); BatchRequestError names the
    first one that cannot be read, and nothing is queued."""
    if not isinstance(items, list | tuple) or not items:
        raise BatchRequestError("no credit notes given")
    normalized = []
    for n, entry in enumerate(items, start=1):
        try:
            normalized.append(credit_note_item(entry))
        except CreditNoteRefused as exc:
            raise BatchRequestError(f"credit note {n}: {exc}") from None
    return normalized


def enqueue_credit_notes(
    engine: Engine,
    org: Organization,
    items: Sequence[Mapping[str, Any]],
    *,
    issue_date: date | str | None = None,
    created_by: str | None = None,
    runner: str | None = None,
) -> int:
    """Queue a `credit_notes` job; its id. `issue_date` is the date of the items that give none
    (default: today where the organization is, when the job is queued)."""
    day = parse_day(issue_date, "credit note date")
    if day is not None:
        try:
            plausible_credit_note_date(day)
        except CreditNoteRefused as exc:
            raise BatchRequestError(str(exc)) from None
    return insert_job(
        engine,
        org,
        kind=CREDIT_NOTES,
        request={"items": normalize_items(items)},
        invoice_date=day,
        due_days=0,  # nothing is due on a credit note
        created_by=created_by,
        runner=runner,
    )


def credit_notes_work(organization: Organization) -> ItemWork:
    """Issue one item's credit note in the queue's transaction (`queue.atomic`)."""

    def work(conn: Connection, job: BatchJob, request: Mapping[str, Any], payload: Any) -> int:
        try:
            item = credit_note_item(payload)
            note = issue_credit_note_in(
                conn,
                organization,
                item["invoice_number"],
                reason=item["reason"],
                lines=lines_from(item.get("lines")),
                amounts=amounts_from(item.get("amounts")),
                issue_date=date.fromisoformat(item["issue_date"])
                if "issue_date" in item
                else job.invoice_date,
                created_by=job.created_by or "unknown",
                batch_job_id=job.id,
            )
        except CreditNoteRefused as exc:
            raise ItemFailed(exc.code, str(exc)) from None
        return note.id

    return work


def _payloads(request: Mapping[str, Any]) -> list[Any]:
    items = request.get("items")
    if not isinstance(items, list) or not items:
        raise BatchRequestError(
            'a credit_notes request lists its credit notes under "items"; this one lists none'
        )
    return items


def _describe(payload: Any) -> dict:
    number = payload.get("invoice_number") if isinstance(payload, Mapping) else None
    return {"invoice_number": number} if number else {}


def run_credit_note_job(
    engine: Engine,
    job_id: int,
    *,
    system: Engine,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    runner: str | None = None,
    on_progress=None,  # Callable[[BatchJob], None]
) -> BatchJob:
    """Process a credit_notes job to its end (or its cancel); safe to call again at any time:
    what was issued stays issued and is never issued twice."""
    job = get_batch_job(system, job_id)
    if job.kind != CREDIT_NOTES:
        raise BatchRequestError(f"batch job {job_id} is a {job.kind} job, not credit notes")
    organization = lookup_organization(system, job.organization_id)
    return run_atomic_job(
        engine,
        job_id,
        credit_notes_work(organization),
        system=system,
        kind=CREDIT_NOTES,
        payloads=_payloads,
        describe=_describe,
        chunk_size=chunk_size,
        runner=runner,
        on_progress=on_progress,
        after_failure="Issued credit notes stay; run the job again to go on with the items not "
        "reached (none is issued twice).",
    )


def issued_credit_notes(engine: Engine, job: BatchJob, *, limit: int = 50) -> list[dict]:
    """The credit notes a job issued, in request order: position, number, invoice, gross."""
    i = batch_job_items.c
    # the credit note and the invoice it corrects (sales_ledger.py)
    read = ("invoice_number", "corrects_number", "gross_total", "currency")
    with tenant_transaction(engine, job.organization_id) as conn:
        rows = conn.execute(
            select(i.position, *sales_ledger.fields(*read))
            .select_from(sales_ledger.joined_to(batch_job_items, i.sales_invoice_id, *read))
            .where(
                i.batch_job_id == job.id,
                i.status == "succeeded",
                # the corrected invoice is there (the ledger joins it outer)
                sales_ledger.field("corrects_number").is_not(None),
            )
            .order_by(i.position)
            .limit(limit)
        ).all()
    return [
        {
            "position": position,
            "credit_note": number,
            "invoice": invoice,
            "gross_total": f"{gross} {currency}",
        }
        for position, number, invoice, gross, currency in rows
    ]


# -- the kind, as the queue knows it -------------------------------------------------------------


def _request() -> type:
    """The launchpad's request (Dagster config), loaded with the queue's Dagster job only."""
    from invoice_pipelines.billing.credit_note_request import CreditNotesJobRequest

    return CreditNotesJobRequest


def _enqueue(
    engine: Engine, organization: Organization, request: CreditNotesJobRequest, who, runner
):
    items = [  # the launchpad's items as a queue request lists them (checked when queued)
        {key: value for key, value in item.model_dump().items() if value is not None}
        for item in request.items
    ]
    return enqueue_credit_notes(
        engine, organization, items, issue_date=request.issue_date, created_by=who, runner=runner
    )


def _run(engine: Engine, job_id: int, resources, settings: RunSettings) -> BatchJob:
    return run_credit_note_job(
        engine,
        job_id,
        system=resources.system_database,
        chunk_size=settings.chunk_size,
        runner=settings.runner,
        on_progress=settings.on_progress,
    )


def _metadata(engine: Engine, job: BatchJob) -> dict:
    from dagster import MetadataValue  # a run's metadata: commands never ask for it

    issued = issued_credit_notes(engine, job)
    return {"credit_notes": MetadataValue.json(issued)} if issued else {}


def _report(engine: Engine, job: BatchJob) -> list[str]:
    issued = issued_credit_notes(engine, job, limit=10)
    lines = [f"  issued (first {len(issued)}):"] if issued else []
    lines += [
        f"    #{note['position']} {note['credit_note']} for invoice {note['invoice']}: "
        f"{note['gross_total']}"
        for note in issued
    ]
    return lines


def _summary(job: BatchJob, created: str) -> list[str]:
    day = dated(
        job,
        "dated {} unless an item gives its date",
        "dated the day they are issued unless an item gives its date",
    )
    return [
        f"  credit notes: {job.total_count:,} requested, {job.processed_count:,} processed, "
        f"{job.successful_count:,} issued, {job.failed_count:,} refused",
        f"  {day}; {created}",
    ]


CREDIT_NOTES_KIND = JobKind(
    name=CREDIT_NOTES,
    runs=RunsItself(_run, default_chunk_size=DEFAULT_CHUNK_SIZE),
    requests=Requests(config=_request, enqueue=_enqueue),
    reading=Reading(
        unit="credit notes",
        done="issued",
        summary=_summary,
        stuck_left="Credit notes issued stay; the items not reached were not issued",
        report=_report,
        asset=lambda engine, job: "sales_invoices",
        metadata=_metadata,
    ),
    # the failed credit notes as they were asked for (none of them was issued)
    retry=Retry(lambda rows, original: {"items": [r.payload for r in rows]}),
)
