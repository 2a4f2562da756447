"""An HTTP stand-in's server on 127.0.0.1 in a thread of the test's process: `with Stand(...) as
s:` serves on `s.url` (a free port unless one is given) until the block ends."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet request handler that answers JSON."""

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class LoopbackServer:
    """Serves `handler` (a request handler class) on 127.0.0.1; a subclass gives the handler what
    it shares with the test (e.g. its outbox) as class attributes through `shared`."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], port: int = 0, **shared: object
    ) -> None:
        bound = type("Handler", (handler,), shared)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), bound)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
