"""Command pipelining (RFC 2920): to a server that offers it, a message's MAIL, RCPT and DATA leave
together and the message follows the 354; to one that does not, one command at a time. Either
way a refusal reads the same, and the session stays usable for the next message."""

from __future__ import annotations

import pytest

from invoice_pipelines.resources.messaging.mail_types import OutgoingMail, SendError
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.resources.raw_server import ACCEPT, ScriptedSmtpServer


def _mail(subject: str = "Rechnung R-1", recipients=("einkauf@kunde.example",)) -> OutgoingMail:
    data = f"Subject: {subject}\r\nFrom: rechnung@firma.example\r\n\r\n.Punkt am Anfang\r\n"
    return OutgoingMail(
        sender="rechnung@firma.example",
        recipients=tuple(recipients),
        data=data.encode(),
        message_id="<r-1@firma.example>",
    )


@pytest.fixture
def scripted(request):
    server = ScriptedSmtpServer(pipelining=request.param)
    yield server
    server.close()


@pytest.mark.parametrize("scripted", [True], indirect=True)
def test_a_server_that_offers_pipelining_gets_a_messages_commands_together(scripted):
    mailer = Smtp(port=scripted.port, timeout_seconds=10)
    with mailer.session() as client:
        mailer.send(client, _mail("Rechnung R-1"))
        mailer.send(client, _mail("Rechnung R-2"))
    assert len(scripted.messages) == 2
    assert b"Subject: Rechnung R-2" in scripted.messages[1]
    # on the wire a line's leading dot is doubled (RFC 5321 4.5.2), so it cannot end the data
    assert scripted.messages[0].endswith(b"\r\n\r\n..Punkt am Anfang")
    assert [c.split(b":")[0] for c in scripted.commands[1:4]] == [b"MAIL FROM", b"RCPT TO", b"DATA"]
    assert b"SIZE=" in scripted.commands[1]


@pytest.mark.parametrize("scripted", [False], indirect=True)
def test_a_server_that_does_not_offer_it_is_asked_one_command_at_a_time(scripted):
    mailer = Smtp(port=scripted.port, timeout_seconds=10)
    with mailer.session() as client:
        mailer.send(client, _mail())
    assert len(scripted.messages) == 1
    assert scripted.most_commands_in_one_read == 1


@pytest.mark.parametrize("scripted", [True, False], indirect=True)
def test_a_refused_sender_is_a_clear_error_and_the_next_message_still_goes(scripted):
    scripted.answers.update(MAIL=b"550 5.7.1 sender not allowed", RCPT=b"503 need MAIL first")
    scripted.answers.update(DATA=b"503 need RCPT first")
    mailer = Smtp(port=scripted.port, timeout_seconds=10)
    with mailer.session() as client:
        with pytest.raises(SendError) as refused:
            mailer.send(client, _mail("Rechnung R-1"))
        scripted.answers = dict(ACCEPT)
        mailer.send(client, _mail("Rechnung R-2"))
    assert refused.value.code == 550 and not refused.value.temporary
    assert not refused.value.unknown
    assert "550 5.7.1 sender not allowed" in str(refused.value)
    assert len(scripted.messages) == 1 and b"R-2" in scripted.messages[0]
    assert b"RSET" in [c.upper() for c in scripted.commands]


@pytest.mark.parametrize("scripted", [True], indirect=True)
def test_a_server_that_opens_the_data_for_no_recipient_gets_an_empty_end_not_the_message(scripted):
    # RFC 2920 asks a server to refuse DATA when no recipient was accepted; one that does not
    scripted.answers.update(RCPT=b"550 5.1.1 no such mailbox")
    mailer = Smtp(port=scripted.port, timeout_seconds=10)
    with mailer.session() as client:
        with pytest.raises(SendError) as refused:
            mailer.send(client, _mail())
        scripted.answers = dict(ACCEPT)
        mailer.send(client, _mail("Rechnung R-2"))
    assert refused.value.code == 550
    assert scripted.messages[0] == b""  # ended at once: nothing of the invoice left
    assert b"R-2" in scripted.messages[1]


@pytest.mark.parametrize("scripted", [True], indirect=True)
def test_a_server_closing_before_the_message_is_temporary_not_unknown(scripted):
    scripted.answers.update(MAIL=b"421 4.3.2 shutting down")
    mailer = Smtp(port=scripted.port, timeout_seconds=10)
    with pytest.raises(SendError) as closing, mailer.session() as client:
        mailer.send(client, _mail())
    assert closing.value.code == 421
    assert closing.value.temporary and not closing.value.unknown
    assert scripted.messages == []


def test_over_the_stand_in_refusals_leave_the_session_in_step():
    """The stand-in offers PIPELINING like a real server: a message every recipient of which is
    refused, and one answered 451 at its end, each read as before, and the next message on the
    same connection arrives."""
    with SmtpSink() as sink:
        sink.mailbox.refused_recipients.add("weg@kunde.example")
        mailer = Smtp(port=sink.port, timeout_seconds=10)
        with mailer.session() as client:
            client.ehlo()
            assert client.has_extn("pipelining")
            with pytest.raises(SendError) as refused:
                mailer.send(client, _mail("Rechnung R-1", recipients=("weg@kunde.example",)))
            sink.mailbox.temporary_failures = 1
            with pytest.raises(SendError) as later:
                mailer.send(client, _mail("Rechnung R-2"))
            mailer.send(client, _mail("Rechnung R-3"))
            # some recipients refused: the message goes to the others, the refusal is reported
            with pytest.raises(SendError) as partly:
                mailer.send(
                    client,
                    _mail("Rechnung R-4", recipients=("weg@kunde.example", "ok@kunde.example")),
                )
        assert refused.value.code == 550 and not refused.value.temporary
        assert later.value.code == 451 and later.value.temporary
        assert partly.value.code == 550
        assert sink.mailbox.by_subject_number() == {"R-3": 1, "R-4": 1}
