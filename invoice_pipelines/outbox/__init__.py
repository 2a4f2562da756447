"""One outbox for everything that leaves the building at most once: invoice e-mails, SMS and
WhatsApp (`deliveries`), dunning notices (`dunning_notices.delivery_status`) and QuickBooks pushes
(`qbo_push_queue`, and supplier invoices' bills in `qbo_bill_queue`). The state machine is in
`machine`; each area describes its table as an `Outbox` and calls the transitions."""

from invoice_pipelines.outbox.machine import (
    FAILED,
    SENDING,
    Outbox,
    attempt,
    claim,
    finish,
    mark_unknown,
    outcome_of,
    refuse,
)

__all__ = [
    "FAILED",
    "SENDING",
    "Outbox",
    "attempt",
    "claim",
    "finish",
    "mark_unknown",
    "outcome_of",
    "refuse",
]
