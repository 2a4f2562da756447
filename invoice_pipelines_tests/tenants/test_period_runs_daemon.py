"""Dagster's own sensor daemon ticks a period sensor (lib/sensors.py `period_runs_sensor`):
two runs a tick, and a tick evaluated again with an old cursor (the daemon restarted before it
stored the new one, or a person set it back) launches no run twice, by the run keys."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

from dagster import RunsFilter, instance_for_test
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.sensor import execute_sensor_iteration
from dagster._time import get_current_datetime
from dagster_graphql.test.utils import execute_dagster_graphql

from invoice_pipelines.lib.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    PARTITION_RANGE_START_TAG,
    PERIOD_SENSOR_INTERVAL_SECONDS,
)
from invoice_pipelines_tests.tenants.period_location import SENSOR

REPO = Path(__file__).resolve().parents[2]
LOCATION = "period_location"
SET_CURSOR = """
mutation SetCursor($selector: SensorSelector!, $cursor: String) {
  setSensorCursor(sensorSelector: $selector, cursor: $cursor) { __typename }
}
"""


def _workspace(instance) -> WorkspaceProcessContext:
    target = InProcessTestWorkspaceLoadTarget(
        InProcessCodeLocationOrigin(
            LoadableTargetOrigin(
                module_name="invoice_pipelines_tests.tenants.period_location",
                attribute="defs",
                working_directory=str(REPO),
            ),
            location_name=LOCATION,
        )
    )
    return WorkspaceProcessContext(instance, target)


def _set_cursor(context, cursor: str) -> None:
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": "__repository__",
        "sensorName": SENSOR,
    }
    answer = execute_dagster_graphql(
        context.create_request_context(), SET_CURSOR, {"selector": selector, "cursor": cursor}
    )
    assert answer.data["setSensorCursor"]["__typename"] == "Sensor", answer


def _cursor(instance) -> str:
    (state,) = [s for s in instance.all_instigator_state() if s.instigator_name == SENSOR]
    return state.instigator_data.cursor


def _run_keys(instance) -> list[str]:
    runs = instance.get_runs(RunsFilter(tags={"dagster/sensor_name": SENSOR}))
    return sorted(run.tags["dagster/run_key"] for run in runs)


def test_the_daemon_launches_each_run_of_the_period_once_even_from_an_old_cursor(db, monkeypatch):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    slugs = [db.new_organization()["slug"] for _ in range(5)]
    overrides = {
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
    }
    log = logging.getLogger("period-daemon-test")
    with instance_for_test(overrides=overrides) as instance, _workspace(instance) as context:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
        moment = get_current_datetime()

        def tick() -> list[str]:
            nonlocal moment
            moment += timedelta(seconds=PERIOD_SENSOR_INTERVAL_SECONDS + 1)  # past its interval
            with freeze_time(moment):
                list(execute_sensor_iteration(context, log, None, None))
            return _run_keys(instance)

        # the first tick takes October (due November 1st) as done: no run
        assert tick() == []
        _set_cursor(context, json.dumps({"tick": "2026-11-01T03:00"}))
        assert tick() == ["2026-10-batch-0", "2026-10-batch-1"]
        after_first = _cursor(instance)
        assert tick() == [f"2026-10-batch-{n}" for n in range(4)]
        # the cursor set back by one tick: the daemon asks for batch 2 and 3 again, launches none
        _set_cursor(context, after_first)
        assert tick() == [f"2026-10-batch-{n}" for n in range(4)]
        assert tick() == [f"2026-10-batch-{n}" for n in range(5)]
        assert tick() == [f"2026-10-batch-{n}" for n in range(5)]
        assert json.loads(_cursor(instance))["requested"] == 5
        runs = instance.get_runs(RunsFilter(tags={"dagster/sensor_name": SENSOR}))
    # one run an organization, each once
    assert sorted(run.tags[PARTITION_RANGE_START_TAG] for run in runs) == sorted(slugs)
