"""Property tests with hostile values (control characters, CR/LF, NUL, bidi and zero-width
characters, astral characters, very long strings, quotes) as seller and customer names, invoice
numbers, subjects and file names: every e-mail and text message the channels build is clean or
refused with a MessageError for that one invoice (what the sending loop records as a failed
delivery and goes on); no value ever starts a header of its own, and a text message arrives at the
provider exactly as built, over real HTTP to the stand-in."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoice_pipelines.delivery.domain.email import InvoiceMail
from invoice_pipelines.delivery.domain.pipeline import prepare_message
from invoice_pipelines.resources.messaging.channels import MailTransport, TextTransport
from invoice_pipelines.resources.messaging.mail import SendError
from invoice_pipelines.resources.messaging.mail_message import MessageError, mime_message
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.messaging.text_messages import TextMessages
from invoice_pipelines_devtools.standins.sms import TextProviderStandIn

# what a database can hold: any character but a lone surrogate (neither PostgreSQL nor SQLite's
# driver stores one), with the troublemakers drawn often
TRICKY = (
    "\r\n\x00\t\x0b\x0c\x1b\x7f\x85\u2028\u2029\u200b\u200d\ufeff\u202e\u2066\u061c\"'<>@,;:\\=?"
)
HOSTILE = st.one_of(
    st.text(st.characters(max_codepoint=0x7F), max_size=30),  # ASCII, controls included
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=80),
    st.text(st.sampled_from(TRICKY) | st.characters(blacklist_categories=("Cs",)), max_size=80),
    st.builds(
        lambda head, injected, tail: head + injected + tail,
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
        st.sampled_from(["\r\nBcc: victim@evil.example", "\nX-Injected: 1", "\r\n\r\nbody"]),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
    ),
    st.text(st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF), max_size=40),
    st.integers(1000, 5000).map(lambda n: "Ä\u202e" * n),  # very long
)
SAFE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
HEADERS = {"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"}
FIELD = re.compile(rb"^([A-Za-z-]+):")


def _mail(number: str, seller: str, buyer: str, **extra) -> InvoiceMail:
    return InvoiceMail(
        number=number,
        type_code="380",
        issue_date=date(2026, 3, 1),
        due_date=date(2026, 3, 31),
        gross_total=Decimal("238.00"),
        amount_due=Decimal("238.00"),
        currency="EUR",
        seller=seller,
        buyer=buyer,
        recipient="einkauf@kunde.example",
        language="de",
        iban="DE02120300000000202051",
        pdf=b"%PDF-1.7\n",
        pdf_name=extra.pop("pdf_name", "RE-1.pdf"),
        phone="+491512345678",
        **extra,
    )


def _assert_no_header_of_its_own(data: bytes) -> None:
    """The top-level header block holds exactly our headers, each line one of them or a
    folded continuation; line ends are CRLF only, and no control character is left in it."""
    assert b"\r" not in data.replace(b"\r\n", b"") and b"\n" not in data.replace(b"\r\n", b"")
    head = data.split(b"\r\n\r\n", 1)[0]
    names = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            continue  # folded: part of the header above
        field = FIELD.match(line)
        assert field, line[:80]
        names.append(field.group(1).decode())
    assert sorted(names) == sorted(HEADERS)
    assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", head), head[:200]


@settings(max_examples=120, deadline=None)
@given(
    number=HOSTILE,
    seller=HOSTILE,
    buyer=HOSTILE,
    pdf_name=HOSTILE,
    address=st.one_of(st.none(), HOSTILE.map(lambda v: v + "@kunde.example")),
)
def test_an_invoice_email_is_clean_or_refused_for_that_invoice(
    number, seller, buyer, pdf_name, address
):
    channel = MailTransport(Smtp(sender="rechnung@mueller.example"))
    mail = _mail(number, seller, buyer, pdf_name=pdf_name + ".pdf")
    if address is not None:
        mail = InvoiceMail(**{**mail.__dict__, "recipient": address})
    try:
        message, message_id, recipient = prepare_message(channel, mail)
    except MessageError:
        return  # recorded as a failed delivery with the reason; the run goes on
    assert recipient == (address or "einkauf@kunde.example").strip()
    assert "\r" not in message_id and "\n" not in message_id
    _assert_no_header_of_its_own(message.data)


@settings(max_examples=120, deadline=None)
@given(name=HOSTILE, subject=HOSTILE, filename=HOSTILE, body=HOSTILE)
def test_mime_headers_never_carry_a_line_break_or_control_character(name, subject, filename, body):
    mail = mime_message(
        sender_name=name,
        sender="rechnung@mueller.example",
        recipient="einkauf@kunde.example",
        subject=subject,
        message_id="<RE1.test@invoice-pipelines.local>",
        body=body,
        attachments=[(b"x", "application/pdf", filename or "x.pdf")],
    )
    _assert_no_header_of_its_own(mail.data)
    # the attachment's part headers too: each a header of the part, none injected
    for part in mail.data.split(b"\r\n--=_ip_")[1:-1]:
        part_head = part.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
        for line in part_head:
            assert line[:1] in (b" ", b"\t") or FIELD.match(line), line[:80]
        assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", b"".join(part_head))


@pytest.fixture(scope="module")
def provider_api():
    with TextProviderStandIn() as api:
        yield api


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(number=HOSTILE, seller=HOSTILE, whatsapp=st.booleans(), phone=SAFE)
def test_a_text_message_arrives_as_built_or_is_refused_for_that_invoice(
    provider_api, number, seller, whatsapp, phone
):
    provider = TextMessages(base_url=provider_api.url)
    channel = TextTransport(provider, "whatsapp" if whatsapp else "sms")
    mail = _mail(number, seller, "Kunde")
    if phone:
        mail = InvoiceMail(**{**mail.__dict__, "phone": phone})
    try:
        payload, _message_id, recipient = prepare_message(channel, mail)
    except MessageError:
        return
    before = len(provider_api.outbox.messages)
    with provider.session() as session:
        try:
            channel.send(session, payload)
        except SendError as refused:
            # the provider's answer for this one message (an empty text is refused), not a crash
            assert refused.code == 400 and not refused.unknown
            return
    [arrived] = provider_api.outbox.messages[before:]
    prefix = "whatsapp:" if whatsapp else ""
    assert arrived["to"] == prefix + recipient
    assert arrived["body"] == payload[1]
