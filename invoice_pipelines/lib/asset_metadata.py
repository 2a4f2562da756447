"""An organization's asset metadata as a run records it: the plain values a function builds
without Dagster (so a command can report the same to the UI, resources/dagster_instance/dagster_ui.py) as
Dagster's typed metadata values, and a check's plain finding as the check's result."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from invoice_pipelines.metadata import CheckFinding, Location, Markdown


def typed(value: object) -> MetadataValue:
    """One plain value as the UI types it: a `Markdown` table, a file's `Location`, a number, a
    JSON value, text."""
    if isinstance(value, Markdown):
        return MetadataValue.md(str(value))
    if isinstance(value, Location):
        return MetadataValue.path(str(value))
    if isinstance(value, bool):
        return MetadataValue.bool(value)
    if isinstance(value, int):
        return MetadataValue.int(value)
    if isinstance(value, float):
        return MetadataValue.float(value)
    if isinstance(value, (dict, list)):
        return MetadataValue.json(value)
    return MetadataValue.text(str(value))


def as_metadata(plain: Mapping[str, object]) -> dict[str, MetadataValue]:
    return {name: typed(value) for name, value in plain.items()}


def check_result(
    finding: CheckFinding, *, check_name: str | None = None, asset_key: str | None = None
) -> AssetCheckResult:
    """A check's finding (built without Dagster) as the result a run's check returns."""
    return AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=finding.passed,
        severity=AssetCheckSeverity(finding.severity),
        description=finding.description,
        metadata=as_metadata(finding.metadata),
    )
