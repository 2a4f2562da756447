"""Webhooks: a change made in QBO (or through the API) is POSTed to the app's endpoint, signed with
intuit-signature, as CloudEvents or in the legacy shape, and sent again after a non-2xx answer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from invoice_pipelines_tests.devtools.qbo_simulator.conftest import customer


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = 500 if receiver.fail_first > 0 else 200
                receiver.fail_first -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/qbo/webhook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _signed(headers: dict, body: bytes, token: str) -> bool:
    expected = base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()
    return headers["intuit-signature"] == expected


def test_cloudevents_for_a_create_and_a_change_made_as_a_qbo_user(qbo, sim):
    with Receiver() as hook:
        sim.configure_webhook(qbo.realm, hook.url, "verifier-1")
        created = customer(qbo, "Acme")
        sim.edit_as_user(qbo.realm, "Customer", created["Id"], {"Notes": "called"})
        deliveries = sim.webhook_deliveries(qbo.realm, wait=30)
        assert [d["status"] for d in deliveries] == [200, 200]
        events = [json.loads(body)[0] for _, body in hook.received]
        assert [e["type"] for e in events] == ["qbo.customer.created.v1", "qbo.customer.updated.v1"]
        assert {(e["intuitentityid"], e["intuitaccountid"]) for e in events} == {("1", qbo.realm)}
        assert all(_signed(headers, body, "verifier-1") for headers, body in hook.received)


def test_legacy_shape_and_redelivery_after_an_error(qbo, sim):
    with Receiver(fail_first=1) as hook:
        sim.configure_webhook(qbo.realm, hook.url, "v2", fmt="legacy")
        customer(qbo, "Acme")
        (delivery,) = sim.webhook_deliveries(qbo.realm, wait=30)
        assert (delivery["status"], delivery["attempts"]) == (200, 2)
        notification = json.loads(hook.received[-1][1])["eventNotifications"][0]
        assert notification["realmId"] == qbo.realm
        entity = notification["dataChangeEvent"]["entities"][0]
        assert (entity["name"], entity["id"], entity["operation"]) == ("Customer", "1", "Create")


def test_webhooks_only_go_to_loopback(qbo, sim):
    with pytest.raises(ValueError, match="loopback"):
        sim.configure_webhook(qbo.realm, "http://10.0.0.1/hook", "x")
