"""A run taken from the queue while its code server cannot be reached goes back to the queue and
runs once the server is back (dagster.yaml: `max_user_code_failure_retries: 3`,
`user_code_failure_retry_delay: 10`), instead of failing at once as Dagster's default 0 has it.

What happened before (a CI run of test_make_run_stop.py): `make run` was being stopped, its code
server had already gone, and the daemon took a backfill's run from the queue one second later;
Dagster marked it failed ("Caught an unrecoverable error while dequeuing the run"), and it never
ran after the restart. The same happens to any run leaving the queue while a code server restarts
or is redeployed.

Here, through Dagster's own processes: the instance is the repository's run coordinator block as
it is (our `OrganizationRunCoordinator`, its retries and delay), a run is queued while the code
server serves, the server is stopped, `dagster-daemon run` starts and takes the run from the
queue (the server is unreachable: the run is queued again, with Dagster's engine event), the
server starts again on the same socket, and the run ends in SUCCESS. Every wait is bounded and
every process is stopped at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._grpc.client import DagsterGrpcClient

from invoice_pipelines_tests.test_code_server import FINISHED, REPO, TARGET, stop_group
from invoice_pipelines_tests.test_make_run import _default_signals

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600, method="signal")]

REQUEUED = "Run dequeue failed to reach the user code server, re-submitting the run"
NOT_RETRIED = "Caught an unrecoverable error while dequeuing the run"


class Stack:
    """A Dagster home with the repository's run coordinator, a code server and a daemon."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = folder / "s.sock"
        self.workspace = folder / "workspace.yaml"
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(folder / "home"),
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "CODE_SERVER_PROBE_DIR": str(folder / "probes"),
        }
        self.processes: list[subprocess.Popen] = []
        self.server: subprocess.Popen | None = None

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.folder / "home"))

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        with (self.folder / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                args,
                env=self.env,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_default_signals,
            )
        self.processes.append(process)
        return process

    def start_server(self) -> None:
        self.server = self._start(
            "server",
            [sys.executable, "-m", "invoice_pipelines.code_server", "code-server", "start",
             "--socket", str(self.socket), "-m", TARGET, "-d", str(REPO),
             "--location-name", "probe"],
        )  # fmt: skip
        client = DagsterGrpcClient(socket=str(self.socket), host="localhost")
        deadline = time.monotonic() + 180
        while True:
            try:
                if client.health_check_query() == "SERVING":
                    return
            except Exception:  # not listening yet
                pass
            assert self.server.poll() is None, self.log("server")
            assert time.monotonic() < deadline, self.log("server")
            time.sleep(0.5)

    def stop_server(self) -> None:
        assert self.server is not None
        stop_group(self.server)
        self.socket.unlink(missing_ok=True)

    def start_daemon(self) -> None:
        self._start(
            "daemon",
            [str(Path(sys.executable).with_name("dagster-daemon")), "run",
             "-w", str(self.workspace)],
        )  # fmt: skip

    def queue(self, job: str) -> str:
        """What `dagster job launch -w <workspace>` runs: with a queued run coordinator, the
        run is submitted to the queue (no daemon runs yet, so it stays there)."""
        from dagster._cli.job import execute_launch_command
        from dagster_shared.cli import WorkspaceOpts

        run = execute_launch_command(
            instance=self.instance(),
            workspace_opts=WorkspaceOpts(workspace=[str(self.workspace)]),
            job_name=job,
        )
        return run.run_id

    def engine_messages(self, run_id: str) -> list[str]:
        records = (
            self.instance()
            .get_records_for_run(run_id=run_id, of_type=DagsterEventType.ENGINE_EVENT)
            .records
        )
        return [r.event_log_entry.message or "" for r in records]

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def the_repositorys_run_coordinator() -> dict:
    return yaml.safe_load((REPO / "dagster.yaml").read_text())["run_coordinator"]


@pytest.fixture
def stack() -> Iterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="ip-dq-", dir="/tmp"))  # a socket path is short
    for name in ("home", "probes", "storage"):
        (folder / name).mkdir()
    home = {
        "telemetry": {"enabled": False},
        "storage": {"sqlite": {"base_dir": str(folder / "storage")}},
        "run_coordinator": the_repositorys_run_coordinator(),
    }
    (folder / "home" / "dagster.yaml").write_text(yaml.safe_dump(home))
    (folder / "workspace.yaml").write_text(
        f"load_from:\n  - grpc_server:\n      socket: {folder / 's.sock'}\n"
        "      host: localhost\n      location_name: probe\n"
    )
    result = Stack(folder)
    try:
        yield result
    finally:
        left = [cmd for process in reversed(result.processes) for cmd in stop_group(process)]
        shutil.rmtree(folder, ignore_errors=True)
        assert not left, f"still running after the stop: {left}"


def test_a_run_dequeued_while_its_code_server_is_down_runs_when_it_is_back(stack: Stack):
    coordinator = the_repositorys_run_coordinator()
    assert coordinator["class"] == "OrganizationRunCoordinator"  # ours, as `make run` has it
    delay = coordinator["config"]["user_code_failure_retry_delay"]
    stack.start_server()
    run_id = stack.queue("where_job")
    assert stack.instance().get_run_by_id(run_id).status == DagsterRunStatus.QUEUED
    stack.stop_server()

    stack.start_daemon()
    # the daemon takes the run (STARTING while it tries to launch it), cannot reach the server,
    # says so and puts the run back in the queue; Dagster's default would have failed it here
    deadline = time.monotonic() + 180
    while True:
        run = stack.instance().get_run_by_id(run_id)
        requeued = any(REQUEUED in m for m in stack.engine_messages(run_id))
        assert run.status in (DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING), (
            run.status,
            stack.engine_messages(run_id),
            stack.log("daemon"),
        )
        if requeued and run.status == DagsterRunStatus.QUEUED:
            break
        assert time.monotonic() < deadline, ("never queued again", stack.log("daemon"))
        time.sleep(0.2)

    stack.start_server()
    deadline = time.monotonic() + 4 * delay + 180
    while (run := stack.instance().get_run_by_id(run_id)).status not in FINISHED:
        assert time.monotonic() < deadline, (run.status, stack.log("daemon"))
        time.sleep(0.5)
    messages = stack.engine_messages(run_id)
    assert run.status == DagsterRunStatus.SUCCESS, (messages, stack.log("daemon"))
    assert not any(NOT_RETRIED in m for m in messages), messages
    # the run did its work: its step wrote its probe
    assert list((stack.folder / "probes").glob(f"where-{run_id}.json"))
