"""Every run names its lane with one short value, and runs of different kinds differ in it (issue
73, point 7: on the Runs page a QuickBooks push and a documents run both showed `lane: bulk`, and
the tag that told them apart was cut off). The lane the run coordinator gives a run of each job
of the code location, launched as its sensors and schedules launch bulk work, from the
launchpad, and by a backfill (`lane_of`, which `lane_tags` applies before a run is queued); the
limits of the instance name the same values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from invoice_pipelines.definitions import defs
from invoice_pipelines.lib.run_coordinator import (
    BACKFILL_RUN_TAGS,
    BACKFILL_TAG,
    BULK_RUN_TAGS,
    INTAKE_JOBS,
    LANE_TAG,
    RATE_LIMITED_POOLS,
    SHARE_TAG,
    lane_of,
)

ROOT = Path(__file__).resolve().parents[2]
# the longest a lane's value may be and still read whole beside the other tags of a run
SHORT = 13
LAUNCHES = {
    "launchpad": {},
    "bulk sensor or schedule": BULK_RUN_TAGS,
    "backfill": {BACKFILL_TAG: "abcdefgh"},
}


def _jobs() -> dict[str, frozenset[str]]:
    """Every job of the code location with the pools of its ops."""
    jobs = defs.get_repository_def().get_all_jobs()
    return {
        job.name: frozenset(node.pool for node in job.all_node_defs if getattr(node, "pool", None))
        for job in jobs
    }


def _kind(job: str, pools: frozenset[str], launch: str) -> str | None:
    """What a person tells runs apart by: intake, a backfill, the outside service a run waits
    on, local bulk work; None for a local run from the launchpad (no lane)."""
    if job in INTAKE_JOBS:
        return "intake"
    if launch == "backfill":
        return "a migration's history"
    services = sorted(pools & RATE_LIMITED_POOLS)
    if services:
        return f"waits on {services[0]}"
    return "local bulk work" if launch == "bulk sensor or schedule" else None


def test_runs_of_different_kinds_name_different_short_lanes():
    jobs = _jobs()
    lanes_of_kind: dict[str, set[str | None]] = {}
    for job, pools in jobs.items():
        for launch, tags in LAUNCHES.items():
            kind = _kind(job, pools, launch)
            lanes_of_kind.setdefault(kind, set()).add(lane_of(job, pools, tags))
    assert lanes_of_kind.pop(None) == {None}
    # one lane per kind, a different one for each kind, short
    assert all(len(lanes) == 1 for lanes in lanes_of_kind.values()), lanes_of_kind
    lanes = {kind: lanes.pop() for kind, lanes in lanes_of_kind.items()}
    assert len(set(lanes.values())) == len(lanes), lanes
    assert all(lane and len(lane) <= SHORT for lane in lanes.values()), lanes
    assert lanes == {
        "intake": "intake",
        "a migration's history": "backfill",
        "waits on quickbooks": "quickbooks",
        "waits on mail": "mail",
        "waits on text_messages": "text_messages",
        "local bulk work": "bulk",
    }


@pytest.mark.parametrize(
    "job, lane",
    [
        # issue 73's two runs, as their sensors launch them
        ("qbo_invoices_job", "quickbooks"),
        ("documents_job", "bulk"),
        ("batch_invoicing_job", "bulk"),
        ("qbo_bills_job", "quickbooks"),
        ("communications_batch_job", "mail"),
    ],
)
def test_the_sensors_bulk_runs_are_told_apart(job, lane):
    assert lane_of(job, _jobs()[job], BULK_RUN_TAGS) == lane


@pytest.mark.parametrize("instance", ["dagster.yaml", "deploy/dagster.yaml"])
def test_the_instance_limits_name_the_lanes_and_the_bulk_share(instance):
    settings = yaml.safe_load((ROOT / instance).read_text())
    limits = settings["concurrency"]["runs"]["tag_concurrency_limits"]
    by_key = {limit["key"]: limit["value"] for limit in limits}
    # every bulk run counts against the bulk share, whatever its lane
    assert by_key[SHARE_TAG] == BULK_RUN_TAGS[SHARE_TAG] == BACKFILL_RUN_TAGS[SHARE_TAG]
    # the backfill lane's own cap names the lane a backfill's runs get
    assert (
        by_key[LANE_TAG]
        == BACKFILL_RUN_TAGS[LANE_TAG]
        == lane_of("export_job", (), LAUNCHES["backfill"])
    )
