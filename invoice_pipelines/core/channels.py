"""The channels an invoice or a dunning notice goes out over: the one list behind the database's
check, the validation of requests and settings, the launchpad's choices, `--channel`, and which
resource each channel sends through (`delivery.pipeline.open_channel`, the one chooser)."""

from __future__ import annotations

from enum import Enum

EMAIL = "email"
# sent as a short text through the text-message provider (the e-mail carries the PDF)
TEXT_CHANNELS = ("sms", "whatsapp")
# how an invoice is sent, and a dunning notice meant for the customer
DELIVERY_CHANNELS = (EMAIL, *TEXT_CHANNELS)
# a dunning notice can also stay in the app (written, never sent): its default
IN_APP = "in_app"
NOTICE_CHANNELS = (IN_APP, *DELIVERY_CHANNELS)
# the resource (its name in definitions.py) each delivery channel goes out through
CHANNEL_RESOURCES = {EMAIL: "mailer", "sms": "text_messages", "whatsapp": "text_messages"}
assert set(CHANNEL_RESOURCES) == set(DELIVERY_CHANNELS)


def delivery_channel_enum(name: str) -> type[Enum]:
    """An Enum of the delivery channels for a run's config: the launchpad offers its members."""
    return Enum(name, {channel: channel for channel in DELIVERY_CHANNELS})
