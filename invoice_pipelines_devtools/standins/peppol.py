"""A local stand-in for a Peppol access point's phase4-style HTTP API on loopback
(`invoice_pipelines/resources/peppol/transport.py` says which parts are phase4's, as publicly
described, and which are our assumption).

- `GET /lookup/{participantId}`: the participant's document types and processes from the SMP
  table (`Network.participants`), 404 for a participant the table does not have;
- `POST /sendas4/{senderId}/{receiverId}/{docTypeId}/{processId}/{countryC1}`: a sending report
  (HTTP 200, JSON) with an AS4 message id: `SUCCESS`, or `AS4_ERROR_MESSAGE_RECEIVED` for a
  receiver the test made reject (`Network.rejecting`), or not sent (no AS4 message id) when the
  SMP table does not have the receiver with this document type;
- 403 without the token (`X-Token`), as phase4-peppol-standalone answers;
- faults: 429 (`throttle_next`), 503 with Retry-After (`unavailable_next`), both before anything
  is kept; a message kept and then answered with a given status or a dropped connection
  (`keep_then_answer`, 0: the connection is closed without an answer: the lost answer); latency
  before every answer (`latency_seconds`).

What it sent is kept in `Network.messages`, one entry per message with its AS4 message id;
`take_messages()` gives each message once.

Receiving: `forward_inbound(document)` POSTs a document the network delivered to us (an SBDH
envelope, or bare UBL) to our HTTP receiver (`Network.inbound_url`, `peppol listen`,
intake/domain/peppol_http.py) with `Authorization: Bearer <Network.inbound_token>`, over real HTTP, as
phoss-ap forwards what it received; `Forwarded` is the receiver's answer.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from invoice_pipelines_devtools.standins.loopback import JsonHandler, LoopbackServer


def _key(participant: str) -> str:
    """Peppol participant ids (scheme iso6523-actorid-upis) compare case-insensitively; a bare
    `0208:...` is the same participant as its scheme-prefixed form."""
    value = participant.strip().lower()
    return value if "::" in value else f"iso6523-actorid-upis::{value}"


@dataclass
class Network:
    token: str = "local-token"
    # the SMP table: participant id -> {(document type id, process id)}
    participants: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    # receivers whose access point answers an AS4 error: participant id -> the error's text
    rejecting: dict[str, str] = field(default_factory=dict)
    messages: list[dict] = field(default_factory=list)
    throttle_next: int = 0  # the next N sends get 429, nothing kept
    unavailable_next: int = 0  # the next N sends get 503 with Retry-After, nothing kept
    # the next sends' messages are kept, then answered with these statuses (0: no answer, the
    # connection is closed)
    keep_then_answer: list[int] = field(default_factory=list)
    latency_seconds: float = 0.0  # before every answer
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_message: Callable[[dict], None] | None = None  # called with each kept message
    # our HTTP receiver for documents delivered to us (`peppol listen`) and its token
    inbound_url: str | None = None
    inbound_token: str = "inbound-token"
    _taken: int = 0

    def register(self, participant: str, doc_type_id: str, process_id: str) -> None:
        """The participant accepts this document type and process (an SMP registration)."""
        with self.lock:
            entry = self.participants.setdefault(_key(participant), set())
            entry.add((doc_type_id, process_id))

    def capabilities(self, participant: str) -> set[tuple[str, str]] | None:
        with self.lock:
            for name, services in self.participants.items():
                if _key(name) == _key(participant):
                    return set(services)
        return None

    def take_messages(self) -> list[dict]:
        """The messages kept since the last call, each once."""
        with self.lock:
            new = self.messages[self._taken :]
            self._taken = len(self.messages)
            return [dict(m) for m in new]


@dataclass(frozen=True)
class Forwarded:
    """Our receiver's answer to a forwarded document: its status and body (`fields` when JSON)."""

    status: int
    text: str
    fields: dict | None


def forward_inbound(
    url: str, document: bytes, token: str, *, timeout: float = 30.0, headers: dict | None = None
) -> Forwarded:
    """POST `document` to our receiver at `url` as the access point forwards what it received;
    `headers` replace the default ones (a test's wrong token, none)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    sent = (
        {"Authorization": f"Bearer {token}", "Content-Type": "application/xml"}
        if headers is None
        else headers
    )
    try:
        connection.request("POST", parts.path or "/", body=document, headers=sent)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        kind = response.getheader("Content-Type") or ""
    finally:
        connection.close()
    fields = json.loads(text) if kind.startswith("application/json") else None
    return Forwarded(response.status, text.strip(), fields)


class _Handler(JsonHandler):
    network: Network

    def _segments(self) -> list[str]:
        return [unquote(part) for part in self.path.split("?")[0].strip("/").split("/")]

    def _authorized(self) -> bool:
        if self.headers.get("X-Token") == self.network.token:
            return True
        self._answer(403, {"status": 403, "error": "Forbidden"})
        return False

    def do_GET(self):  # noqa: N802
        if self.network.latency_seconds:
            time.sleep(self.network.latency_seconds)
        segments = self._segments()
        if len(segments) != 2 or segments[0] != "lookup":
            return self._answer(404, {"status": 404, "error": "Not Found"})
        if not self._authorized():
            return None
        services = self.network.capabilities(segments[1])
        if services is None:
            return self._answer(
                404, {"errorMessage": f"participant {segments[1]} is not registered in the SMP"}
            )
        by_doc: dict[str, list[str]] = {}
        for doc, process in sorted(services):
            by_doc.setdefault(doc, []).append(process)
        return self._answer(
            200,
            {
                "participantId": _key(segments[1]),
                "services": [{"docTypeId": d, "processIds": p} for d, p in by_doc.items()],
            },
        )

    def do_POST(self):  # noqa: N802
        net = self.network
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if net.latency_seconds:
            time.sleep(net.latency_seconds)
        segments = self._segments()
        if len(segments) != 6 or segments[0] != "sendas4":
            return self._answer(404, {"status": 404, "error": "Not Found"})
        if not self._authorized():
            return None
        with net.lock:
            if net.throttle_next > 0:
                net.throttle_next -= 1
                return self._answer(
                    429, {"errorMessage": "Too Many Requests"}, {"Retry-After": "1"}
                )
            if net.unavailable_next > 0:
                net.unavailable_next -= 1
                return self._answer(
                    503, {"errorMessage": "Service Unavailable"}, {"Retry-After": "1"}
                )
            after = net.keep_then_answer.pop(0) if net.keep_then_answer else None
        sender, receiver, doc, process, country = segments[1:]
        report = {
            "senderId": sender,
            "receiverId": receiver,
            "docTypeId": doc,
            "processId": process,
            "countryC1": country,
            "sbdhInstanceIdentifier": str(uuid.uuid4()),
        }
        services = net.capabilities(receiver)
        if services is None or (doc, process) not in services:
            return self._answer(
                200,
                {
                    **report,
                    "errorMessage": f"the SMP has no endpoint of {receiver} for this document type",
                    "sendingSuccess": False,
                    "overallSuccess": False,
                },
            )
        report["as4MessageId"] = f"{uuid.uuid4()}@standin"
        rejection = next(
            (why for name, why in net.rejecting.items() if _key(name) == _key(receiver)), None
        )
        message = {
            "message_id": report["as4MessageId"],
            "sbdh_instance_id": report["sbdhInstanceIdentifier"],
            "sender": sender,
            "receiver": receiver,
            "doc_type_id": doc,
            "process_id": process,
            "country": country,
            "document": body,
            "rejected": rejection,
        }
        with net.lock:
            net.messages.append(message)
            if net.on_message is not None:
                net.on_message(message)
        if after is not None:
            return self._after_keeping(after)
        if rejection is not None:
            return self._answer(
                200,
                {
                    **report,
                    "sendingResult": "AS4_ERROR_MESSAGE_RECEIVED",
                    "as4ResponseError": True,
                    "as4ResponseErrors": [
                        {"errorCode": "EBMS:0004", "description": rejection, "severity": "failure"}
                    ],
                    "sendingSuccess": False,
                    "overallSuccess": False,
                },
            )
        return self._answer(
            200,
            {**report, "sendingResult": "SUCCESS", "sendingSuccess": True, "overallSuccess": True},
        )

    def _after_keeping(self, status: int) -> None:
        if status == 0:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        page = f"<html><body><h1>{status}</h1>upstream trouble</body></html>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)


class AccessPointStandIn(LoopbackServer):
    """`with AccessPointStandIn() as ap:` the API on http://127.0.0.1:ap.port."""

    def __init__(self, port: int = 0, network: Network | None = None) -> None:
        self.network = network or Network()
        super().__init__(_Handler, port, network=self.network)

    def forward_inbound(self, document: bytes, **options) -> Forwarded:
        """A document the network delivered to us, POSTed to `network.inbound_url`."""
        if not self.network.inbound_url:
            raise RuntimeError("the stand-in has no inbound_url to forward received documents to")
        return forward_inbound(
            self.network.inbound_url, document, self.network.inbound_token, **options
        )


def main(argv: list[str] | None = None) -> int:
    """`python -m invoice_pipelines_devtools.standins.peppol --port 8034 --outdir .data/peppol`: an
    access point for trying the transport by hand. Every message it sends is a line of
    messages.jsonl there (its ids and the document's size). Its SMP table starts empty."""
    import os

    from invoice_pipelines_devtools.standins.foreground import (
        port_and_folder,
        serve_until_interrupted,
    )

    port, folder = port_and_folder(
        argv, main.__doc__, port=8034, folder=("--outdir", ".data/peppol")
    )
    network = Network(token=os.environ.get("INVOICE_PIPELINES_PEPPOL_AP_TOKEN") or "local-token")

    def keep(message: dict) -> None:
        line = {k: v for k, v in message.items() if k != "document"}
        line["document_bytes"] = len(message["document"])
        line["at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        with (folder / "messages.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")

    network.on_message = keep

    def start():
        ap = AccessPointStandIn(port=port, network=network).__enter__()
        return ap.url, lambda: ap.__exit__(None, None, None)

    return serve_until_interrupted("peppol", port, start, f"messages go to {folder}")


if __name__ == "__main__":
    raise SystemExit(main())
