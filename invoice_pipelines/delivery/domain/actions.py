"""The delivery area's requests as actions its command calls: `send`, the invoices of one
organization over a channel the resources open, as `invoice-pipelines send-invoices` asks it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from invoice_pipelines.core.channels import PEPPOL
from invoice_pipelines.db.tenancy import Organization
from invoice_pipelines.delivery.domain.pipeline import DeliverySummary, send_invoices
from invoice_pipelines.resources.messaging.channels import open_channel


def send(
    resources: Any,
    channel_name: str,
    org: Organization,
    invoice_ids: Sequence[int] | None,
    **options: Any,
) -> DeliverySummary:
    """Send `org`'s invoices (`invoice_ids`, None: every one waiting) over `channel_name`, opened
    from `resources` (the runs' resources by their names, as commands have them). Over a channel
    that carries files (e-mail) the invoices of customers on Peppol go over Peppol
    (delivery/domain/peppol.py). `options`: send_invoices' (retry_failed, resend, ...)."""
    channel = open_channel(channel_name, resources)
    peppol = open_channel(PEPPOL, resources) if channel.carries_files else None
    return send_invoices(
        resources.database, resources.document_store, channel, org, invoice_ids,
        peppol=peppol, **options,
    )  # fmt: skip
