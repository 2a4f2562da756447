"""Billing as the assemblies see it: its commands (their parsers billing/cli.py, what they do
billing/commands.py), its assets, checks and jobs (billing/defs.py) and its kinds of batch job:
invoicing (`sales_orders`, `customer_lines`: run by `batch_invoicing_job`, which the queue's
`batch_jobs_sensor` launches) and credit notes (run by the queue itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command, QueueKind
from invoice_pipelines.core.batch_kinds import KindName

if TYPE_CHECKING:
    from types import ModuleType

    from dagster import Definitions

    from invoice_pipelines.queue.job_kind import JobKind


def _parsers() -> AddCommands:
    from invoice_pipelines.billing.cli import add_commands

    return add_commands


def _commands() -> ModuleType:
    """The one import of what the commands do (billing/commands.py), when one of them runs."""
    from invoice_pipelines.billing import commands

    return commands


def _definitions() -> Definitions:
    from invoice_pipelines.billing.defs import defs

    return defs


def _sales_orders() -> JobKind:
    from invoice_pipelines.billing.invoicing_kinds import SALES_ORDERS_KIND

    return SALES_ORDERS_KIND


def _customer_lines() -> JobKind:
    from invoice_pipelines.billing.invoicing_kinds import CUSTOMER_LINES_KIND

    return CUSTOMER_LINES_KIND


def _credit_notes() -> JobKind:
    from invoice_pipelines.billing.credit_note_jobs import CREDIT_NOTES_KIND

    return CREDIT_NOTES_KIND


AREA = Area(
    "billing",
    commands=(
        Command(
            "batch-invoice",
            "enqueue a batch invoicing job",
            run=lambda: _commands().run_batch_invoice,
        ),
        Command(
            "batch-credit-notes",
            "queue credit notes for many sales invoices (a JSON file of items), each issued once",
            run=lambda: _commands().run_batch_credit_notes,
        ),
        Command(
            "credit-note",
            "issue a credit note (type 381) for a sales invoice: in full, given lines, or a net "
            "amount per VAT rate",
            run=lambda: _commands().run_credit_note,
        ),
        Command(
            "customer-skonto",
            "a customer's own early-payment discount steps (Skonto) instead of the "
            "organization's settings['skonto']",
            run=lambda: _commands().run_customer_skonto,
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    # the names are the kinds' own (`batch_jobs.kind`); `queue.known_kinds.Kinds` checks that each
    # kind it loads has its name
    kinds=(
        QueueKind(KindName.SALES_ORDERS, _sales_orders),
        QueueKind(KindName.CUSTOMER_LINES, _customer_lines),
        QueueKind(KindName.CREDIT_NOTES, _credit_notes),
    ),
    needs=frozenset({"database", "batch_kinds"}),
)
