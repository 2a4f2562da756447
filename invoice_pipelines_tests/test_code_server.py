"""`make run`'s code server (invoice_pipelines/code_server.py): Dagster's `code-server start`, whose
runs start from a process that has imported the code location already (multiprocessing's
forkserver) instead of a fresh interpreter. Through Dagster's own commands and run launcher: a
run launched against it runs in a process forked from that warm process, with the code location
imported by that process; a bulk run gets a lower CPU priority; a run is still terminated as
Dagster terminates runs; and stopping the server ends the warm process too. Before the change
(Dagster's spawn), a run's parent was the `api grpc` process, which had to import the code
location in every run's process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._grpc.client import DagsterGrpcClient

from invoice_pipelines.code_server import BULK_NICENESS, _code_module
from invoice_pipelines.dagster_internals.instance import instance_modules
from invoice_pipelines_tests.test_make_run import _default_signals

REPO = Path(__file__).resolve().parents[1]
TARGET = "invoice_pipelines_tests.code_server_target"
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def test_the_code_module_is_read_from_dagsters_arguments():
    assert _code_module(["api", "grpc", "--socket", "s", "-m", "a.b", "-d", "."]) == "a.b"
    assert _code_module(["api", "grpc", "--module-name", "a.b"]) == "a.b"
    assert _code_module(["api", "grpc", "--module-name=a.b"]) == "a.b"
    assert _code_module(["api", "grpc", "-f", "defs.py"]) is None


def test_the_warm_process_imports_the_classes_the_instance_names(monkeypatch):
    from dagster._core.instance.ref import InstanceRef

    monkeypatch.setenv("INVOICE_PIPELINES_DAGSTER_DIR", "/nonexistent")
    monkeypatch.setenv("INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR", "/nonexistent")
    modules = instance_modules(InstanceRef.from_dir(str(REPO)))  # the repository's dagster.yaml
    assert "invoice_pipelines.lib.run_coordinator" in modules
    assert "dagster._core.storage.sqlite_storage" in modules
    assert "dagster._core.storage.local_compute_log_manager" in modules
    assert instance_modules(None) == []


class Server:
    def __init__(self, folder: Path, process: subprocess.Popen, env: dict[str, str]) -> None:
        self.folder = folder
        self.process = process
        self.env = env
        self.probes = folder / "probes"
        self.workspace = folder / "workspace.yaml"
        self.stopping = False  # asked to stop: not handed to another test

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.folder / "home"))

    def launch(self, job: str, tags: dict[str, str] | None = None) -> str:
        """The run id of `job`, launched by what Dagster's `dagster job launch -w <workspace>`
        runs (its run launcher: this server), called here instead of in a process of its own."""
        from dagster._cli.job import execute_launch_command
        from dagster_shared.cli import WorkspaceOpts

        run = execute_launch_command(
            instance=self.instance(),
            workspace_opts=WorkspaceOpts(workspace=[str(self.workspace)]),
            job_name=job,
            tags=json.dumps(tags) if tags else None,
        )
        return run.run_id

    def probe(self, name: str, run_id: str, timeout: float = 120) -> dict:
        path = self.probes / f"{name}-{run_id}.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert time.monotonic() < deadline, f"no {path.name}: {self.log()}"
            time.sleep(0.2)
        return json.loads(path.read_text())

    def status(self, run_id: str, timeout: float = 120) -> DagsterRunStatus:
        deadline = time.monotonic() + timeout
        while True:
            run = self.instance().get_run_by_id(run_id)
            if run is not None and run.status in FINISHED:
                return run.status
            assert time.monotonic() < deadline, f"run {run_id} still {run and run.status}"
            time.sleep(0.3)

    def log(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")[-3000:]


def _group(pgid: int) -> list[str]:
    out = subprocess.run(["ps", "-e", "-o", "pgid=,stat=,args="], capture_output=True, text=True)
    rows = [line.split(None, 2) for line in out.stdout.splitlines()]
    return [r[2] for r in rows if len(r) == 3 and r[0] == str(pgid) and not r[1].startswith("Z")]


def stop_group(process: subprocess.Popen) -> list[str]:
    """Stop a process started in a session of its own, as Dagster stops its servers (SIGTERM,
    SIGKILL after 30 s), and wait up to 30 s for its whole group; what of the group was still
    running then (and was killed)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    deadline = time.monotonic() + 30
    while _group(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _group(process.pid)
    if left:
        os.killpg(process.pid, signal.SIGKILL)
    return left


@contextmanager
def _started_server() -> Iterator[Server]:
    folder = Path(tempfile.mkdtemp(prefix="ip-cs-", dir="/tmp"))  # a socket path is short
    (folder / "home").mkdir()
    (folder / "home" / "dagster.yaml").write_text(  # launched at once: no daemon here
        "telemetry:\n  enabled: false\nrun_coordinator:\n"
        "  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
    )
    (folder / "probes").mkdir()
    socket = folder / "s.sock"
    (folder / "workspace.yaml").write_text(
        f"load_from:\n  - grpc_server:\n      socket: {socket}\n      host: localhost\n"
        "      location_name: probe\n"
    )
    env = {
        **os.environ,
        "DAGSTER_HOME": str(folder / "home"),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "CODE_SERVER_PROBE_DIR": str(folder / "probes"),
    }
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "invoice_pipelines.code_server", "code-server", "start",
             "--socket", str(socket), "-m", TARGET, "-d", str(REPO), "--location-name", "probe"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            # as `make run` starts it: Dagster's code server copies SIGINT's handling to SIGTERM
            # at start, so from a pytest started with SIGINT ignored it would ignore SIGTERM too
            preexec_fn=_default_signals,
        )  # fmt: skip
    result = Server(folder, process, env)
    try:
        # what `dagster api grpc-health-check --socket ...` asks, asked from here
        client = DagsterGrpcClient(socket=str(socket), host="localhost")
        deadline = time.monotonic() + 180
        while client.health_check_query() != "SERVING":
            assert process.poll() is None, result.log()
            assert time.monotonic() < deadline, result.log()
            time.sleep(0.5)
        yield result
    finally:
        left = stop_group(process)
        shutil.rmtree(folder, ignore_errors=True)
        assert not left, f"still running after the server's stop: {left}"


@pytest.fixture(scope="module")
def _servers() -> Iterator[tuple[ExitStack, list[Server]]]:
    """One code server for the module's tests (a start imports Dagster and the code location in
    two processes), a new one after a test that asked it to stop; each stopped at the end."""
    with ExitStack() as stack:
        yield stack, []


@pytest.fixture
def server(_servers: tuple[ExitStack, list[Server]]) -> Server:
    stack, started = _servers
    if not started or started[-1].stopping:
        started.append(stack.enter_context(_started_server()))
    return started[-1]


def test_a_run_starts_from_the_warm_process_and_ends_as_dagster_ends_runs(server: Server):
    run_id = server.launch("where_job")
    assert server.status(run_id) == DagsterRunStatus.SUCCESS, server.log()
    where = server.probe("where", run_id)
    # forked from the warm process, which imports the code location (its preload): not a fresh
    # interpreter that is the `api grpc` server's child (Dagster's spawn)
    assert "multiprocessing.forkserver" in where["parent_cmdline"], where
    assert TARGET in where["parent_cmdline"], where

    # a second run gets a process of its own
    again = server.launch("where_job")
    assert server.status(again) == DagsterRunStatus.SUCCESS
    assert server.probe("where", again)["pid"] != where["pid"]

    # a bulk run (the share `bulk`) gets a lower CPU priority than the others (and the server)
    bulk = server.launch("bulk_job", tags={"invoice_pipelines/share": "bulk"})
    assert server.status(bulk) == DagsterRunStatus.SUCCESS, server.log()
    lowered = server.probe("bulk", bulk)["niceness"]
    assert lowered == min(where["niceness"] + BULK_NICENESS, 19) > where["niceness"]

    # a run is terminated as Dagster terminates runs (its launcher asks the server to)
    waiting = server.launch("waiting_job")
    probe = server.probe("waiting", waiting)
    instance = server.instance()
    assert instance.run_launcher.terminate(waiting)
    assert server.status(waiting) == DagsterRunStatus.CANCELED
    deadline = time.monotonic() + 30
    while Path(f"/proc/{probe['pid']}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{probe['pid']}").exists(), "the terminated run's process still runs"


def test_a_run_asked_to_start_while_the_server_stops_is_refused_as_out_of_reach(server: Server):
    """What the queue daemon hears for a run it takes from the queue while `make run` stops: gRPC
    UNAVAILABLE (the daemon puts the run back and starts it after the restart), not Dagster's
    "Tried to start a run on a server after telling it to shut down", which failed it for good.
    The proxy of `code-server start` answers first, so it is the proxy that must say so."""
    from dagster._core.errors import DagsterUserCodeUnreachableError

    from invoice_pipelines.dagster_internals.api_server import STOPPING

    # a run at work keeps the stopping server up (it waits for its runs) while it is asked
    waiting = server.launch("waiting_job")
    probe = server.probe("waiting", waiting)
    client = DagsterGrpcClient(socket=str(server.folder / "s.sock"), host="localhost")
    server.stopping = True
    client.shutdown_server()
    with pytest.raises(DagsterUserCodeUnreachableError) as refused:
        server.launch("where_job")
    assert "UNAVAILABLE" in str(refused.value), refused.value
    assert STOPPING in str(refused.value.__cause__), refused.value.__cause__
    os.kill(probe["pid"], signal.SIGKILL)
