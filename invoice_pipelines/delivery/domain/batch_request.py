"""A communications job as the launchpad asks for one (invoice_batch_job's request
`communications`): its Dagster config, apart from the kind (`delivery/domain/batch.py`) so that a command
that queues or runs communications jobs does not import Dagster; the kind names it as a function
(`Requests.config`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from invoice_pipelines.core.channels import DELIVERY_CHANNELS, EMAIL, delivery_channel_enum
from invoice_pipelines.queue.dagster import NewInvoiceJob

DeliveryChannel = delivery_channel_enum("DeliveryChannel")


class CommunicationsJobRequest(NewInvoiceJob):
    """write what is missing, then send each invoice once over a channel"""

    kind: Literal["communications"] = "communications"
    channel: DeliveryChannel = Field(
        default=DeliveryChannel[EMAIL], description=f"{', '.join(DELIVERY_CHANNELS)}."
    )
    resend: bool = Field(
        default=False,
        description="Send again invoices that were sent before over this channel (once).",
    )
