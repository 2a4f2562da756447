"""The channels an invoice or a dunning notice goes out over: the one list behind the database's
check, the validation of requests and settings, the launchpad's choices and `--channel`.

How each channel travels (its resource, its session, its recipient check, the hand-over) is its
transport in `resources/messaging/channels.py`, which has one for every name here and refuses to load
otherwise; what an invoice or a notice says over it is the area's template for the transport's
form. Adding a channel: its name here, its transport there, and a migration for the database's
check (docs/architecture.md, "Adding a delivery channel").

Peppol is a channel of invoices only (`INVOICE_CHANNELS`): it carries the invoice itself, a
Peppol BIS document, to a customer registered on the network, and is never asked for: the
delivery run chooses it for such a customer in place of the channel that carries documents
(e-mail), and falls back to that channel where the receiver does not take the document
(docs/peppol.md). A dunning notice is no Peppol document, so it never goes over it."""

from __future__ import annotations

from enum import Enum

EMAIL = "email"
# how an invoice is sent, and a dunning notice meant for the customer
DELIVERY_CHANNELS = (EMAIL, "sms", "whatsapp")
PEPPOL = "peppol"
# what a sales invoice's deliveries are recorded over (the database's check on deliveries.channel)
INVOICE_CHANNELS = (*DELIVERY_CHANNELS, PEPPOL)
# a dunning notice can also stay in the app (written, never sent): its default
IN_APP = "in_app"
NOTICE_CHANNELS = (IN_APP, *DELIVERY_CHANNELS)


def delivery_channel_enum(name: str) -> type[Enum]:
    """An Enum of the delivery channels for a run's config: the launchpad offers its members."""
    return Enum(name, {channel: channel for channel in DELIVERY_CHANNELS})
