"""A server on a raw socket for the SMTP client's tests: it accepts one connection at a time and
hands it to `session`, which a test server writes byte by byte (what a real server may answer
that the stand-in never does); `ScriptedSmtpServer` is such an SMTP server."""

from __future__ import annotations

import socket
import threading


class RawServer:
    def __init__(self, address: str = "127.0.0.1") -> None:
        self.listener = socket.create_server((address, 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0  # accepted so far
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.connections += 1
            with conn:
                self.session(conn)

    def session(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.listener.close()


ACCEPT = {"MAIL": b"250 OK", "RCPT": b"250 OK", "DATA": b"354 go ahead", "END": b"250 queued"}


class ScriptedSmtpServer(RawServer):
    """An SMTP server over a raw socket, one connection at a time, answering MAIL, RCPT, DATA and
    the message's end from `answers` (changeable between messages; None closes the connection
    without a reply instead). It offers PIPELINING when `pipelining`, and then answers nothing
    until DATA has arrived: a client waiting for each reply before its next command would wait
    for ever. It records every command, the most complete commands one read from the socket
    held, and each message it received."""

    def __init__(self, *, pipelining: bool) -> None:
        self.pipelining = pipelining
        self.answers: dict[str, bytes | None] = dict(ACCEPT)
        self.commands: list[bytes] = []
        self.messages: list[bytes] = []
        self.most_commands_in_one_read = 0
        self.hang_up_after_message = False  # close the connection after answering a message
        super().__init__()

    def session(self, conn: socket.socket) -> None:
        conn.sendall(b"220 scripted.example ESMTP\r\n")
        buffer, waiting, message = b"", [], None
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffer += chunk
            if message is None:
                self.most_commands_in_one_read = max(
                    self.most_commands_in_one_read, chunk.count(b"\r\n")
                )
            while True:
                if message is not None:  # inside the data: up to the lone dot
                    end = buffer.find(b"\r\n.\r\n")
                    if end < 0 and buffer != b".\r\n":
                        break
                    body, buffer = (
                        (b"", buffer[3:]) if end < 0 else (buffer[:end], buffer[end + 5 :])
                    )
                    self.messages.append(body)
                    message = None
                    if self.answers["END"] is None:
                        return  # gone with the message, without a word
                    conn.sendall(self.answers["END"] + b"\r\n")
                    if self.hang_up_after_message:
                        return  # as an idle timeout ends it before the next message
                    continue
                line, found, rest = buffer.partition(b"\r\n")
                if not found:
                    break
                buffer = rest
                self.commands.append(line)
                verb = line[:4].upper()
                if verb == b"EHLO":
                    offered = b"250-PIPELINING\r\n" if self.pipelining else b""
                    conn.sendall(b"250-scripted.example\r\n" + offered + b"250 SIZE 1000000\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                elif verb in (b"MAIL", b"RCPT", b"DATA"):
                    if self.answers[verb.decode()] is None:
                        return  # closed without a word (a restart, an idle timeout)
                    waiting.append(self.answers[verb.decode()])
                    if verb == b"DATA" or not self.pipelining:
                        conn.sendall(b"".join(answer + b"\r\n" for answer in waiting))
                        if waiting[-1].startswith(b"421"):
                            return
                        if verb == b"DATA" and waiting[-1].startswith(b"354"):
                            message = b""
                        waiting = []
                else:  # RSET, NOOP
                    conn.sendall(b"250 OK\r\n")
