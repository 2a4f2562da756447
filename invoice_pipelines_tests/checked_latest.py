"""What the UI shows of an asset's checks: evaluated on the asset's latest materialization, or
"Not evaluated". Decided by Dagster's own rule (what the webserver's GraphQL answers as a check's
`executionForLatestMaterialization`), for tests that prove a run or a command checks what it
materializes."""

import asyncio

from dagster import AssetCheckKey, AssetKey, DagsterInstance
from dagster._core.loader import LoadingContextForTest
from dagster._core.storage.event_log.base import PartitionKeyFilter


def latest_check_statuses(
    instance: DagsterInstance, asset: str, names: list[str], partition: str | None = None
) -> dict[str, str | None]:
    """Each named check's status (SUCCEEDED, FAILED ...) on `asset`'s latest materialization
    (the check evaluated for `partition`, None for one over every organization); None where the
    UI says "Not evaluated"."""
    found: dict[str, str | None] = {}
    for name in names:
        key = AssetCheckKey(AssetKey(asset), name)
        context = LoadingContextForTest(instance)
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [key], partition_filter=PartitionKeyFilter(key=partition)
        ).get(key)
        if record is None or not asyncio.run(record.targets_latest_materialization(context)):
            found[name] = None
        else:
            found[name] = asyncio.run(record.resolve_status(context)).value
    return found


def assert_checked_latest(
    instance: DagsterInstance, asset: str, names: list[str], partition: str | None = None
) -> dict[str, str | None]:
    """Every named check of `asset` is evaluated on its latest materialization; their statuses."""
    statuses = latest_check_statuses(instance, asset, names, partition)
    assert None not in statuses.values(), statuses
    return statuses
