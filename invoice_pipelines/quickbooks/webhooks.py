"""QBO webhooks: a receiver that only asks for a pull, never trusts the payload's content.

Intuit POSTs change notifications (CloudEvents arrays, or the legacy `eventNotifications` shape)
signed with `intuit-signature`: the base64 HMAC-SHA256 of the raw body keyed with the app's
verifier token (INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN). A notification names a record, not its
content, so the receiver records "pull this organization's customers / items / payments soon"
(`qbo_cursors.pull_requested_at`) and answers 200 at once; `qbo_webhook_sensor` launches the
pull, which reads the changes through CDC like the daily schedules do. Unsigned or wrongly signed
bodies get 401 and change nothing.

The receiver faces the internet, so everything it does before the signature holds is bounded by
`limits.py`:
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
import io
import json
import logging
import selectors
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import Engine, and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from invoice_pipelines import limits
from invoice_pipelines.core.qbo_entities import PULL_FOR
from invoice_pipelines.db.tables import qbo_connections, qbo_webhook_receipts
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.quickbooks.sync.common import write_cursor
from invoice_pipelines.settings import ConfigError

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/qbo/webhooks"


@dataclass(frozen=True)
class Notice:
    realm_id: str
    entity: str  # lower-case QBO entity name
    entity_id: str
    operation: str


class Refused(Exception):
    """A request answered with `status` and `reason` without being acted on."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


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


def declared_length(headers: Message, max_bytes: int = limits.WEBHOOK_MAX_BODY_BYTES) -> int:
    """The body length a request announces; Refused (411/400/413) unless it is one plain number
    no larger than `max_bytes`. Nothing is read: the answer comes from the headers alone."""
    if headers.get_all("Transfer-Encoding"):
        # a chunked body has no length to check in advance; Intuit always sends Content-Length
        raise Refused(411, "send the body with a Content-Length (no Transfer-Encoding)")
    values = headers.get_all("Content-Length") or []
    if not values:
        raise Refused(411, "Content-Length required")
    if len(values) > 1:
        raise Refused(400, "more than one Content-Length")
    text = str(values[0]).strip()
    # isdigit on ASCII only: int() would also take "-1", "+5", " 1_000" and non-ASCII digits
    if not (text.isascii() and text.isdigit()):
        raise Refused(400, "Content-Length is not a number of bytes")
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(max_bytes)) or int(digits) > max_bytes:
        raise Refused(413, f"body larger than {max_bytes} bytes")
    return int(digits)


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
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # two receivers given the same body at once: the second waits for the first's row and skips
    # RETURNING, not rowcount: psycopg 3 under SQLAlchemy 2.1 reports -1 rows for an INSERT
    inserted = conn.execute(
        dialect.insert(qbo_webhook_receipts)
        .values(organization_id=organization_id, body_sha256=delivery, received_at=now)
        .on_conflict_do_nothing(index_elements=["organization_id", "body_sha256"])
        .returning(qbo_webhook_receipts.c.organization_id)
    ).first()
    return inserted is not None


def request_pulls(
    engine: Engine, notices: list[Notice], delivery: str | None = None
) -> dict[int, set[str]]:
    """Mark the pulls the notices call for; {organization id: pulls}. Unknown realms are ignored.

    `delivery` identifies the body (its SHA-256): an organization that already had it within
    WEBHOOK_REPLAY_WINDOW_S is left alone and missing from the result. The receipt and the pull
    request commit together, so a body whose request failed counts as not received.
    """
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


def _plain_response(status: int, reason: str, text: str, extra: str = "") -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.0 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    ).encode() + body


BUSY = _plain_response(
    503,
    "Service Unavailable",
    "busy: too many connections, send it again later\n",
    "Retry-After: 10\r\n",
)


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes until a deadline: each wait is at most `idle_s`, and none goes past the
    request's deadline, so a client trickling a byte every few seconds is cut off too."""

    def __init__(self, sock: socket.socket, idle_s: float, deadline: float) -> None:
        self._sock = sock
        self._idle_s = idle_s
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not complete before its deadline")
        self._sock.settimeout(min(self._idle_s, remaining))
        return self._sock.recv_into(buffer)


def _drain(sock: socket.socket, seconds: float, max_bytes: int) -> None:
    """Read and drop what the client still sends until it closes (bounded): closing a socket with
    unread bytes resets the connection, and the client may lose our answer with it."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return
    deadline = time.monotonic() + seconds
    left = max_bytes
    while left > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            sock.settimeout(remaining)
            chunk = sock.recv(min(65536, left))
        except OSError:  # timeouts included
            return
        if not chunk:
            return
        left -= len(chunk)


class _Handler(BaseHTTPRequestHandler):
    """One request per connection (HTTP/1.0), answered in plain text."""

    server: WebhookServer
    # the stdlib's default (HTTP/0.9) drops the status line from answers to a request whose
    # version was never read, e.g. "HTTP/2.0" refused with 505: every answer here has one
    default_request_version = "HTTP/1.0"

    def setup(self) -> None:
        super().setup()
        # replace the plain socket file with one that keeps the request's deadline
        self.rfile.close()
        deadline = time.monotonic() + self.server.request_timeout_s
        raw = _DeadlineReader(self.connection, self.server.socket_timeout_s, deadline)
        self.rfile = io.BufferedReader(raw)

    def finish(self) -> None:
        super().finish()
        _drain(self.connection, self.server.linger_s, self.server.max_body_bytes)

    def log_message(self, format, *args):  # noqa: A002 - quiet; outcomes are in the database
        pass

    def _answer(self, status: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        try:
            self._answer(200, self._receive())
        except Refused as refused:
            self._answer(refused.status, refused.reason)

    def _receive(self) -> str:
        server = self.server
        if self.path.split("?")[0] != WEBHOOK_PATH:
            raise Refused(404, "not found")
        length = declared_length(self.headers, server.max_body_bytes)
        body = self.rfile.read(length)
        if len(body) < length:
            raise Refused(400, "body shorter than its Content-Length")
        signatures = [str(s) for s in self.headers.get_all("intuit-signature") or []]
        if len(signatures) != 1 or not signature_valid(body, signatures[0], server.verifier_token):
            raise Refused(401, "signature missing or wrong")
        try:
            notices = parse_notices(body)
        except (ValueError, AttributeError, TypeError, RecursionError) as exc:
            raise Refused(400, f"not a QBO notification: {exc}") from None
        try:
            request_pulls(server.engine, notices, hashlib.sha256(body).hexdigest())
        except SQLAlchemyError:
            # not recorded: Intuit redelivers a notification that was not answered 2xx
            logger.exception("QBO webhook: the pull request could not be recorded")
            raise Refused(503, "could not record the notification, send it again later") from None
        return "ok"


def _ended(sock: socket.socket) -> bool:
    """True when a readable connection was closed or reset before sending anything."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class _Lobby:
    """Connections that cost no thread: accepted ones that have not sent a byte yet, and turned-away
    ones read to their end before closing. One thread watches them all; each has a deadline."""

    def __init__(self, server: WebhookServer, capacity: int) -> None:
        self._server = server
        self._capacity = capacity
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        for end in (self._wake_r, self._wake_w):
            end.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._arriving: deque[tuple[socket.socket, tuple, bool]] = deque()
        self._held = 0  # connections arriving or watched
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="qbo-webhooks-lobby", daemon=True)
        self._thread.start()

    def hold(self, sock: socket.socket, address: tuple, *, draining: bool = False) -> bool:
        """Watch `sock` until it sends (then a worker takes it) or, `draining`, until it is done
        sending; False when the lobby is full or closed (the caller closes the socket)."""
        with self._lock:
            if self._closed or self._held >= self._capacity:
                return False
            self._held += 1
            self._arriving.append((sock, address, draining))
        self._wake()
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._wake()
        self._thread.join()
        self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full: a wake-up is pending anyway; closed: nothing to wake
            pass

    def _run(self) -> None:
        # socket -> (address, draining, deadline, bytes it may still send while draining)
        watched: dict[socket.socket, list] = {}
        server = self._server
        try:
            while True:
                now = time.monotonic()
                timeout = max(0.0, min(w[2] for w in watched.values()) - now) if watched else None
                events = self._selector.select(timeout)
                # the wake-ups are read before the arrivals are taken, never after: a connection
                # held in between would leave its wake-up read and itself unwatched until the
                # next deadline (or forever with nothing else watched)
                if any(key.fileobj is self._wake_r for key, _ in events):
                    self._empty_wake_socket()
                with self._lock:
                    if self._closed:
                        return
                    arriving = list(self._arriving)
                    self._arriving.clear()
                now = time.monotonic()
                for sock, address, draining in arriving:
                    wait = server.linger_s if draining else server.socket_timeout_s
                    watched[sock] = [address, draining, now + wait, server.max_body_bytes]
                    self._selector.register(sock, selectors.EVENT_READ)
                for key, _ in events:
                    sock = key.fileobj
                    if sock is not self._wake_r and sock in watched:
                        self._ready(sock, watched)
                now = time.monotonic()
                for sock in [s for s, w in watched.items() if w[2] <= now]:
                    self._forget(sock, watched)
                    server.close_request(sock)
        finally:
            for sock in list(watched):
                self._forget(sock, watched)
                server.close_request(sock)
            self._selector.close()
            self._wake_r.close()

    def _ready(self, sock: socket.socket, watched: dict) -> None:
        address, draining, _deadline, left = watched[sock]
        if not draining:
            self._forget(sock, watched)
            if _ended(sock):
                # it went without sending a byte: no worker, no answer
                self._server.close_request(sock)
            else:
                self._server.dispatch(sock, address)
            return
        try:
            chunk = sock.recv(min(65536, left), socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        watched[sock][3] -= len(chunk)
        if not chunk or watched[sock][3] <= 0:
            self._forget(sock, watched)
            self._server.close_request(sock)

    def _forget(self, sock: socket.socket, watched: dict) -> None:
        del watched[sock]
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        with self._lock:
            self._held -= 1

    def _empty_wake_socket(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:  # BlockingIOError: emptied
            pass


class WebhookServer(ThreadingHTTPServer):
    """The receiver: bounded connections and threads around `_Handler` (see the module doc)."""

    daemon_threads = True
    # connections are accepted as fast as they come and sorted out by the lobby
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        engine: Engine,
        verifier_token: str,
        *,
        max_body_bytes: int = limits.WEBHOOK_MAX_BODY_BYTES,
        socket_timeout_s: float = limits.WEBHOOK_SOCKET_TIMEOUT_S,
        request_timeout_s: float = limits.WEBHOOK_REQUEST_TIMEOUT_S,
        max_workers: int = limits.WEBHOOK_MAX_WORKERS,
        max_waiting: int = limits.WEBHOOK_MAX_WAITING_CONNECTIONS,
        linger_s: float = limits.WEBHOOK_LINGER_S,
    ) -> None:
        if not verifier_token or not verifier_token.strip():
            # HMAC with an empty or blank key is a signature anyone can compute: refuse to start
            raise ConfigError(
                "INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN is empty or blank; set it to the verifier "
                "token of the app's webhooks in Intuit's developer portal"
            )
        self.engine = engine
        self.verifier_token = verifier_token
        self.max_body_bytes = max_body_bytes
        self.socket_timeout_s = socket_timeout_s
        self.request_timeout_s = request_timeout_s
        self.linger_s = linger_s
        self._workers = threading.BoundedSemaphore(max_workers)
        # before binding: a failed bind calls server_close, which closes the lobby
        self._lobby = _Lobby(self, max_waiting)
        super().__init__(address, _Handler)

    def process_request(self, request: socket.socket, client_address: tuple) -> None:
        # the accepting thread: never blocks, never starts a thread itself
        if not self._lobby.hold(request, client_address):
            self._turn_away(request, client_address, drain=False)

    def dispatch(self, request: socket.socket, client_address: tuple) -> None:
        """A connection has sent its first bytes: a worker thread takes it, or it is told 503."""
        if not self._workers.acquire(blocking=False):
            self._turn_away(request, client_address, drain=True)
            return
        try:
            super().process_request(request, client_address)
        except RuntimeError:  # no thread could be started
            self._workers.release()
            self._turn_away(request, client_address, drain=True)

    def process_request_thread(self, request: socket.socket, client_address: tuple) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._workers.release()

    def _turn_away(self, request: socket.socket, client_address: tuple, *, drain: bool) -> None:
        try:
            request.setblocking(False)
            request.send(BUSY)
            request.shutdown(socket.SHUT_WR)
        except OSError:
            drain = False
        if not (drain and self._lobby.hold(request, client_address, draining=True)):
            self.close_request(request)

    def handle_error(self, request: socket.socket, client_address: tuple) -> None:
        # a client that vanished mid-request is routine; anything else goes to the log, never to
        # the client (who has been answered or disconnected) and never as a bare traceback
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            logger.info("QBO webhook connection from %s dropped: %s", client_address[0], exc)
        else:
            logger.exception("QBO webhook request from %s failed", client_address[0])

    def server_close(self) -> None:
        self._lobby.close()
        super().server_close()


def receiver(
    engine: Engine, verifier_token: str, host: str = "127.0.0.1", port: int = 0, **bounds
) -> WebhookServer:
    """An HTTP server (not started) that takes webhooks on POST /qbo/webhooks.

    `bounds` override the limits (max_body_bytes, socket_timeout_s, request_timeout_s,
    max_workers, max_waiting, linger_s); production uses `limits.py`'s.
    """
    return WebhookServer((host, port), engine, verifier_token, **bounds)
