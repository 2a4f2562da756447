"""`dagster sensor stop` against a real `dagster-daemon` (issue 55: "a sensor's requests stop with
the sensor"). Before the turns, one tick of `documents_sensor` over 100 organizations went on
requesting 51 runs after the stop: Dagster's daemon submits every request of a tick without
looking at the sensor's state again. Now a tick requests at most RUNS_PER_TICK organizations, so
after the stop at most that many runs are still requested, and no tick follows.

The daemon runs the project's Definitions (its own code server, as `dagster-daemon run -w` starts
it) on an instance of the test's own (SQLite under tmp_path) whose run queue launches nothing
(`max_concurrent_runs: 0`): the runs the sensor requests stay QUEUED, so the test counts requests,
not work. Every wait is bounded; whatever happens the daemon's process group is killed at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunsFilter

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.lib.turns import RUNS_PER_TICK
from invoice_pipelines_tests.conftest import TestDatabase
from invoice_pipelines_tests.exports.books import customer, sales_invoice

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600, method="signal")]

SENSOR = "documents_sensor"
INTERVAL = 30  # documents_sensor's minimum_interval_seconds
# more organizations than two ticks serve: even if a second tick began before the stop took
# effect, a sensor that requests everything in one tick is told apart from one that takes turns
WAITING = 3 * RUNS_PER_TICK + 5
START_SECONDS = 240  # deadlines, not measurements
BIN = Path(sys.executable).parent


def _requested(instance: DagsterInstance) -> int:
    return instance.get_runs_count(RunsFilter(tags={"dagster/sensor_name": SENSOR}))


def _wait_for(what: str, condition, seconds: float, daemon: subprocess.Popen, log: Path):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if daemon.poll() is not None:
            raise AssertionError(f"the daemon exited: {log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} after {seconds} s: {log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.5)


def _seed(url: str, count: int) -> list[str]:
    """`count` organizations, each with a sales invoice that has no document yet, in the
    migrated database at `url`."""
    db = TestDatabase("sqlite", url, make_engine(url), make_engine(url, owner=True))
    slugs = []
    for n in range(count):
        org = db.new_organization(slug=f"stop-{n:03d}")
        sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-1", "Kunde GmbH"))
        slugs.append(org["slug"])
    db.engine.dispose()
    db.owner_engine.dispose()
    return slugs


def test_a_sensor_stopped_while_the_daemon_runs_it_requests_at_most_one_turn_more(
    tmp_path, sqlite_migrated_factory
):
    app_url = sqlite_migrated_factory(tmp_path / "app.sqlite3")
    slugs = _seed(app_url, WAITING)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "run_coordinator:\n"
        "  module: dagster._core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n"
        "concurrency:\n"
        "  runs:\n"
        "    max_concurrent_runs: 0\n"  # nothing launches: the requests stay QUEUED
        "telemetry:\n"
        "  enabled: false\n"
    )
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: invoice_pipelines.definitions\n"
        "      location_name: invoice_pipelines\n"
    )
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "INVOICE_PIPELINES_DB_URL": app_url,
        "INVOICE_PIPELINES_DATA_DIR": str(tmp_path / "data"),
        "INVOICE_PIPELINES_UPLOAD_DIR": str(tmp_path / "data" / "uploads"),
        "INVOICE_PIPELINES_EXPORT_DIR": str(tmp_path / "data" / "exports"),
        "INVOICE_PIPELINES_DOCUMENT_DIR": str(tmp_path / "data" / "documents"),
    }
    instance = DagsterInstance.from_config(str(home))
    # the organizations the sensor may request runs for (the tenants sensor adds them in a
    # deployment; here they are known from the start)
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
    log = tmp_path / "daemon.log"
    with log.open("ab") as out:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(workspace), "--log-level", "info"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # documents_sensor runs by default: its first tick requests the first turn
        first = _wait_for(
            "no run requested", lambda: _requested(instance), START_SECONDS, daemon, log
        )
        stop = subprocess.run(
            [str(BIN / "dagster"), "sensor", "stop", SENSOR, "-w", str(workspace)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=START_SECONDS,
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
        at_stop = _requested(instance)
        # an interval and more after the stop, which came after the first tick began: the tick
        # in flight at the stop, if any, has ended, and a sensor still running would have ticked
        # again (its next tick was due at most INTERVAL after the first began)
        time.sleep(INTERVAL + 15)
        after = _requested(instance)
        assert daemon.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        try:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=30)

    # a tick requests a turn, not everyone waiting
    assert first <= RUNS_PER_TICK < WAITING
    # after the stop, at most the turn of a tick that was under way
    assert after - at_stop <= RUNS_PER_TICK, (first, at_stop, after)
    # and the sensor stopped: not every waiting organization got its run
    assert after < WAITING, (first, at_stop, after)
    runs = instance.get_runs(RunsFilter(tags={"dagster/sensor_name": SENSOR}))
    partitions = [run.tags.get("dagster/partition") for run in runs]
    assert len(set(partitions)) == len(partitions)  # none asked for twice
    # in their turns: the first organizations by slug
    assert sorted(partitions) == slugs[: len(partitions)]
    instance.dispose()
