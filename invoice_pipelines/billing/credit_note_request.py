"""A credit notes job as the launchpad asks for one (invoice_batch_job's request `credit_notes`):
its Dagster config, apart from the kind (`billing/domain/credit_note_jobs.py`) so that a command that
queues or runs credit notes does not import Dagster; the kind names it as a function
(`Requests.config`)."""

from __future__ import annotations

from typing import Literal

from dagster import Config
from pydantic import Field

from invoice_pipelines.lib.partitions import REQUESTED_BY_HELP


class CreditLineConfig(Config):
    line_no: int = Field(description="The invoice's line number (1, 2, ...).")
    quantity: str = Field(description="Decimal quantity to credit, at most what is left of it.")


class CreditAmountConfig(Config):
    vat_rate: str = Field(description="A VAT rate of the invoice, e.g. 19 or 7.")
    net_amount: str = Field(
        description="NET amount to credit at that rate (before VAT; VAT is added at the rate), "
        "e.g. 100.00; at most what is left at that rate."
    )
    vat_category: str | None = Field(
        default=None,
        description="The VAT category (S, AE, Z, ...), only where the invoice has the rate in two "
        "categories. Empty: the invoice's category at that rate.",
    )


class CreditNoteItemConfig(Config):
    invoice_number: str = Field(description="The invoice to credit, e.g. RE-2026-000042.")
    reason: str = Field(description="Why: printed on the credit note and kept in the audit log.")
    lines: list[CreditLineConfig] | None = Field(
        default=None,
        description="Lines and quantities to credit. Empty (and no amounts): everything not "
        "credited yet (a full credit note, the cancellation of the invoice).",
    )
    amounts: list[CreditAmountConfig] | None = Field(
        default=None,
        description="Instead of lines: a NET amount per VAT rate (a price reduction or goodwill "
        "credit without lines), one credit note line per rate. Not together with lines.",
    )
    issue_date: str | None = Field(
        default=None, description="YYYY-MM-DD; empty: today in the organization's time zone."
    )


class CreditNotesJobRequest(Config):
    """issue credit notes for sales invoices, each once"""

    kind: Literal["credit_notes"] = "credit_notes"
    items: list[CreditNoteItemConfig] = Field(
        description="The credit notes, in the order to issue them: invoice number, reason, and "
        "optionally lines or net amounts per VAT rate and a date. Each is issued once; a refused "
        "one is recorded with its reason and the others go on."
    )
    issue_date: str | None = Field(
        default=None,
        description="YYYY-MM-DD for the items that give no date. Empty: today in the "
        "organization's time zone.",
    )
    requested_by: str | None = Field(
        default=None,
        description="Who asked, for the audit log. " + REQUESTED_BY_HELP,
    )
