"""The requests of a sensor that launches one run per organization, a few organizations a tick
(issue 55: "a sensor's requests stop with the sensor").

Dagster's sensor daemon (1.13.27, `_daemon/sensor.py`) reserves every run request a tick returns
and then submits them one after the other; it does not look at the sensor's state meanwhile (its
check, `get_tick_termination_check_interval`, returns None on Dagster's own instance), and a tick
cut short is resumed at the daemon's next start. So a tick of `documents_sensor` over 100
organizations went on requesting 51 runs after `dagster sensor stop`. Such a sensor therefore
takes turns: at most `RUNS_PER_TICK` organizations a tick, in the order of their slugs, starting
after the last organization it served (the sensor's cursor); once it has served the last one, the
next tick starts from the first again. After a stop, at most `RUNS_PER_TICK` runs are still
requested (the tick in flight); an organization waits at most ceil(waiting / RUNS_PER_TICK) ticks
for its turn; a round requests each organization once. An organization served in the last round
and still waiting is asked for again in the next one with the same run key while its work is the
same, which the daemon skips.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from invoice_pipelines.lib.partitions import ORGANIZATION_TAG, PARTITION_TAG

# a run that will still do its organization's work: waiting in the queue, or under way
WAITING_OR_UNDER_WAY = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]

# Organizations a tick at most. 20 a tick is 40 runs a minute at documents_sensor's 30 s, more
# than the 6 runs of the bulk lane finish (a documents run is 5-10 s of work plus its start), so
# the turns hold nobody back; a stop lets at most 20 more runs through.
RUNS_PER_TICK = 20

Request = TypeVar("Request")


@dataclass(frozen=True)
class Turn(Generic[Request]):
    """This tick's requests, the cursor for the next tick, and how many organizations wait for a
    later turn."""

    requests: list[Request]
    cursor: str
    later: int

    def summary(self, waiting: int) -> str:
        if not self.later:
            return f"{len(self.requests)} of {waiting} organizations (the rest of the round)"
        ticks = math.ceil(self.later / RUNS_PER_TICK)
        return (
            f"{len(self.requests)} of {waiting} organizations this tick; {self.later} more in the "
            f"next {ticks} tick{'s' if ticks > 1 else ''} (at most {RUNS_PER_TICK} a tick)"
        )


def take_turn(
    cursor: str | None, waiting: Iterable[tuple[str, Request]], limit: int = RUNS_PER_TICK
) -> Turn[Request]:
    """The requests of the organizations whose turn it is, from `waiting` (slug, request; one per
    organization) and the cursor of the tick before ('' or None: from the first)."""
    if limit < 1:
        raise ValueError("a turn serves at least one organization")
    ordered = sorted(waiting, key=lambda pair: pair[0])
    after = [pair for pair in ordered if pair[0] > (cursor or "")]
    if not after:  # the round is over (the rest were done meanwhile): a new one
        after = ordered
    turn, later = after[:limit], after[limit:]
    return Turn(
        requests=[request for _, request in turn],
        cursor=turn[-1][0] if later else "",
        later=len(later),
    )


def organizations_with_a_run(instance: DagsterInstance, job_name: str) -> set[str]:
    """The organizations that have a run of `job_name` queued or under way (issue 56: while a
    batch was written or a push went on, the work's run key changed every tick, and each tick
    queued one more run per organization: 7 pushes and 5 documents runs of one organization
    waited at once). A sensor that asks for a run of an organization's whole waiting work leaves
    these out: the queued run does that work, and once the run is over the sensor asks again for
    what is still waiting. One query a tick, over the runs in flight only."""
    runs = instance.get_runs(filters=RunsFilter(job_name=job_name, statuses=WAITING_OR_UNDER_WAY))
    return {
        slug
        for run in runs
        if (slug := run.tags.get(ORGANIZATION_TAG) or run.tags.get(PARTITION_TAG))
    }
