"""What the batch runner and the two chunk implementations share: chunk context, outcome, item codes."""

# `chunk_transaction.py` builds a ChunkContext under the job's locks and hands it to a chunk
# function (`chunk_postgres.py` or `chunk_python.py`), which returns a ChunkOutcome and records each
# item's outcome with the codes and texts below. This module imports no other billing module.

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.engine import Connection

from invoice_pipelines.core.numbering import NumberFormat
from invoice_pipelines.queue.domain.transitions import MAX_ERRORS_ON_JOB

# the sales order statuses both chunk implementations invoice (chunk_postgres spells them in its
# SQL; a test holds it to this tuple)
INVOICEABLE_STATUSES = ("reviewed", "pending")

# Why an item was not invoiced. `already_invoiced` is a skip (idempotent re-request), the rest are
# failures. `{detail}` is filled in per item; both chunk implementations use these texts.
ITEM_MESSAGES: dict[str, str] = {
    "already_invoiced": "already invoiced (skipped)",
    "unknown_order": "no sales order {detail} in this organization",
    "wrong_status": "order status is {detail}; only reviewed or pending orders are invoiced",
    "unknown_customer": "customer {detail} does not exist in this organization",
    "inactive_customer": "customer {detail} is inactive",
    "no_lines": "the order has no lines",
    "unknown_item": "item {detail} does not exist in this organization",
    "inactive_item": "item {detail} is inactive",
    "invalid_vat": "a line has VAT {detail}: categories Z, E, AE, K, G, O need rate 0; S, L, M a rate above 0",
}
SKIP_CODES = frozenset({"already_invoiced"})


def item_message(code: str, detail: object) -> str:
    return ITEM_MESSAGES[code].replace("{detail}", "" if detail is None else str(detail))


@dataclass(frozen=True)
class ChunkContext:
    """What a chunk implementation needs; it must not commit (the caller owns the transaction)."""

    job_id: int
    organization_id: int
    issue_date: date
    due_date: date
    number_format: NumberFormat
    # the organization's currency: a customer-driven invoice's (an order's invoice takes the order's)
    currency: str
    last_value: int
    limit: int
    created_by: str | None
    now: datetime
    error_room: int = MAX_ERRORS_ON_JOB  # how many more failures the job row keeps
    # the chunk is the pending items at positions after_position + 1 .. after_position + limit
    after_position: int = 0


@dataclass
class ChunkOutcome:
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    # the chunk's failures in request order: position, sales_order_id, customer_id, code, message
    errors: list[dict] = field(default_factory=list)


ChunkFunction = Callable[[Connection, ChunkContext], ChunkOutcome]
