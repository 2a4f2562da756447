"""A server that closes the connection on a message: before anything of the message left (a 421,
a drop at MAIL, a connection that timed out while idle) the message cannot have arrived, so it is
a temporary failure and the next message, or the next try, goes over a new connection; after its
data left, whether it arrived is unknown, as before."""

from __future__ import annotations

import pytest

from invoice_pipelines.resources.messaging.mail_types import OutgoingMail, SendError
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.resources.raw_server import ACCEPT, ScriptedSmtpServer


def _mail(number: str) -> OutgoingMail:
    data = f"Subject: Rechnung {number}\r\nFrom: rechnung@firma.example\r\n\r\nAnbei.\r\n"
    return OutgoingMail(
        sender="rechnung@firma.example",
        recipients=("einkauf@kunde.example",),
        data=data.encode(),
        message_id=f"<{number}@firma.example>",
    )


@pytest.fixture
def scripted(request):
    server = ScriptedSmtpServer(pipelining=request.param)
    yield server
    server.close()


@pytest.mark.parametrize("scripted", [True, False], indirect=True)
@pytest.mark.parametrize(
    "closing",
    [{"MAIL": None}, {"RCPT": None}, {"DATA": None}, {"MAIL": b"421 4.7.0 too many messages"}],
    ids=["drop-at-mail", "drop-at-rcpt", "drop-at-data", "421-at-mail"],
)
def test_a_connection_closed_before_the_data_is_temporary_and_the_next_send_connects_again(
    scripted, closing
):
    mailer = Smtp(port=scripted.port, timeout_seconds=10)
    with mailer.session() as client:
        mailer.send(client, _mail("R-1"))
        scripted.answers.update(closing)
        with pytest.raises(SendError) as closed:
            mailer.send(client, _mail("R-2"))
        scripted.answers = dict(ACCEPT)
        mailer.send(client, _mail("R-2"))
        mailer.send(client, _mail("R-3"))
    error = closed.value
    assert error.temporary and error.closed and not error.unknown, str(error)
    assert [m.split(b"\r\n")[0] for m in scripted.messages] == [
        b"Subject: Rechnung R-1",
        b"Subject: Rechnung R-2",
        b"Subject: Rechnung R-3",
    ]
    assert scripted.connections == 2


@pytest.mark.parametrize("scripted", [True, False], indirect=True)
def test_a_connection_closed_after_the_data_left_is_unknown(scripted):
    scripted.answers["END"] = None  # the message arrived, the answer never does
    mailer = Smtp(port=scripted.port, timeout_seconds=10)
    with pytest.raises(SendError) as broke, mailer.session() as client:
        mailer.send(client, _mail("R-1"))
    assert broke.value.unknown and not broke.value.temporary and not broke.value.closed
    assert len(scripted.messages) == 1


@pytest.mark.parametrize("scripted", [True, False], indirect=True)
def test_a_connection_the_server_closed_after_a_message_costs_one_try_and_nothing_twice(scripted):
    """The server ended the connection after answering a message (an idle timeout, a limit of
    messages): the next message finds it closed before anything of it left; the try after goes
    over a new connection."""
    scripted.hang_up_after_message = True
    mailer = Smtp(port=scripted.port, timeout_seconds=10)
    with mailer.session() as client:
        mailer.send(client, _mail("R-1"))
        with pytest.raises(SendError) as closed:
            mailer.send(client, _mail("R-2"))
        assert closed.value.temporary and closed.value.closed
        mailer.send(client, _mail("R-2"))
    assert len(scripted.messages) == 2 and scripted.connections == 2


def test_a_server_that_is_gone_is_a_temporary_error_that_says_so():
    sink = SmtpSink().start()
    mailer = Smtp(port=sink.port, timeout_seconds=10)
    running = True
    try:
        with mailer.session() as client:
            mailer.send(client, _mail("R-1"))
            sink.mailbox.drops = 1
            with pytest.raises(SendError):
                mailer.send(client, _mail("R-2"))
            sink.stop()  # nobody listens any more
            running = False
            with pytest.raises(SendError) as gone:
                mailer.send(client, _mail("R-2"))
    finally:
        if running:
            sink.stop()
    assert gone.value.temporary and gone.value.closed and not gone.value.unknown
    assert f"cannot connect to the SMTP server 127.0.0.1:{sink.port}" in str(gone.value)
    assert sink.mailbox.count() == 1
