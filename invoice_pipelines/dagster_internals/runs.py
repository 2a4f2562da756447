"""What Dagster records about a run without documenting it: the code server that launched it,
the process it runs in, the pools its ops wait in.

- `GRPC_INFO_TAG`: the hidden tag in which the DefaultRunLauncher writes the socket or host of
  the code server it launched the run through (`dagster._core.storage.tags.GRPC_INFO_TAG`);
  written out here, so that a Dagster without it leaves every run unjudged by the dead-runs sweep
  instead of failing the import of the code location;
- `STARTED_PROCESS`: the messages of the engine event in which the run worker names its pid
  (`dagster._grpc.impl`, `dagster._cli.api`; the pid is the event's `pid` metadata);
- `run_pools(run)`: the pools of a run's ops, which Dagster records from the execution plan when
  it creates the run, however it was launched (`DagsterRun.run_op_concurrency`).
"""

from __future__ import annotations

from typing import Any

GRPC_INFO_TAG = ".dagster/grpc_info"
# the messages of the run worker's engine event that names its pid (a run, a resumed run)
STARTED_PROCESS = ("Started process for run", "Started process for resuming job")


def run_pools(run: Any) -> frozenset[str]:
    """The pools a run's ops are in (empty when Dagster recorded none)."""
    concurrency = getattr(run, "run_op_concurrency", None)
    return frozenset((concurrency.all_pools if concurrency else None) or ())
