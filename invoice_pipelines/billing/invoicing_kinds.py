"""The invoicing kinds of the batch-job queue (`sales_orders`, `customer_lines`), as billing
declares them: a Dagster job of billing's runs them (`batch_invoicing_job`, launched by the queue's
`batch_jobs_sensor`), and this is how a person reads their jobs. Light on purpose: importing it
declares the kinds without Dagster (billing/invoicing.py imports it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from invoice_pipelines.queue.jobs import BatchJob
from invoice_pipelines.queue.kinds import JobKind, OwnJob, counted
from invoice_pipelines.queue.requests import CUSTOMER_LINES, FOLLOW_UP_OPTIONS, SALES_ORDERS


def _run_request(job_id: int, slug: str, run_key: str):
    # billing/defs.py declares the kinds again with its RunRequest (`with_run_request`)
    raise RuntimeError("batch_invoicing_job is launched from billing's definitions")


def with_run_request(kind: JobKind, run_request) -> JobKind:
    """The kind as billing's definitions declare it: launched with their `run_request`."""
    return replace(kind, own_job=OwnJob(kind.own_job.job_name, run_request))


def _summary(job: BatchJob, created: str) -> list[str]:
    invoice_date = (
        f"invoice date {job.invoice_date}"
        if job.invoice_date
        else "invoice date: the day it runs (organization's time zone)"
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


def _invoicing_kind(name: str, retry) -> JobKind:
    return JobKind(
        name,
        unit="orders",
        done="invoiced",
        own_job=OwnJob("batch_invoicing_job", _run_request),
        summary=_summary,
        stuck_left=(
            "Committed invoices stay; the orders not reached were not invoiced and stay eligible"
        ),
        retry_request=retry,
        # a retry asks for what the job asked for after its invoices (its own follow-up)
        retry_keeps=FOLLOW_UP_OPTIONS,
    )


SALES_ORDERS_KIND = _invoicing_kind(SALES_ORDERS, _retry_orders)
CUSTOMER_LINES_KIND = _invoicing_kind(CUSTOMER_LINES, _retry_customers)
