"""Every asset of the code location materializes on its own, as the UI's Materialize launches it:
Dagster's implicit asset job with just that asset and its checks selected, one partition of each
kind the asset has, through the webserver's GraphQL (`launchPipelineExecution`), on the seeded
demo (SQLite). A subset Dagster cannot build (DagsterInvalidSubsetError, "Error loading base asset
job"), a launch error, a failed run or a selected check not evaluated fails the test, naming the
asset; at the end no check of any asset is "Not evaluated" on its latest materialization.

The assets come from the definitions, not from a list; the runs execute in this process
(Dagster's in-memory launcher), one after another."""

from contextlib import ExitStack
from pathlib import Path

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterEventType,
    DagsterRunStatus,
    MultiPartitionsDefinition,
    instance_for_test,
)
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster_graphql.test.utils import execute_dagster_graphql, infer_job_selector

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines_devtools.demo.quickbooks import (
    connect_demo_organizations,
    create_demo_companies,
    demo_key,
)
from invoice_pipelines_devtools.demo.seed import seed_demo
from invoice_pipelines_devtools.qbo_simulator import QboSimulator
from invoice_pipelines_tests.checked_latest import latest_check_statuses

REPO = Path(__file__).resolve().parents[1]
TARGET = "invoice_pipelines_tests.assets_alone_target"
ORGANIZATION = "mueller-werkzeugbau"

# what the UI's Materialize sends (LaunchPipelineExecution in the webserver's bundle)
LAUNCH = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}
"""

ASSETS = """
query Assets {
  assetNodes {
    assetKey { path }
    isMaterializable
    isPartitioned
    assetChecksOrError { ... on AssetChecks { checks { name canExecuteIndividually } } }
  }
}
"""


@pytest.fixture
def workspace(tmp_path, monkeypatch, sqlite_migrated_factory):
    with ExitStack() as stack:
        yield from _workspace(stack, tmp_path, monkeypatch, sqlite_migrated_factory)


def _workspace(stack: ExitStack, tmp_path: Path, monkeypatch, sqlite_migrated_factory):

    url = sqlite_migrated_factory(tmp_path / "demo.sqlite3")
    engine = make_engine(url)
    seed_demo(engine, system=engine, orders_per_org=2)
    # the demo's QuickBooks: each organization connected to a simulated company of its own
    data_dir = tmp_path / "data"
    connect_demo_organizations(engine, data_dir, [ORGANIZATION], system=engine)
    engine.dispose()
    simulator = stack.enter_context(QboSimulator(port=0, data_dir=data_dir / "qbo"))
    create_demo_companies(simulator, data_dir)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_BASE_URL", simulator.base_url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_URL", simulator.token_url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_KEY", demo_key(data_dir))
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", url)
    for name in ("UPLOAD", "EXPORT", "DOCUMENT"):
        folder = tmp_path / name.lower()
        folder.mkdir()
        monkeypatch.setenv(f"INVOICE_PIPELINES_{name}_DIR", str(folder))
    settings = {
        "run_launcher": {
            "module": "dagster._core.launcher.sync_in_memory_run_launcher",
            "class": "SyncInMemoryRunLauncher",
        },
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "DefaultRunCoordinator",
        },
    }
    with instance_for_test(overrides=settings) as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [ORGANIZATION])
        target = InProcessTestWorkspaceLoadTarget(
            InProcessCodeLocationOrigin(
                LoadableTargetOrigin(
                    module_name=TARGET, attribute="defs", working_directory=str(REPO)
                ),
                location_name="invoice_pipelines",
            )
        )
        with WorkspaceProcessContext(instance, target) as process_context:
            yield process_context


def partition_tags(partitions_def) -> dict[str, str]:
    """The tags the UI's Materialize sets for one partition of `partitions_def`: the running
    month (the last a time dimension has) of the organization."""
    if partitions_def is None:
        return {}
    if not isinstance(partitions_def, MultiPartitionsDefinition):
        return {"dagster/partition": ORGANIZATION}
    keys = {}
    for dimension in partitions_def.partitions_defs:
        if dimension.partitions_def.__class__.__name__ == "DynamicPartitionsDefinition":
            keys[dimension.name] = ORGANIZATION
        else:
            keys[dimension.name] = dimension.partitions_def.get_last_partition_key()
    key = partitions_def.get_partition_key_from_str(
        "|".join(keys[d.name] for d in partitions_def.partitions_defs)
    )
    return {
        "dagster/partition": str(key),
        **{f"dagster/partition/{name}": value for name, value in keys.items()},
    }


# the assets whose run cannot be taken back: a plain Materialize says so in its config (issue 85)
CONFIRMATIONS = {
    "sales_invoices": "issue invoices",
    "invoice_emails": "send messages",
    "invoice_text_messages": "send messages",
    "dunning_notices": "send notices",
    "qbo_invoices": "push to quickbooks",
    "qbo_bills": "push to quickbooks",
}


def run_config(asset_key) -> dict:
    """What the launchpad of a plain Materialize is given: the confirmation, where one is needed."""
    name = asset_key.to_user_string()
    if name not in CONFIRMATIONS:
        return {}
    return {"ops": {name: {"config": {"confirm": CONFIRMATIONS[name]}}}}


def materialize_alone(process_context, asset_key, check_keys, tags) -> dict:
    context = process_context.create_request_context()
    selector = infer_job_selector(
        context,
        "__ASSET_JOB",
        asset_selection=[{"path": asset_key.path}],
        asset_check_selection=[
            {"assetKey": {"path": asset_key.path}, "name": key.name} for key in check_keys
        ],
    )
    result = execute_dagster_graphql(
        context,
        LAUNCH,
        variables={
            "executionParams": {
                "selector": selector,
                "runConfigData": run_config(asset_key),
                "mode": "default",
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
            }
        },
    )
    assert not result.errors, result.errors
    return result.data["launchPipelineExecution"]


def _check_statuses(instance, graph, key) -> dict:
    """Each check of `key` on its latest materialization: a check over every organization as it
    is, one partitioned like its asset (issue 85) for the partition the test materialized."""
    names = sorted(c.name for c in graph.get(key).check_keys)
    whole = latest_check_statuses(instance, key.to_user_string(), names)
    tags = partition_tags(graph.get(key).partitions_def)
    if not tags:
        return whole
    partitioned = latest_check_statuses(
        instance, key.to_user_string(), names, tags["dagster/partition"]
    )
    return {name: whole[name] or partitioned[name] for name in names}


def test_every_asset_materializes_alone(workspace):
    from invoice_pipelines_tests.assets_alone_target import defs

    graph = defs.get_repository_def().asset_graph
    keys = sorted(
        (k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable),
        key=lambda k: k.to_user_string(),
    )
    assert len(keys) >= 20
    # every asset that asks for a confirmation says so in its description, and gets it here
    asking = {
        k.to_user_string()
        for k in keys
        if "a plain Materialize runs only with the config confirm" in graph.get(k).description
    }
    assert asking == set(CONFIRMATIONS)
    problems = {}
    for key in keys:
        node = graph.get(key)
        launched = materialize_alone(
            workspace, key, sorted(node.check_keys), partition_tags(node.partitions_def)
        )
        name = key.to_user_string()
        if launched["__typename"] != "LaunchRunSuccess":
            problems[name] = f"{launched['__typename']}: {launched.get('message') or launched}"
            continue
        run = workspace.instance.get_run_by_id(launched["run"]["runId"])
        if run.status != DagsterRunStatus.SUCCESS:
            failures = [
                e.dagster_event.event_specific_data.error.message
                for e in workspace.instance.all_logs(run.run_id)
                if e.dagster_event and e.dagster_event.is_step_failure
            ]
            problems[name] = f"{run.status.value}: {' | '.join(failures)[:600]}"
            continue
        evaluated = {
            e.dagster_event.event_specific_data.asset_check_key
            for e in workspace.instance.all_logs(
                run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
            )
        }
        if evaluated != set(node.check_keys):
            problems[name] = f"checks not evaluated: {set(node.check_keys) - evaluated}"
    assert problems == {}
    # the demo's every asset materialized: no check is "Not evaluated" on the latest
    # materialization, and none fails (issue 73: none fails on a fresh demo unless something is
    # wrong)
    statuses = {
        f"{key.to_user_string()}:{name}": status
        for key in keys
        for name, status in _check_statuses(workspace.instance, graph, key).items()
    }
    # one warns, rightly: the other demo organizations' reviewed orders wait for their invoices
    # (this test materializes one organization's partitions), and it names them, not this one
    late = "sales_invoices:reviewed_orders_invoiced"
    assert {check: s for check, s in statuses.items() if s != "SUCCEEDED"} == {late: "FAILED"}
    key = AssetCheckKey(AssetKey("sales_invoices"), "reviewed_orders_invoiced")
    record = workspace.instance.event_log_storage.get_latest_asset_check_execution_by_key([key])
    waiting = record[key].evaluation.metadata["by_organization"].value
    assert waiting and ORGANIZATION not in waiting
