"""The HTTP receiver a Peppol access point forwards received documents to (phoss-ap style):
`POST /peppol/inbound` with the document as the body (an SBDH envelope with the UBL inside, or
bare UBL), handed to `receive_peppol` (intake/domain/peppol_inbound.py) as `peppol receive` hands a
file, so each message is registered once per SBDH InstanceIdentifier.

It runs in the bounded server of resources/http_receiver.py (the QBO webhooks' bounds: one
request per connection, socket and request deadlines, a worker and a waiting-connection bound,
503 beyond them), with the upload limit (INVOICE_PIPELINES_MAX_UPLOAD_BYTES) as its body limit.
The access point authenticates with `Authorization: Bearer <INVOICE_PIPELINES_PEPPOL_INBOUND_TOKEN>`,
checked before a byte of the body is read.

Answers (JSON with `outcome`, `instance_identifier`, `message`, ..., except where plain text):

- 200 `registered` or `duplicate`: recorded now; 200 `replay`: recorded before, nothing new (so
  an access point that lost our answer and sends again is told it arrived);
- 404 `unknown_receiver`: no organization has the receiver's participant id (a valid one); the
  message is kept (held, as `peppol receive` holds it) and handed to no intake;
- 400: not XML, no document, no InstanceIdentifier, not a UBL invoice or credit note, a receiver
  that is no participant id by the Peppol Policy for use of Identifiers (blanks, control or bidi
  characters, `::`, a path, more than 130 characters after the ICD, an ICD off the list): plain
  text, one sentence, nothing recorded; 401: no or a wrong token; 411/413: no Content-Length,
  larger than the limit;
- 503: it could not be recorded now (the database or the upload store failed, or two
  organizations claim the receiver's id): nothing recorded, send it again later.
"""

from __future__ import annotations

import hmac
import logging

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from invoice_pipelines.intake.domain.peppol_inbound import (
    UNKNOWN_RECEIVER,
    ReceiverClaimedTwice,
    ReceiveRefused,
    receive_peppol,
)
from invoice_pipelines.resources.files.uploads import Uploads
from invoice_pipelines.resources.http_receiver import (
    Answer,
    BoundedHandler,
    BoundedServer,
    Refused,
)
from invoice_pipelines.settings import ConfigError, max_upload_bytes

logger = logging.getLogger(__name__)

INBOUND_PATH = "/peppol/inbound"
TOKEN_SETTING = "INVOICE_PIPELINES_PEPPOL_INBOUND_TOKEN"


def bearer_valid(values: list[str], token: str) -> bool:
    """Whether the request's Authorization headers are exactly one `Bearer <token>`; False (never
    an exception) for none, several, another scheme or a non-ASCII value."""
    if len(values) != 1 or not token:
        return False
    scheme, _, given = values[0].strip().partition(" ")
    if scheme.lower() != "bearer" or not given.isascii():
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


class _Handler(BoundedHandler):
    server: PeppolReceiver
    path_served = INBOUND_PATH

    def admit(self) -> None:
        values = [str(v) for v in self.headers.get_all("Authorization") or []]
        if not bearer_valid(values, self.server.token):
            raise Refused(401, "Authorization: Bearer token missing or wrong")

    def receive(self, body: bytes) -> Answer:
        server = self.server
        try:
            received = receive_peppol(
                server.engine, server.uploads, body, max_bytes=server.max_body_bytes
            )
        except ReceiverClaimedTwice as exc:
            logger.error("Peppol receiver: %s", exc)
            raise Refused(503, f"not recorded, send it again later: {exc}") from None
        except ReceiveRefused as exc:
            raise Refused(400, str(exc)) from None
        except (SQLAlchemyError, OSError):
            # nothing committed: the access point, answered 503, sends the message again
            logger.exception("Peppol receiver: the document could not be recorded")
            raise Refused(503, "could not record the document, send it again later") from None
        status = 404 if received.outcome == UNKNOWN_RECEIVER else 200
        return Answer(status, received.message, received.to_json_dict())


class PeppolReceiver(BoundedServer):
    """The receiver: `_Handler` within the bounds of resources/http_receiver.py."""

    def __init__(
        self,
        address: tuple[str, int],
        engine: Engine,
        uploads: Uploads,
        token: str,
        **bounds,
    ) -> None:
        if not token or not token.strip():
            # an empty token would admit anyone who sends "Bearer " and nothing
            raise ConfigError(
                f"{TOKEN_SETTING} is empty or blank; set it to the token the access point sends "
                "as Authorization: Bearer when it forwards a received document"
            )
        self.engine = engine
        self.uploads = uploads
        self.token = token
        bounds.setdefault("max_body_bytes", max_upload_bytes())
        super().__init__(address, _Handler, name="peppol-inbound", **bounds)


def receiver(
    engine: Engine,
    uploads: Uploads,
    token: str,
    host: str = "127.0.0.1",
    port: int = 0,
    **bounds,
) -> PeppolReceiver:
    """An HTTP server (not started) that takes forwarded documents on POST /peppol/inbound.
    `engine`: the system engine (a document's organization is found from its receiver). `bounds` override resources/http_receiver.py's (max_body_bytes: the upload limit)."""
    return PeppolReceiver((host, port), engine, uploads, token, **bounds)
