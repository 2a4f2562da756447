"""A bounded HTTP receiver for what the internet POSTs to us: QuickBooks' webhooks
(quickbooks/domain/webhooks.py) and the documents a Peppol access point forwards
(intake/domain/peppol_http.py). Each gives a handler (`BoundedHandler` with its `receive`) and the
server keeps it within `limits.py` before the handler reads a byte of the body:

- a body needs a plain Content-Length no larger than the server's `max_body_bytes` (411 when
  missing or sent chunked, 400 when not a number, 413 when too large), refused before it is read;
- one request per connection; a connection idle for `socket_timeout_s`, or whose request has not
  fully arrived after `request_timeout_s`, is closed;
- connections that have not sent anything wait in one selector without a thread (at most
  `max_waiting`); at most `max_workers` requests are read and handled at once; a connection
  beyond either bound is answered 503 at once; one that closes without sending a byte is closed
  there and takes no worker;
- after answering, what the client still sends is read and dropped (bounded), so it reads the
  answer instead of a connection reset.
"""

from __future__ import annotations

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
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from invoice_pipelines import limits

logger = logging.getLogger(__name__)


class Refused(Exception):
    """A request answered with `status` and `reason` without being acted on (`fields`: the
    answer as a JSON object instead of the plain reason)."""

    def __init__(self, status: int, reason: str, fields: dict | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.fields = fields


def declared_length(headers: Message, max_bytes: int = limits.WEBHOOK_MAX_BODY_BYTES) -> int:
    """The body length a request announces; Refused (411/400/413) unless it is one plain number
    no larger than `max_bytes`. Nothing is read: the answer comes from the headers alone."""
    if headers.get_all("Transfer-Encoding"):
        # a chunked body has no length to check in advance; our senders send Content-Length
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


@dataclass(frozen=True)
class Answer:
    """What a handler answers: a status and plain text, or a JSON object when `fields` is given."""

    status: int
    text: str
    fields: dict | None = None


class BoundedHandler(BaseHTTPRequestHandler):
    """One request per connection (HTTP/1.0). A receiver's handler names its `path` and gives
    `receive(body)`, which answers or raises Refused; the body it is given has the length its
    headers announced, within the server's bounds. `admit()` may refuse a request from its
    headers alone, before the body is read."""

    server: BoundedServer
    path_served = "/"
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

    def _answer(self, status: int, text: str, fields: dict | None = None) -> None:
        if fields is None:
            body, kind = (text + "\n").encode(), "text/plain; charset=utf-8"
        else:
            body, kind = (json.dumps(fields) + "\n").encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        try:
            if self.path.split("?")[0] != self.path_served:
                raise Refused(404, "not found")
            self.admit()
            length = declared_length(self.headers, self.server.max_body_bytes)
            body = self.rfile.read(length)
            if len(body) < length:
                raise Refused(400, "body shorter than its Content-Length")
            answer = self.receive(body)
        except Refused as refused:
            answer = Answer(refused.status, refused.reason, refused.fields)
        self._answer(answer.status, answer.text, answer.fields)

    def admit(self) -> None:
        """Refused before the body is read (a receiver whose credentials are in its headers)."""

    def receive(self, body: bytes) -> Answer:
        raise NotImplementedError


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

    def __init__(self, server: BoundedServer, capacity: int) -> None:
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
        self._thread = threading.Thread(target=self._run, name=f"{server.name}-lobby", daemon=True)
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


class BoundedServer(ThreadingHTTPServer):
    """A receiver: bounded connections and threads around its handler (see the module doc).
    `name` says whose it is in the log and the lobby thread's name."""

    daemon_threads = True
    # connections are accepted as fast as they come and sorted out by the lobby
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BoundedHandler],
        *,
        name: str,
        max_body_bytes: int = limits.WEBHOOK_MAX_BODY_BYTES,
        socket_timeout_s: float = limits.WEBHOOK_SOCKET_TIMEOUT_S,
        request_timeout_s: float = limits.WEBHOOK_REQUEST_TIMEOUT_S,
        max_workers: int = limits.WEBHOOK_MAX_WORKERS,
        max_waiting: int = limits.WEBHOOK_MAX_WAITING_CONNECTIONS,
        linger_s: float = limits.WEBHOOK_LINGER_S,
    ) -> None:
        self.name = name
        self.max_body_bytes = max_body_bytes
        self.socket_timeout_s = socket_timeout_s
        self.request_timeout_s = request_timeout_s
        self.linger_s = linger_s
        self._workers = threading.BoundedSemaphore(max_workers)
        # before binding: a failed bind calls server_close, which closes the lobby
        self._lobby = _Lobby(self, max_waiting)
        super().__init__(address, handler)

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
            logger.info("%s: connection from %s dropped: %s", self.name, client_address[0], exc)
        else:
            logger.exception("%s: request from %s failed", self.name, client_address[0])

    def server_close(self) -> None:
        self._lobby.close()
        super().server_close()


def serve_until_interrupted(server: BoundedServer, path: str) -> int:
    """A command's receiver: its URL printed as one JSON line, then served until Ctrl-C or the
    process ends; 0."""
    host, port = server.server_address[:2]
    print(json.dumps({"url": f"http://{host}:{port}{path}"}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
