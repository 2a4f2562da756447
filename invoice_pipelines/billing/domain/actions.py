"""Billing's requests as actions the launchpad's op (billing/jobs.py) and the commands
(billing/commands/run.py) both call: `credit_note`, one credit note for one sales invoice (the
`credit_note_job`'s op and `credit-note`); `queue_invoicing` and `invoice_queued`, a batch
invoicing request queued and, with `batch-invoice --wait`, run to its end here (a queued job is
otherwise run by `batch_invoicing_job`, which materializes `sales_invoices`).

Each takes the work's parts (the engines, the kinds), the `Organization` and the request, and
returns the outcome, or raises the refusal a person can correct: `CreditNoteRefused` (its code
names the reason, its text is the sentence) or `Refused`. The adapters read the request from the
run's config or the options and word the outcome as the run's value or as the command's lines and
exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from invoice_pipelines.billing.domain.credit_notes import (
    CreditNote,
    amounts_from,
    issue_credit_note,
    lines_from,
)
from invoice_pipelines.billing.domain.invoicing import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_WORKERS,
    MAX_WORKERS,
    ProcessedBatchJob,
    process_batch_job,
)
from invoice_pipelines.billing.domain.invoicing_kinds import (
    enqueue_customer_lines,
    enqueue_sales_orders,
    follow_up_options,
)
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.lib.read_only import Refused
from invoice_pipelines.queue.domain.jobs import BatchJob, follow_up_of, job_item_outcomes
from invoice_pipelines.queue.domain.known_kinds import Kinds
from invoice_pipelines.queue.domain.requests import BatchRequestError, parse_order_ids

# the failed items an invoicing job run here shows with its summary
FAILURES_SHOWN = 10


def credit_note(
    engine: Engine,
    org: Organization,
    invoice_number: str,
    *,
    reason: str,
    lines: object = None,
    amounts: object = None,
    issue_date: date | None = None,
    by: str,
) -> CreditNote:
    """One credit note of `org` for the sales invoice `invoice_number`, issued by `by`: in full,
    for the `lines` or for the NET `amounts` per VAT rate, as the request gives them (a command's
    text, `"1:2,3:1"`, `"19=100.00"`; the launchpad's entries: `lines_from`, `amounts_from`).
    CreditNoteRefused says why not, in one sentence; nothing is written then."""
    return issue_credit_note(
        engine,
        org,
        invoice_number,
        reason=reason,
        lines=lines_from(lines),
        amounts=amounts_from(amounts),
        issue_date=issue_date,
        created_by=by,
    )


def credit_note_metadata(note: CreditNote) -> dict:
    """What a run shows of the credit note it issued (the op's output metadata)."""
    return {
        "credit_note": note.number,
        "corrects": note.corrects,
        "gross_total": f"{note.gross_total} {note.currency}",
        "invoice_amount_due": f"{note.invoice_amount_due} {note.currency}",
    }


def invoicing_workers(workers: int | None, *, what: str) -> int:
    """The chunks of a job in flight at once a request asks for (None: DEFAULT_WORKERS); Refused,
    naming the request's `what`, beyond 1 to MAX_WORKERS."""
    workers = workers or DEFAULT_WORKERS
    if not 1 <= workers <= MAX_WORKERS:
        raise Refused([f"{what} must be between 1 and {MAX_WORKERS}"])
    return workers


def queue_invoicing(
    engine: Engine,
    org: Organization,
    *,
    orders: str | None = None,
    customer_lines: str | Path | None = None,
    up_to: str | None = None,
    invoice_date: str | None = None,
    due_days: int | None = None,
    follow_ups: tuple[bool, bool, str | None] = (False, False, None),
    created_by: str,
    runner: str | None = None,
) -> int:
    """Queue one batch invoicing job of `org` and return its id: for the customers' lines of the
    JSON file `customer_lines` names, else the sales orders `orders` names (`"1,2,3"`), else every
    reviewed order (dated up to `up_to`). `follow_ups` are what follows the invoices (documents,
    sending: generate_pdf, send_immediately, channel); `runner` takes the job for a run here.
    Refused, in one sentence, when the request cannot be read or queued: nothing is queued then."""
    common = {
        "invoice_date": invoice_date,
        "due_days": due_days,
        "created_by": created_by,
        "runner": runner,
    }
    try:
        common["options"] = follow_up_options(*follow_ups)
        if customer_lines:
            entries = json.loads(Path(customer_lines).read_text())
            return enqueue_customer_lines(engine, org, entries, **common)
        if orders:
            return enqueue_sales_orders(engine, org, order_ids=parse_order_ids(orders), **common)
        return enqueue_sales_orders(engine, org, all_reviewed=True, up_to=up_to, **common)
    except (BatchRequestError, OSError, json.JSONDecodeError) as exc:
        raise Refused([str(exc)]) from None


@dataclass(frozen=True)
class Invoiced:
    """An invoicing job run to its end (or its cancel): its state, its first failed items (None
    when none failed) and the documents or sending job queued to follow it (None: none)."""

    job: ProcessedBatchJob
    failures: list | None
    follow_up: BatchJob | None


def invoice_queued(
    engine: Engine,
    job_id: int,
    *,
    system: Engine,
    kinds: Kinds,
    chunk_size: int | None = None,
    workers: int = DEFAULT_WORKERS,
    runner: str | None = None,
    on_progress: Callable[[BatchJob], None] | None = None,
) -> Invoiced:
    """The queued invoicing job `job_id` processed here to its end (`process_batch_job`: its
    organization comes with it from the queue), `on_progress` told after each chunk."""
    job = process_batch_job(
        engine,
        job_id,
        system=system,
        chunk_size=chunk_size or DEFAULT_CHUNK_SIZE,
        runner=runner,
        on_progress=on_progress,
        workers=workers,
    )
    failures = job_item_outcomes(engine, job, limit=FAILURES_SHOWN) if job.failed_count else None
    return Invoiced(job, failures, follow_up_of(engine, job, kinds))
