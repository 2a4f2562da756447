"""The simulator on HTTP: a threaded server on 127.0.0.1, QBO's and Intuit OAuth's paths, the
/_sim control endpoints, and `QboSimulator`, which runs it in a thread (or, for benchmarks, hands
out the same controls over HTTP to a simulator in another process: `SimulatorControl`)."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from invoice_pipelines_devtools.qbo_simulator import persistence, wire
from invoice_pipelines_devtools.qbo_simulator.api import (
    JSON,
    XML,
    CompanyHandle,
    Outcome,
    Simulator,
)
from invoice_pipelines_devtools.qbo_simulator.auth import TokenSettings
from invoice_pipelines_devtools.qbo_simulator.limits import Limits
from invoice_pipelines_devtools.qbo_simulator.wire import Fault

LOOPBACK = "127.0.0.1"
DISCOVERY_PATHS = (
    "/.well-known/openid_configuration",
    "/.well-known/openid-configuration",
    "/.well-known/openid_sandbox_configuration",
)

# Intuit's discovery document names /v2/oauth2/tokens/revoke (node-quickbooks' default REVOKE_URL);
# ours names the v1 path: both revoke
REVOKE_PATHS = ("/oauth2/v1/tokens/revoke", "/v2/oauth2/tokens/revoke")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "QBO-Simulator/1"
    sim: Simulator

    def log_message(self, format, *args):  # noqa: A002 - the request log is in /_sim/requests
        pass

    def setup(self) -> None:
        super().setup()
        # answers are one write each; without this, Nagle and delayed ACKs add 40 ms per call
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def _body(self, limit: int) -> bytes:
        """The body as sent; BodyTooLarge past `limit`, before reading the rest."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                total += size
                if total > limit:
                    raise wire.BodyTooLarge(f"the request body is more than {limit} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise wire.BodyTooLarge(f"the request body is more than {limit} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, outcome: Outcome) -> None:
        if outcome.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        outcome.headers.setdefault("intuit_tid", str(uuid.uuid4()))
        self.send_response(outcome.status)
        if outcome.status != 302:
            self.send_header("Content-Type", outcome.content_type)
        self.send_header("Content-Length", str(len(outcome.body)))
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        if self.close_connection and "Connection" not in outcome.headers:
            # the client asked to close (python-quickbooks does on uploads): say so, or it may
            # keep the connection in its pool and send its next request into a closed socket
            self.send_header("Connection", "close")
        # headers and body leave in one write (end_headers would flush the headers alone)
        self._headers_buffer.append(b"\r\n" + outcome.body)
        self.flush_headers()

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        api = path.startswith("/v3/company/")
        if api:
            headers["accept"] = wire.effective_accept(headers.get("accept"), params.get("format"))
        sim = self.sim
        limit = wire.MAX_REQUEST_BYTES
        if api and path.endswith("/upload"):
            # a file of the largest size QBO takes, base64-encoded as some clients send it
            limit = max(limit, 2 * sim.limits.upload_max_bytes + wire.MAX_REQUEST_BYTES)
        try:
            body = wire.decode_body(
                self._body(limit), headers.get("content-encoding"), max_bytes=limit
            )
            if api and method == "POST" and "xml" in (headers.get("content-type") or "").lower():
                body = wire.dumps(wire.xml_request(body))
        except wire.BodyTooLarge as exc:
            # the rest of a body too large is never read: the connection cannot carry another
            # request, and the client must be told so (without the header it sends its next
            # request on it and finds it closed without an answer)
            self.close_connection = True
            self._send(
                Outcome(413, f"{exc}\n".encode(), "text/plain", headers={"Connection": "close"})
            )
            return
        except ValueError as exc:
            self._send(_fault(sim, wire.invalid_body(str(exc)), headers, api))
            return
        try:
            if api:
                outcome = _as_asked(
                    sim.handle_api(method, path, url.query, params, body, headers), headers
                )
            elif path.startswith("/attachments/") and method == "GET":
                outcome = sim.attachment_file(path, params)
            elif path.startswith("/_sim"):
                outcome = _control(sim, method, path, params, body)
            elif path in DISCOVERY_PATHS and method == "GET":
                outcome = Outcome(200, wire.dumps(sim.discovery()))
            elif path == "/oauth2/v1/tokens/bearer" and method == "POST":
                form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
                outcome = sim.token(headers.get("authorization"), form, path)
            elif path in REVOKE_PATHS and method == "POST":
                outcome = sim.revoke(headers.get("authorization"), _revoke_body(body, headers))
            elif path == "/connect/oauth2" and method == "GET":
                outcome = sim.authorize(params)
            elif path == "/oauth2/v1/keys":
                outcome = Outcome(200, wire.dumps({"keys": []}))
            elif path == "/v1/openid_connect/userinfo":
                outcome = Outcome(200, wire.dumps({"sub": "simulated-user"}))
            else:
                outcome = Outcome(404, wire.dumps({"error": f"no such path {path}"}))
        except Exception as exc:  # an unforeseen error is QBO's 500, never a dead thread
            fault = wire.server_error(500)
            fault.detail = f"{fault.detail} ({type(exc).__name__}: {exc})"
            outcome = _fault(sim, fault, headers, api)
        try:
            self._send(outcome)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _fault(sim: Simulator, fault: Fault, headers: dict, api: bool) -> Outcome:
    """A fault raised before a company is known (bad body, unforeseen error), stamped in QBO's
    default US Pacific offset."""
    stamp = wire.response_time(sim.clock.now(), wire.parse_offset("-07:00"))
    if api and wire.wants_xml(headers.get("accept")):
        return Outcome(fault.status, wire.fault_xml(fault, stamp), XML)
    return Outcome(fault.status, wire.fault_json(fault, stamp))


def _as_asked(outcome: Outcome, headers: dict) -> Outcome:
    """An API answer in XML when the client did not ask for JSON (QBO's default); faults come in
    the asked-for format already, and so does a 429 QBO sends as XML whatever was asked."""
    if (
        outcome.drop
        or outcome.status >= 400
        or not outcome.body
        or outcome.content_type != JSON
        or not wire.wants_xml(headers.get("accept"))
    ):
        return outcome
    payload = wire.loads(outcome.body)
    if not isinstance(payload, dict):
        return outcome
    return Outcome(outcome.status, wire.xml_response(payload), XML, outcome.headers, outcome.drop)


def _revoke_body(body: bytes, headers: dict) -> bytes:
    """The revocation's JSON body: intuit-oauth posts {"token": ...} as JSON, node-quickbooks the
    same field form-encoded."""
    if "x-www-form-urlencoded" in (headers.get("content-type") or "").lower():
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        return json.dumps({"token": form.get("token")}).encode()
    return body


def _control(sim: Simulator, method: str, path: str, params: dict, body: bytes) -> Outcome:
    """/_sim/...: the test controls; JSON in, JSON out, 400 with {"error"} on bad input."""
    try:
        payload = json.loads(body) if body.strip() else {}
        args = {**params, **payload} if isinstance(payload, dict) else dict(params)
        result = _control_call(sim, method, path.removeprefix("/_sim").strip("/"), args)
    except (KeyError, ValueError, TypeError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        return Outcome(400, wire.dumps({"error": str(message)}))
    except Fault as fault:
        return Outcome(fault.status, wire.dumps({"Fault": fault.fault()}))
    return Outcome(200, wire.dumps(result))


def _control_call(sim: Simulator, method: str, name: str, args: dict) -> Any:
    realm = args.get("realm_id")
    if name == "companies" and method == "POST":
        return sim.create_company(**args).as_dict()
    if name == "companies":
        return [
            {"realm_id": c.realm_id, "name": c.name, "tz_offset": c.tz_offset}
            for c in sim.companies.values()
        ]
    if name == "faults" and method == "POST":
        sim.inject(
            realm,
            args["fault"],
            int(args.get("count", 1)),
            args.get("path_contains"),
            None if args.get("seconds") is None else float(args["seconds"]),
            bool(args.get("xml", False)),
        )
        return sim.pending_faults(realm)
    if name == "faults" and method == "DELETE":
        sim.clear_faults(realm)
        return []
    if name == "faults":
        return sim.pending_faults(realm)
    if name == "edit":
        return sim.edit_as_user(realm, args["entity"], str(args["id"]), args.get("changes", {}))
    if name == "records" and method == "POST":
        return sim.create_as_user(realm, args["entity"], args.get("fields", {}))
    if name == "records":
        return sim.records(realm, args["entity"])
    if name == "deleted":
        return sim.deleted(realm, args["entity"])
    if name == "clock":
        if method == "POST":
            if args.get("freeze"):
                sim.clock.freeze()
            if args.get("unfreeze"):
                sim.clock.unfreeze()
            if args.get("advance"):
                sim.advance(float(args["advance"]))
        return {"now": sim.clock.now(), "time_scale": sim.clock.time_scale}
    if name == "requests":
        limit = int(args["limit"]) if args.get("limit") else None
        return sim.requests(realm, limit)
    if name == "config" and method == "POST":
        settings = {k: v for k, v in args.items() if k != "realm_id"}
        return sim.configure(realm, **settings)
    if name == "config":
        return sim.settings(realm)
    if name == "webhooks" and method == "POST":
        sim.configure_webhook(
            realm,
            args.get("url"),
            args.get("verifier_token", ""),
            args.get("format", "cloudevents"),
        )
        return {"configured": bool(args.get("url"))}
    if name == "webhooks":
        return [d for d in sim.webhooks.deliveries if realm is None or d["realm_id"] == realm]
    if name == "expire-tokens":
        return {"expired": sim.expire_access_tokens(realm)}
    if name == "stats":
        return sim.stats(realm)
    if name == "reset" and method == "POST":
        sim.reset(realm)
        return {"reset": realm or "all"}
    raise KeyError(f"no control {method} /_sim/{name}")


class SimulatorUrls:
    """The addresses a client needs, from `base_url` (http://127.0.0.1:PORT)."""

    base_url: str

    @property
    def api_url(self) -> str:
        """QBO's `.../v3` base: requests go to f"{api_url}/company/{realm}/..."."""
        return f"{self.base_url}/v3"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/v1/tokens/bearer"

    @property
    def revoke_url(self) -> str:
        return f"{self.base_url}/oauth2/v1/tokens/revoke"

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid_configuration"

    @property
    def authorization_url(self) -> str:
        return f"{self.base_url}/connect/oauth2"


class QboSimulator(SimulatorUrls):
    """The simulator on http://127.0.0.1:port in a thread of this process.

    `with QboSimulator(port=0, time_scale=1.0) as sim:` then `sim.base_url`, `sim.token_url`,
    `sim.discovery_url`, `sim.create_company(...)` and the test controls below.
    """

    def __init__(
        self,
        port: int = 0,
        time_scale: float = 1.0,
        data_dir: str | Path | None = None,
        limits: Limits | None = None,
        token_settings: TokenSettings | None = None,
        request_timeout: float = 120.0,
    ) -> None:
        self.sim = Simulator(time_scale, limits, token_settings, request_timeout)
        self.data_dir = Path(data_dir) if data_dir else None
        if self.data_dir is not None:
            persistence.load(self.sim, self.data_dir)
        handler = type("Handler", (_Handler,), {"sim": self.sim})
        self._server = _Server((LOOPBACK, port), handler)
        self.sim.base_url = self.base_url
        self._threads: list[threading.Thread] = []
        self._saver_stop = threading.Event()

    # ---- life cycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> QboSimulator:
        serve = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="qbo-simulator",
            daemon=True,
        )
        serve.start()
        self._threads.append(serve)
        if self.data_dir is not None:
            saver = threading.Thread(
                target=self._save_loop, name="qbo-simulator-saver", daemon=True
            )
            saver.start()
            self._threads.append(saver)
        return self

    def stop(self) -> None:
        self.sim.closing.set()
        self.sim.webhooks.stop()
        self._saver_stop.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.data_dir is not None:
            persistence.save(self.sim, self.data_dir)

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the CLI)."""
        self.start()
        try:
            # in steps: a join without a timeout let SIGTERM's KeyboardInterrupt wait until the
            # server thread ended (never) whenever the signal reached another thread first
            while self._threads[0].is_alive():
                self._threads[0].join(timeout=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> QboSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _save_loop(self) -> None:
        while not self._saver_stop.wait(1.0):
            if self.sim.changed.is_set():
                self.sim.changed.clear()
                persistence.save(self.sim, self.data_dir)

    # ---- test controls (the same as /_sim over HTTP) ------------------------------------

    def create_company(self, realm_id: str | None = None, **options: Any) -> CompanyHandle:
        return self.sim.create_company(realm_id, **options)

    def inject(
        self,
        realm_id: str,
        fault: str,
        count: int = 1,
        path_contains: str | None = None,
        seconds: float | None = None,
        xml: bool = False,
    ) -> None:
        self.sim.inject(realm_id, fault, count, path_contains, seconds, xml)

    def clear_faults(self, realm_id: str | None = None) -> None:
        self.sim.clear_faults(realm_id)

    def edit_as_user(self, realm_id: str, entity: str, entity_id: str, changes: dict) -> dict:
        return self.sim.edit_as_user(realm_id, entity, str(entity_id), changes)

    def create_as_user(self, realm_id: str, entity: str, fields: dict) -> dict:
        return self.sim.create_as_user(realm_id, entity, fields)

    def records(self, realm_id: str, entity: str) -> list[dict]:
        return self.sim.records(realm_id, entity)

    def deleted(self, realm_id: str, entity: str) -> list[str]:
        return self.sim.deleted(realm_id, entity)

    def advance(self, seconds: float) -> float:
        return self.sim.advance(seconds)

    def now(self) -> float:
        return self.sim.clock.now()

    def requests(self, realm_id: str | None = None, limit: int | None = None) -> list[dict]:
        return self.sim.requests(realm_id, limit)

    def stats(self, realm_id: str) -> dict:
        return self.sim.stats(realm_id)

    def configure(self, realm_id: str | None = None, **settings: Any) -> dict:
        return self.sim.configure(realm_id, **settings)

    def expire_access_tokens(self, realm_id: str | None = None) -> int:
        return self.sim.expire_access_tokens(realm_id)

    def configure_webhook(
        self, realm_id: str, url: str | None, verifier_token: str = "", fmt: str = "cloudevents"
    ) -> None:
        """POST each change of the company to `url` (loopback), signed with the verifier token;
        `fmt` "cloudevents" (an array of CloudEvents) or "legacy" (eventNotifications)."""
        self.sim.configure_webhook(realm_id, url, verifier_token, fmt)

    def webhook_deliveries(self, realm_id: str | None = None, wait: float = 5.0) -> list[dict]:
        """What was sent (status, attempts, body), once the queue is empty."""
        self.sim.webhooks.idle(wait)
        return [d for d in self.sim.webhooks.deliveries if realm_id in (None, d["realm_id"])]

    def reset(self, realm_id: str | None = None) -> None:
        self.sim.reset(realm_id)


class SimulatorControl(SimulatorUrls):
    """The test controls of a simulator running elsewhere (another process), over /_sim."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, name: str, payload: dict | None = None, **params: Any) -> Any:
        query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
        url = f"{self.base_url}/_sim/{name}" + (f"?{query}" if query else "")
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return wire.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ValueError(exc.read().decode()) from None

    def create_company(self, realm_id: str | None = None, **options: Any) -> CompanyHandle:
        return CompanyHandle(**self.call("POST", "companies", {"realm_id": realm_id, **options}))

    def inject(self, realm_id: str, fault: str, count: int = 1, **options: Any) -> None:
        self.call(
            "POST", "faults", {"realm_id": realm_id, "fault": fault, "count": count, **options}
        )

    def edit_as_user(self, realm_id: str, entity: str, entity_id: str, changes: dict) -> dict:
        payload = {"realm_id": realm_id, "entity": entity, "id": entity_id, "changes": changes}
        return self.call("POST", "edit", payload)

    def create_as_user(self, realm_id: str, entity: str, fields: dict) -> dict:
        return self.call(
            "POST", "records", {"realm_id": realm_id, "entity": entity, "fields": fields}
        )

    def records(self, realm_id: str, entity: str) -> list[dict]:
        return self.call("GET", "records", realm_id=realm_id, entity=entity)

    def advance(self, seconds: float) -> float:
        return self.call("POST", "clock", {"advance": seconds})["now"]

    def requests(self, realm_id: str | None = None, limit: int | None = None) -> list[dict]:
        return self.call("GET", "requests", realm_id=realm_id, limit=limit)

    def stats(self, realm_id: str) -> dict:
        return self.call("GET", "stats", realm_id=realm_id)

    def configure(self, realm_id: str | None = None, **settings: Any) -> dict:
        return self.call("POST", "config", {"realm_id": realm_id, **settings})

    def clear_faults(self, realm_id: str | None = None) -> None:
        self.call("DELETE", "faults", realm_id=realm_id)

    def deleted(self, realm_id: str, entity: str) -> list[str]:
        return self.call("GET", "deleted", realm_id=realm_id, entity=entity)

    def now(self) -> float:
        return self.call("GET", "clock")["now"]

    def expire_access_tokens(self, realm_id: str | None = None) -> int:
        return self.call("POST", "expire-tokens", {"realm_id": realm_id})["expired"]

    def reset(self, realm_id: str | None = None) -> None:
        self.call("POST", "reset", {"realm_id": realm_id})
