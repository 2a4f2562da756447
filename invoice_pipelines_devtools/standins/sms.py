"""A local stand-in for a Twilio-style messaging REST API (SMS and WhatsApp) on loopback.

`POST /2010-04-01/Accounts/{account}/Messages.json` with form fields To, From, Body and basic auth
answers 201 with a message id, as the provider does; and its faults: 401 for wrong credentials,
400 (code 21211) for a number that is not E.164, 429 (code 20429, Retry-After) when told to
throttle, 503 (Retry-After: the service is down, nothing was kept) when told to fail; and, like a
gateway in front of a provider that queued the message and then lost the answer, a message kept
and then answered with a given status (502, 504, a 200 that is not the API's JSON) or a dropped
connection. What it accepted is kept for the tests.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from invoice_pipelines_devtools.standins.loopback import JsonHandler, LoopbackServer

E164 = re.compile(r"^(whatsapp:)?\+[1-9]\d{6,14}$")
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")


@dataclass
class Outbox:
    account: str = "AC-local"
    token: str = "local-token"
    messages: list[dict] = field(default_factory=list)
    throttle_next: int = 0  # the next N requests get 429
    fail_next: int = 0  # the next N requests get 503 with Retry-After, nothing kept
    # the next requests' messages are kept, then answered with these statuses (0: no answer,
    # the connection is closed) and a gateway's HTML page instead of the API's JSON
    queue_then_answer: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_message: Callable[[dict], None] | None = None  # called with each accepted message


class _Handler(JsonHandler):
    outbox: Outbox

    def _gateway_answer(self, status: int) -> None:
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

    def do_POST(self):  # noqa: N802
        box = self.outbox
        match = _PATH.match(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if not match:
            return self._answer(
                404, {"code": 20404, "message": "The requested resource was not found"}
            )
        expected = base64.b64encode(f"{box.account}:{box.token}".encode()).decode()
        if (
            match["account"] != box.account
            or self.headers.get("Authorization") != f"Basic {expected}"
        ):
            return self._answer(401, {"code": 20003, "message": "Authenticate"})
        with box.lock:
            if box.throttle_next > 0:
                box.throttle_next -= 1
                return self._answer(
                    429, {"code": 20429, "message": "Too Many Requests"}, {"Retry-After": "1"}
                )
            if box.fail_next > 0:
                box.fail_next -= 1
                return self._answer(
                    503, {"code": 20503, "message": "Service Unavailable"}, {"Retry-After": "1"}
                )
            gateway = box.queue_then_answer.pop(0) if box.queue_then_answer else None
        to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not E164.match(to):
            return self._answer(
                400,
                {"code": 21211, "message": f"The 'To' number {to} is not a valid phone number."},
            )
        if to.startswith("whatsapp:") != sender.startswith("whatsapp:"):
            return self._answer(
                400, {"code": 63007, "message": "From and To must both be WhatsApp addresses"}
            )
        if not body.strip():
            return self._answer(400, {"code": 21602, "message": "Message body is required."})
        sid = f"SM{uuid.uuid4().hex}"
        message = {"sid": sid, "to": to, "from": sender, "body": body}
        with box.lock:
            box.messages.append(message)
            if box.on_message is not None:
                box.on_message(message)
        if gateway is not None:
            return self._gateway_answer(gateway)
        return self._answer(201, {"sid": sid, "status": "queued", "to": to, "body": body})


class TextProviderStandIn(LoopbackServer):
    """`with TextProviderStandIn() as api:` the API on http://127.0.0.1:api.port."""

    def __init__(self, port: int = 0, outbox: Outbox | None = None) -> None:
        self.outbox = outbox or Outbox()
        super().__init__(_Handler, port, outbox=self.outbox)


def main(argv: list[str] | None = None) -> int:
    """`python -m invoice_pipelines_devtools.standins.sms --port 8031 --outdir .data/messages`: the
    demo's SMS/WhatsApp provider. Every message it accepts is appended to messages.jsonl there."""
    import os
    import time

    from invoice_pipelines_devtools.standins.foreground import (
        port_and_folder,
        serve_until_interrupted,
    )

    port, folder = port_and_folder(
        argv, main.__doc__, port=8031, folder=("--outdir", ".data/messages")
    )
    outbox = Outbox(
        account=os.environ.get("INVOICE_PIPELINES_SMS_ACCOUNT") or "AC-local",
        token=os.environ.get("INVOICE_PIPELINES_SMS_TOKEN") or "local-token",
    )

    def keep(message: dict) -> None:
        with (folder / "messages.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps({**message, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")

    outbox.on_message = keep

    def start():
        api = TextProviderStandIn(port=port, outbox=outbox).__enter__()
        return api.url, lambda: api.__exit__(None, None, None)

    return serve_until_interrupted("sms", port, start, f"messages go to {folder}")


if __name__ == "__main__":
    raise SystemExit(main())
