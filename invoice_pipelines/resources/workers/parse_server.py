"""A pool of warm workers that outlives the runs using it: the parse server.

Warming a worker (a fresh interpreter compiling the schematrons) costs seconds; a pool that lives
only as long as one intake run pays that in every run. With `keep_warm_seconds=N` on a
`WorkerPoolResource` (the intake's `DocumentParser`, the documents' `DocumentRenderer`) the runs
of a code location share one pool instead, held by a parse server process (one per `ServerSpec`:
what the workers run, how they warm up, their limits):

- **Started lazily** by the first run (or anything else using the resource) that finds none: a
  process of its own session, so it outlives the run that started it. A file lock makes sure two
  runs starting at once start one server. It listens on a Unix socket in a directory only our user
  can enter (`server_dir`, default `<tmp>/invoice-pipelines-parse-<uid>`); the socket's name is a
  fingerprint of everything that decides how a document is parsed (the interpreter and its path,
  our code's files, the installed parser libraries, the worker settings, INVOICE_PIPELINES_*
  variables), so a run never uses a server that would parse differently, and a new code version
  gets a server of its own while the old one idles out.
- **Shared safely**: every connection's documents go into one queue; each of the server's slots
  (one per worker) parses one document at a time in its own `WorkerPool` with one worker, so a
  document that hangs, crashes its worker or runs out of memory fails alone and that worker is
  replaced, exactly as in a run's own pool. Each outcome goes back to the connection that sent the
  document; two runs at once each get their own outcomes, in their order.
- **Health**: a client says hello and gets the server's fingerprint back (a dead or foreign
  socket is replaced); while documents of a connection wait or are parsed, the server tells it so
  every HEARTBEAT_SECONDS. A client that hears nothing for CLIENT_SILENCE_SECONDS, or loses the
  connection, takes the server for dead (`ServerGone`, with the outcomes it has): the resource
  parses the rest in a pool of its own. Nothing is lost, and nothing is recorded twice: the server
  only parses; what is recorded is decided by the run, once per document.
- **Stopped cleanly** after `idle_seconds` without a connection or a document, on SIGTERM or
  SIGINT (`stop_server`), and when its directory or socket disappears: it stops its workers and
  removes its socket. A server that dies is started again by the next run that needs one.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import pickle
import queue
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from invoice_pipelines.limits import PARSE_WORKER_MEMORY_BYTES
from invoice_pipelines.resources.workers.worker_pool import Pickled, WorkerPool
from invoice_pipelines.settings import DEFAULT_MAX_UPLOAD_BYTES

log = logging.getLogger(__name__)

PROTOCOL = 3
# how long the code location's pool stays warm without work (the document_parser resource's
# keep_warm_seconds in definitions.py)
KEEP_WARM_SECONDS = 600.0
HEARTBEAT_SECONDS = 2.0
# a client that hears nothing for this long (no outcome, no heartbeat) takes the server for dead
CLIENT_SILENCE_SECONDS = 30.0
# how long a client waits for a server it started to answer (an interpreter and our imports)
SERVER_START_SECONDS = 60.0
# the libraries whose versions decide how a document is parsed
PARSER_LIBRARIES = ("saxonche", "lxml", "factur-x", "pypdf", "pdfminer.six")


class ServerUnavailable(RuntimeError):
    """No parse server could be reached or started (the caller uses a pool of its own)."""


class ServerGone(RuntimeError):
    """The connection to the parse server broke or went silent during a batch or a stream.

    `in_flight`: every batch taken from the stream whose outcomes were not yet handed out, in
    stream order, as (its number in the stream, counted from 0; its outcomes so far, None for each
    document without one). `results` is the first of them (parse_many's one batch), [] when there
    was none."""

    def __init__(
        self,
        message: str,
        results: list[Any],
        in_flight: list[tuple[int, list[Any]]] | None = None,
    ) -> None:
        super().__init__(message)
        self.results = results
        self.in_flight = in_flight if in_flight is not None else [(0, results)]


@dataclass(frozen=True)
class ServerSpec:
    """What the server's workers run and how (the fields of a `WorkerPoolResource`; `target`,
    `warm_up` and `failure` as `WorkerPool` takes them)."""

    target: str
    workers: int = 2
    timeout_s: float = 30.0
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    memory_bytes: int = PARSE_WORKER_MEMORY_BYTES
    idle_seconds: float = 600.0
    start_timeout_s: float = 120.0
    warm_up: str = ""  # e.g. compile the schematrons as each worker starts
    failure: str = ""


def default_server_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"invoice-pipelines-parse-{os.getuid()}"


def private_dir(path: Path) -> Path:
    """`path` as a directory only we can enter: created 0700, refused when it is a symbolic link,
    someone else's or open to others (another user could then talk to our server, or put a socket
    of theirs in its place)."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ServerUnavailable(f"{path} is not a directory of ours")
    if info.st_mode & 0o077:
        raise ServerUnavailable(f"{path} is open to other users (mode {oct(info.st_mode & 0o777)})")
    return path


@functools.cache
def _code_stamp() -> list:
    """Name, size and modification time of every Python file of our package, as this process
    first sees them (about when it imported them: the code it runs)."""
    root = Path(__file__).resolve().parents[2]
    stamp = []
    for path in sorted(root.rglob("*.py")):
        info = path.stat()
        stamp.append([str(path.relative_to(root)), info.st_size, info.st_mtime_ns])
    return stamp


def _library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PARSER_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def fingerprint(spec: ServerSpec) -> str:
    """Everything that decides how the server parses a document, as a short hex digest."""
    settings = {
        name: value
        for name, value in os.environ.items()
        if name.startswith("INVOICE_PIPELINES_") or name in ("PYTHONPATH", "OMP_THREAD_LIMIT")
    }
    described = {
        "protocol": PROTOCOL,
        "python": sys.executable,
        "path": sys.path,
        "spec": asdict(spec),
        "settings": sorted(settings.items()),
        "code": _code_stamp(),
        "libraries": _library_versions(),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class ServerPaths:
    directory: Path
    name: str

    @property
    def socket(self) -> Path:
        return self.directory / f"{self.name}.sock"

    @property
    def lock(self) -> Path:
        return self.directory / f"{self.name}.lock"

    @property
    def pid(self) -> Path:
        return self.directory / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.log"


def server_paths(spec: ServerSpec, directory: str | Path | None = None) -> ServerPaths:
    paths = ServerPaths(
        private_dir(Path(directory) if directory else default_server_dir()), fingerprint(spec)
    )
    if len(os.fsencode(paths.socket)) > MAX_SOCKET_PATH:
        raise ServerUnavailable(f"the socket path {paths.socket} is too long for a Unix socket")
    return paths


MAX_SOCKET_PATH = 100  # bytes; Linux allows 107 in sockaddr_un


# --- client --------------------------------------------------------------------------------------


_END: Any = object()  # marks the end of a stream


@dataclass
class _InFlight:
    """A batch of a stream sent to the server (or being sent) whose outcomes are not yet all
    handed out."""

    number: int  # in the stream, from 0
    results: list[Any]
    waiting: int  # documents without an outcome


class ParseServerClient:
    """One connection to the parse server: `parse_many` like `WorkerPool`'s, and `parse_stream`
    (the next batch sent while one is collected). Not thread-safe (the resource runs one batch
    or stream at a time per instance)."""

    def __init__(self, conn: Connection, hello: dict, paths: ServerPaths) -> None:
        self._conn = conn
        self.hello = hello
        self.paths = paths
        self._next_index = 0  # documents are numbered per connection, never twice
        self._slots: dict[int, tuple[_InFlight, int]] = {}  # index -> its batch and place there

    @property
    def server_pid(self) -> int:
        return int(self.hello["pid"])

    @classmethod
    def connect(
        cls, spec: ServerSpec, directory: str | Path | None = None, *, start: bool = True
    ) -> ParseServerClient:
        """A connection to the server for `spec`, starting one if none answers (`start`).
        ServerUnavailable when there is none to be had."""
        try:
            paths = server_paths(spec, directory)
        except OSError as exc:
            raise ServerUnavailable(f"no directory for the parse server: {exc}") from exc
        client = cls._try(paths)
        if client is not None or not start:
            if client is None:
                raise ServerUnavailable(f"no parse server at {paths.socket}")
            return client
        with _locked(paths.lock):
            # whoever held the lock before us may have started it meanwhile
            client = cls._try(paths)
            if client is None:
                _start_server(spec, paths)
                deadline = time.monotonic() + SERVER_START_SECONDS
                while client is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                    client = cls._try(paths)
        if client is None:
            raise ServerUnavailable(
                f"the parse server did not answer within {SERVER_START_SECONDS:g} s "
                f"(its log: {paths.log})"
            )
        return client

    @classmethod
    def _try(cls, paths: ServerPaths) -> ParseServerClient | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(5.0)
            sock.connect(str(paths.socket))
            sock.settimeout(None)
        except OSError:
            sock.close()
            return None
        conn = Connection(sock.detach())
        try:
            conn.send(("hello", PROTOCOL, paths.name))
            if not conn.poll(10.0):
                raise EOFError("no answer")
            tag, hello = conn.recv()
        except (EOFError, OSError, ValueError, TypeError):
            conn.close()
            return None
        if tag != "hello" or hello.get("fingerprint") != paths.name:
            conn.close()
            return None
        return cls(conn, hello, paths)

    def parse_many(self, items: Sequence[tuple[bytes, str]]) -> list[Any]:
        """Outcomes in input order; ServerGone (with the outcomes received) when the server
        stops answering."""
        [outcomes] = self.parse_stream([items])
        return outcomes

    def parse_stream(self, batches: Iterable[Sequence[tuple[bytes, str]]]) -> Iterator[list[Any]]:
        """Each batch's outcomes in input order, batch after batch, with the next batch already
        sent while one is collected: batch k+1 is taken from `batches` and sent before the
        outcomes of batch k are awaited, so the server's workers have it queued while the last
        documents of batch k are parsed and while the caller handles them. At most two batches
        are taken and not yet handed out at any time (the one collected and the one after it).

        Documents are numbered on this connection, never twice, so an outcome of a stream the
        caller gave up on (its documents are still parsed by the server) is told apart and
        dropped. ServerGone when the server stops answering: its `in_flight` names every batch
        taken and not yet handed out, with the outcomes received (None where there is none)."""
        source = iter(batches)
        flight: deque[_InFlight] = deque()
        number = 0
        more = True
        while True:
            while more and len(flight) < 2:
                items = next(source, _END)  # the caller reads a batch here
                if items is _END:
                    more = False
                    break
                flight.append(_InFlight(number, [None] * len(items), len(items)))
                number += 1
                self._send_batch(flight, items)
                del items  # the caller decides how long the bytes live
            if not flight:
                return
            self._collect(flight)
            yield flight.popleft().results  # type: ignore[misc]

    def _send_batch(self, flight: deque[_InFlight], items: Sequence[tuple[bytes, str]]) -> None:
        batch = flight[-1]
        try:
            for slot, (data, filename) in enumerate(items):
                index = self._next_index
                self._next_index += 1
                self._slots[index] = (batch, slot)
                self._conn.send(("parse", index, data, filename))
        except (OSError, ValueError) as exc:
            raise self._gone(f"the connection to the parse server broke ({exc!r})", flight) from exc

    def _collect(self, flight: deque[_InFlight]) -> None:
        """Receive outcomes until the first batch of `flight` has all of its own (those of the
        batch after it are kept as they arrive)."""
        batch = flight[0]
        try:
            while batch.waiting:
                if not self._conn.poll(CLIENT_SILENCE_SECONDS):
                    raise self._gone(
                        f"the parse server said nothing for {CLIENT_SILENCE_SECONDS:g} s", flight
                    )
                message = self._conn.recv()
                if message[0] in ("outcome", "pickled"):
                    tag, index, outcome = message
                    # (None: a document of a stream given up on)
                    found = self._slots.pop(index, None)
                    if found is not None:
                        if tag == "pickled":  # the worker's (item, outcome), relayed unread
                            outcome = pickle.loads(outcome)[1]
                        owner, slot = found
                        owner.results[slot] = outcome
                        owner.waiting -= 1
        except (EOFError, OSError, ValueError) as exc:
            raise self._gone(f"the connection to the parse server broke ({exc!r})", flight) from exc

    def _gone(self, message: str, flight: deque[_InFlight]) -> ServerGone:
        self._slots.clear()
        in_flight = [(batch.number, batch.results) for batch in flight]
        return ServerGone(message, in_flight[0][1] if in_flight else [], in_flight)

    def wait_ready(self, timeout_s: float) -> list[str]:
        """Block until the server's workers are warm (they warm up as it starts); the start
        problems, if any. ServerGone when the server does not answer in time."""
        try:
            self._conn.send(("ready", timeout_s))
            deadline = time.monotonic() + timeout_s + CLIENT_SILENCE_SECONDS
            while time.monotonic() < deadline:
                if not self._conn.poll(min(CLIENT_SILENCE_SECONDS, timeout_s + 5)):
                    break
                message = self._conn.recv()
                if message[0] == "ready":
                    return list(message[1])
        except (EOFError, OSError, ValueError) as exc:
            raise ServerGone(f"the connection to the parse server broke ({exc!r})", []) from exc
        raise ServerGone("the parse server did not say whether its workers are warm", [])

    def close(self) -> None:
        try:
            self._conn.send(("bye",))
        except (OSError, ValueError):
            pass
        self._conn.close()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def owner_pid() -> int:
    """The process whose end ends a server we start: the parent of this one. For a run that
    Dagster's default run launcher started, that is the code location's server process."""
    return os.getppid()


def _process_start(pid: int) -> str | None:
    """When a process started (its /proc start time), "" where /proc is missing, None when it is
    gone: a pid reused by another process is not the owner."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if not Path("/proc/self/stat").exists():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return ""
        return None
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()[19]


def _start_server(spec: ServerSpec, paths: ServerPaths) -> None:
    try:
        paths.socket.unlink()  # a dead server's socket (the lock is ours: no live one listens)
    except FileNotFoundError:
        pass
    with open(paths.log, "ab") as logfile:
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from invoice_pipelines.resources.workers.parse_server import _server_entry; _server_entry()",
                json.dumps(asdict(spec)),
                str(paths.directory),
                paths.name,
                json.dumps(sys.path),
                str(owner_pid()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            close_fds=True,
            # a session of its own: it outlives the run that started it, and a signal to the
            # run's process group does not reach it
            start_new_session=True,
        )


def stop_server(spec: ServerSpec, directory: str | Path | None = None, wait_s: float = 30.0):
    """Stop the server for `spec` (SIGTERM; it finishes nothing new, stops its workers and removes
    its socket); True when one was running."""
    paths = server_paths(spec, directory)
    return _stop_pid_file(paths, wait_s)


def stop_servers(directory: str | Path | None = None, wait_s: float = 30.0) -> int:
    """Stop every parse server of `directory`; how many were running."""
    folder = Path(directory) if directory else default_server_dir()
    stopped = 0
    for pid_file in sorted(folder.glob("*.pid")):
        stopped += _stop_pid_file(ServerPaths(folder, pid_file.stem), wait_s)
    return stopped


def _stop_pid_file(paths: ServerPaths, wait_s: float) -> bool:
    try:
        pid = int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return False
    client = ParseServerClient._try(paths)
    if client is None:  # not ours any more (a stale pid file): leave that process alone
        return False
    pid = client.server_pid
    client.close()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # our child (tests): reap it
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- server --------------------------------------------------------------------------------------


class _Client:
    """The server's end of one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pending = 0  # documents queued or being parsed
        self.closed = False
        self._send_lock = threading.Lock()
        self._count_lock = threading.Lock()

    def send(self, message: tuple) -> None:
        with self._send_lock:
            if self.closed:
                return
            try:
                self.conn.send(message)
            except (OSError, ValueError):
                self.closed = True

    def add(self, n: int) -> None:
        with self._count_lock:
            self.pending += n


@dataclass
class _Job:
    client: _Client
    index: int
    data: bytes
    filename: str


class _Server:
    def __init__(self, spec: ServerSpec, paths: ServerPaths, owner: int | None = None) -> None:
        self.spec = spec
        self.paths = paths
        self.owner = owner
        self.owner_start = _process_start(owner) if owner else None
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.clients: set[_Client] = set()
        self.clients_lock = threading.Lock()
        self.stopping = threading.Event()
        self.last_activity = time.monotonic()
        self.parsers = [
            WorkerPool(
                workers=1,
                timeout_s=spec.timeout_s,
                max_bytes=spec.max_bytes,
                target=spec.target,
                memory_bytes=spec.memory_bytes,
                start_timeout_s=spec.start_timeout_s,
                warm_up=spec.warm_up,
                failure=spec.failure,
            )
            for _ in range(spec.workers)
        ]
        self.warm = [threading.Event() for _ in self.parsers]  # each slot's worker is warm
        self.start_problems: list[str] = []

    def serve(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.paths.socket.unlink()
        except FileNotFoundError:
            pass
        listener.bind(str(self.paths.socket))
        os.chmod(self.paths.socket, 0o600)
        listener.listen(64)
        listener.settimeout(1.0)
        self.paths.pid.write_text(str(os.getpid()))
        for parser in self.parsers:
            parser.start()  # all workers warm up at once, before the first document arrives
        slots = [
            threading.Thread(target=self._slot, args=(parser, warm), daemon=True, name=f"slot-{i}")
            for i, (parser, warm) in enumerate(zip(self.parsers, self.warm, strict=True))
        ]
        for slot in slots:
            slot.start()
        threading.Thread(target=self._heartbeat, daemon=True, name="heartbeat").start()
        log.info("parse server %s: %d workers, pid %d", self.paths.name, len(slots), os.getpid())
        try:
            while not self.stopping.is_set():
                try:
                    sock, _ = listener.accept()
                except TimeoutError:
                    if self._idle_too_long() or not self._socket_is_ours() or self._orphaned():
                        break
                    continue
                except OSError as exc:
                    if exc.errno == errno.EINTR:
                        continue
                    raise
                sock.settimeout(None)
                client = _Client(Connection(sock.detach()))
                with self.clients_lock:
                    self.clients.add(client)
                    self.last_activity = time.monotonic()
                threading.Thread(target=self._receive, args=(client,), daemon=True).start()
        finally:
            self.stopping.set()
            listener.close()
            if self._socket_is_ours():
                for path in (self.paths.socket, self.paths.pid):
                    try:
                        path.unlink()
                    except FileNotFoundError:
                        pass
            for _ in slots:
                self.jobs.put(None)
            with self.clients_lock:
                for client in self.clients:
                    client.closed = True
                    client.conn.close()
            for slot in slots:
                slot.join(self.spec.timeout_s + 5)
            for parser in self.parsers:
                parser.close()
            log.info("parse server %s stopped", self.paths.name)

    def _orphaned(self) -> bool:
        """The process that owns us (the code location's server) has ended."""
        if not self.owner:
            return False
        # (gone before we looked: the start time was None from the first)
        return self.owner_start is None or _process_start(self.owner) != self.owner_start

    def _socket_is_ours(self) -> bool:
        try:
            return int(self.paths.pid.read_text().strip()) == os.getpid()
        except (OSError, ValueError):
            return False

    def _idle_too_long(self) -> bool:
        with self.clients_lock:
            busy = bool(self.clients) or not self.jobs.empty()
            if busy:
                self.last_activity = time.monotonic()
            return not busy and time.monotonic() - self.last_activity > self.spec.idle_seconds

    def _receive(self, client: _Client) -> None:
        try:
            tag, protocol, name = client.conn.recv()
            if tag != "hello" or protocol != PROTOCOL or name != self.paths.name:
                return
            client.send(
                (
                    "hello",
                    {
                        "pid": os.getpid(),
                        "fingerprint": self.paths.name,
                        "workers": [pid for p in self.parsers for pid in p.process_ids()],
                    },
                )
            )
            while not self.stopping.is_set():
                message = client.conn.recv()
                if message[0] == "parse":
                    _, index, data, filename = message
                    client.add(1)
                    self.jobs.put(_Job(client, index, data, filename))
                elif message[0] == "ready":
                    # (in a thread of its own: the connection's documents keep arriving)
                    threading.Thread(
                        target=self._answer_ready, args=(client, float(message[1])), daemon=True
                    ).start()
                elif message[0] == "bye":
                    return
        except (EOFError, OSError, ValueError, TypeError):
            return
        finally:
            client.closed = True  # documents it still had queued are dropped, not parsed
            client.conn.close()
            with self.clients_lock:
                self.clients.discard(client)
                self.last_activity = time.monotonic()

    def _answer_ready(self, client: _Client, timeout_s: float) -> None:
        """Tell the client once every slot's worker has warmed up (or could not start)."""
        deadline = time.monotonic() + timeout_s
        for warm in self.warm:
            warm.wait(max(0.0, deadline - time.monotonic()))
        problems = list(self.start_problems)
        if not all(warm.is_set() for warm in self.warm):
            problems.append(f"the parse workers did not warm up within {timeout_s:g} s")
        client.send(("ready", problems))

    def _slot(self, parser: WorkerPool, warm: threading.Event) -> None:
        try:
            # what the first document would wait for anyway; `ready` requests wait for it
            self.start_problems.extend(parser.wait_ready())
        finally:
            warm.set()
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                if job.client.closed:
                    continue
                # a worker's answer is relayed as its pickle: read once, by the client
                [outcome] = parser.parse_many([(job.data, job.filename)], pickled=True)
                if isinstance(outcome, Pickled):
                    job.client.send(("pickled", job.index, bytes(outcome)))
                else:
                    job.client.send(("outcome", job.index, outcome))
            except Exception:  # never lose the slot: the client hears of it as a failure
                log.exception("parse server slot: document %s", job.filename)
                job.client.closed = True
                job.client.conn.close()
            finally:
                job.client.add(-1)
                with self.clients_lock:
                    self.last_activity = time.monotonic()

    def _heartbeat(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            with self.clients_lock:
                waiting = [c for c in self.clients if c.pending > 0]
            for client in waiting:
                client.send(("alive",))


def _server_entry() -> None:
    """`python -c ... SPEC_JSON DIRECTORY NAME SYS_PATH_JSON OWNER_PID`: serve until idle,
    stopped, or the owner's end."""
    spec = ServerSpec(**json.loads(sys.argv[1]))
    paths = ServerPaths(Path(sys.argv[2]), sys.argv[3])
    for entry in reversed(json.loads(sys.argv[4])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = _Server(spec, paths, owner=int(sys.argv[5]))

    def stop(signum, frame) -> None:
        server.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # (the client that started us holds the start lock until we answer, so no second server for
    # this fingerprint starts meanwhile)
    server.serve()
