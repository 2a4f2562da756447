"""The SMTP security setting: only none, starttls and ssl (any case) are accepted, anything else is
refused before a connection is made, and a password never crosses the network in plain text."""

from __future__ import annotations

import socket

import pytest
from dagster import ResourceParam, asset, materialize

from invoice_pipelines.resources.messaging.mail import SmtpMailer
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.settings import ConfigError
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.resources.raw_server import RawServer

PASSWORD = "Tr0ub4dor&3-smtp"


class _PlainSmtpServer(RawServer):
    """A plain-text SMTP server that offers AUTH and records every byte it is sent."""

    def __init__(self, address: str) -> None:
        self.received = bytearray()
        super().__init__(address)  # counts the connections

    def session(self, conn: socket.socket) -> None:
        conn.sendall(b"220 plain.example ESMTP\r\n")
        for line in conn.makefile("rb"):
            self.received += line
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-plain.example\r\n250 AUTH PLAIN LOGIN\r\n")
            elif verb == b"AUTH":
                conn.sendall(b"235 2.7.0 accepted\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            else:
                conn.sendall(b"250 OK\r\n")


def _address_on_the_network() -> str | None:
    """An address of this machine that is not loopback (what a remote mail server looks like to
    the mailer), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the interface
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.mark.parametrize("value", ["tls", "TLS", "start-tls", "yes", "", "ssl/tls"])
def test_a_security_value_outside_the_accepted_ones_is_refused_before_connecting(value):
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, security=value)
        with pytest.raises(ConfigError) as refused, mailer.session():
            pass
        assert sink.mailbox.count() == 0
    message = str(refused.value)
    assert "INVOICE_PIPELINES_SMTP_SECURITY" in message
    assert "none, starttls, ssl" in message and repr(value) in message


def test_a_run_that_would_send_refuses_the_setting_when_it_starts():
    """Through Dagster: the resource's setup fails the run with the message, before any send."""
    sent = []

    @asset
    def mails(mailer: ResourceParam[Smtp]) -> None:
        sent.append(mailer.host)

    with SmtpSink() as sink:
        result = materialize(
            [mails],
            resources={"mailer": SmtpMailer(port=sink.port, security="STARTTLS/ssl")},
            raise_on_error=False,
        )
        assert sink.mailbox.count() == 0
    assert not result.success and sent == []
    assert any("INVOICE_PIPELINES_SMTP_SECURITY" in text for text in _errors(result)), _errors(
        result
    )


def _errors(result) -> list[str]:
    """The error messages of a run's failures as the UI shows them, causes included."""
    texts = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None) if event.is_failure else None
        while error is not None:
            texts.append(error.message)
            error = error.cause
    return texts


def test_starttls_in_capitals_means_starttls_not_plain_text():
    """`STARTTLS` used to mean plain text silently; now it asks for TLS, and a server without it
    is not talked to in plain text."""
    from invoice_pipelines.resources.messaging.mail import SendError

    with SmtpSink() as sink:  # the stand-in offers no STARTTLS
        mailer = Smtp(port=sink.port, security=" STARTTLS ")
        with pytest.raises(SendError, match="(?i)starttls"), mailer.session():
            pass
        # accepted values in any case still work
        with Smtp(port=sink.port, security="None").session() as client:
            assert client.noop()[0] == 250


def test_a_password_never_crosses_the_network_in_plain_text():
    address = _address_on_the_network()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    server = _PlainSmtpServer(address)
    try:
        mailer = Smtp(
            host=address, port=server.port, security="none", username="u", password=PASSWORD
        )
        with pytest.raises(ConfigError, match="plain text") as refused, mailer.session():
            pass
        assert "starttls or ssl" in str(refused.value)
        assert server.connections == 0 and bytes(server.received) == b""
    finally:
        server.close()


def test_a_login_in_plain_text_to_this_machine_is_allowed():
    """A relay on this machine (the demo's, a local Postfix) sees nothing cross a network."""
    server = _PlainSmtpServer("127.0.0.1")
    try:
        mailer = Smtp(port=server.port, username="u", password=PASSWORD)
        with mailer.session() as client:
            assert client.noop()[0] == 250
        assert b"AUTH" in bytes(server.received)
    finally:
        server.close()
