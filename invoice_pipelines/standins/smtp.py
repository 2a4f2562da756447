"""A local SMTP server on loopback (aiosmtpd) that keeps what it receives: for tests, the demo and
the documents benchmark. It speaks real SMTP, so the production mailer is what talks to it.

Faults, as a real server produces them: recipients it refuses (550), a number of messages it
answers with a temporary failure first (451), and a hook called for each accepted message before
the server answers (the crash test kills the sender there: the message has arrived, the sender
never hears so).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Mailbox:
    """What the server received, in order."""

    messages: list[EmailMessage] = field(default_factory=list)
    refused_recipients: set[str] = field(default_factory=set)
    temporary_failures: int = 0  # the next N messages get 451 before one is accepted
    on_message: Callable[[EmailMessage], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, message_id: str | None = None) -> int:
        with self._lock:
            if message_id is None:
                return len(self.messages)
            return sum(1 for m in self.messages if str(m["Message-ID"]).strip() == message_id)

    def by_subject_number(self) -> dict[str, int]:
        """How many messages arrived per invoice number (the last word of the subject)."""
        found: dict[str, int] = {}
        with self._lock:
            for message in self.messages:
                number = str(message["Subject"]).split()[1] if message["Subject"] else ""
                found[number] = found.get(number, 0) + 1
        return found


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.lower() in self.mailbox.refused_recipients:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        box = self.mailbox
        with box._lock:
            if box.temporary_failures > 0:
                box.temporary_failures -= 1
                return "451 4.3.0 try again later"
            message = message_from_bytes(envelope.content, policy=policy.default)
            box.messages.append(message)  # type: ignore[arg-type]
        if box.on_message is not None:
            box.on_message(message)  # type: ignore[arg-type]
        return "250 2.0.0 queued"


class SmtpSink:
    """`with SmtpSink() as sink:` a server on 127.0.0.1:sink.port; `sink.mailbox` holds the mail."""

    def __init__(self, port: int = 0, mailbox: Mailbox | None = None) -> None:
        self.mailbox = mailbox or Mailbox()
        self._controller = Controller(
            _Handler(self.mailbox),
            hostname="127.0.0.1",
            port=port or _free_port(),
            data_size_limit=50 * 1024 * 1024,
        )

    @property
    def port(self) -> int:
        return self._controller.port

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


__all__ = ["Mailbox", "SmtpSink"]
