"""How each delivery channel travels: its transport. Invoices (delivery) and dunning notices
(overdue) both open their channel here (`open_channel`, the one place a channel name becomes
something that sends); what a message says stays in its area.

A transport says which resource it goes out through (`resource`, its name in definitions.py), what
the areas write for it (`form`: an area renders its template `<what>_<form>_<language>.j2`), which
of the customer's contacts it goes to (`address`: `email` or `phone`), and whether files travel
with it (`carries_files`: the areas read the PDFs only then). It opens a session on its resource,
checks the recipient (`MessageError` when there is none or it is not one), builds the message from
what the area wrote (`Written`) with the id recorded before it leaves, and hands one message over
(`SendError` when refused, sorted by the resource: temporary, for good, or unknown); it never
decides about retries or records anything: the areas' outboxes do.

`TRANSPORTS` covers every channel of `core.channels.INVOICE_CHANNELS` once (checked when this
module loads). Peppol (`PeppolChannel`) carries a document, not a text: delivery composes its
message from the stored Peppol BIS document and asks the SMP first (`reach`). Channels on one
resource share a session where an area sends several at once (dunning: SMS and WhatsApp notices
over one connection to the provider).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from invoice_pipelines.core.channels import DELIVERY_CHANNELS, EMAIL, INVOICE_CHANNELS, PEPPOL
from invoice_pipelines.resources.messaging.mail_message import (
    MessageError,
    e164_phone,
    email_address,
    message_from_template,
)
from invoice_pipelines.resources.peppol.transport import (
    CREDIT_NOTE_DOC_TYPE,
    INVOICE_DOC_TYPE,
    Reach,
)


@dataclass(frozen=True)
class Written:
    """What an area says over a channel, before it is a message: `text`, rendered from the area's
    template for the channel's form (for an e-mail the subject line, a blank line and the body);
    who sends it (`seller`); what the message's id is made of (the document `number` and
    `suffix` in an e-mail's Message-ID at `domain`; `tag` before a text's id); and the files an
    e-mail attaches (data, MIME type, file name)."""

    text: str
    seller: str
    number: str
    domain: str
    tag: str
    suffix: str | None = None
    attachments: tuple[tuple[bytes, str, str], ...] = ()


class Transport(Protocol):
    name: str  # the channel
    form: ClassVar[str]
    address: ClassVar[str]
    carries_files: ClassVar[bool]

    def session(self) -> AbstractContextManager[Any]: ...

    def ready(self, session: Any) -> None:
        """The session able to carry the next message (SendError when it cannot be)."""

    def recipient(self, raw: str | None) -> str: ...

    def message(self, recipient: str, written: Written) -> tuple[Any, str]: ...

    def send(self, session: Any, message: Any) -> str | None: ...


class MailTransport:
    """E-mail over the `mailer` (SMTP): the MIME message with its attachments, the Message-ID
    chosen here."""

    channels = (EMAIL,)
    resource = "mailer"
    described = "mail server"
    form = "email"
    address = "email"
    carries_files = True

    def __init__(self, mailer, name: str = EMAIL) -> None:
        self.mailer, self.name = mailer, name

    def session(self):
        return self.mailer.session()

    def ready(self, session) -> None:
        # the server may have closed the connection after the last message: a new one
        self.mailer.ready(session)

    def recipient(self, raw: str | None) -> str:
        return email_address(raw)

    def message(self, recipient: str, written: Written) -> tuple[Any, str]:
        message = message_from_template(
            written.text,
            sender_name=written.seller,
            sender=self.mailer.sender,
            recipient=recipient,
            number=written.number,
            domain=written.domain,
            attachments=list(written.attachments),
            suffix=written.suffix,
        )
        return message, message.message_id

    def send(self, session, message) -> None:
        self.mailer.send(session, message)


class TextTransport:
    """SMS or WhatsApp over the `text_messages` provider: the text to the phone number in E.164
    form; the provider's message id comes back."""

    channels = ("sms", "whatsapp")
    resource = "text_messages"
    described = "text message provider"
    form = "text"
    address = "phone"
    carries_files = False

    def __init__(self, provider, name: str = "sms") -> None:
        self.provider, self.name = provider, name

    def session(self):
        return closing(self.provider.session())

    def ready(self, session) -> None:
        pass  # HTTP: each request finds its own connection

    def recipient(self, raw: str | None) -> str:
        return e164_phone(raw)

    def message(self, recipient: str, written: Written) -> tuple[Any, str]:
        return (recipient, written.text), f"{written.tag}-{uuid.uuid4().hex}"

    def send(self, session, message) -> str:
        phone, text = message
        return self.provider.send_text(session, phone, text, whatsapp=self.name == "whatsapp")


@dataclass(frozen=True)
class PeppolMessage:
    """One Peppol BIS document ready to hand to the access point: from the organization's
    participant id to the customer's, the sender's country (C1), and its document type."""

    sender: str
    receiver: str
    document: bytes
    country: str
    doc_type_id: str


def peppol_doc_type(type_code: str | None) -> str:
    """The Peppol BIS Billing 3.0 document type of an invoice (380) or a credit note (381)."""
    return CREDIT_NOTE_DOC_TYPE if (type_code or "380") == "381" else INVOICE_DOC_TYPE


class PeppolChannel:
    """Invoices over Peppol through the `peppol_access_point` (resources/peppol/access_point.py): the Peppol
    BIS document to the customer's participant id. `reach` asks the receiver's SMP registration
    whether it takes the document type (PeppolLookupError when the access point cannot be
    asked); `send` gives the access point's AS4 message id, or raises SendError sorted by
    `Sending.as_send_error` with that id, where the report named one, as `transport_message_id`.
    Recorded before it leaves like the others: the message id we choose is `peppol-<uuid>`."""

    channels = (PEPPOL,)
    resource = "peppol_access_point"
    described = "Peppol access point"
    form = "peppol"  # no template: the message is the document itself
    address = "peppol"
    carries_files = True

    def __init__(self, access_point, name: str = PEPPOL) -> None:
        self.access_point, self.name = access_point, name

    def session(self):
        return closing(self.access_point.session())

    def ready(self, session) -> None:
        pass  # HTTP: each request finds its own connection

    def recipient(self, raw: str | None) -> str:
        if not raw or not raw.strip():
            raise MessageError("the customer has no Peppol participant id")
        return raw.strip()

    def message(self, recipient: str, written: Written) -> tuple[Any, str]:
        raise MessageError("Peppol carries the invoice's Peppol BIS document, not a written text")

    def document_message(
        self, *, sender: str, receiver: str, document: bytes, country: str, type_code: str | None
    ) -> tuple[PeppolMessage, str]:
        message = PeppolMessage(
            sender=sender,
            receiver=self.recipient(receiver),
            document=document,
            country=(country or "").upper(),
            doc_type_id=peppol_doc_type(type_code),
        )
        return message, f"peppol-{uuid.uuid4().hex}"

    def reach(self, session, receiver: str, type_code: str | None) -> Reach:
        return self.access_point.lookup(session, receiver, peppol_doc_type(type_code))

    def send(self, session, message: PeppolMessage) -> str | None:
        sending = self.access_point.send(
            session,
            sender_id=message.sender,
            receiver_id=message.receiver,
            document=message.document,
            country=message.country,
            doc_type_id=message.doc_type_id,
        )
        error = sending.as_send_error()
        if error is not None:
            error.transport_message_id = sending.message_id  # type: ignore[attr-defined]
            raise error
        return sending.message_id


# every transport; a new channel's goes here (and its name in core/channels.py)
TRANSPORTS: tuple[type, ...] = (MailTransport, TextTransport, PeppolChannel)
_BY_CHANNEL: dict[str, type] = {name: t for t in TRANSPORTS for name in t.channels}
if sorted(_BY_CHANNEL) != sorted(INVOICE_CHANNELS) or len(_BY_CHANNEL) != sum(
    len(t.channels) for t in TRANSPORTS
):
    raise ImportError(
        f"the transports carry {sorted(_BY_CHANNEL)}, core/channels.py lists "
        f"{sorted(INVOICE_CHANNELS)}: each channel needs exactly one transport"
    )


class ChannelUnavailable(LookupError):
    """The channel's resource is not configured (e.g. no text message provider)."""


def transport_of(name: str) -> type:
    """The transport class of channel `name` (ValueError for a name that is no channel)."""
    if name not in _BY_CHANNEL:
        raise ValueError(f"channel must be one of {', '.join(INVOICE_CHANNELS)}, not {name!r}")
    return _BY_CHANNEL[name]


def open_channel(name: str, resources: Any) -> Transport:
    """The channel `name` over its resource, taken from `resources` by attribute (a run's
    `context.resources`, a command's `resources.for_commands.EnvResources`): the one place a
    channel name becomes a channel. ChannelUnavailable when that resource is not there."""
    transport = transport_of(name)
    resource = getattr(resources, transport.resource, None)
    if resource is None:
        raise ChannelUnavailable(f"no {transport.described} is configured")
    return transport(resource, name)


def channels_of_form(form: str) -> tuple[str, ...]:
    """The channels whose messages are of `form` (`text`: sms, whatsapp), in the list's order."""
    return tuple(name for name in DELIVERY_CHANNELS if _BY_CHANNEL[name].form == form)


def resources_of(channels=DELIVERY_CHANNELS) -> frozenset[str]:
    """The resources the channels go out through (what a run that sends over them needs)."""
    return frozenset(transport_of(name).resource for name in channels)
