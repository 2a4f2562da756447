"""A run's planned materializations written to dagster-postgres in one statement (issue 76).

When Dagster creates a run over a range of partitions (the month-end's schedules: 100
organizations a run; a backfill's chunk), it writes one ASSET_MATERIALIZATION_PLANNED event per
asset and partition before the run is queued. Those events are what the UI reads to show each
partition "materializing" while the run is under way and "failed" if the run fails (Dagster
1.13's open-source storage keys both on the event's partition). dagster-postgres writes each
one as an event of its own: its row, a NOTIFY, then its asset row in a second transaction, 20-35
ms an event on a busy 2-core machine. An export run of 100 organizations (two assets) took 2-7
s to create, so the monthly exports' tick at 1,000 organizations took 34.6 s.

Dagster already hands these events over as one batch (`DagsterEventBatchMetadata`), but only
when the environment variable `DAGSTER_EVENT_BATCH_SIZE` is above 0, and dagster-postgres writes
a batch in one statement only when it holds materializations or observations alone; a batch of
planned events falls back to one write each. `PlannedEventsInOneWrite` writes the planned
materializations of a batch with one INSERT and updates each asset's row once, in one
transaction: the same rows Dagster writes one by one (each partition keeps its own event, so
the UI shows what it showed), 0.5 s for such a run instead of 2-7 s. The batch's other events
(the checks' planned evaluations) go through dagster-postgres as before.

What it relies on: `PostgresEventLogStorage.store_event_batch`, `prepare_insert_event_batch` and
`_store_asset_event(conn, event, event_id)`, `index_transaction()`, the statement's `table.c.id`,
and the variable's name and meaning (`dagster._core.instance.utils._get_event_batch_size`).
If a later write of the batch fails, Dagster stores the whole batch again one event at a time:
the planned events are then written twice, which changes no partition's status (both name the
same run).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from dagster import DagsterEventType
from dagster_postgres.event_log import PostgresEventLogStorage

BATCH_SIZE_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
# events a batch holds at most before Dagster writes it: a run of 101 organizations' two exports
# plans 202 partitions' events, one write
BATCH_SIZE = 1000
PLANNED = DagsterEventType.ASSET_MATERIALIZATION_PLANNED


def enable_event_batches() -> None:
    """Let Dagster hand over a run's planned events as one batch, unless the deployment set the
    variable itself (0 turns the batches off: one write an event, as before)."""
    os.environ.setdefault(BATCH_SIZE_VARIABLE, str(BATCH_SIZE))


def missing() -> list[str]:
    """What this Dagster lacks of what the class relies on (empty when all is there)."""
    needed = ("store_event_batch", "prepare_insert_event_batch", "_store_asset_event")
    return [
        f"PostgresEventLogStorage.{name}"
        for name in needed
        if not callable(getattr(PostgresEventLogStorage, name, None))
    ]


class PlannedEventsInOneWrite(PostgresEventLogStorage):
    """dagster-postgres' event log whose batches of planned materializations take one write."""

    def store_event_batch(self, events: Sequence[Any]) -> None:
        planned = [event for event in events if event.dagster_event_type == PLANNED]
        if not planned:
            super().store_event_batch(events)
            return
        statement = self.prepare_insert_event_batch(planned)
        with self.index_transaction() as conn:
            ids = [row[0] for row in conn.execute(statement.returning(statement.table.c.id))]
            # each asset's row names its latest planned event (and run), as one by one would
            latest = {}
            for event, event_id in zip(planned, ids, strict=True):
                latest[event.dagster_event.asset_key] = (event, event_id)
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)
        others = [event for event in events if event.dagster_event_type != PLANNED]
        if others:
            super().store_event_batch(others)
