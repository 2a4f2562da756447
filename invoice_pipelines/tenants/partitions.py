"""Organizations as Dagster partitions, and the run tag that per-organization concurrency keys on."""

from __future__ import annotations

from dagster import DynamicPartitionsDefinition

ORGANIZATIONS_PARTITIONS_NAME = "organizations"
organizations_partitions = DynamicPartitionsDefinition(name=ORGANIZATIONS_PARTITIONS_NAME)

# the instance yaml (deploy/dagster.yaml) limits concurrent runs per unique value of this tag (applyLimitPerUniqueValue), so
# two runs for the same organization queue while other organizations proceed.
ORGANIZATION_TAG = "invoice_pipelines/organization"


def organization_tags(slug: str) -> dict[str, str]:
    return {ORGANIZATION_TAG: slug}
