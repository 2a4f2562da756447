"""A server on a raw socket for the SMTP client's tests: it accepts one connection at a time and
hands it to `session`, which a test server writes byte by byte (what a real server may answer
that the stand-in never does)."""

from __future__ import annotations

import socket
import threading


class RawServer:
    def __init__(self, address: str = "127.0.0.1") -> None:
        self.listener = socket.create_server((address, 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            with conn:
                self.session(conn)

    def session(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.listener.close()
