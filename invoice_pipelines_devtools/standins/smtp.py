"""A local SMTP server on loopback (aiosmtpd) that keeps what it receives: for tests, the demo and
the documents benchmark. It speaks real SMTP, so the production mailer is what talks to it.

Faults, as a real server produces them: recipients it refuses (550), a number of messages it
answers with a temporary failure first (451), a limit of messages per connection (the next one's
MAIL is answered 421 and the connection closed, as servers that limit a client do), connections
closed without a word when the next messages begin (an idle timeout, a restart), and a hook called
for each accepted message before the server answers (the crash test kills the sender there: the
message has arrived, the sender never hears so).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING


@dataclass
class Mailbox:
    """What the server received, in order (kept as bytes; parsed when looked at, so receiving
    stays as cheap as a real server's)."""

    raw: list[bytes] = field(default_factory=list)
    refused_recipients: set[str] = field(default_factory=set)
    temporary_failures: int = 0  # the next N messages get 451 before one is accepted
    # after this many accepted messages on one connection the next MAIL gets 421 and the
    # connection is closed (None: no limit)
    messages_per_connection: int | None = None
    drops: int = 0  # the next N MAIL commands: the connection closed without a reply
    on_message: Callable[[EmailMessage], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            raw = list(self.raw)
        return [message_from_bytes(data, policy=policy.default) for data in raw]  # type: ignore[misc]

    def count(self, message_id: str | None = None) -> int:
        with self._lock:
            raw = list(self.raw)
        if message_id is None:
            return len(raw)
        return sum(1 for data in raw if str(_headers(data)["Message-ID"]).strip() == message_id)

    def by_subject_number(self) -> dict[str, int]:
        """How many messages arrived per invoice number (the second word of the subject)."""
        found: dict[str, int] = {}
        with self._lock:
            raw = list(self.raw)
        for data in raw:
            subject = str(_headers(data)["Subject"] or "")
            number = subject.split()[1] if len(subject.split()) > 1 else ""
            found[number] = found.get(number, 0) + 1
        return found


def _headers(data: bytes):
    return BytesHeaderParser(policy=policy.default).parsebytes(data)


class _Handler:
    def __init__(self, mailbox: Mailbox, *, pipelining: bool = True) -> None:
        self.mailbox = mailbox
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        """Offer PIPELINING (RFC 2920) as mail servers do: aiosmtpd reads a client's commands in
        order whether or not they came together, it only does not say so."""
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        box = self.mailbox
        with box._lock:
            drop = box.drops > 0
            if drop:
                box.drops -= 1
        limit = box.messages_per_connection
        if not drop and (limit is None or getattr(session, "accepted", 0) < limit):
            return MISSING  # aiosmtpd's own: the sender taken, 250
        if not drop:
            await server.push("421 4.7.0 too many messages on this connection, closing")
        # closed now, the commands that came with it unanswered; what is returned is dropped
        server.transport.close()
        return "421 4.3.2 closed"

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
            box.raw.append(envelope.content)
        session.accepted = getattr(session, "accepted", 0) + 1
        if box.on_message is not None:
            box.on_message(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 2.0.0 queued"


class SmtpSink:
    """`with SmtpSink() as sink:` a server on 127.0.0.1:sink.port; `sink.mailbox` holds the mail."""

    def __init__(
        self,
        port: int = 0,
        mailbox: Mailbox | None = None,
        *,
        smtputf8: bool = True,
        pipelining: bool = True,
    ) -> None:
        """`smtputf8`: offer internationalized addresses (RFC 6531), as current servers do;
        `pipelining`: offer command pipelining (RFC 2920), as they do too."""
        self.mailbox = mailbox or Mailbox()
        self._controller = Controller(
            _Handler(self.mailbox, pipelining=pipelining),
            hostname="127.0.0.1",
            port=port or _free_port(),
            data_size_limit=50 * 1024 * 1024,
            enable_SMTPUTF8=smtputf8,
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


def serve_in_process(port: int, ready, stop, results) -> None:
    """Entry of a separate process running the sink (benchmarks: the server does not compete
    with the sender for one interpreter). Puts the per-invoice counts on `results` when stopped."""
    with SmtpSink(port=port) as sink:
        ready.set()
        stop.wait()
        results.put(sink.mailbox.by_subject_number())


class SmtpSinkProcess:
    """`with SmtpSinkProcess() as sink:` the sink in a process of its own; `sink.counts()` after
    the block: how many messages arrived per invoice number."""

    def __init__(self) -> None:
        import multiprocessing

        self._mp = multiprocessing.get_context("spawn")
        self.port = _free_port()
        self._ready, self._stop = self._mp.Event(), self._mp.Event()
        self._results = self._mp.Queue()
        self._process = self._mp.Process(
            target=serve_in_process,
            args=(self.port, self._ready, self._stop, self._results),
            daemon=True,
        )
        self._counts: dict[str, int] | None = None

    def __enter__(self) -> SmtpSinkProcess:
        self._process.start()
        if not self._ready.wait(60):
            self._process.kill()
            raise RuntimeError("the SMTP sink process did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._counts = self._results.get(timeout=60)
        self._process.join(30)

    def counts(self) -> dict[str, int]:
        return dict(self._counts or {})


def main(argv: list[str] | None = None) -> int:
    """`python -m invoice_pipelines_devtools.standins.smtp --port 1025 --maildir .data/mail`: the
    demo's mail server. Every message it receives is written to the folder as an .eml file."""
    import re
    import time

    from invoice_pipelines_devtools.standins.foreground import (
        port_and_folder,
        serve_until_interrupted,
    )

    port, folder = port_and_folder(
        argv, main.__doc__, port=1025, folder=("--maildir", ".data/mail")
    )
    box = Mailbox()

    def keep(message: EmailMessage) -> None:
        subject = re.sub(r"[^\w.-]+", "_", str(message["Subject"] or "message"))[:80]
        (folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{box.count():06d}-{subject}.eml").write_bytes(
            bytes(message)
        )

    box.on_message = keep

    def start():
        sink = SmtpSink(port=port, mailbox=box).start()
        return f"127.0.0.1:{sink.port}", sink.stop

    return serve_until_interrupted("smtp", port, start, f"mail goes to {folder}")


if __name__ == "__main__":
    raise SystemExit(main())
