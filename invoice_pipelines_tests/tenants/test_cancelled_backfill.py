"""A run of a backfill that is being cancelled is cancelled before it is queued (issue 73, point
10: three runs of a backfill being cancelled were created up to 1.9 s after the cancel and started
14-20 s later). Our code creates no backfill run: Dagster's backfill daemon does, and it looks at
a cancel only every 25 runs it submits, so the runs of an iteration under way are still created
after it; the run coordinator, which every run passes before the queue, cancels them."""

from __future__ import annotations

from dagster import DagsterRunStatus
from dagster_graphql.test.utils import execute_dagster_graphql

from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.lib.run_coordinator import BACKFILL_TAG, LANE_TAG
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.tenants.test_run_coordinator import (
    _workspace,
    launch,
    tags_of,
    workspace,
)

__all__ = ["_workspace", "workspace"]  # the fixtures, shared with test_run_coordinator.py

BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  }
}
"""
CANCEL = """
mutation($id: String!) {
  cancelPartitionBackfill(backfillId: $id) {
    __typename ... on PythonError { message }
  }
}
"""


def _backfill(workspace, slug: str) -> str:
    """A backfill of one organization's documents, as the UI launches it (no daemon here: it
    stays requested, no run of its own)."""
    context = workspace.create_request_context()
    answer = execute_dagster_graphql(
        context,
        BACKFILL,
        variables={
            "params": {
                "partitionNames": [slug],
                "assetSelection": [{"path": ["sales_invoice_documents"]}],
            }
        },
    ).data["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


def test_a_run_of_a_backfill_being_cancelled_is_cancelled_not_queued(db, workspace):
    shop = make_shop(db)
    slug = shop.org["slug"]
    instance = workspace.instance
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
    going_on, cancelled = _backfill(workspace, slug), _backfill(workspace, slug)
    context = workspace.create_request_context()
    answer = execute_dagster_graphql(context, CANCEL, variables={"id": cancelled}).data
    assert answer["cancelPartitionBackfill"]["__typename"] == "CancelBackfillSuccess", answer
    assert instance.get_backfill(cancelled).status.value == "CANCELING"

    def submitted(backfill_id: str) -> dict:
        # a run of the backfill as Dagster's daemon submits it: the backfill's tag on it
        run = launch(
            workspace,
            "documents_job",
            "sales_invoice_documents",
            {},
            tags={BACKFILL_TAG: backfill_id},
            partition=slug,
        )
        assert run["__typename"] == "LaunchRunSuccess", run
        return run["run"]

    queued = submitted(going_on)
    assert instance.get_run_by_id(queued["runId"]).status == DagsterRunStatus.QUEUED
    assert tags_of(queued)[LANE_TAG] == "backfill"

    late = submitted(cancelled)
    assert instance.get_run_by_id(late["runId"]).status == DagsterRunStatus.CANCELED
    messages = [
        event.message
        for event in instance.all_logs(late["runId"])
        if event.dagster_event and event.dagster_event.event_type_value == "PIPELINE_CANCELED"
    ]
    assert messages == [
        f"Run cancelled before it was queued: its backfill {cancelled} is canceling (Dagster's "
        "backfill daemon created it after the cancel, as it looks at a cancel only every 25 "
        "runs it submits)."
    ]
