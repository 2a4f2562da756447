"""How `make run`'s code server (invoice_pipelines/code_server.py) starts runs from a warm process:
the parts of Dagster's gRPC API server and of its run start that it replaces.

Dagster 1.13 has no setting for either: the `api grpc` process gets the code server's module as
its entry point (the proxy's `get_python_environment_entry_point`), and its API server the start
method (the server's `_mp_ctx`). Everything here is Dagster's private API (`dagster._grpc`,
`dagster._core.events`, `dagster._serdes`, `dagster._cli`). `missing()` names what of it the
installed Dagster lacks; the code server then leaves Dagster as it is (runs spawned as plain
Dagster spawns them) and says so (docs/dagster-upgrade.md).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
from collections.abc import Callable, Sequence
from typing import Any

from invoice_pipelines.dagster_internals.instance import instance_modules, instance_ref_from_home

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
# the API server's own attributes the warm server reads or sets, there once Dagster's __init__
# has run: without one of them its runs start as Dagster starts them
# what a run asked to start while the server stops hears (gRPC UNAVAILABLE): the queue daemon
# takes it for a code server out of reach and puts the run back in the queue
STOPPING = (
    "the code server is stopping: the run goes back to the queue and starts after the restart"
)
SERVER_ATTRIBUTES = (
    "_mp_ctx",
    "_executions",
    "_execution_lock",
    "_shutdown_once_executions_finish_event",
    "_server_termination_event",
)

log = logging.getLogger(__name__)


def missing() -> list[str]:
    """What the installed Dagster lacks of what the code server replaces or calls (empty on the
    pinned Dagster: test_dagster_upgrade.py)."""
    try:
        from dagster._cli import main  # noqa: F401
        from dagster._core.events import DagsterEvent, RunFailureReason
        from dagster._grpc import impl, proxy_server, server, types
        from dagster._serdes import deserialize_value  # noqa: F401
    except ImportError as error:
        return [f"{error.name or error}"]
    base = getattr(server, "DagsterApiServer", None)
    proxy = getattr(proxy_server, "DagsterProxyApiServicer", None)
    wanted = (
        ("dagster._grpc.server", server, "DagsterApiServer"),
        ("dagster._grpc.server", server, "start_run_in_subprocess"),
        ("dagster._grpc.server", server, "get_python_environment_entry_point"),
        ("DagsterApiServer", base, "StartRun"),
        ("DagsterApiServer", base, "_check_for_orphaned_runs"),
        ("DagsterApiServer", base, "_clear_run"),
        ("dagster._grpc.proxy_server", proxy_server, "DagsterProxyApiServicer"),
        ("DagsterProxyApiServicer", proxy, "StartRun"),
        ("dagster._grpc.impl", impl, "start_run_in_subprocess"),
        ("dagster._grpc.impl", impl, "_report_run_failed_if_not_finished"),
        ("dagster._grpc.types", types, "ExecuteExternalJobArgs"),
        ("DagsterEvent", DagsterEvent, "job_failure"),
        ("RunFailureReason", RunFailureReason, "UNEXPECTED_TERMINATION"),
    )
    return [f"{owner}.{name}" for owner, value, name in wanted if not hasattr(value, name)]


def warm_runs(
    code_modules: Sequence[str],
    *,
    start_run: Callable[..., None],
    stopping: Callable[[], bool],
    started: Callable[[Any, str, int], None],
) -> None:
    """The API servers of this process start their runs by forking a process that has imported
    the code location and what a run imports before its first step (started at once, so the
    first run does not wait for those imports either).

    `start_run`: what a run's process runs, a module-level function that ends by calling
    `start_run_in_subprocess` with its arguments; `stopping()`: whether the stop of `make run`
    has begun (the server then leaves the runs to record their own end); `started(instance_ref,
    run_id, pid)`: called after the server started a run's process."""
    import grpc
    from dagster._grpc import server
    from dagster._grpc.types import ExecuteExternalJobArgs
    from dagster._serdes import deserialize_value

    base = server.DagsterApiServer

    class WarmRunsApiServer(base):  # type: ignore[misc, valid-type]
        # whether this server has the attributes read below; until its __init__ has looked (the
        # cleanup thread Dagster's __init__ starts may call in before) and without them, it is
        # Dagster's server unchanged
        _ours = False

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            absent = [name for name in SERVER_ATTRIBUTES if not hasattr(self, name)]
            if absent:
                log.warning(
                    "%s no longer has %s: runs start as Dagster starts them (spawned), not from "
                    "a warm process (docs/dagster-upgrade.md)",
                    base.__qualname__,
                    ", ".join(absent),
                )
                return
            self._ours = True
            try:
                context = multiprocessing.get_context("forkserver")
                # after the code location loaded: the warm process gets its sys.path and working
                # dir; a module that cannot be imported there is left out (and imported by the run)
                preload = [*RUN_MODULES, *instance_modules(_instance_ref(self)), *code_modules]
                context.set_forkserver_preload(preload)
                multiprocessing.forkserver.ensure_running()
            except Exception:  # noqa: BLE001 (runs still start, as Dagster starts them)
                log.warning(
                    "could not start the warm process: runs start as Dagster starts them (spawned)",
                    exc_info=True,
                )
                return
            self._mp_ctx = context

        def _check_for_orphaned_runs(self) -> None:
            # Not during the stop of `make run`: SIGTERM ends the warm process at once, and with
            # it multiprocessing's view of the runs forked from it (each "exited with code 255",
            # its Dagster failure "marked from outside the execution context"), while the runs
            # were still recording their end. They record it themselves; the stop's sweep records
            # the end of those that could not. What the check does for the server's own end stays.
            if not self._ours or not stopping():
                super()._check_for_orphaned_runs()
                return
            with self._execution_lock:
                for run_id, (process, _) in list(self._executions.items()):
                    if not process.is_alive():
                        self._clear_run(run_id)
                if self._shutdown_once_executions_finish_event.is_set() and not self._executions:
                    self._server_termination_event.set()

        def StartRun(self, request, context):  # noqa: N802 (gRPC's name)
            if self._ours and self._shutdown_once_executions_finish_event.is_set():
                # Dagster's server answers "Tried to start a run on a server after telling it to
                # shut down", which fails the run for good: a backfill's run the queue took during
                # a stop of `make run` failed so. Unavailable instead is what the queue daemon
                # puts the run back for (max_user_code_failure_retries): it runs after a restart
                context.abort(grpc.StatusCode.UNAVAILABLE, STOPPING)
            reply = super().StartRun(request, context)
            if not self._ours:
                return reply
            try:
                serialized = request.serialized_execute_run_args
                args = deserialize_value(serialized, ExecuteExternalJobArgs)
                execution = self._executions.get(args.run_id)  # (process, instance ref)
                if execution is not None and execution[0].pid:
                    started(args.instance_ref, args.run_id, execution[0].pid)
            except Exception:  # noqa: BLE001 (the run goes on as it is)
                log.warning("after the start of a run: %s failed", started.__name__, exc_info=True)
            return reply

    server.DagsterApiServer = WarmRunsApiServer
    server.start_run_in_subprocess = start_run


def _instance_ref(server: Any) -> Any:
    ref = getattr(server, "_instance_ref", None)
    return ref if ref is not None else instance_ref_from_home()


def start_run_in_subprocess(*args: Any) -> None:
    """Dagster's own start of a run's process (what `warm_runs`'s `start_run` ends with)."""
    from dagster._grpc.impl import start_run_in_subprocess as dagsters

    dagsters(*args)


def replace_stop_words(stopping: Callable[[], bool], words: Callable[[Any], str]) -> None:
    """In a run's process: a run the stop of `make run` interrupted says so in `words(its start
    time)` instead of Dagster's words for it ("Execution was interrupted unexpectedly. No user
    initiated termination request was found" for a run at work, "marked as failed from outside
    the execution context" for a run whose job had not begun); outside a stop (a crash, a cancel)
    they stay Dagster's."""
    from dagster._core.events import DagsterEvent, RunFailureReason
    from dagster._grpc import impl

    job_failure = DagsterEvent.job_failure
    report_if_not_finished = impl._report_run_failed_if_not_finished

    def failure(job_context, context_msg, failure_reason, *args: Any, **kwargs: Any):
        if failure_reason == RunFailureReason.UNEXPECTED_TERMINATION and stopping():
            record = job_context.instance.get_run_record_by_id(job_context.run_id)
            context_msg = words(record.start_time if record else None)
        return job_failure(job_context, context_msg, failure_reason, *args, **kwargs)

    def report_failed(instance, run_id):
        if not stopping():
            yield from report_if_not_finished(instance, run_id)
            return
        record = instance.get_run_record_by_id(run_id)
        if record is not None and not record.dagster_run.is_finished:
            yield instance.report_run_failed(record.dagster_run, words(record.start_time))

    DagsterEvent.job_failure = staticmethod(failure)
    impl._report_run_failed_if_not_finished = report_failed


def start_api_servers_through(module: str) -> None:
    """The `api grpc` processes the proxy of `code-server start` starts run `module`, and the
    proxy refuses a run asked to start while it stops as out of reach (gRPC UNAVAILABLE), as the
    `api grpc` server behind it does (`warm_runs`)."""
    import grpc
    from dagster._grpc import proxy_server, server

    def entry_point(executable_path: str) -> list[str]:
        return [executable_path, "-m", module]

    server.get_python_environment_entry_point = entry_point

    base = proxy_server.DagsterProxyApiServicer

    class RunsBackToTheQueueProxy(base):  # type: ignore[misc, valid-type]
        def StartRun(self, request, context):  # noqa: N802 (gRPC's name)
            # the proxy answers the daemon's StartRun first: once its stop began Dagster's proxy
            # says "Tried to start a run on a server after telling it to shut down" (the run
            # failed for good) before the request reaches the server behind it
            stopping = getattr(self, "_shutdown_once_executions_finish_event", None)
            if stopping is not None and stopping.is_set():
                context.abort(grpc.StatusCode.UNAVAILABLE, STOPPING)
            return super().StartRun(request, context)

    proxy_server.DagsterProxyApiServicer = RunsBackToTheQueueProxy


def dagster_cli() -> Callable[[], object]:
    """Dagster's command line (`dagster ...`), reading `sys.argv`."""
    from dagster._cli import main

    return main
