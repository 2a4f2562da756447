"""Dagster's storage on PostgreSQL with one kept connection a process, for the daemon and the runs.

dagster-postgres opens a new PostgreSQL connection for every write outside the webserver (its
engines use SQLAlchemy's NullPool, "to prevent accumulating connections per DagsterInstance"), and
an asset event takes two: the event row, then its index rows. A backfill run writes two asset
events a partition (the planned materialization when the daemon creates the run, the
materialization when its export is done), so a partition cost about as much in connections as
its export did (issue 55: 439 connects, 1.6 s, in a run of 80 exports that took 2.5 s in one
process; an event 28-36 ms with a new connection, 6-15 ms with a kept one, on a busy 2-core
machine).

The webserver already keeps its connections: at its start Dagster calls each storage's public
`optimize_for_webserver(statement_timeout, pool_recycle, max_overflow)`, which replaces the
NullPool engine by a pool of one kept connection plus overflow. This class is
`DagsterPostgresStorage` that does the same for every process that opens the instance (daemon,
runs, code server, commands), without a statement timeout (a run's writes have no interactive
caller to protect) and with unlimited overflow (a thread that needs a connection while the kept
one is busy opens one, as under the NullPool, and closes it when done: no wait and no new
failure). So a process holds at most one idle connection per storage (runs, events,
schedules): three a process, against the many connects a second before.

Creating a run over many partitions (the month-end's schedules, a backfill's chunk) writes one
planned materialization a partition and asset: this storage's event log writes them in one
statement (dagster_internals/planned_events.py, issue 76: the monthly exports' tick at 1,000
organizations 34.6 s before), and turns on the event batches of Dagster that hand them over
together (`DAGSTER_EVENT_BATCH_SIZE`, unless the deployment set it; 0 turns them off).

Forks: a run's process is forked from the code server's warm process, which only imports (no
instance, no connection is open there; invoice_pipelines/code_server.py), so no connection is
ever shared across a fork. The webserver still applies its own settings over these.

Configured in dagster.yaml (deploy/dagster.yaml), with the configuration of `storage: postgres`:

    storage:
      custom:
        module: invoice_pipelines.resources.dagster_instance.instance_storage
        class: KeptConnectionPostgresStorage
        config:
          postgres_db: {...}
"""

from __future__ import annotations

from typing import Any

from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from invoice_pipelines.dagster_internals.planned_events import (
    PlannedEventsInOneWrite,
    enable_event_batches,
)

NO_STATEMENT_TIMEOUT = 0  # PostgreSQL's `SET statement_timeout = 0`: none
RECYCLE_SECONDS = 3600  # a kept connection is replaced after an hour (the webserver's default)
UNLIMITED_OVERFLOW = -1  # SQLAlchemy's QueuePool: a busy pool opens another, never waits


class KeptConnectionPostgresStorage(DagsterPostgresStorage):
    """`storage: postgres` whose runs, event log and schedule storages keep one connection."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: Any = None,
        token_provider: Any = None,
    ) -> None:
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        # the same event log, its planned materializations a run written at once (the tables are
        # there: the storage built above created them)
        self._event_log_storage = PlannedEventsInOneWrite(
            postgres_url, should_autocreate_tables=False, token_provider=token_provider
        )
        enable_event_batches()
        for storage in (self.run_storage, self.event_log_storage, self.schedule_storage):
            storage.optimize_for_webserver(
                statement_timeout=NO_STATEMENT_TIMEOUT,
                pool_recycle=RECYCLE_SECONDS,
                max_overflow=UNLIMITED_OVERFLOW,
            )

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> KeptConnectionPostgresStorage:
        # as DagsterPostgresStorage.from_config_value reads the same configuration
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
