"""The invoicing kinds of the batch-job queue (`sales_orders`, `customer_lines`), as billing
builds them: a Dagster job of billing's runs them (`batch_invoicing_job`, launched by the queue's
`batch_jobs_sensor`), how they are queued with what they ask for after their invoices (their
follow-ups: a documents or a communications job), and how a person reads their jobs. Light on
purpose: the kinds are built without Dagster (billing/domain/invoicing.py imports their names); the
names of billing's kinds (`core.batch_kinds.KindName`) are here under their old names too. A
process knows the kinds it is handed (`areas.kinds()`: billing/area.py brings these)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine

from invoice_pipelines.core.batch_kinds import KindName
from invoice_pipelines.core.batch_requests import CUSTOMER_LINES, normalize_customer_lines
from invoice_pipelines.core.channels import DELIVERY_CHANNELS
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.queue.domain.batch_job import BatchJob
from invoice_pipelines.queue.domain.job_kind import (
    JobKind,
    OwnJob,
    Reading,
    Requests,
    Retry,
    counted,
    dated,
)
from invoice_pipelines.queue.domain.requests import (
    BatchRequestError,
    insert_job,
    parse_day,
    validate_order_ids,
)

SALES_ORDERS = KindName.SALES_ORDERS
INVOICING_KINDS = (SALES_ORDERS, CUSTOMER_LINES)
# credit notes for sales invoices, one per item (`billing/domain/credit_note_jobs.py`)
CREDIT_NOTES = KindName.CREDIT_NOTES
# what an invoicing request may ask for after its invoices are committed (kept by its retries)
FOLLOW_UP_OPTIONS = ("generate_pdf", "send_immediately", "channel")
# the kinds that do it are documents/domain/batch.py's and delivery/domain/batch.py's, named by
# core/batch_kinds.py (billing imports neither area)


def queued_job_config(job_id: int) -> dict:
    """The config of `sales_invoices` that runs one queued invoicing job (billing/assets.py's
    `QueuedJobRequest`; the rest of `BatchInvoicingConfig` keeps its defaults)."""
    return {"request": {"queued_job": {"batch_job_id": job_id}}}


# the queue's batch_jobs_sensor launches billing's job per queued invoicing job, as bulk work
INVOICING_JOB = OwnJob("batch_invoicing_job", "sales_invoices", queued_job_config, bulk=True)


def _summary(job: BatchJob, created: str) -> list[str]:
    invoice_date = dated(
        job, "invoice date {}", "invoice date: the day it runs (organization's time zone)"
    )
    return [
        f"  orders: {job.total_count:,} requested, {job.processed_count:,} processed, "
        f"{job.successful_count:,} invoiced, {job.failed_count:,} failed, "
        f"{job.skipped_count:,} skipped (already invoiced)"
        if counted(job)
        else "  orders: counted when the job starts",
        f"  {invoice_date}, due after {job.due_days} days; {created}",
    ]


def _retry_orders(rows: Sequence[Any], original: Mapping[str, Any]) -> dict:
    return {
        "order_ids": [r.sales_order_id or int((r.payload or {})["sales_order_id"]) for r in rows]
    }


def _retry_customers(rows: Sequence[Any], original: Mapping[str, Any]) -> dict:
    return {"customers": [r.payload for r in rows]}


def follow_up_options(
    generate_pdf: bool = False, send_immediately: bool = False, channel: str | None = None
) -> dict:
    """The follow-up options of an invoicing request, checked (empty when none is asked for)."""
    if channel is not None and channel not in DELIVERY_CHANNELS:
        raise BatchRequestError(
            f"channel must be one of {', '.join(DELIVERY_CHANNELS)}, not {channel!r}"
        )
    if channel is not None and not send_immediately:
        raise BatchRequestError("a channel only applies with send_immediately")
    options: dict = {}
    if generate_pdf:
        options["generate_pdf"] = True
    if send_immediately:
        options.update(send_immediately=True, channel=channel or "email")
    return options


def follow_ups(request: Mapping[str, Any], job_id: int) -> list[tuple[str, dict]]:
    """The job an invoicing request asks for after its invoices: sending (which writes the
    documents first, so it implies generate_pdf) or documents alone; none if neither."""
    if request.get("send_immediately"):
        return [
            (
                KindName.COMMUNICATIONS,
                {"after_job": job_id, "channel": request.get("channel") or "email"},
            )
        ]
    if request.get("generate_pdf"):
        return [(KindName.DOCUMENTS, {"after_job": job_id})]
    return []


def _invoicing_kind(name: str, retry) -> JobKind:
    return JobKind(
        name,
        runs=INVOICING_JOB,
        requests=Requests(follow_ups=follow_ups),
        reading=Reading(
            unit="orders",
            done="invoiced",
            summary=_summary,
            stuck_left=(
                "Committed invoices stay; the orders not reached were not invoiced and stay "
                "eligible"
            ),
        ),
        # a retry asks for what the job asked for after its invoices (its own follow-up)
        retry=Retry(retry, keeps=FOLLOW_UP_OPTIONS),
        creates_invoices=True,
    )


SALES_ORDERS_KIND = _invoicing_kind(SALES_ORDERS, _retry_orders)
CUSTOMER_LINES_KIND = _invoicing_kind(CUSTOMER_LINES, _retry_customers)


def enqueue_sales_orders(
    engine: Engine,
    org: Organization,
    *,
    order_ids: Sequence[int] | None = None,
    all_reviewed: bool = False,
    up_to: date | str | None = None,
    invoice_date: date | str | None = None,
    due_days: int | None = None,
    created_by: str | None = None,
    runner: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> int:
    """Queue invoicing of sales orders: explicit ids, or every reviewed order (up to a date).

    Returns the job id at once; the work happens in `process_batch_job`. `runner` marks the job as
    taken by a process outside Dagster so the sensor leaves it alone. `due_days` None: the
    organization's payment terms (`queue.requests.organization_due_days`). `options`:
    `follow_up_options`.
    """
    if (order_ids is None) == (not all_reviewed):
        raise BatchRequestError("give either order ids or all_reviewed, not both or neither")
    if order_ids is not None:
        ids = validate_order_ids(order_ids)
        request: dict = {"order_ids": ids}
        if up_to is not None:
            raise BatchRequestError("up_to only applies to all_reviewed")
    else:
        up_to_day = parse_day(up_to, "up_to")
        request = {"all_reviewed": True, "up_to": up_to_day.isoformat() if up_to_day else None}
    request.update(options or {})
    return _queued(engine, org, SALES_ORDERS, request, invoice_date, due_days, created_by, runner)


def enqueue_customer_lines(
    engine: Engine,
    org: Organization,
    customers: Sequence[Mapping[str, Any]],
    *,
    invoice_date: date | str | None = None,
    due_days: int | None = None,
    created_by: str | None = None,
    runner: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> int:
    """Queue invoices for customers with given items, quantities and prices (no sales orders)."""
    request = {"customers": normalize_customer_lines(customers), **(options or {})}
    return _queued(engine, org, CUSTOMER_LINES, request, invoice_date, due_days, created_by, runner)


def _queued(engine, org, kind, request, invoice_date, due_days, created_by, runner) -> int:
    """Queue an invoicing job, with its follow-ups (`follow_ups`, queued by `insert_job` in the
    same transaction)."""
    return insert_job(
        engine,
        org,
        kind=kind,
        request=request,
        invoice_date=parse_day(invoice_date, "invoice date"),
        due_days=due_days,
        created_by=created_by,
        runner=runner,
        follow_ups=follow_ups,
    )
