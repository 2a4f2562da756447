"""Every process a test starts dies with the test and with the suite (issue 73, point 9: a `make
test` stopped with Ctrl-C and SIGTERM left a whole `make run` behind, still launching runs).

Two marks, each an environment variable every descendant inherits (a fork and an exec keep the
environment, and /proc/<pid>/environ shows what a process was started with, whatever it did with
its own `os.environ` after), and one way to end what carries a mark (`sweep`: SIGKILL to every
process of ours whose start environment holds it, pass after pass until a pass finds none, so a
child forked during a pass goes in the next):

- `SUITE_MARK`, one per pytest process (the controller and each xdist worker: conftest.py's
  `pytest_configure` calls `guard_this_process`): every process a test starts carries it, unless
  the test builds an environment from nothing. A watchdog (`python -m
  invoice_pipelines_tests.processes`, below) polls this pytest process and, for an xdist worker,
  the controller that started it, and sweeps the mark once either is gone, however it ended
  (Ctrl-C, SIGTERM, SIGKILL, a crash). A worker carries the controller's mark, so a controller
  that dies takes its workers, and their watchdogs then take what the workers started.
- `STARTED_MARK`, one per process a test starts with `start_owned` (the make-run tests' `make
  run`, which starts a webserver, a daemon, a code server and its runs, and stand-ins): in a
  session of its own, so a terminal's Ctrl-C reaches it only through the test, and ended with
  everything below it by `Owned.kill` in the test's finalizer.

Why a watchdog, not PR_SET_PDEATHSIG: the death signal reaches only the direct child (`make`),
whose children then live on as orphans, and it fires when the thread that forked the child ends,
not the process. A watchdog of its own session sees pytest go however it goes, and the mark
finds every descendant wherever it was reparented, a session or group of its own included. The
watchdog carries no mark of its own, so the sweep of a dying controller never ends a worker's
watchdog before it has swept. No timing is asserted anywhere: the watchdog polls every
POLL_SECONDS, and test_interrupted_suite.py waits with a generous bound."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUITE_MARK = "PYTEST_INVOICE_PIPELINES_SUITE"
STARTED_MARK = "PYTEST_INVOICE_PIPELINES_STARTED"
POLL_SECONDS = 0.2
# passes of a sweep at most: each ends what it found; a pass finding none ends the sweep
SWEEP_PASSES = 200


def marked(name: str, token: str) -> Iterator[int]:
    """The pids of our processes (but this one) started with `name=token` in their environment.
    A zombie's environment reads empty: it has ended already."""
    needle = f"{name}={token}".encode()
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read()
        except OSError:  # gone, or not ours
            continue
        if needle in environ.split(b"\0"):
            yield int(entry.name)


def sweep(name: str, token: str) -> int:
    """SIGKILL every process started with `name=token` until a pass finds none; how many. Then
    the temp directories of their own they were started with (`own_temp`) are removed: a process
    killed so cannot remove what it left there (issue 85: an interrupted `make test` left make
    run's folder with the code server's gRPC socket, Dagster's gRPC socket and multiprocessing's
    folder in the system's temp directory)."""
    ended = 0
    temps: set[Path] = set()
    for _ in range(SWEEP_PASSES):
        found = list(marked(name, token))
        if not found:
            break
        for pid in found:
            temps |= own_temp(pid)
            try:
                os.kill(pid, signal.SIGKILL)
                ended += 1
            except ProcessLookupError:
                pass
        time.sleep(0.01)  # let the kernel release what was killed before the next pass reads
    for folder in temps:
        shutil.rmtree(folder, ignore_errors=True)
    return ended


# the prefix of a temp directory a test gives the processes it starts (`own_temp_dir`)
OWN_TEMP_PREFIX = "ip-run-"


def own_temp_dir() -> Path:
    """A temp directory of its own for the processes a test starts (their TMPDIR): short, so a
    socket's path in it fits a socket address, and removed by the sweep that ends them."""
    return Path(tempfile.mkdtemp(prefix=OWN_TEMP_PREFIX))


def own_temp(pid: int) -> set[Path]:
    """The temp directory of its own (`own_temp_dir`) a process was started with, if any."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return set()
    for entry in environ:
        if entry.startswith(b"TMPDIR="):
            folder = Path(os.fsdecode(entry[len(b"TMPDIR=") :]))
            if folder.name.startswith(OWN_TEMP_PREFIX):
                return {folder}
    return set()


def _started(pid: int) -> str | None:
    """A process's start time (field 22 of its stat), None when it is gone or a zombie: with the
    pid it names one process, never a later one given the same pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def watch(token: str, watched: list[tuple[int, str]]) -> None:
    """Poll the watched processes ((pid, start time) each); once one is gone, sweep the suite's
    mark `token` and return."""
    while all(_started(pid) == started for pid, started in watched):
        time.sleep(POLL_SECONDS)
    sweep(SUITE_MARK, token)


def guard_this_process() -> str:
    """Mark what this pytest process starts from now on and start its watchdog; the mark."""
    token = uuid.uuid4().hex
    watched = [os.getpid()]
    if os.environ.get("PYTEST_XDIST_WORKER"):
        watched.append(os.getppid())  # the controller: a worker outlives it only by accident
    pairs = [f"{pid}:{_started(pid)}" for pid in watched]
    env = {k: v for k, v in os.environ.items() if k != SUITE_MARK}
    subprocess.Popen(
        [sys.executable, "-m", "invoice_pipelines_tests.processes", token, *pairs],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # out of the terminal's process group: Ctrl-C is not for it
        cwd=Path(__file__).resolve().parents[1],
    )
    os.environ[SUITE_MARK] = token
    return token


@dataclass
class Owned:
    """A process a test started with `start_owned`, and the mark its descendants carry."""

    proc: subprocess.Popen
    token: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> int:
        """End it and everything below it, wherever reparented: its session's process group,
        then the mark's sweep; reaps it. How many processes the sweep ended."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        ended = sweep(STARTED_MARK, self.token)
        self.proc.kill()
        self.proc.wait(timeout=60)
        return ended


def start_owned(argv: list[str], *, env: dict[str, str], **popen) -> Owned:
    """`subprocess.Popen(argv, ...)` in a session of its own (its pid its process group's and
    session's id), its environment marked for `Owned.kill` and for the suite's watchdog."""
    token = uuid.uuid4().hex
    marked_env = {**env, STARTED_MARK: token}
    if SUITE_MARK in os.environ:
        marked_env[SUITE_MARK] = os.environ[SUITE_MARK]
    proc = subprocess.Popen(argv, env=marked_env, start_new_session=True, **popen)
    return Owned(proc, token)


def _main(argv: list[str]) -> None:
    # the watchdog: no Ctrl-C or hang-up ends it before it has swept
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    token, *pairs = argv
    watched = [(int(pid), started) for pid, started in (p.split(":", 1) for p in pairs)]
    watch(token, watched)


if __name__ == "__main__":
    _main(sys.argv[1:])
