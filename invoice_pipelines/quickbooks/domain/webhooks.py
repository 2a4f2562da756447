"""QBO webhooks: a receiver that only asks for a pull, never trusts the payload's content.

Intuit POSTs change notifications (CloudEvents arrays, or the legacy `eventNotifications` shape)
signed with `intuit-signature`: the base64 HMAC-SHA256 of the raw body keyed with the app's
verifier token (INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN). A notification names a record, not its
content, so the receiver records "pull this organization's customers / items / payments soon"
(`qbo_cursors.pull_requested_at`) and answers 200 at once; `qbo_webhook_sensor` launches the
pull, which reads the changes through CDC like the daily schedules do. Unsigned or wrongly signed
bodies get 401 and change nothing.

The receiver faces the internet, so everything it does before the signature holds is bounded by
`limits.py` (resources/http_receiver.py keeps the bounds, for the Peppol receiver too):
- a body needs a plain Content-Length no larger than WEBHOOK_MAX_BODY_BYTES (411 when missing or
  sent chunked, 400 when not a number, 413 when too large), refused before a byte of it is read;
- one request per connection; a connection idle for WEBHOOK_SOCKET_TIMEOUT_S, or whose request
  has not fully arrived after WEBHOOK_REQUEST_TIMEOUT_S, is closed;
- connections that have not sent anything wait in one selector without a thread (at most
  WEBHOOK_MAX_WAITING_CONNECTIONS); at most WEBHOOK_MAX_WORKERS requests are read and handled at
  once; a connection beyond either bound is answered 503 at once; one that closes without
  sending a byte is closed there and takes no worker;
- a malformed signature header (empty, several, not base64, not ASCII) is a 401 like a wrong one.
A signed body asks for its pulls once: its SHA-256 is recorded per organization
(`qbo_webhook_receipts`) in the transaction that requests the pull, so the same body again within
WEBHOOK_REPLAY_WINDOW_S (Intuit's own redelivery, or someone replaying a captured request) is
answered 200 and requests nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, delete, select
from sqlalchemy.exc import SQLAlchemyError

from invoice_pipelines import limits
from invoice_pipelines.core.qbo_entities import PULL_FOR
from invoice_pipelines.db.inserts import insert_new
from invoice_pipelines.db.tables import qbo_connections, qbo_webhook_receipts
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.quickbooks.domain.sync.common import write_cursor
from invoice_pipelines.resources.http_receiver import (
    Answer,
    BoundedHandler,
    BoundedServer,
    Refused,
)
from invoice_pipelines.settings import ConfigError

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/qbo/webhooks"


@dataclass(frozen=True)
class Notice:
    realm_id: str
    entity: str  # lower-case QBO entity name
    entity_id: str
    operation: str


def signature_valid(body: bytes, signature: str | None, verifier_token: str) -> bool:
    """Whether `signature` is the base64 HMAC-SHA256 of `body`; False (never an exception) for an
    empty, non-ASCII or non-base64 header."""
    if not signature or not verifier_token:
        return False
    try:
        given = base64.b64decode(signature.strip().encode("ascii"), validate=True)
    except ValueError:  # UnicodeEncodeError and binascii.Error are both ValueErrors
        return False
    expected = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, given)


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


def _first_receipt(conn, organization_id: int, delivery: str, now: datetime) -> bool:
    """Record `delivery` for the organization; False when it was recorded within the window."""
    window_start = now - timedelta(seconds=limits.WEBHOOK_REPLAY_WINDOW_S)
    conn.execute(
        delete(qbo_webhook_receipts).where(
            and_(
                qbo_webhook_receipts.c.organization_id == organization_id,
                qbo_webhook_receipts.c.received_at < window_start,
            )
        )
    )
    # two receivers given the same body at once: the second waits for the first's row and skips
    # RETURNING, not rowcount: psycopg 3 under SQLAlchemy 2.1 reports -1 rows for an INSERT
    inserted = conn.execute(
        insert_new(conn, qbo_webhook_receipts, ["organization_id", "body_sha256"])
        .values(organization_id=organization_id, body_sha256=delivery, received_at=now)
        .returning(qbo_webhook_receipts.c.organization_id)
    ).first()
    return inserted is not None


def request_pulls(
    engine: Engine, system: Engine, notices: list[Notice], delivery: str | None = None
) -> dict[int, set[str]]:
    """Mark the pulls the notices call for; {organization id: pulls}. Unknown realms are ignored
    (the realms' organizations are read over every organization, on `system`, the system engine).

    `delivery` identifies the body (its SHA-256): an organization that already had it within
    WEBHOOK_REPLAY_WINDOW_S is left alone and missing from the result. The receipt and the pull
    request commit together, so a body whose request failed counts as not received.
    """
    # a company is one organization's (`save_connection` refuses a second); connections made
    # before that check may share one, and each of them pulls: a pull only reads what changed
    by_realm: dict[str, list[int]] = {}
    with system_transaction(system) as conn:
        for realm_id, organization_id in conn.execute(
            select(qbo_connections.c.realm_id, qbo_connections.c.organization_id).where(
                qbo_connections.c.status == "active"
            )
        ):
            by_realm.setdefault(realm_id, []).append(organization_id)
    wanted: dict[int, set[str]] = {}
    for notice in notices:
        pull = PULL_FOR.get(notice.entity)
        if not pull:
            continue
        for organization_id in by_realm.get(notice.realm_id, ()):
            wanted.setdefault(organization_id, set()).add(pull)
    now = datetime.now(UTC)
    requested: dict[int, set[str]] = {}
    for organization_id, pulls in wanted.items():
        with tenant_transaction(engine, organization_id, write=True) as conn:
            if delivery is not None and not _first_receipt(conn, organization_id, delivery, now):
                logger.info(
                    "QBO webhook: body %s already received for organization %s; nothing requested",
                    delivery[:12],
                    organization_id,
                )
                continue
            for pull in pulls:
                write_cursor(conn, organization_id, pull, pull_requested_at=now)
        requested[organization_id] = pulls
    return requested


class _Handler(BoundedHandler):
    """A notification: signed, parsed, its pulls requested; answered in plain text."""

    server: WebhookServer
    path_served = WEBHOOK_PATH

    def receive(self, body: bytes) -> Answer:
        server = self.server
        signatures = [str(s) for s in self.headers.get_all("intuit-signature") or []]
        if len(signatures) != 1 or not signature_valid(body, signatures[0], server.verifier_token):
            raise Refused(401, "signature missing or wrong")
        try:
            notices = parse_notices(body)
        except (ValueError, AttributeError, TypeError, RecursionError) as exc:
            raise Refused(400, f"not a QBO notification: {exc}") from None
        try:
            digest = hashlib.sha256(body).hexdigest()
            request_pulls(server.engine, server.system, notices, digest)
        except SQLAlchemyError:
            # not recorded: Intuit redelivers a notification that was not answered 2xx
            logger.exception("QBO webhook: the pull request could not be recorded")
            raise Refused(503, "could not record the notification, send it again later") from None
        return Answer(200, "ok")


class WebhookServer(BoundedServer):
    """The receiver: `_Handler` within the bounds of resources/http_receiver.py."""

    def __init__(
        self,
        address: tuple[str, int],
        engine: Engine,
        system: Engine,
        verifier_token: str,
        **bounds,
    ) -> None:
        if not verifier_token or not verifier_token.strip():
            # HMAC with an empty or blank key is a signature anyone can compute: refuse to start
            raise ConfigError(
                "INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN is empty or blank; set it to the verifier "
                "token of the app's webhooks in Intuit's developer portal"
            )
        self.engine = engine
        self.system = system
        self.verifier_token = verifier_token
        super().__init__(address, _Handler, name="qbo-webhooks", **bounds)


def receiver(
    engine: Engine,
    system: Engine,
    verifier_token: str,
    host: str = "127.0.0.1",
    port: int = 0,
    **bounds,
) -> WebhookServer:
    """An HTTP server (not started) that takes webhooks on POST /qbo/webhooks, the runtime and
    the system engine (`request_pulls`) its database.

    `bounds` override the limits (max_body_bytes, socket_timeout_s, request_timeout_s,
    max_workers, max_waiting, linger_s); production uses `limits.py`'s.
    """
    return WebhookServer((host, port), engine, system, verifier_token, **bounds)
