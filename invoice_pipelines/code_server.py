"""`make run`'s code server: Dagster's `code-server start`, with each run's process forked from a
process that has imported the code location already.

Dagster's code server (the `api grpc` process behind `code-server start`) starts each run in a
fresh interpreter (multiprocessing "spawn") that imports Dagster and the whole code location again
before the run's first step: 7 s on an idle 2-core machine (`import dagster` 3 s, the rest ours),
twice that under load, most of a dropped invoice's wait (docs/benchmarks.md, "Latency"). Here the
runs start from a warm process instead: multiprocessing's "forkserver" (the start method Dagster's
own multiprocess executor offers), which imports the code location's module once and forks a run's
process from that. Everything else stays Dagster's: the run's process is its own, with its own
pid, instance and database connections (none are open in the warm process: it only imports);
Dagster ends it as before when the run is terminated; the dead-runs sensor finds its pid as before.
One addition: a bulk run (tag `invoice_pipelines/share=bulk`: batch invoicing, documents,
backfills, QuickBooks pushes and syncs) gets a lower CPU priority (nice +10) right after its
start, so an intake or a review run beside it gets the 2 cores of a `make run` machine first.
A reload from the UI restarts the `api grpc` process and with it the warm process (a child of it),
so runs start from the new code.
Each of these processes, and each run, ends on its own within the grace of `make run`'s stop, and
without the interpreter's teardown (resources/workers/stop_deadline.py).

    python -m invoice_pipelines.code_server code-server start --socket ... -m <module> ...
    python -m invoice_pipelines.code_server api grpc ...   (what the first starts, through here)

Dagster 1.13 has no setting for either: what this replaces of Dagster's code server is behind the
fence (dagster_internals/api_server.py). When the installed Dagster lacks any of it, or with
INVOICE_PIPELINES_WARM_RUNS=0, this is Dagster's `code-server start` unchanged (runs spawned as
Dagster spawns them) and says so once (docs/dagster-upgrade.md); `test_dagster_upgrade.py` fails
when the pinned Dagster lacks any of it. Deployments on Kubernetes do not use this: each run there
is a pod of its own (deploy/).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from invoice_pipelines.dagster_internals import api_server
from invoice_pipelines.resources.workers import stop_deadline, stop_signal

MODULE = "invoice_pipelines.code_server"
# "0": runs start as Dagster starts them (spawned), with none of Dagster's code server replaced
WARM_RUNS = "INVOICE_PIPELINES_WARM_RUNS"

# how much lower a bulk run's CPU priority is than the code server's (nice: 0 .. 19)
BULK_NICENESS = 10

log = logging.getLogger(MODULE)


def _code_module(argv: Sequence[str]) -> str | None:
    """The module the server loads (`-m`/`--module-name`), None for another kind of target."""
    for i, arg in enumerate(argv):
        if arg in ("-m", "--module-name") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--module-name="):
            return arg.split("=", 1)[1]
    return None


def warm_runs_off() -> str | None:
    """Why this process leaves Dagster's code server as it is, or None: switched off, or the
    installed Dagster lacks what the warm runs replace."""
    if os.environ.get(WARM_RUNS, "1").strip() == "0":
        return f"{WARM_RUNS}=0"
    absent = api_server.missing()
    if absent:
        return f"this Dagster has no {', '.join(absent)}"
    return None


class BulkRuns:
    """Lowers the CPU priority of a bulk run (the share `bulk`: batch invoicing, documents,
    backfills, QuickBooks pushes and syncs), and so of the worker processes it starts: on the 2 cores of a `make run` machine, an
    intake or review run beside them gets the CPU first."""

    def __init__(self) -> None:
        self._instance: Any = None

    def lower_a_bulk_run(self, instance_ref: Any, run_id: str, pid: int) -> None:
        from dagster import DagsterInstance

        from invoice_pipelines.lib.run_coordinator import BULK_RUN_TAGS, SHARE_TAG

        if self._instance is None:
            self._instance = DagsterInstance.from_ref(instance_ref)
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.tags.get(SHARE_TAG) != BULK_RUN_TAGS[SHARE_TAG]:
            return
        lowered = min(os.getpriority(os.PRIO_PROCESS, 0) + BULK_NICENESS, 19)
        os.setpriority(os.PRIO_PROCESS, pid, lowered)


def start_run(*args: Any) -> None:
    """A run's process (Dagster's `start_run_in_subprocess`), which from the stop of `make run` on
    ends itself at its deadline at the latest, and says so when the stop cut it off: after how
    long a time of work (stop_deadline.cut_off_words)."""
    stop_deadline.watch("run")
    stop_signal.remember()  # a SIGTERM Dagster's handler loses still ends the run's work
    api_server.replace_stop_words(stop_deadline.stopping, stop_deadline.cut_off_words)
    api_server.start_run_in_subprocess(*args)


def prepare(args: Sequence[str]) -> None:
    """Replace what the warm runs need of Dagster's code server in this process (`api grpc ...
    -m <module>`: its API server and its runs' start; `code-server start`: the `api grpc`
    processes it starts come through here), or nothing, said once, when switched off or when the
    installed Dagster lacks any of it."""
    module = _code_module(args)
    serving = args[:2] == ["api", "grpc"] and bool(module)
    if not serving and args[:2] != ["code-server", "start"]:
        return
    off = warm_runs_off()
    if off:
        # said once: `code-server start` then starts Dagster's own `api grpc` process
        log.warning("runs start as Dagster starts them (spawned): %s", off)
    elif serving and module:
        api_server.warm_runs(
            [module],
            start_run=start_run,
            stopping=stop_deadline.stopping,
            started=BulkRuns().lower_a_bulk_run,
        )
    else:
        api_server.start_api_servers_through(MODULE)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    prepare(args)
    sys.argv = ["dagster", *args]
    stop_deadline.run_to_the_end(" ".join(args[:2]), api_server.dagster_cli())


if __name__ == "__main__":
    main()
