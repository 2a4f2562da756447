"""What the fence around Dagster's internals (invoice_pipelines/dagster_internals/) relies on, held
to the pinned Dagster: each test here fails when an upgrade changes one of those things, before a
run meets it. docs/dagster-upgrade.md, the checklist, names these tests and the behaviour tests
beside them, and says how each use is turned off; the code server's switch is tested here."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import re
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, QueuedRunCoordinator
from dagster._cli import api as dagster_cli_api
from dagster._core.events import DagsterEvent
from dagster._core.storage import tags as dagster_tags
from dagster._core.test_utils import instance_for_test
from dagster._grpc import impl, server

from invoice_pipelines import code_server
from invoice_pipelines.dagster_internals import api_server, planned_events, runs
from invoice_pipelines.dagster_internals.instance import import_the_default_classes, instance_of
from invoice_pipelines.lib import partitions, run_coordinator

REPO = Path(__file__).resolve().parents[1]
FENCE = REPO / "invoice_pipelines" / "dagster_internals"
CHECKLIST = REPO / "docs" / "dagster-upgrade.md"


def test_the_pinned_dagster_batches_planned_events_as_the_storage_expects():
    """dagster_internals/planned_events.py: the methods it calls and overrides exist, and the
    variable it sets is the one Dagster reads to hand a run's planned events over as a batch."""
    assert planned_events.missing() == []
    from dagster._core.instance import utils

    assert planned_events.BATCH_SIZE_VARIABLE in inspect.getsource(utils._get_event_batch_size)


def test_the_pinned_dagster_has_what_the_code_server_replaces(monkeypatch):
    monkeypatch.delenv(code_server.WARM_RUNS, raising=False)
    assert api_server.missing() == []
    assert code_server.warm_runs_off() is None
    # the API server's own attributes the warm server reads, set by Dagster's __init__ (read
    # from its source: no server is started here; test_code_server.py starts one)
    init = inspect.getsource(server.DagsterApiServer.__init__)
    for name in api_server.SERVER_ATTRIBUTES:
        assert re.search(rf"self\.{name}\b[^=\n]*=", init), f"DagsterApiServer.{name}"


def test_what_a_run_and_the_warm_process_preload_still_exists():
    """A preload that names a module Dagster moved is skipped without a word (the run imports it
    itself, seconds later): only this test says so."""
    for module in api_server.RUN_MODULES:
        assert importlib.util.find_spec(module) is not None, module
    assert import_the_default_classes()


def test_dagsters_run_tags_are_the_ones_we_write_out():
    assert runs.GRPC_INFO_TAG == dagster_tags.GRPC_INFO_TAG
    assert run_coordinator.PRIORITY_TAG == dagster_tags.PRIORITY_TAG
    assert run_coordinator.BACKFILL_TAG == dagster_tags.BACKFILL_ID_TAG
    assert (run_coordinator.RANGE_START_TAG, run_coordinator.RANGE_END_TAG) == (
        dagster_tags.ASSET_PARTITION_RANGE_START_TAG,
        dagster_tags.ASSET_PARTITION_RANGE_END_TAG,
    )
    assert partitions.PARTITION_TAG == dagster_tags.PARTITION_NAME_TAG
    assert f"{partitions.PARTITION_TAG}/" == dagster_tags.MULTIDIMENSIONAL_PARTITION_PREFIX
    assert partitions.AUTOMATION_TAGS == (
        dagster_tags.SCHEDULE_NAME_TAG,
        dagster_tags.SENSOR_NAME_TAG,
        dagster_tags.BACKFILL_ID_TAG,
    )


def test_the_backfill_states_whose_runs_dagster_cancels_are_the_ones_we_write_out():
    """The run coordinator cancels a run of a backfill in one of these states before it is
    queued (issue 73); Dagster's backfill daemon cancels the runs of a backfill in them, and
    looks at a cancel once every DAGSTER_ASSET_BACKFILL_RUN_CHUNK_SIZE (25) runs it submits."""
    from dagster._core.execution import asset_backfill
    from dagster._core.execution.backfill import BulkActionStatus

    names = {status.value for status in BulkActionStatus}
    assert run_coordinator.STOPPING_BACKFILL_STATUSES <= names
    assert asset_backfill.get_asset_backfill_run_chunk_size() == 25
    source = inspect.getsource(asset_backfill.execute_asset_backfill_iteration)
    assert "BulkActionStatus.CANCELING" in source and "BulkActionStatus.FAILING" in source


def test_the_run_worker_names_its_pid_in_the_words_the_sweep_looks_for():
    said = inspect.getsource(impl) + inspect.getsource(dagster_cli_api)
    for words in runs.STARTED_PROCESS:
        assert f'f"{words} (pid: {{pid}}).",' in said, words


def test_a_configured_class_reaches_its_instance():
    instance = DagsterInstance.ephemeral()
    assert instance_of(instance.run_coordinator) is instance


def test_dagsters_own_run_coordinator_takes_our_config():
    """The way back from our run coordinator (docs/dagster-upgrade.md): Dagster's own, named by
    its public module, with the config dagster.yaml gives ours."""
    ours = yaml.safe_load((REPO / "dagster.yaml").read_text())["run_coordinator"]
    assert ours["class"] == "OrganizationRunCoordinator"
    dagsters = {"module": "dagster", "class": "QueuedRunCoordinator", "config": ours["config"]}
    with instance_for_test(overrides={"run_coordinator": dagsters}) as instance:
        coordinator = instance.run_coordinator
        assert type(coordinator) is QueuedRunCoordinator
        assert coordinator.dequeue_interval_seconds == ours["config"]["dequeue_interval_seconds"]


def _dagsters_code_server() -> tuple:
    return (
        server.DagsterApiServer,
        server.start_run_in_subprocess,
        server.get_python_environment_entry_point,
        DagsterEvent.job_failure,
        impl._report_run_failed_if_not_finished,
    )


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == code_server.MODULE]


def test_switched_off_the_code_server_is_dagsters_own_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv(code_server.WARM_RUNS, "0")
    before = _dagsters_code_server()
    with caplog.at_level(logging.WARNING, logger=code_server.MODULE):
        code_server.prepare(["api", "grpc", "--socket", "s", "-m", "a.b"])
        code_server.prepare(["code-server", "start", "--socket", "s", "-m", "a.b"])
    assert _dagsters_code_server() == before
    assert (
        _said(caplog)
        == [f"runs start as Dagster starts them (spawned): {code_server.WARM_RUNS}=0"] * 2
    )


def test_a_dagster_without_what_the_code_server_replaces_keeps_its_own(monkeypatch, caplog):
    """As after an upgrade that renamed a method the warm server replaces: the code server starts
    runs as Dagster does, and says which part is missing, instead of failing to start."""
    monkeypatch.delenv(code_server.WARM_RUNS, raising=False)
    monkeypatch.delattr(server.DagsterApiServer, "_clear_run")
    before = _dagsters_code_server()
    with caplog.at_level(logging.WARNING, logger=code_server.MODULE):
        code_server.prepare(["api", "grpc", "-m", "a.b"])
    assert _dagsters_code_server() == before
    assert _said(caplog) == [
        "runs start as Dagster starts them (spawned): this Dagster has no "
        "DagsterApiServer._clear_run"
    ]


def test_the_checklist_names_each_module_of_the_fence_and_tests_that_exist():
    text = CHECKLIST.read_text()
    modules = sorted(p.name for p in FENCE.glob("*.py") if p.name != "__init__.py")
    assert modules
    for module in modules:
        assert f"dagster_internals/{module}" in text, module
    cited = re.findall(r"`(invoice_pipelines_tests/[\w/]+\.py)::(\w+)`", text)
    assert len(cited) >= len(modules)
    for path, test in cited:
        source = (REPO / path).read_text()
        assert re.search(rf"^def {test}\(", source, re.MULTILINE), f"{path}::{test}"
