"""Runs launched by hand carry the organization tag, and the per-organization limit holds them.

The launches go through the GraphQL `launchRun` / `launchRunReexecution` mutations exactly as the
webserver executes them (dagster_graphql's schema over a workspace of our definitions), against an
instance configured like deploy/dagster.yaml: our run coordinator and the `concurrency:` limits. One
iteration of the QueuedRunCoordinatorDaemon then shows which queued runs may start.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterRunStatus, instance_for_test
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)
from dagster_graphql.test.utils import execute_dagster_graphql, infer_job_selector

from invoice_pipelines.lib.partitions import ORGANIZATION_TAG, ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.lib.run_coordinator import (
    BACKFILL_TAG,
    BULK_RUN_TAGS,
    LANE_TAG,
    PARTITION_TAG,
    PRIORITY_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    SHARE_TAG,
    SLOT_TAG,
    WAITS_ON_TAG,
    ConflictingOrganizations,
    OrganizationRunCoordinator,
    config_refusal,
    organization_in_partition,
    organization_in_run_config,
    organizations_slot_of_range,
)
from invoice_pipelines_tests.billing.shop import make_shop

REPO = Path(__file__).resolve().parents[2]

LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status tags { key value } } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}
"""

REEXECUTE = """
mutation Reexecute($parentRunId: String!) {
  launchRunReexecution(reexecutionParams: {parentRunId: $parentRunId, strategy: ALL_STEPS}) {
    __typename
    ... on LaunchRunSuccess { run { runId status tags { key value } } }
    ... on PythonError { message stack }
  }
}
"""


def instance_settings() -> dict:
    """The instance template's coordinator and concurrency block; a launcher that only records."""
    production = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    return {
        "run_coordinator": production["run_coordinator"],
        "concurrency": {"runs": production["concurrency"]["runs"]},
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},
    }


@pytest.fixture(scope="module")
def _workspace() -> Iterator[WorkspaceProcessContext]:
    """One instance and workspace for the module's tests (an instance on disk took seconds to
    make, each time); `workspace` empties it for each test."""
    with instance_for_test(overrides=instance_settings()) as instance:
        target = InProcessTestWorkspaceLoadTarget(
            InProcessCodeLocationOrigin(
                LoadableTargetOrigin(
                    module_name="invoice_pipelines.definitions",
                    attribute="defs",
                    working_directory=str(REPO),
                ),
                location_name="invoice_pipelines",
            )
        )
        with WorkspaceProcessContext(instance, target) as process_context:
            yield process_context


@pytest.fixture
def workspace(db, monkeypatch, _workspace: WorkspaceProcessContext) -> WorkspaceProcessContext:
    # the coordinator looks organizations up where the application's database is
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    instance = _workspace.instance
    # no run, event or partition of an earlier test: the limits count the runs the test made
    instance.wipe()
    assert instance.get_runs() == []
    assert instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME) == []
    assert isinstance(instance.run_coordinator, OrganizationRunCoordinator)
    return _workspace


def launch(
    process_context, job_name: str, op_name: str, config: dict, tags=None, partition=None
) -> dict:
    """A launch as the launchpad sends it; a partition is the `dagster/partition` tag."""
    tags = {**(tags or {}), **({PARTITION_TAG: partition} if partition else {})}
    if partition and not process_context.instance.has_dynamic_partition(
        ORGANIZATIONS_PARTITIONS_NAME, partition
    ):
        process_context.instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [partition])
    context = process_context.create_request_context()
    result = execute_dagster_graphql(
        context,
        LAUNCH,
        variables={
            "executionParams": {
                "selector": infer_job_selector(context, job_name),
                "runConfigData": {"ops": {op_name: {"config": config}}},
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
            }
        },
    )
    return result.data["launchRun"]


def tags_of(run: dict) -> dict:
    return {t["key"]: t["value"] for t in run["tags"]}


def dequeue_once(process_context) -> None:
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    list(daemon.run_iteration(process_context))


def test_launchpad_runs_get_the_tag_and_the_limit_holds_them(db, workspace):
    shop = make_shop(db)
    other = make_shop(db)
    instance = workspace.instance

    # one organization's partition, with a wrong tag typed in the launchpad: the tag gets the
    # organization's slug
    first = launch(
        workspace,
        "batch_invoicing_job",
        "sales_invoices",
        {"request": {"sales_orders": {"order_ids": shop.add_orders(1)}}},
        tags={ORGANIZATION_TAG: "someone-else"},
        partition=shop.org["slug"],
    )
    assert first["__typename"] == "LaunchRunSuccess", first
    assert first["run"]["status"] == "QUEUED"
    assert tags_of(first["run"])[ORGANIZATION_TAG] == shop.org["slug"]

    # another job of the same organization, and a batch of another organization
    second = launch(
        workspace,
        "retry_failed_invoices_job",
        "incoming_invoices",
        {"retry_failed": True},
        partition=shop.org["slug"],
    )
    third = launch(
        workspace,
        "batch_invoicing_job",
        "sales_invoices",
        {"request": {"all_reviewed": {}}},
        partition=other.org["slug"],
    )
    assert tags_of(second["run"])[ORGANIZATION_TAG] == shop.org["slug"]
    assert tags_of(third["run"])[ORGANIZATION_TAG] == other.org["slug"]

    dequeue_once(workspace)

    def status(run: dict) -> DagsterRunStatus:
        return instance.get_run_by_id(run["run"]["runId"]).status

    # one run per organization starts; the second run of the first organization waits
    assert status(first) == DagsterRunStatus.STARTING
    assert status(third) == DagsterRunStatus.STARTING
    assert status(second) == DagsterRunStatus.QUEUED
    dequeue_once(workspace)
    assert status(second) == DagsterRunStatus.QUEUED

    # a re-execution of the first run is tagged again, and waits as well
    instance.report_run_failed(instance.get_run_by_id(first["run"]["runId"]))
    context = workspace.create_request_context()
    again = execute_dagster_graphql(
        context, REEXECUTE, variables={"parentRunId": first["run"]["runId"]}
    ).data["launchRunReexecution"]
    assert again["__typename"] == "LaunchRunSuccess", again
    assert tags_of(again["run"])[ORGANIZATION_TAG] == shop.org["slug"]
    dequeue_once(workspace)
    # the first run ended: exactly one of the two waiting runs of the organization starts
    waiting = [second["run"]["runId"], again["run"]["runId"]]
    started = [r for r in waiting if instance.get_run_by_id(r).status == DagsterRunStatus.STARTING]
    assert len(started) == 1


def test_an_unknown_organization_is_refused_at_launch_with_one_sentence(db, workspace):
    # a partition that outlived its organization (the sensor removes it on its next tick)
    refused = launch(
        workspace,
        "intake_job",
        "incoming_invoices",
        {"document_ids": [1]},
        partition="no-such-org",
    )
    assert refused["__typename"] == "LaunchRunSuccess", refused  # the UI opens the failed run
    run = workspace.instance.get_run_by_id(refused["run"]["runId"])
    assert run.status == DagsterRunStatus.FAILURE
    assert ORGANIZATION_TAG not in run.tags
    [failure] = [
        e
        for e in workspace.instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"
    ]
    assert failure.dagster_event.message == (
        "Run refused: there is no organization 'no-such-org' (use its slug or id)."
    )
    # no stack trace
    assert getattr(failure.dagster_event.event_specific_data, "error", None) is None


def test_a_bad_as_of_in_the_dunning_launchpad_is_refused_before_the_run_with_one_sentence(
    db, workspace
):
    """Before, the step refused it: the sentence, then Dagster's stack trace and a second error
    for the dunning check that could not run. Now the run fails before it is queued, no step
    starts, and the one event has the sentence and no stack trace."""
    org = db.new_organization()
    for as_of, sentence in [
        ("2026-13-45", "as_of '2026-13-45' is neither a date (YYYY-MM-DD) nor an instant."),
        ("yesterday", "as_of 'yesterday' is neither a date (YYYY-MM-DD) nor an instant."),
        ("2026-11-01T08:00", "as_of '2026-11-01T08:00' has no UTC offset; add one (e.g. +00:00)."),
    ]:
        result = launch(
            workspace, "dunning_job", "dunning_notices", {"as_of": as_of}, partition=org["slug"]
        )
        assert result["__typename"] == "LaunchRunSuccess", result
        run = workspace.instance.get_run_by_id(result["run"]["runId"])
        assert run.status == DagsterRunStatus.FAILURE
        events = [
            e.dagster_event for e in workspace.instance.all_logs(run.run_id) if e.dagster_event
        ]
        [failure] = [e for e in events if e.event_type_value == "PIPELINE_FAILURE"]
        assert failure.message == f"Run refused: {sentence}"
        assert getattr(failure.event_specific_data, "error", None) is None
        assert not [e for e in events if e.is_step_event]

    # a good one is queued as before
    good = launch(
        workspace, "dunning_job", "dunning_notices", {"as_of": "2026-11-01"}, partition=org["slug"]
    )
    assert good["run"]["status"] == "QUEUED"


def test_config_refusal():
    def config(as_of):
        return {"ops": {"dunning_notices": {"config": {"as_of": as_of, "dry_run": True}}}}

    assert config_refusal(config("2026-11-01")) is None
    assert config_refusal(config("2026-11-01T03:00:00+01:00")) is None
    assert config_refusal(config("")) is None
    assert config_refusal(None) is None
    assert "neither a date" in config_refusal(config("01.11.2026"))


def test_the_launchpad_refuses_invalid_config_before_a_run_exists(db, workspace):
    shop = make_shop(db)
    for config in [
        # two request kinds at once
        {"request": {"all_reviewed": {}, "sales_orders": {"order_ids": [1]}}},
        # the organization in the config: it is the partition now
        {"organization": shop.org["slug"], "request": {"all_reviewed": {}}},
        # an old-style flat request
        {"all_reviewed": True},
    ]:
        result = launch(
            workspace, "batch_invoicing_job", "sales_invoices", config, partition=shop.org["slug"]
        )
        assert result["__typename"] == "RunConfigValidationInvalid", (config, result)
    assert workspace.instance.get_runs() == []


def test_jobs_without_an_organization_in_their_config_are_not_tagged(db, workspace):
    # the control job has no organization on purpose: a cancel must not wait behind the very run
    # it is meant to stop
    result = launch(
        workspace,
        "batch_job_control_job",
        "control_batch_job",
        {"batch_job_id": 1, "action": "cancel"},
    )
    assert result["run"]["status"] == "QUEUED"
    assert ORGANIZATION_TAG not in tags_of(result["run"])


def test_organization_in_run_config():
    assert organization_in_run_config({"ops": {"a": {"config": {"organization": "x"}}}}) == "x"
    assert organization_in_run_config({"ops": {"a": {"config": {"organization": 7}}}}) == "7"
    nested = {"ops": {"graph": {"ops": {"inner": {"config": {"organization": "y"}}}}}}
    assert organization_in_run_config(nested) == "y"
    assert organization_in_run_config({"ops": {"a": {"config": {"batch_job_id": 1}}}}) is None
    assert organization_in_run_config({}) is None
    with pytest.raises(ConflictingOrganizations):
        organization_in_run_config(
            {
                "ops": {
                    "a": {"config": {"organization": "x"}},
                    "b": {"config": {"organization": "y"}},
                }
            }
        )


def test_without_the_database_the_run_is_queued_under_the_name_as_given(db, workspace, monkeypatch):
    # nothing listens on port 1: the lookup fails, the run still queues and its op checks later
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    result = launch(workspace, "intake_job", "incoming_invoices", {}, partition="acme")
    assert result["run"]["status"] == "QUEUED"
    assert tags_of(result["run"])[ORGANIZATION_TAG] == "acme"


def test_the_database_can_be_named_in_the_instance_yaml(db, monkeypatch):
    org = db.new_organization()
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    settings = instance_settings()
    settings["run_coordinator"]["config"] = {"database_url": db.url}
    with instance_for_test(overrides=settings) as instance:
        assert instance.run_coordinator._slug(str(org["id"])) == org["slug"]


def test_organization_in_partition():
    from dagster import DagsterRun

    def run(tags: dict) -> DagsterRun:
        return DagsterRun(job_name="j", tags=tags)

    known = {"acme"}.__contains__
    assert organization_in_partition(run({PARTITION_TAG: "acme"}), known) == "acme"
    # a single-dimension key that is no organization's (a month, a day)
    assert organization_in_partition(run({PARTITION_TAG: "2026-03"}), known) is None
    # a multi-partition names its organization in its own dimension tag
    tags = {PARTITION_TAG: "2026-03|globex", f"{PARTITION_TAG}/organizations": "globex"}
    assert organization_in_partition(run(tags), known) == "globex"
    assert organization_in_partition(run({}), known) is None
    # a range: one organization at both ends is that organization's; two are none's
    known = {"acme", "globex"}.__contains__
    one = {RANGE_START_TAG: "2024-01|acme", RANGE_END_TAG: "2024-12|acme"}
    assert organization_in_partition(run(one), known) == "acme"
    two = {RANGE_START_TAG: "2024-01|acme", RANGE_END_TAG: "2024-01|globex"}
    assert organization_in_partition(run(two), known) is None
    # ... whose span is a slot of its own, the same in every month
    assert organizations_slot_of_range(run(two), known) == "acme..globex"
    later = {RANGE_START_TAG: "2024-05|acme", RANGE_END_TAG: "2024-05|globex"}
    assert organizations_slot_of_range(run(later), known) == "acme..globex"
    assert organizations_slot_of_range(run(one), known) is None
    assert organizations_slot_of_range(run({PARTITION_TAG: "acme"}), known) is None
    assert (
        organization_in_partition(run({RANGE_START_TAG: "acme", RANGE_END_TAG: "acme"}), known)
        == "acme"
    )


def test_a_range_of_one_organization_is_limited_per_organization(db, workspace):
    """Issue 55: a run over a range of partitions carries only Dagster's range tags, and the
    coordinator read only `dagster/partition`: two backfill runs of one organization ran at once.
    A range whose two ends name one organization is that organization's months alone (a
    multi-partition range is the rectangle between its ends): it gets the organization and its
    slot, and the limit holds it. A backfill's runs are bulk work with a cap of their own."""
    shop, other = make_shop(db), make_shop(db)
    instance = workspace.instance
    slugs = [shop.org["slug"], other.org["slug"]]
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)

    def backfill_run(first: str, last: str, start: str = "2024-01", end: str = "2024-12") -> dict:
        launched = launch(
            workspace,
            "export_job",
            "incoming_invoice_exports",
            {},
            tags={
                BACKFILL_TAG: "migration-1",
                RANGE_START_TAG: f"{start}|{first}",
                RANGE_END_TAG: f"{end}|{last}",
            },
        )
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]

    january_to_june = backfill_run(slugs[0], slugs[0], end="2024-06")
    july_to_december = backfill_run(slugs[0], slugs[0], start="2024-07")
    # Dagster's chunks when there are more organizations than months: a span of organizations in
    # one month, the same span in the next month
    both_in_january = backfill_run(slugs[0], slugs[1], end="2024-01")
    both_in_february = backfill_run(slugs[0], slugs[1], start="2024-02", end="2024-02")
    for run in (january_to_june, july_to_december):
        tags = tags_of(run)
        assert tags[ORGANIZATION_TAG] == slugs[0]
        assert tags["invoice_pipelines/organization_slot"] == slugs[0]
    for run in (both_in_january, both_in_february):
        tags = tags_of(run)
        assert ORGANIZATION_TAG not in tags  # several organizations: no one organization
        assert tags["invoice_pipelines/organization_slot"] == f"{slugs[0]}..{slugs[1]}"
    for run in (january_to_june, july_to_december, both_in_january, both_in_february):
        tags = tags_of(run)
        assert (tags[LANE_TAG], tags[SHARE_TAG], tags[PRIORITY_TAG]) == (
            "backfill",
            "bulk",
            "-20",
        )

    dequeue_once(workspace)
    started = {
        name
        for name, run in (
            ("jan-jun", january_to_june),
            ("jul-dec", july_to_december),
            ("both-jan", both_in_january),
            ("both-feb", both_in_february),
        )
        if instance.get_run_by_id(run["runId"]).status == DagsterRunStatus.STARTING
    }
    # one run of the organization at a time, and one run of the span of both organizations at a
    # time (the backfill lane's cap of 3 leaves room for both); the span's run is not held by the
    # organization's own slot: there the export lock keeps one writer (exports/domain/pipeline.py)
    assert len(started) == 2, started
    assert len(started & {"jan-jun", "jul-dec"}) == 1, started
    assert len(started & {"both-jan", "both-feb"}) == 1, started


def test_a_quickbooks_push_holds_its_own_lane_not_the_organizations_documents(db, workspace):
    """Issue 56: after a 100,000-order batch the organization's one slot went to a QuickBooks
    push that QBO's 500 requests a minute make hours long, and its documents runs sat queued
    behind it. A run that waits on QuickBooks (its ops are in the `quickbooks` pool) is in a lane
    of its own, one run per company: the organization's documents run starts beside the push;
    a second push of the same company still waits, and so does a second documents run."""
    shop = make_shop(db)
    slug = shop.org["slug"]
    instance = workspace.instance

    def queued(job_name: str, op_name: str) -> dict:
        # as the sensors request them: bulk work of the organization's partition
        launched = launch(workspace, job_name, op_name, {}, tags=BULK_RUN_TAGS, partition=slug)
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]

    def status(run: dict) -> DagsterRunStatus:
        return instance.get_run_by_id(run["runId"]).status

    push = queued("qbo_invoices_job", "qbo_invoices")
    assert tags_of(push)[SLOT_TAG] == f"{slug}/quickbooks"
    assert tags_of(push)[WAITS_ON_TAG] == "quickbooks"
    # the Runs page tells it from the documents by its lane (issue 73), still bulk work
    assert (tags_of(push)[LANE_TAG], tags_of(push)[SHARE_TAG]) == ("quickbooks", "bulk")
    dequeue_once(workspace)
    assert status(push) == DagsterRunStatus.STARTING  # the push holds its lane for hours

    documents = queued("documents_job", "sales_invoice_documents")
    next_push = queued("qbo_invoices_job", "qbo_invoices")
    more_documents = queued("documents_job", "sales_invoice_documents")
    assert tags_of(documents)[SLOT_TAG] == slug
    assert WAITS_ON_TAG not in tags_of(documents)
    assert (tags_of(documents)[LANE_TAG], tags_of(documents)[SHARE_TAG]) == ("bulk", "bulk")
    dequeue_once(workspace)
    assert status(documents) == DagsterRunStatus.STARTING
    # one run per company and per organization's local lane, as before
    assert status(next_push) == DagsterRunStatus.QUEUED
    assert status(more_documents) == DagsterRunStatus.QUEUED


def test_a_communications_job_holds_the_mail_lane_not_the_organizations_documents(db, workspace):
    """Issue 56: mail and text message providers limit their rate per provider; a communications
    job (e-mails and text messages for a list of invoices) ran in invoice_batch_job, in the
    organization's local slot, so the documents of its next batch waited behind the sending. It
    runs in a job of its own whose op is in the `mail` pool: the mail lane."""
    shop = make_shop(db)
    slug = shop.org["slug"]
    instance = workspace.instance

    def queued(job_name: str, op_name: str, batch_job_id: int) -> dict:
        # as invoice_batch_jobs_sensor and communications_batch_jobs_sensor request them
        config = {"request": {"queued_job": {"batch_job_id": batch_job_id}}}
        launched = launch(workspace, job_name, op_name, config, partition=slug)
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]

    sending = queued("communications_batch_job", "process_communications_batch_job", 1)
    assert tags_of(sending)[SLOT_TAG] == f"{slug}/mail"
    assert tags_of(sending)[WAITS_ON_TAG] == "mail"
    assert tags_of(sending)[LANE_TAG] == "mail"
    dequeue_once(workspace)
    assert instance.get_run_by_id(sending["runId"]).status == DagsterRunStatus.STARTING

    documents = queued("invoice_batch_job", "process_invoice_batch_job", 2)
    assert tags_of(documents)[SLOT_TAG] == slug
    assert WAITS_ON_TAG not in tags_of(documents)
    dequeue_once(workspace)
    assert instance.get_run_by_id(documents["runId"]).status == DagsterRunStatus.STARTING


def test_a_range_run_that_waits_on_quickbooks_has_the_spans_quickbooks_lane(db, workspace):
    """The daily QuickBooks syncs run over a range of organizations: their slot is the span's in
    the QuickBooks lane, apart from a local backfill over the same span."""
    shop, other = make_shop(db), make_shop(db)
    slugs = [shop.org["slug"], other.org["slug"]]
    workspace.instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
    launched = launch(
        workspace,
        "qbo_payments_job",
        "qbo_payments",
        {},
        tags={RANGE_START_TAG: slugs[0], RANGE_END_TAG: slugs[1], **BULK_RUN_TAGS},
    )
    assert launched["__typename"] == "LaunchRunSuccess", launched
    tags = tags_of(launched["run"])
    assert tags[SLOT_TAG] == f"{slugs[0]}..{slugs[1]}/quickbooks"
    assert tags[WAITS_ON_TAG] == "quickbooks"


def test_month_end_runs_over_spans_are_bulk_work_and_leave_the_intake_its_slots(db, workspace):
    """The month-end's schedules launch runs over spans of organizations (exports, dunning) with
    no lane of their own (issue 76): each is bulk work, held by the bulk share's limit, so as many
    of them as the instance's whole run limit leave a dropped invoice's intake run its slot."""
    instance = workspace.instance
    settings = instance_settings()["concurrency"]["runs"]
    bulk_limit = next(
        limit["limit"]
        for limit in settings["tag_concurrency_limits"]
        if limit["key"] == SHARE_TAG and limit.get("value") == "bulk"
    )
    assert bulk_limit < settings["max_concurrent_runs"]
    slugs = [f"month-end-{number:02d}" for number in range(2 * settings["max_concurrent_runs"])]
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
    month_end = []
    for first, last in zip(slugs[::2], slugs[1::2], strict=True):
        launched = launch(
            workspace,
            "dunning_job",
            "dunning_notices",
            {"as_of": "2026-10-31T23:00:00+00:00"},
            tags={
                RANGE_START_TAG: first,
                RANGE_END_TAG: last,
                "dagster/sensor_name": "dunning_sensor",
            },
        )
        assert launched["__typename"] == "LaunchRunSuccess", launched
        tags = tags_of(launched["run"])
        assert tags[SHARE_TAG] == BULK_RUN_TAGS[SHARE_TAG]
        assert tags[LANE_TAG] == BULK_RUN_TAGS[LANE_TAG]
        assert tags[PRIORITY_TAG] == BULK_RUN_TAGS[PRIORITY_TAG]
        assert tags[SLOT_TAG] == f"{first}..{last}"
        month_end.append(launched["run"]["runId"])
    shop = make_shop(db)
    intake = launch(workspace, "intake_job", "incoming_invoices", {}, partition=shop.org["slug"])
    dequeue_once(workspace)

    def started(run_id: str) -> bool:
        return instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTING

    assert sum(started(run_id) for run_id in month_end) == bulk_limit
    assert started(intake["run"]["runId"])


def test_a_launch_that_names_its_own_share_or_priority_keeps_it(db, workspace):
    """A span's run from a launch that gave a priority keeps it; one organization's run from the
    launchpad is not bulk work."""
    shop, other = make_shop(db), make_shop(db)
    slugs = [shop.org["slug"], other.org["slug"]]
    workspace.instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
    urgent = launch(
        workspace,
        "dunning_job",
        "dunning_notices",
        {},
        tags={RANGE_START_TAG: slugs[0], RANGE_END_TAG: slugs[1], PRIORITY_TAG: "5"},
    )
    tags = tags_of(urgent["run"])
    assert tags[PRIORITY_TAG] == "5" and tags[SHARE_TAG] == BULK_RUN_TAGS[SHARE_TAG]
    alone = launch(workspace, "dunning_job", "dunning_notices", {}, partition=slugs[0])
    assert SHARE_TAG not in tags_of(alone["run"]) and LANE_TAG not in tags_of(alone["run"])
