"""QBO webhooks: a receiver that only asks for a pull, never trusts the payload's content.

Intuit POSTs change notifications (CloudEvents arrays, or the legacy `eventNotifications` shape)
signed with `intuit-signature`: the base64 HMAC-SHA256 of the raw body keyed with the app's
verifier token (INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN). A notification names a record, not its
content, so the receiver records "pull this organization's customers / items / payments soon"
(`qbo_cursors.pull_requested_at`) and answers 200 at once; `qbo_webhook_sensor` launches the
pull, which reads the changes through CDC like the daily schedules do. Unsigned or wrongly signed
bodies get 401 and change nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import Engine, select

from invoice_pipelines.db.tables import qbo_connections
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.quickbooks.sync.common import write_cursor

# which of our pulls a change of a QBO entity calls for (a payment changes its invoices' balance)
PULL_FOR = {"customer": "customer", "item": "item", "invoice": "payment", "payment": "payment"}
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Notice:
    realm_id: str
    entity: str  # lower-case QBO entity name
    entity_id: str
    operation: str


def signature_valid(body: bytes, signature: str | None, verifier_token: str) -> bool:
    if not signature or not verifier_token:
        return False
    digest = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), signature.strip())


def parse_notices(body: bytes) -> list[Notice]:
    """The changes a webhook body names, CloudEvents or legacy; ValueError when it is neither."""
    data = json.loads(body)
    notices: list[Notice] = []
    if isinstance(data, list):  # CloudEvents: type "qbo.<entity>.<operation>.v<n>"
        for event in data:
            parts = str(event.get("type", "")).split(".")
            if len(parts) < 3 or parts[0] != "qbo":
                raise ValueError(f"not a QBO event type: {event.get('type')!r}")
            notices.append(
                Notice(
                    str(event.get("intuitaccountid", "")),
                    parts[1].lower(),
                    str(event.get("intuitentityid", "")),
                    parts[2],
                )
            )
        return notices
    if isinstance(data, dict) and "eventNotifications" in data:
        for notification in data["eventNotifications"]:
            realm = str(notification.get("realmId", ""))
            for entity in (notification.get("dataChangeEvent") or {}).get("entities", []):
                notices.append(
                    Notice(
                        realm,
                        str(entity.get("name", "")).lower(),
                        str(entity.get("id", "")),
                        str(entity.get("operation", "")).lower(),
                    )
                )
        return notices
    raise ValueError("neither a CloudEvents array nor eventNotifications")


def request_pulls(engine: Engine, notices: list[Notice]) -> dict[int, set[str]]:
    """Mark the pulls the notices call for; {organization id: pulls}. Unknown realms are ignored."""
    with system_transaction(engine) as conn:
        by_realm = dict(
            conn.execute(
                select(qbo_connections.c.realm_id, qbo_connections.c.organization_id).where(
                    qbo_connections.c.status == "active"
                )
            ).all()
        )
    wanted: dict[int, set[str]] = {}
    for notice in notices:
        organization_id = by_realm.get(notice.realm_id)
        pull = PULL_FOR.get(notice.entity)
        if organization_id is not None and pull:
            wanted.setdefault(organization_id, set()).add(pull)
    now = datetime.now(UTC)
    for organization_id, pulls in wanted.items():
        with tenant_transaction(engine, organization_id, write=True) as conn:
            for pull in pulls:
                write_cursor(conn, organization_id, pull, pull_requested_at=now)
    return wanted


def receiver(engine: Engine, verifier_token: str, host: str = "127.0.0.1", port: int = 0):
    """An HTTP server (not started) that takes webhooks on POST /qbo/webhooks."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - quiet; outcomes are in the database
            pass

        def _answer(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802
            if self.path.split("?")[0] != "/qbo/webhooks":
                return self._answer(404, "not found")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._answer(413, "body too large")
            body = self.rfile.read(length)
            if not signature_valid(body, self.headers.get("intuit-signature"), verifier_token):
                return self._answer(401, "signature missing or wrong")
            try:
                notices = parse_notices(body)
            except (ValueError, AttributeError, TypeError) as exc:
                return self._answer(400, f"not a QBO notification: {exc}")
            request_pulls(engine, notices)
            return self._answer(200, "ok")

    return ThreadingHTTPServer((host, port), Handler)
