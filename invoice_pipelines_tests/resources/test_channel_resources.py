"""The delivery channels' resources that resources/area.py configures are the ones the
transports go out through (resources/messaging/channels.py): a transport whose resource nobody configured
would fail only when a run or a command sends over it. Held here, not when the resources are
made, so a command that sends nothing imports no transport (issue 73)."""

from invoice_pipelines.core.channels import DELIVERY_CHANNELS, INVOICE_CHANNELS
from invoice_pipelines.resources.area import CHANNEL_RESOURCES
from invoice_pipelines.resources.messaging.channels import resources_of


def test_every_transports_resource_is_configured_and_no_other():
    assert set(CHANNEL_RESOURCES) == resources_of(INVOICE_CHANNELS)
    assert resources_of(DELIVERY_CHANNELS) <= set(CHANNEL_RESOURCES)
