"""The kinds of batch job, by name: the one list of what `batch_jobs.kind` may say. The area that
brings a kind to the queue names it from here (its `area.py`'s `QueueKind`, the `JobKind` it
builds), and so does an area that queues another area's kind without importing that area
(billing's follow-ups write documents and send them; dunning queues fee invoices as customer
lines). Each member is its name as stored (a `StrEnum`): a job's kind read from the database
compares equal to it. Plain Python, imported by the areas' light `area.py` modules. Beside them the
statuses a batch job goes through (`BATCH_JOB_STATUSES`: the `batch_jobs.status` check and the
`--status` choices of `batch-list`, whose parser loads no SQLAlchemy)."""

from __future__ import annotations

from enum import StrEnum

# the name runs (a Dagster resource) and commands (`args.resources`) get the kinds by
# (`queue.known_kinds.Kinds`); here, below the queue, so that naming it imports no kind
KINDS_RESOURCE = "batch_kinds"

BATCH_JOB_STATUSES = (
    "pending",
    "processing",
    "completed",
    "completed_with_errors",
    "failed",
    "cancelled",
)


class KindName(StrEnum):
    SALES_ORDERS = "sales_orders"  # billing: invoices from sales orders
    CUSTOMER_LINES = "customer_lines"  # billing: invoices from lines per customer
    CREDIT_NOTES = "credit_notes"  # billing: credit notes for sales invoices
    DOCUMENTS = "documents"  # documents: PDF and e-invoice files of sales invoices
    COMMUNICATIONS = "communications"  # delivery: sending sales invoices
