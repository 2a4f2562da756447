"""Billing as the assemblies see it: its commands (their parsers billing/commands/cli.py, what they do
billing/commands/run.py), its assets, checks and jobs (billing/defs.py) and its kinds of batch job:
invoicing (`sales_orders`, `customer_lines`: run by `batch_invoicing_job`, which the queue's
`batch_jobs_sensor` launches) and credit notes (run by the queue itself)."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, Area, Command, QueueKind
from invoice_pipelines.core.batch_kinds import KindName

AREA = Area(
    "billing",
    commands=(
        Command(
            "batch-invoice",
            "enqueue a batch invoicing job",
            run="invoice_pipelines.billing.commands.run:run_batch_invoice",
        ),
        Command(
            "batch-credit-notes",
            "queue credit notes for many sales invoices (a JSON file of items), each issued once",
            run="invoice_pipelines.billing.commands.run:run_batch_credit_notes",
        ),
        Command(
            "credit-note",
            "issue a credit note (type 381) for a sales invoice: in full, given lines, or a net "
            "amount per VAT rate",
            run="invoice_pipelines.billing.commands.run:run_credit_note",
        ),
        Command(
            "customer-skonto",
            "a customer's own early-payment discount steps (Skonto) instead of the "
            "organization's settings['skonto']",
            run="invoice_pipelines.billing.commands.run:run_customer_skonto",
        ),
    ),
    parsers="invoice_pipelines.billing.commands.cli:add_commands",
    definitions="invoice_pipelines.billing.defs:defs",
    # the names are the kinds' own (`batch_jobs.kind`); `queue.known_kinds.Kinds` checks that each
    # kind it loads has its name
    kinds=(
        QueueKind(
            KindName.SALES_ORDERS,
            "invoice_pipelines.billing.domain.invoicing_kinds:SALES_ORDERS_KIND",
        ),
        QueueKind(
            KindName.CUSTOMER_LINES,
            "invoice_pipelines.billing.domain.invoicing_kinds:CUSTOMER_LINES_KIND",
        ),
        QueueKind(
            KindName.CREDIT_NOTES,
            "invoice_pipelines.billing.domain.credit_note_jobs:CREDIT_NOTES_KIND",
        ),
    ),
    needs=DATABASES | {"batch_kinds"},
)
