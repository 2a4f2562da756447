"""Webhooks as Intuit sends them: after each change a POST to the company's configured URL (loopback
only), signed with the `intuit-signature` header (base64 HMAC-SHA256 of the raw body keyed with the
verifier token), as a CloudEvents array or in the legacy `eventNotifications` shape. Sent from a
thread of their own, one event per request (no aggregation window), retried on a non-2xx answer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

FORMATS = ("cloudevents", "legacy")
_PAST = {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided"}


@dataclass
class WebhookConfig:
    url: str
    verifier_token: str
    format: str = "cloudevents"
    attempts: int = 3


def signature(body: bytes, verifier_token: str) -> str:
    digest = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def payload(fmt: str, realm_id: str, entity: str, entity_id: str, operation: str, when: float):
    stamp = datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")
    if fmt == "legacy":
        return {
            "eventNotifications": [
                {
                    "realmId": realm_id,
                    "dataChangeEvent": {
                        "entities": [
                            {
                                "name": entity,
                                "id": entity_id,
                                "operation": operation,
                                "lastUpdated": stamp,
                            }
                        ]
                    },
                }
            ]
        }
    return [
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "intuit.qbo.simulator",
            "type": f"qbo.{entity.lower()}.{_PAST.get(operation, operation.lower())}.v1",
            "datacontenttype": "application/json",
            "time": stamp,
            "intuitentityid": entity_id,
            "intuitaccountid": realm_id,
            "data": {},
        }
    ]


class WebhookSender:
    def __init__(self) -> None:
        self.configs: dict[str, WebhookConfig] = {}
        self.deliveries: list[dict] = []
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def configure(
        self, realm_id: str, url: str | None, verifier_token: str = "", fmt="cloudevents"
    ):
        if not url:
            self.configs.pop(realm_id, None)
            return
        host = urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("webhooks go to loopback addresses only (127.0.0.1)")
        if fmt not in FORMATS:
            raise ValueError(f"webhook format is one of {', '.join(FORMATS)}")
        self.configs[realm_id] = WebhookConfig(url, verifier_token, fmt)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="qbo-webhooks", daemon=True)
                self._thread.start()

    def event(self, realm_id: str, entity: str, entity_id: str, operation: str, when: float):
        config = self.configs.get(realm_id)
        if config is None:
            return
        body = json.dumps(payload(config.format, realm_id, entity, entity_id, operation, when))
        self._queue.put((config, realm_id, body.encode()))

    def idle(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was delivered or given up (tests)."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout) if self._thread else True

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if isinstance(job, threading.Event):
                job.set()
                continue
            config, realm_id, body = job
            status = None
            for attempt in range(1, config.attempts + 1):
                request = urllib.request.Request(config.url, data=body, method="POST")
                request.add_header(
                    "Content-Type",
                    "application/cloudevents-batch+json"
                    if config.format == "cloudevents"
                    else "application/json",
                )
                request.add_header("intuit-signature", signature(body, config.verifier_token))
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status = response.status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                except OSError:
                    status = None
                if status is not None and 200 <= status < 300:
                    break
                threading.Event().wait(0.1 * attempt)
            self.deliveries.append(
                {"realm_id": realm_id, "status": status, "attempts": attempt, "body": body.decode()}
            )

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(5)
