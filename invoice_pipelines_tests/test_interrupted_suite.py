"""The suite cleans up after itself (issue 73, point 9; processes.py): a pytest that is stopped,
however it is stopped, leaves none of the processes its tests started.

Each case runs tests of interrupted_target.py in a pytest of its own (in a session of its own,
as `make test` in a terminal), with a probe in its environment that everything it starts
inherits, then stops it as a person or CI does and looks in /proc/*/environ until no process
carries the probe. No timing is asserted: each wait is a generous bound."""

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
from pathlib import Path

import pytest

from invoice_pipelines_tests.processes import Owned, marked, start_owned, sweep
from invoice_pipelines_tests.test_make_run import START_SECONDS

REPO = Path(__file__).resolve().parents[1]
PROBE = "PYTEST_INTERRUPTED_SUITE_PROBE"
GONE_SECONDS = 120  # a bound for the end of everything after the stop, not a measurement
SERVICES = ("dagster-webserver", "dagster-daemon", "code-server")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:300]
    except OSError:
        return ""


class Inner:
    """A pytest of its own running one test of interrupted_target.py, and its probe."""

    def __init__(self, tmp_path: Path, test: str, *, workers: int) -> None:
        self.probe = uuid.uuid4().hex
        self.log = tmp_path / "inner-pytest.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST"))
        }
        env[PROBE] = self.probe
        # a system temp directory of its own, to see what the stopped suite leaves there (a
        # short path: make run's code server socket must fit a socket address)
        self.temp = Path(tempfile.mkdtemp(prefix="ip-suite-"))
        env["TMPDIR"] = str(self.temp)
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s"]
        argv += ["-n", str(workers)] if workers else ["-p", "no:xdist"]
        argv.append(f"invoice_pipelines_tests/interrupted_target.py::{test}")
        with self.log.open("wb") as out:
            self.owned: Owned = start_owned(
                argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def probed(self) -> dict[int, str]:
        """Every live process carrying this pytest's probe: pid -> command line."""
        return {pid: _cmdline(pid) for pid in marked(PROBE, self.probe)}

    def wait_for(self, *names: str, seconds: float) -> dict[int, str]:
        """The probed processes once each of `names` is in one's command line."""
        deadline = time.monotonic() + seconds
        while True:
            found = self.probed()
            if all(any(n in line for line in found.values()) for n in names):
                return found
            assert self.owned.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, f"{names} not started:\n{self.output()}"
            time.sleep(1)

    def assert_all_gone(self) -> None:
        deadline = time.monotonic() + GONE_SECONDS
        while (left := self.probed()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, "left behind:\n" + "\n".join(f"{p} {c}" for p, c in left.items())

    def left_in_temp(self) -> list[str]:
        """What is in its temp directory but pytest's own folder."""
        return [p.name for p in self.temp.iterdir() if not p.name.startswith("pytest-of-")]

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        """Whatever the test did, nothing of the inner pytest outlives it."""
        self.owned.kill()
        sweep(PROBE, self.probe)
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture
def inner(tmp_path: Path) -> Iterator[list[Inner]]:
    started: list[Inner] = []
    try:
        yield started
    finally:
        for each in started:
            each.close()


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


@pytest.mark.timeout(1200, method="signal")
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_ctrl_c_then_sigterm_to_make_test_leaves_no_make_run_behind(tmp_path, inner):
    """`make test` (pytest with a worker) while a make-run test has its demo up: Ctrl-C (SIGINT
    to the terminal's process group, which `make run` in a session of its own does not get),
    then SIGTERM to the group. Nothing of the `make run` is left: webserver, daemon, code server,
    runs, stand-ins, and neither pytest nor its watchdogs."""
    suite = Inner(tmp_path, "test_make_run_until_interrupted", workers=1)
    inner.append(suite)
    up = suite.wait_for(*SERVICES, seconds=START_SECONDS + 120)
    assert len(up) > len(SERVICES), up
    _signal_group(suite.owned.pid, signal.SIGINT)
    time.sleep(0.5)  # the scenario: the finalizers have begun when SIGTERM comes
    _signal_group(suite.owned.pid, signal.SIGTERM)
    suite.assert_all_gone()
    assert suite.owned.proc.wait(timeout=GONE_SECONDS) != 0
    # nor make run's folder with the code server's gRPC socket: only pytest's own temp folder,
    # which pytest keeps and rotates (issue 85)
    deadline = time.monotonic() + GONE_SECONDS
    while (left := suite.left_in_temp()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == []


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("workers", [0, 1], ids=["pytest", "xdist-controller"])
def test_a_killed_pytest_leaves_no_process_its_tests_started(tmp_path, inner, workers):
    """SIGKILL to pytest (alone, or the xdist controller while its worker runs the test): no
    finalizer runs, and the process the test started in a session of its own still ends, by the
    watchdog (with a worker: the controller's watchdog ends the worker, the worker's its
    process)."""
    suite = Inner(tmp_path, "test_a_process_of_its_own_session_until_killed", workers=workers)
    inner.append(suite)
    suite.wait_for("sleep", seconds=300)
    os.kill(suite.owned.pid, signal.SIGKILL)
    suite.assert_all_gone()
