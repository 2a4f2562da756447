"""A real IMAP server on loopback for tests, the demo and `bench mailbox`: pymap (pure Python,
its in-memory backend) in a process of its own on a free port, with one account.

pymap rather than Dovecot: it installs from PyPI with the dev extra (no system package, no
configuration files, no root), starts in about a third of a second, and speaks IMAP4rev1 with
UIDPLUS and MOVE, which is what the production reader (imaplib) uses. Messages reach it as they
reach any mailbox: by APPEND (`deliver`), which is what a mail server's delivery agent does.

`ImapServer.drop_after` puts a small TCP relay in front of the server that closes the connection
once the client asks for a message's body: the "connection dropped mid-fetch" a flaky server
produces, over a real socket.
"""

from __future__ import annotations

import imaplib
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

USER = "invoices"
PASSWORD = "local-imap-password"
START_SECONDS = 20.0


# pymap keeps its accounts' passwords as PBKDF2 with 500,000 rounds (no passlib): a third of a
# second of CPU for every login, which would make 10,000 logins a tick a benchmark of that hash.
# The stand-in's one account is a test account on loopback: its password is kept as it is.
_LAUNCH = """
import pymap.config
from pysasl.hashing import Cleartext
pymap.config.IMAPConfig._get_hash_context = classmethod(lambda cls, cfg: Cleartext())
from pymap.main import main
main()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ImapServer:
    """The running server: where it listens, its account, and a client for the test's side."""

    port: int
    process: subprocess.Popen
    user: str = USER
    password: str = PASSWORD
    host: str = "127.0.0.1"
    relays: list[DroppingRelay] = field(default_factory=list)

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(self.user, self.password)
        return client

    def deliver(self, raw: bytes, folder: str = "INBOX") -> int:
        """Put a message into a folder, as a delivery agent does; its UID."""
        client = self.client()
        try:
            client.create(f'"{folder}"')
            status, data = client.append(f'"{folder}"', None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND refused: {data!r}")
            return int(data[0].split(b"]")[0].split()[-1])  # [APPENDUID <validity> <uid>]
        finally:
            client.logout()

    def uids(self, folder: str = "INBOX", criteria: str = "ALL") -> list[int]:
        client = self.client()
        try:
            status, _ = client.select(f'"{folder}"')
            if status != "OK":
                return []
            _, data = client.uid("SEARCH", None, criteria)
            return [int(x) for x in b" ".join(data).split()]
        finally:
            client.logout()

    def drop_after_body_request(self) -> int:
        """A relay's port: a connection through it is closed once the client fetches a body."""
        relay = DroppingRelay(self.host, self.port)
        relay.start()
        self.relays.append(relay)
        return relay.port

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_imap_server(
    user: str = USER, password: str = PASSWORD, port: int | None = None
) -> ImapServer:
    """Start pymap on 127.0.0.1 and wait until it answers (at most START_SECONDS)."""
    port = port or free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-c", _LAUNCH,
            "--host", "127.0.0.1", "--port", str(port), "--no-tls",
            "dict", "--demo-user", user, "--demo-password", password,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = ImapServer(port, process, user, password)
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            server.client().logout()
            return server
        except (OSError, imaplib.IMAP4.error):
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("the IMAP stand-in (pymap) did not start") from None
            time.sleep(0.05)


class DroppingRelay:
    """A TCP relay to the server that closes both sides when the client sends `BODY.PEEK[]`."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.dropped = 0
        self._stopped = False

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopped = True
        self.listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, watch: bool) -> None:
        try:
            while data := source.recv(65536):
                if watch and b"BODY.PEEK[]" in data:
                    self.dropped += 1
                    break
                sink.sendall(data)
        except OSError:
            pass
        for side in (source, sink):
            try:
                side.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            side.close()
