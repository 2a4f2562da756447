"""Run tags for organization partitions are the ones Dagster itself reads."""

from __future__ import annotations

from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from invoice_pipelines.lib.partitions import partition_range_tags, partition_run_tags


def test_range_and_partition_tags_are_dagsters_own():
    # Dagster shows a run on these partitions (and materializes them) only under its own names
    assert partition_range_tags("acme", "zeta") == {
        ASSET_PARTITION_RANGE_START_TAG: "acme",
        ASSET_PARTITION_RANGE_END_TAG: "zeta",
    }
    assert partition_run_tags("acme")[PARTITION_NAME_TAG] == "acme"
