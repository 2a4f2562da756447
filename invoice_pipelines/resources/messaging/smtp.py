"""SMTP with STARTTLS or SSL and login, one connection for many messages, in plain Python: `Smtp`.
The `mailer` resource (`resources/messaging/mail.py`) configures it and hands it to a run; a command gets it
without Dagster: both send through this class.

Production points it at the organization's mail server through settings (INVOICE_PIPELINES_SMTP_*);
tests and the demo point it at the loopback SMTP stand-in (devtools/standins/smtp.py). Failures are
sorted the way SMTP means them: a 4xx reply (or a dropped connection) is temporary and worth another
try, a 5xx reply is permanent.

The connection's security is one of `SECURITY` (any case): a value outside them is a ConfigError
before anything connects, never a silent plaintext connection, and a login (the password) only
travels in plain text to a server on this machine.
"""

from __future__ import annotations

import ipaddress
import re
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from invoice_pipelines.resources.messaging.mail_types import OutgoingMail, SendError
from invoice_pipelines.settings import NOW, ConfigError, Reading, positive_number

SECURITY_VAR = "INVOICE_PIPELINES_SMTP_SECURITY"
# none: plain SMTP (a local relay or the stand-in); starttls: upgraded on the submission port
# (587); ssl: TLS from the first byte (465). `tls` is refused rather than guessed: people use it
# for either of the last two, and a wrong guess either fails or talks plain text.
SECURITY = ("none", "starttls", "ssl")


@dataclass(frozen=True, kw_only=True)
class Smtp:
    """An SMTP server we hand mail to, and how: INVOICE_PIPELINES_SMTP_* (`smtp`)."""

    host: str = field(
        default="127.0.0.1", metadata={"description": "SMTP server (INVOICE_PIPELINES_SMTP_HOST)"}
    )
    port: int = field(
        default=1025, metadata={"description": "SMTP port (INVOICE_PIPELINES_SMTP_PORT)"}
    )
    security: str = field(
        default="none",
        metadata={
            "description": "none, starttls or ssl, any case; anything else is refused "
            "(INVOICE_PIPELINES_SMTP_SECURITY)"
        },
    )
    username: str = field(default="", metadata={"description": "Login; empty: no login"})
    password: str = field(
        default="",
        repr=False,
        metadata={"description": "Password (INVOICE_PIPELINES_SMTP_PASSWORD)"},
    )
    sender: str = field(
        default="rechnung@localhost",
        metadata={"description": "From address (INVOICE_PIPELINES_SMTP_FROM)"},
    )
    timeout_seconds: float = field(
        default=30.0, metadata={"description": "Socket timeout per SMTP command"}
    )

    def checked_security(self) -> str:
        """The connection's security (`SECURITY`); ConfigError for any other value, or for a
        login that would cross the network in plain text."""
        mode = self.security.strip().lower()
        if mode not in SECURITY:
            raise ConfigError(
                f"{SECURITY_VAR} is {self.security!r}; use one of {', '.join(SECURITY)} "
                "(ssl: TLS from the start, usually port 465; starttls: usually port 587; "
                "none: plain text, for a relay on this machine)"
            )
        if mode == "none" and self.username and not _loopback(self.host):
            raise ConfigError(
                f"{SECURITY_VAR} is none, so the SMTP login would cross the network to "
                f"{self.host} in plain text; set it to starttls or ssl"
            )
        return mode

    @contextmanager
    def session(self) -> Iterator[smtplib.SMTP]:
        """An open, logged-in connection; closed (QUIT) when the block ends. ConfigError, before
        connecting, for a security setting that is not one of `SECURITY`. Where the server
        closed it after a message (a 421, a drop, an idle timeout), `send` opens it again."""
        mode = self.checked_security()
        if mode == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                timeout=self.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(timeout=self.timeout_seconds)
        self._connect(client)
        try:
            yield client
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def _connect(self, client: smtplib.SMTP) -> None:
        """`client` connected (again), upgraded to TLS where so configured and logged in;
        SendError (temporary) when that fails."""
        # what the last connection said of itself is not this one's
        client.helo_resp = client.ehlo_resp = None
        client.esmtp_features, client.does_esmtp = {}, False
        client.command_encoding = "ascii"
        try:
            client.connect(self.host, self.port)
            if self.checked_security() == "starttls":
                client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password)
        except (smtplib.SMTPException, OSError) as exc:
            client.close()
            raise SendError(
                f"cannot connect to the SMTP server {self.host}:{self.port}: {exc}",
                temporary=True,
                closed=True,
            ) from exc

    def ready(self, client: smtplib.SMTP) -> None:
        """The connection open for the next message: connected again where the server closed it
        (SendError, temporary, when it cannot be)."""
        if client.sock is None:
            self._connect(client)

    def send(self, client: smtplib.SMTP, message: OutgoingMail) -> None:
        """Hand one message to the server; SendError if it is not accepted. Over a connection the
        server closed since the last message, a new one first. A connection that breaks before
        the message's data left is a temporary failure (the server cannot have kept what it
        never received; the next `send` connects again); one that breaks after is unknown. An
        error after which the connection is closed says so (`closed`)."""
        self.ready(client)
        try:
            try:
                client.ehlo_or_helo_if_needed()
            except smtplib.SMTPServerDisconnected as exc:
                raise _NotHandedOver(exc) from exc
            refused = _hand_over(
                client,
                message.sender,
                list(message.recipients),
                message.data,
                ["SMTPUTF8"] if message.smtputf8 else [],
                together=client.does_esmtp and client.has_extn("pipelining"),
            )
        except (_NotHandedOver, smtplib.SMTPException, OSError) as exc:
            error = _send_error(exc)
            error.closed = client.sock is None and not error.unknown
            raise error from exc
        if refused:
            raise _recipient_refused(refused)


def _send_error(exc: Exception) -> SendError:
    """What a failed hand-over means, sorted as SMTP means it."""
    if isinstance(exc, _NotHandedOver):
        return SendError(
            "the SMTP server closed the connection before the message was handed over "
            f"({exc.__cause__}); the next attempt connects again",
            temporary=True,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # asked before anything was sent
        return SendError(
            "the SMTP server does not accept addresses outside ASCII (no SMTPUTF8)",
            temporary=False,
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return _recipient_refused(exc.recipients)
    if isinstance(exc, smtplib.SMTPResponseException):
        return SendError(
            f"the server answered {exc.smtp_code} {_text(exc.smtp_error)}",
            temporary=400 <= exc.smtp_code < 500,
            code=exc.smtp_code,
        )
    # the connection broke while the message was under way: whether the server kept it is
    # unknown to us
    return SendError(
        f"the connection to the SMTP server broke: {exc}", temporary=False, unknown=True
    )


def _recipient_refused(refused: dict[str, tuple[int, bytes]]) -> SendError:
    """The first refused recipient's reply, as SMTP means it."""
    code, text = next(iter(refused.values()))
    return SendError(
        f"the server refused the recipient: {code} {_text(text)}",
        temporary=400 <= code < 500,
        code=code,
    )


class _NotHandedOver(Exception):
    """The connection broke before any of the message's data left (its cause says how)."""


def _hand_over(
    client: smtplib.SMTP,
    sender: str,
    recipients: list[str],
    data: bytes,
    options: list[str],
    *,
    together: bool,
) -> dict[str, tuple[int, bytes]]:
    """`client.sendmail`, knowing whether the message left when the connection breaks
    (_NotHandedOver before its data was sent). `together`, to a server that offers PIPELINING
    (RFC 2920): MAIL, every RCPT and DATA leave together and their replies are read in order,
    then the message follows the 354; two round trips a message instead of three and one per
    recipient, which is most of a message's time to a server across a network. Otherwise one
    command at a time, as `sendmail` asks. The same outcomes and exceptions as `sendmail`: the
    recipients refused when some were accepted, SMTPSenderRefused, SMTPRecipientsRefused when
    none was, SMTPDataError; the session is reset after a refusal and stays usable for the next
    message. Nothing of the message leaves before the server accepted the sender, a recipient
    and DATA."""
    esmtp = [f"SIZE={len(data)}"] if client.has_extn("size") else []
    esmtp += options
    if any(option.lower() == "smtputf8" for option in options):
        if not client.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
        client.command_encoding = "utf-8"
    commands = [f"MAIL FROM:{smtplib.quoteaddr(sender)}{''.join(' ' + o for o in esmtp)}"]
    commands += [f"RCPT TO:{smtplib.quoteaddr(recipient)}" for recipient in recipients]
    commands.append("DATA")
    for command in commands:
        if "\r" in command or "\n" in command:
            raise ValueError(f"an SMTP command with a line break: {command!r}")
    try:
        replies = _envelope_replies(client, commands, together=together)
    except smtplib.SMTPServerDisconnected as exc:
        raise _NotHandedOver(exc) from exc
    closed = replies[-1][0] == 421
    mail_code, mail_text = replies[0]
    refused = {
        recipient: reply
        for recipient, reply in zip(recipients, replies[1:], strict=False)
        if reply[0] not in (250, 251)
    }
    data_code, data_text = replies[-1] if len(replies) == len(commands) else (None, b"")
    if mail_code != 250:
        if not closed:
            _reset(client, data_code)
        raise smtplib.SMTPSenderRefused(mail_code, mail_text, sender)
    if len(refused) == len(recipients) or data_code != 354:
        if not closed:
            _reset(client, data_code)
        if data_code is None or len(refused) == len(recipients):
            raise smtplib.SMTPRecipientsRefused(refused)
        raise smtplib.SMTPDataError(data_code, data_text)
    body = re.sub(rb"(?m)^\.", b"..", data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    client.send(body + b".\r\n")
    code, text = client.getreply()
    if code != 250:
        if code == 421:
            client.close()
        else:
            _reset(client, None)
        raise smtplib.SMTPDataError(code, text)
    return refused


def _envelope_replies(
    client: smtplib.SMTP, commands: list[str], *, together: bool
) -> list[tuple[int, bytes]]:
    """The replies to MAIL, each RCPT and DATA: all sent at once (`together`), or each after the
    last one's reply, stopping where `sendmail` stops (a refused sender, every recipient
    refused). A 421 closes the connection: no reply follows it."""
    replies: list[tuple[int, bytes]] = []
    if together:
        client.send("".join(command + "\r\n" for command in commands))
    for position, command in enumerate(commands):
        if not together:
            if command == "DATA" and all(code not in (250, 251) for code, _ in replies[1:]):
                break  # every recipient refused: DATA is never asked
            client.send(command + "\r\n")
        replies.append(client.getreply())
        if replies[-1][0] == 421:
            client.close()
            break
        if not together and position == 0 and replies[0][0] != 250:
            break
    return replies


def _reset(client: smtplib.SMTP, data_code: int | None) -> None:
    """The session back to its start after a refused message (RSET), as `sendmail` leaves it; a
    server that opened the data anyway (354) gets it ended empty first."""
    try:
        if data_code == 354:
            client.send(b".\r\n")
            client.getreply()
        client.rset()
    except smtplib.SMTPServerDisconnected:
        pass


def _loopback(host: str) -> bool:
    """A server on this machine: what travels to it never crosses a network."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


PASSWORD_VAR = "INVOICE_PIPELINES_SMTP_PASSWORD"


def smtp(read: Reading = NOW) -> Smtp:
    """The server INVOICE_PIPELINES_SMTP_* configure: the one builder of the `mailer` resource
    (resources/area.py). A command sends through it (the password read now); a run's `mailer`
    wraps it (`resources.messaging.mail.SmtpMailer.of`, the password an EnvVar: never in the UI)."""

    return Smtp(
        host=read.value("INVOICE_PIPELINES_SMTP_HOST"),
        port=int(positive_number("INVOICE_PIPELINES_SMTP_PORT")),
        security=read.value("INVOICE_PIPELINES_SMTP_SECURITY"),
        username=read.value("INVOICE_PIPELINES_SMTP_USER"),
        password=read.secret(PASSWORD_VAR),
        sender=read.value("INVOICE_PIPELINES_SMTP_FROM"),
    )
