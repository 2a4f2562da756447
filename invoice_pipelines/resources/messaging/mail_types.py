"""What goes into and comes out of the `mailer` resource (`resources/messaging/mail.py`), without Dagster:
the message ready to hand over and the error of one that was not accepted. Code that only reads
or records messages (the outbox, `incoming list`) imports these and not the resource."""

from __future__ import annotations

from dataclasses import dataclass


class SendError(RuntimeError):
    """A message was not accepted. `temporary`: trying again may help (a 4xx reply). `unknown`:
    the connection broke while the message was under way, so whether the server kept it cannot
    be known; such a message is never tried again on its own (it might arrive twice). `closed`:
    the server closed the connection (a 421, a drop) before anything of the message left; the
    next attempt opens a new one."""

    def __init__(
        self,
        message: str,
        *,
        temporary: bool,
        code: int | None = None,
        unknown: bool = False,
        closed: bool = False,
    ) -> None:
        super().__init__(message)
        # a message that may have arrived is never "worth another try", whatever the caller said
        self.temporary = temporary and not unknown
        self.code = code
        self.unknown = unknown
        self.closed = closed and not unknown


@dataclass(frozen=True)
class OutgoingMail:
    """A message ready to hand over: the envelope and the MIME bytes (CRLF line ends)."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    message_id: str
    smtputf8: bool = False  # an address outside ASCII: the server must offer SMTPUTF8

    @property
    def recipient(self) -> str:
        return ", ".join(self.recipients)
