"""The MIME bytes we write ourselves (`delivery/domain/email.py: mime_message`), sent through the
production mailer to the loopback SMTP server and read back with the standard library's parser:
whatever names, subjects, texts and file names go in come out the same."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoice_pipelines.resources.messaging.mail import SendError
from invoice_pipelines.resources.messaging.mail_message import mime_message
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines_devtools.standins.smtp import SmtpSink

# printable text of any script (no control characters, no surrogates)
TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=120
).filter(lambda value: value.strip())
BODY = st.lists(
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=200),
    min_size=1,
    max_size=12,
).map("\n".join)
FILENAME = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs"), blacklist_characters="/"),
    min_size=1,
    max_size=60,
).map(lambda name: name + ".pdf")


ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


@pytest.fixture(scope="module")
def sink():
    with SmtpSink() as server:
        yield server


def _arrives(sink, mail):
    before = len(sink.mailbox.raw)
    mailer = Smtp(port=sink.port, sender=mail.sender)
    with mailer.session() as client:
        mailer.send(client, mail)
    [message] = sink.mailbox.messages[before:]
    return message


def _text(message) -> str:
    """The text part as a mail program shows it (SMTP carries every line end as CRLF)."""
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=TEXT,
    subject=TEXT,
    body=BODY,
    filename=FILENAME,
    data=st.binary(min_size=0, max_size=5000),
    xml=st.booleans(),
)
def test_what_goes_in_comes_out(sink, name, subject, body, filename, data, xml):
    attachments = [(data, "application/pdf", filename)]
    if xml:
        attachments.append((b"<?xml version='1.0'?><r>\xc3\xa4</r>", "application/xml", "x.xml"))
    mail = mime_message(
        sender_name=name,
        sender="rechnung@mueller.example",
        recipient="einkauf@kunde.example",
        subject=subject,
        message_id="<RE1.test@invoice-pipelines.local>",
        body=body,
        attachments=attachments,
    )
    # 7-bit clean with lines SMTP carries (what strict servers and mail programs require)
    assert mail.data.isascii() and not mail.smtputf8
    assert max(len(line) for line in mail.data.split(b"\r\n")) <= 998
    # RFC 2047: an encoded word is at most 75 characters
    assert max(map(len, ENCODED_WORD.findall(mail.data)), default=0) <= 75
    message = _arrives(sink, mail)
    assert [part.defects for part in message.walk()] == [[]] * len(list(message.walk()))
    assert {name: value.defects for name, value in message.items() if value.defects} == {}
    shown = message["From"].addresses[0].display_name
    if len(ENCODED_WORD.findall(mail.data.split(b"\r\nTo: ")[0])) > 1:
        # a long name is several encoded words; RFC 2047 joins them without the folding space,
        # CPython's address parser keeps one between them (mail programs do not)
        assert "".join(shown.split()) == "".join(name.split())
    else:
        assert shown == " ".join(name.split())
    assert message["From"].addresses[0].addr_spec == "rechnung@mueller.example"
    assert str(message["Subject"]) == " ".join(subject.split())
    assert str(message["Message-ID"]).strip() == "<RE1.test@invoice-pipelines.local>"
    assert _text(message) == body + ("" if body.endswith("\n") else "\n")
    got = [
        (part.get_content(), part.get_content_type(), part.get_filename())
        for part in message.iter_attachments()
    ]
    assert got[0] == (data, "application/pdf", " ".join(filename.split()))
    assert len(got) == (2 if xml else 1)


def test_long_lines_dots_and_trailing_spaces_survive_smtp(sink):
    body = ".\n..starts with dots\ntrailing spaces   \n" + "x" * 500 + "\nä" * 3
    mail = mime_message(
        sender_name='Müller & Söhne, "Werkzeugbau" GmbH',
        sender="rechnung@mueller.example",
        recipient="einkauf@kunde.example",
        subject="Rechnung RE-2026-000001 über 1.234,56 € – " + "sehr lang " * 20,
        message_id="<x@y>",
        body=body,
        attachments=[(b"%PDF-1.7\n" * 3000, "application/pdf", 'RE 2026 "1".pdf')],
    )
    assert all(len(line) <= 998 for line in mail.data.split(b"\r\n"))
    assert b"\n" not in mail.data.replace(b"\r\n", b"")  # CRLF line ends only
    message = _arrives(sink, mail)
    assert _text(message) == body + "\n"
    assert message["From"].addresses[0].display_name == 'Müller & Söhne, "Werkzeugbau" GmbH'
    [attachment] = message.iter_attachments()
    assert attachment.get_filename() == 'RE 2026 "1".pdf'
    assert attachment.get_content() == b"%PDF-1.7\n" * 3000


def test_an_address_outside_ascii_needs_a_server_that_takes_it():
    mail = mime_message(
        sender_name="Müller",
        sender="rechnung@mueller.example",
        recipient="jürgen@müller.example",
        subject="Rechnung",
        message_id="<x@y>",
        body="Hallo",
        attachments=[],
    )
    assert mail.smtputf8
    with SmtpSink() as modern:
        assert _arrives(modern, mail)["Subject"] == "Rechnung"
        # an RFC 6532 header is UTF-8 on the wire (the stdlib parser leaves such bytes escaped)
        assert "To: jürgen@müller.example\r\n".encode() in modern.mailbox.raw[-1]
    with SmtpSink(smtputf8=False) as old:
        mailer = Smtp(port=old.port)
        with mailer.session() as client, pytest.raises(SendError) as refused:
            mailer.send(client, mail)
        assert not refused.value.temporary and not refused.value.unknown
        assert "SMTPUTF8" in str(refused.value)
        assert old.mailbox.count() == 0


def test_ascii_text_that_looks_encoded_is_not_decoded(sink):
    subject = "=?utf-8?q?not_encoded?= " + string.ascii_letters
    mail = mime_message(
        sender_name="A",
        sender="a@b.example",
        recipient="c@d.example",
        subject=subject,
        message_id="<x@y>",
        body="b",
        attachments=[],
    )
    assert str(_arrives(sink, mail)["Subject"]) == subject
