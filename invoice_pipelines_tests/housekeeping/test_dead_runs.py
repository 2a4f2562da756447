"""dead_runs: a run in flight whose process is gone is reported failed with the reason; runs whose
process runs, finished runs and runs launched elsewhere are left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from dagster import DagsterInstance, DagsterRunStatus, build_sensor_context, instance_for_test
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.test_utils import create_run_for_test

from invoice_pipelines.housekeeping.dead_runs import mark_dead_runs, process_runs
from invoice_pipelines.housekeeping.sensors import dead_runs_sensor

LOCAL = {GRPC_INFO_TAG: json.dumps({"host": "localhost", "socket": "/tmp/x/code-server.sock"})}
REMOTE = {GRPC_INFO_TAG: json.dumps({"host": "code.example.org", "port": 4000})}


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def run_with_process(
    instance: DagsterInstance, pid: int, status=DagsterRunStatus.STARTED, tags=LOCAL
):
    run = create_run_for_test(instance, job_name="export_job", status=status, tags=tags)
    instance.report_engine_event(
        f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
    )
    return run


def status(instance: DagsterInstance, run) -> DagsterRunStatus:
    return instance.get_run_by_id(run.run_id).status


def failure_message(instance: DagsterInstance, run) -> str:
    (entry,) = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
    return entry.message


def test_a_started_run_whose_process_is_gone_is_marked_failed_with_the_reason(instance):
    pid = dead_pid()
    dead = run_with_process(instance, pid)
    live = run_with_process(instance, os.getpid())
    result = mark_dead_runs(instance)
    assert [run_id for run_id, _, _ in result.marked] == [dead.run_id]
    assert status(instance, dead) == DagsterRunStatus.FAILURE
    assert f"process (pid {pid}) ended without recording the run's end" in failure_message(
        instance, dead
    )
    assert status(instance, live) == DagsterRunStatus.STARTED
    assert "Marked 1 run(s)" in result.summary()
    # once is enough: the next sweep finds nothing
    assert mark_dead_runs(instance).marked == []


def test_starting_and_canceling_runs_with_a_dead_process(instance):
    starting = run_with_process(instance, dead_pid(), status=DagsterRunStatus.STARTING)
    canceling = run_with_process(instance, dead_pid(), status=DagsterRunStatus.CANCELING)
    # STARTING without a recorded process: run monitoring's start timeout decides
    waiting = create_run_for_test(
        instance, job_name="export_job", status=DagsterRunStatus.STARTING, tags=LOCAL
    )
    mark_dead_runs(instance)
    assert status(instance, starting) == DagsterRunStatus.FAILURE
    assert status(instance, canceling) == DagsterRunStatus.CANCELED
    assert status(instance, waiting) == DagsterRunStatus.STARTING


def test_runs_launched_elsewhere_or_finished_are_left_alone(instance):
    remote = run_with_process(instance, dead_pid(), tags=REMOTE)
    in_process = run_with_process(instance, dead_pid(), tags={})
    done = run_with_process(instance, dead_pid(), status=DagsterRunStatus.SUCCESS)
    assert mark_dead_runs(instance).marked == []
    assert status(instance, remote) == DagsterRunStatus.STARTED
    assert status(instance, in_process) == DagsterRunStatus.STARTED
    assert status(instance, done) == DagsterRunStatus.SUCCESS


def test_a_reused_pid_is_not_the_runs_process():
    # this process started before now: it is the one; an event from before it started is not
    assert process_runs(os.getpid(), time.time())
    assert not process_runs(os.getpid(), time.time() - 3600 * 24 * 365)
    assert not process_runs(dead_pid(), time.time())


def test_the_sensor_reports_what_it_did(instance):
    dead = run_with_process(instance, dead_pid())
    result = dead_runs_sensor(build_sensor_context(instance=instance))
    assert "Marked 1 run(s) whose process is gone" in result.skip_message
    assert status(instance, dead) == DagsterRunStatus.FAILURE
    result = dead_runs_sensor(build_sensor_context(instance=instance))
    assert result.skip_message.startswith("No dead runs")


def test_the_runs_of_a_code_server_that_ended_with_its_processes_are_over(instance):
    """The stop of `make run` names its code server's socket once its process group is empty:
    a run of that server still starting, without a recorded process, is over too."""
    ours = {GRPC_INFO_TAG: json.dumps({"host": "localhost", "socket": "/tmp/ours/cs.sock"})}
    starting = create_run_for_test(
        instance, job_name="export_job", status=DagsterRunStatus.STARTING, tags=ours
    )
    other = create_run_for_test(
        instance, job_name="export_job", status=DagsterRunStatus.STARTING, tags=LOCAL
    )
    result = mark_dead_runs(instance, stop=True, gone_socket="/tmp/ours/cs.sock")
    assert [run_id for run_id, _, _ in result.marked] == [starting.run_id]
    said = failure_message(instance, starting)
    assert "`make run` was stopped while this run was still starting" in said, said
    assert status(instance, other) == DagsterRunStatus.STARTING


def test_a_run_the_stop_cut_off_mid_work_says_after_how_long_not_still_starting(instance):
    """Issue 56: a run that had worked for 12 minutes read "... still starting" after a stop."""
    ours = {GRPC_INFO_TAG: json.dumps({"host": "localhost", "socket": "/tmp/ours/cs.sock"})}
    run = create_run_for_test(instance, job_name="export_job", tags=ours)
    instance.report_dagster_event(
        DagsterEvent(DagsterEventType.RUN_START.value, job_name="export_job"),
        run.run_id,
        timestamp=time.time() - 12 * 60 - 5,
    )
    pid = dead_pid()
    instance.report_engine_event(
        f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
    )
    assert status(instance, run) == DagsterRunStatus.STARTED
    mark_dead_runs(instance, stop=True, gone_socket="/tmp/ours/cs.sock")
    said = failure_message(instance, run)
    assert said.startswith("Cut off by the stop of `make run` after 12 minutes of work"), said
    assert f"its process (pid {pid}) ended before it recorded its end" in said
    assert "still starting" not in said


def test_the_stops_sweep_records_gone_runs_while_the_services_still_end(tmp_path, monkeypatch):
    """`make run`'s stop: once the stop has begun, the sweep records a run whose process has gone
    while the rest of the group is still ending, not only after it (under load the services took
    the whole grace, and the sweep after them did not fit in the stop's 10 s)."""
    import signal

    (tmp_path / "dagster.yaml").write_text(
        "storage:\n  sqlite:\n    base_dir: {env: INVOICE_PIPELINES_DAGSTER_DIR}\n"
        "telemetry:\n  enabled: false\n"
    )
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("INVOICE_PIPELINES_DAGSTER_DIR", str(tmp_path / "dagster"))
    with DagsterInstance.get() as instance:
        gone = run_with_process(instance, dead_pid())
    # a service still ending: a process group of its own that outlives the check below
    service = subprocess.Popen(["sleep", "300"], start_new_session=True)
    sweep = subprocess.Popen(
        [sys.executable, "-m", "invoice_pipelines.housekeeping.dead_runs", "--stop"]
        + ["--after-group", str(service.pid), "--timeout", "120"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # as in make run, the stop comes once the sweep is up: its SIGTERM handler installed
        deadline = time.monotonic() + 60
        while not _catches(sweep.pid, signal.SIGTERM):
            assert sweep.poll() is None and time.monotonic() < deadline, sweep.returncode
            time.sleep(0.1)
        sweep.send_signal(signal.SIGTERM)  # the stop begins; the service has not ended
        deadline = time.monotonic() + 60
        with DagsterInstance.get() as instance:
            while status(instance, gone) != DagsterRunStatus.FAILURE:
                assert time.monotonic() < deadline, "the gone run was not recorded during the stop"
                assert sweep.poll() is None, sweep.stderr.read()
                time.sleep(0.2)
            assert service.poll() is None  # recorded while the group still ran
            said = failure_message(instance, gone)
            assert said.startswith("Cut off by the stop of `make run` after"), said
        service.kill()
        service.wait()
        assert sweep.wait(timeout=60) == 0
        assert "Marked 1 run(s) whose process is gone" in sweep.stderr.read()
    finally:
        service.kill()
        sweep.kill()


def _catches(pid: int, signum: int) -> bool:
    for line in open(f"/proc/{pid}/status").read().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    return False
