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
One addition: a run of the bulk lane (tag `invoice_pipelines/lane=bulk`: batch invoicing, documents,
QuickBooks syncs) gets a lower CPU priority (nice +10) right after its start, so an intake or a
review run beside it gets the 2 cores of a `make run` machine first.
A reload from the UI restarts the `api grpc` process and with it the warm process (a child of it),
so runs start from the new code.
Each of these processes, and each run, ends on its own within the grace of `make run`'s stop, and
without the interpreter's teardown (resources/stop_deadline.py).

    python -m invoice_pipelines.code_server code-server start --socket ... -m <module> ...
    python -m invoice_pipelines.code_server api grpc ...   (what the first starts, through here)

Dagster 1.13 has no setting for either: the `api grpc` process gets this module as its entry point
(the proxy's `get_python_environment_entry_point`), and its API server the start method (the
server's `_mp_ctx`). `test_code_server.py` fails if the pinned Dagster stops honouring either.
Deployments on Kubernetes do not use this: each run there is a pod of its own (deploy/).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
import os
import sys
from collections.abc import Sequence
from typing import Any

from invoice_pipelines.resources import stop_deadline

MODULE = "invoice_pipelines.code_server"


def _code_module(argv: Sequence[str]) -> str | None:
    """The module the server loads (`-m`/`--module-name`), None for another kind of target."""
    for i, arg in enumerate(argv):
        if arg in ("-m", "--module-name") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--module-name="):
            return arg.split("=", 1)[1]
    return None


# what a run's process imports before its first step besides the code location: the function
# the server starts it with, what opening any instance imports (its secrets loader, the paths of
# its folders), and (`instance_modules`) the instance's storages, run coordinator and launcher
# (with alembic: 2/3 of a forked run's start, sampled with py-spy, before they were preloaded)
RUN_MODULES = (
    "dagster._grpc.impl",
    "dagster._core.secrets",
    "upath",
    "fsspec.implementations.local",
)


# how much lower a bulk run's CPU priority is than the code server's (nice: 0 .. 19)
BULK_NICENESS = 10


def instance_modules(ref: Any) -> list[str]:
    """The modules of the classes an instance names (its storages, compute logs, run coordinator,
    run launcher, ...): the fields of an InstanceRef that are a class's module and name."""
    if ref is None:
        return []
    return sorted(
        {
            value.module_name
            for value in ref
            if isinstance(getattr(value, "module_name", None), str) and hasattr(value, "class_name")
        }
    )


def _instance_ref(server: Any) -> Any:
    ref = getattr(server, "_instance_ref", None)
    if ref is None and os.environ.get("DAGSTER_HOME"):
        from dagster._core.instance.ref import InstanceRef

        try:
            ref = InstanceRef.from_dir(os.environ["DAGSTER_HOME"])
        except Exception:  # noqa: BLE001 (a preload only: the run opens the instance itself)
            return None
    return ref


def _warm_runs(code_modules: list[str]) -> None:
    """The API servers of this process start their runs by forking a process that has imported
    the code location and what a run imports before its first step (started at once, so the
    first run does not wait for those imports either)."""
    from dagster._grpc import server

    base = server.DagsterApiServer

    class WarmRunsApiServer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            if not hasattr(self, "_mp_ctx"):
                raise RuntimeError(f"{base.__qualname__} no longer has _mp_ctx: see {MODULE}")
            context = multiprocessing.get_context("forkserver")
            # after the code location loaded: the warm process gets its sys.path and working dir;
            # a module that cannot be imported there is left out (and imported by the run)
            preload = [*RUN_MODULES, *instance_modules(_instance_ref(self)), *code_modules]
            context.set_forkserver_preload(preload)
            multiprocessing.forkserver.ensure_running()
            self._mp_ctx = context
            self._run_lookup: Any = None

        def _check_for_orphaned_runs(self) -> None:
            # Not during the stop of `make run`: SIGTERM ends the warm process at once, and with
            # it multiprocessing's view of the runs forked from it (each "exited with code 255",
            # its Dagster failure "marked from outside the execution context"), while the runs
            # were still recording their end. They record it themselves; the stop's sweep records
            # the end of those that could not. What the check does for the server's own end stays.
            if not stop_deadline.stopping():
                super()._check_for_orphaned_runs()
                return
            with self._execution_lock:
                for run_id, (process, _) in list(self._executions.items()):
                    if not process.is_alive():
                        self._clear_run(run_id)
                if self._shutdown_once_executions_finish_event.is_set() and not self._executions:
                    self._server_termination_event.set()

        def StartRun(self, request, context):  # noqa: N802 (gRPC's name)
            reply = super().StartRun(request, context)
            try:
                self._lower_a_bulk_run(request.serialized_execute_run_args)
            except Exception:  # noqa: BLE001 (a priority only: the run goes on as it is)
                logging.getLogger(MODULE).warning(
                    "could not lower a bulk run's priority", exc_info=True
                )
            return reply

        def _lower_a_bulk_run(self, serialized_args: str) -> None:
            """A run of the bulk lane (batch invoicing, documents, QuickBooks syncs) gets a lower
            CPU priority, and so do the worker processes it starts: on the 2 cores of a `make run`
            machine, an intake or review run beside them gets the CPU first."""
            from dagster import DagsterInstance
            from dagster._grpc.types import ExecuteExternalJobArgs
            from dagster._serdes import deserialize_value

            from invoice_pipelines.tenants.run_coordinator import LANE_TAG

            args = deserialize_value(serialized_args, ExecuteExternalJobArgs)
            if self._run_lookup is None:
                self._run_lookup = DagsterInstance.from_ref(args.instance_ref)
            run = self._run_lookup.get_run_by_id(args.run_id)
            if run is None or run.tags.get(LANE_TAG) != "bulk":
                return
            process = self._executions.get(args.run_id)  # (process, instance ref)
            if process is not None and process[0].pid:
                lowered = min(os.getpriority(os.PRIO_PROCESS, 0) + BULK_NICENESS, 19)
                os.setpriority(os.PRIO_PROCESS, process[0].pid, lowered)

    server.DagsterApiServer = WarmRunsApiServer
    from dagster._core.events import DagsterEvent, RunFailureReason
    from dagster._grpc import impl

    if not hasattr(RunFailureReason, "UNEXPECTED_TERMINATION") or not all(
        hasattr(owner, name)
        for owner, name in (
            (server, "start_run_in_subprocess"),
            (base, "_check_for_orphaned_runs"),
            (base, "_clear_run"),
            (DagsterEvent, "job_failure"),
            (impl, "_report_run_failed_if_not_finished"),
        )
    ):
        raise RuntimeError(f"Dagster no longer has what a run's stop words replace: see {MODULE}")
    server.start_run_in_subprocess = start_run


def start_run(*args: Any) -> None:
    """A run's process (Dagster's `start_run_in_subprocess`), which from the stop of `make run` on
    ends itself at its deadline at the latest."""
    from dagster._grpc.impl import start_run_in_subprocess

    stop_deadline.watch("run")
    _say_when_the_stop_cut_it_off()
    start_run_in_subprocess(*args)


def _say_when_the_stop_cut_it_off() -> None:
    """In a run's process: a run the stop of `make run` interrupted says so, and after how long a
    time of work (stop_deadline.cut_off_words). Dagster's own words for it were "Execution was
    interrupted unexpectedly. No user initiated termination request was found" (a run at work)
    and "marked as failed from outside the execution context" (a run whose job had not begun);
    outside a stop (a crash, a cancel) they stay Dagster's."""
    from dagster._core.events import DagsterEvent, RunFailureReason
    from dagster._grpc import impl

    job_failure = DagsterEvent.job_failure
    report_if_not_finished = impl._report_run_failed_if_not_finished

    def failure(job_context, context_msg, failure_reason, *args: Any, **kwargs: Any):
        if failure_reason == RunFailureReason.UNEXPECTED_TERMINATION and stop_deadline.stopping():
            record = job_context.instance.get_run_record_by_id(job_context.run_id)
            context_msg = stop_deadline.cut_off_words(record.start_time if record else None)
        return job_failure(job_context, context_msg, failure_reason, *args, **kwargs)

    def report_failed(instance, run_id):
        if not stop_deadline.stopping():
            yield from report_if_not_finished(instance, run_id)
            return
        record = instance.get_run_record_by_id(run_id)
        if record is not None and not record.dagster_run.is_finished:
            words = stop_deadline.cut_off_words(record.start_time)
            yield instance.report_run_failed(record.dagster_run, words)

    DagsterEvent.job_failure = staticmethod(failure)
    impl._report_run_failed_if_not_finished = report_failed


def _through_here() -> None:
    """The `api grpc` processes the proxy starts run this module too."""
    from dagster._grpc import server

    def entry_point(executable_path: str) -> list[str]:
        return [executable_path, "-m", MODULE]

    server.get_python_environment_entry_point = entry_point


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    module = _code_module(args)
    if args[:2] == ["api", "grpc"] and module:
        _warm_runs([module])
    elif args[:2] == ["code-server", "start"]:
        _through_here()
    from dagster._cli import main as dagster_main

    sys.argv = ["dagster", *args]
    stop_deadline.run_to_the_end(" ".join(args[:2]), dagster_main)


if __name__ == "__main__":
    main()
