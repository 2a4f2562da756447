"""A real IMAP server on loopback for tests, the demo and `bench mailbox`: Dovecot (Debian's
`dovecot-imapd`, standins/dovecot.py), a process of its own on a free port with one account, its
configuration and maildir in a folder of its own.

Dovecot rather than pymap (the pure-Python server the first version ran): the mailbox benchmark
measured the server, not the reader. With pymap a 300-message read took 17.8 s of which the
reader's own CPU was 4.0 s, and a tick over 10,000 mailboxes read about 350 of them in its 8 s.
Dovecot is a widely run production IMAP server, speaks IMAP4rev1 with UIDPLUS, MOVE, LIST-STATUS
and kept keywords, and starts in about 0.3 s (at load 10). Messages reach it as they reach any
mailbox: by APPEND (`deliver`), which is what a delivery agent does.

`ImapServer.relay` puts a small TCP relay in front of the server that counts the commands sent
through it, and can close the connection once the client asks for a message's body (the
"connection dropped mid-fetch" a flaky server produces, over a real socket) or hide a capability
(a server without LIST-STATUS).
"""

from __future__ import annotations

import imaplib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from invoice_pipelines_devtools.standins import dovecot

USER = "invoices"
PASSWORD = "local-imap-password"
START_SECONDS = 20.0


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
    relays: list[Relay] = field(default_factory=list)
    config: Path | None = None
    keep: bool = False  # the folder is the caller's (the demo's mail across restarts)

    def client(self, timeout: float = 10) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=timeout)
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

    def make_folders(self, names: list[str]) -> None:
        """Empty folders made in the server's maildir as an administrator's provisioning would:
        thousands in a second, where a CREATE each takes minutes (the benchmark's 10,000
        mailboxes)."""
        if self.config is None:
            raise RuntimeError("only a Dovecot stand-in's folders can be made on disk")
        account = self.config.parent / "mail" / self.user
        owner = account.parent.stat()
        made = []
        for name in names:
            for sub in ("cur", "new", "tmp"):
                (account / name / sub).mkdir(parents=True, exist_ok=True)
            made.append(account / name)
        if os.geteuid() == 0:
            for path in [account, *made, *(p / s for p in made for s in ("cur", "new", "tmp"))]:
                os.chown(path, owner.st_uid, owner.st_gid)

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
        return self.relay(drop_on=b"BODY.PEEK[]").port

    def relay(self, drop_on: bytes | None = None, hide: bytes | None = None) -> Relay:
        """A relay in front of the server (module docstring), started."""
        relay = Relay(self.host, self.port, drop_on=drop_on, hide=hide)
        relay.start()
        self.relays.append(relay)
        return relay

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.config is not None and not self.keep:
            shutil.rmtree(self.config.parent, ignore_errors=True)


def start_imap_server(
    user: str = USER, password: str = PASSWORD, port: int | None = None, root: Path | None = None
) -> ImapServer:
    """Start Dovecot on 127.0.0.1 and wait until it answers (at most START_SECONDS). `root`: the
    folder for its configuration and mail, kept after `stop` (a new temporary one without)."""
    port = port or free_port()
    config = dovecot.prepare(root, port, {user: password})
    process = dovecot.start(config)
    server = ImapServer(port, process, user, password, config=config, keep=root is not None)
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            server.client().logout()
            return server
        except (OSError, imaplib.IMAP4.error):
            if process.poll() is not None or time.monotonic() > deadline:
                why = dovecot.last_log_lines(config)
                server.stop()
                raise RuntimeError(
                    f"the IMAP stand-in (Dovecot) did not start on port {port}: {why or 'no log'}"
                ) from None
            time.sleep(0.05)


class Relay:
    """A TCP relay to the server that counts the commands clients send through it (`commands`:
    LOGIN, SELECT, UID FETCH ...), closes both sides when a client sends `drop_on`, and removes
    `hide` from what the server answers (a capability the server then seems to lack)."""

    def __init__(
        self, host: str, port: int, drop_on: bytes | None = None, hide: bytes | None = None
    ) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.drop_on, self.hide = drop_on, hide
        self.dropped = 0
        self.commands: Counter[str] = Counter()
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

    def _pipe(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client:
                    for command in _COMMAND.findall(data):
                        self.commands[command.decode().upper()] += 1
                    if self.drop_on and self.drop_on in data:
                        self.dropped += 1
                        break
                elif self.hide:
                    data = data.replace(self.hide, b"")
                sink.sendall(data)
        except OSError:
            pass
        for side in (source, sink):
            try:
                side.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            side.close()


# a command line: its tag, then the command (with UID, its sub-command)
_COMMAND = re.compile(rb"^[A-Za-z0-9]+ ((?:UID )?[A-Za-z-]+)", re.MULTILINE)
