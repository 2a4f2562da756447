"""What an op hands an action (`<area>/domain/actions.py`) as its `Report` (resources/dagster_instance/dagster_ui.py):
the run's log for the sentences, the run's events for what the UI shows changed (each plain event
typed as a run records it, lib/asset_metadata.py), and `refusals`, which turns the action's
refusal into the run's failure: the same sentences the command prints, no retry."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from dagster import AssetCheckEvaluation, AssetMaterialization, OpExecutionContext

from invoice_pipelines.lib.asset_metadata import as_metadata, check_result
from invoice_pipelines.lib.read_only import Refused
from invoice_pipelines.lib.refusals import NAMED, refused
from invoice_pipelines.resources.dagster_instance.dagster_ui import AssetEvent, CheckEvent
from invoice_pipelines.scheduled_checks import evaluation


class RunReport:
    """An op's `Report`: `say` and `warn` log, `changed` logs each event in the run."""

    def __init__(self, context: OpExecutionContext) -> None:
        self.context = context

    def say(self, line: str) -> None:
        self.context.log.info(line)

    def warn(self, line: str) -> None:
        self.context.log.warning(line)

    def changed(self, events: Iterable[AssetEvent | CheckEvent]) -> None:
        for event in events:
            self.context.log_event(run_event(event))


def run_event(event: AssetEvent | CheckEvent) -> AssetMaterialization | AssetCheckEvaluation:
    """A plain event as the run records it: the materialization with its typed metadata, or the
    check's evaluation on the asset's partition."""
    if isinstance(event, CheckEvent):
        result = check_result(event.finding, check_name=event.check_name, asset_key=event.asset)
        return evaluation(result, event.asset, event.partition)
    return AssetMaterialization(
        event.asset,
        partition=event.partition,
        metadata=as_metadata(event.metadata),
        description=event.description or None,
    )


@contextmanager
def refusals() -> Iterator[None]:
    """An action's `Refused` as the run's failure: its sentences (the first NAMED, then how many
    more), no retry; the op's own words are the command's."""
    try:
        yield
    except Refused as exc:
        problems = exc.problems
        more = f" and {len(problems) - NAMED} more" if len(problems) > NAMED else ""
        raise refused("; ".join(problems[:NAMED]) + more) from None
