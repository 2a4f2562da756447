"""Dead runs: a run whose process is gone without recording its end is reported failed.

Under the DefaultRunLauncher (`make run`, and any deployment that launches runs as processes of
the code server) each run is a process on the code server's machine. Dagster's run monitoring
does not notice when such a process dies: for a STARTED run it asks the run launcher about the
run's worker, and the DefaultRunLauncher cannot answer (`supports_check_run_worker_health` is
False in Dagster 1.13), so monitoring only fails runs that never start (`start_timeout_seconds`)
or never finish cancelling (`cancel_timeout_seconds`). A run whose process was killed (out of
memory, SIGKILL, a machine that went down, a stop that did not wait for it) stayed STARTED for
good, and a backfill waiting for it stayed "In progress".

`mark_dead_runs` finds them: a STARTED, STARTING or CANCELING run whose process, as Dagster
recorded it (the run worker's engine event "Started process for run (pid: N)"), no longer runs on
this machine: no process with that pid, a zombie, or a pid taken by a process that started after
the event (reused). It re-reads the run and reports it through the instance, as run monitoring
does: failed with the reason (CANCELING: cancelled), so backfills and sensors see its end.

It judges only what it can see: runs launched through a code server on this machine (the run's
`dagster/grpc_info` names a socket or a loopback host) and only under a run launcher without
worker health checks (with one, e.g. the K8sRunLauncher, run monitoring does this). A STARTING
run without a recorded process is left to run monitoring's start timeout. What it reads of
Dagster's undocumented records (the code server's tag, the words of the engine event with the pid)
is written behind the fence (dagster_internals/runs.py, docs/dagster-upgrade.md).

Two callers: `dead_runs_sensor` (housekeeping/defs.py, every minute, in the code server, the
machine the runs run on) and `scripts/run-dagster.sh`, which starts this module beside its
services (`python -m invoice_pipelines.housekeeping.dead_runs --after-group <pgid> ...`): it
waits for their process group to end, however it ends, and records what the runs did not.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from invoice_pipelines.dagster_internals.instance import import_the_default_classes
from invoice_pipelines.dagster_internals.runs import GRPC_INFO_TAG, STARTED_PROCESS
from invoice_pipelines.resources.workers.stop_deadline import cut_off_words

JUDGED = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]
LOOPBACK = {"localhost", "127.0.0.1", "::1", "", None}
# /proc's start times are in clock ticks after a boot time in whole seconds
START_SLACK_SECONDS = 2.0

SWEEP_REASON = (
    "dead_runs_sensor: the run's process (pid {pid}) ended without recording the run's end "
    "(killed: out of memory, SIGKILL, a stop of `make run` that could not wait for it, or the "
    "machine went down). Marked {outcome}; its work is not done: re-execute the run, or the "
    "failed partitions of its backfill (README, Recovery)."
)


def stop_reason(started_at: float | None, pid: int, outcome: str) -> str:
    """The sweep's words for a run the stop of `make run` cut off, whose process ended before it
    recorded its end: after how long a time of work (its start, `started_at`), or, a run that
    had not begun its work, that it was still starting."""
    process = f"its process (pid {pid})" if pid else "its process"
    how = f"; {process} ended before it recorded its end, so the stop marked it {outcome}"
    return cut_off_words(started_at, how=how)


@dataclass
class DeadRunsResult:
    applies: bool = True
    why_not: str = ""
    looked_at: int = 0
    marked: list[tuple[str, str, int]] = field(default_factory=list)  # run id, job, pid
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.applies:
            return self.why_not
        if not self.marked:
            return f"No dead runs among {self.looked_at} run(s) in flight."
        runs = ", ".join(f"{run_id[:8]} ({job}, pid {pid})" for run_id, job, pid in self.marked)
        return f"Marked {len(self.marked)} run(s) whose process is gone: {runs}." + (
            f" Errors: {'; '.join(self.errors[:3])}" if self.errors else ""
        )


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def process_runs(pid: int, started_by: float) -> bool:
    """Whether the process `pid` that existed at `started_by` (a timestamp) still runs here: not
    gone, not a zombie, not a newer process that got the same pid."""
    if pid <= 0:
        return False
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        raw = None
    if raw is None or not Path("/proc/self/stat").exists():  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parens
    if fields[0] in ("Z", "X"):
        return False
    boot = _boot_time()
    if boot is not None:
        started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
        if started > started_by + START_SLACK_SECONDS:
            return False  # the pid was reused
    return True


def recorded_process(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, timestamp) of the run's last "Started process ..." engine event, None if none."""
    found = None
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        if not entry.message.startswith(STARTED_PROCESS):
            continue
        event = entry.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data else None
        if pid is None:
            continue
        try:
            found = (int(getattr(pid, "value", pid)), entry.timestamp)
        except (TypeError, ValueError):
            continue
    return found


def _grpc_info(tags: dict[str, str]) -> dict | None:
    raw = tags.get(GRPC_INFO_TAG)
    if not raw:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def launched_here(tags: dict[str, str]) -> bool:
    """Whether the run was launched through a code server on this machine (a socket or loopback
    address); runs without that tag (executed in process) are not judged."""
    info = _grpc_info(tags)
    return info is not None and (bool(info.get("socket")) or info.get("host") in LOOPBACK)


def mark_dead_runs(
    instance: DagsterInstance,
    *,
    stop: bool = False,
    gone_socket: str | None = None,
    limit: int = 1000,
) -> DeadRunsResult:
    """Report every judged run whose process is gone: failed (CANCELING: cancelled), worded as
    a crash, or with `stop` as cut off by the stop of `make run`.

    `gone_socket`: the socket of a code server known to have ended with every process it
    started (`make run`'s, once its process group is empty): its runs are over, also a STARTING
    one whose process had not yet recorded itself."""
    result = DeadRunsResult()
    if instance.run_launcher.supports_check_run_worker_health:
        result.applies = False
        result.why_not = (
            f"{type(instance.run_launcher).__name__} checks its run workers: Dagster's run "
            "monitoring marks dead runs failed."
        )
        return result
    records = instance.get_run_records(filters=RunsFilter(statuses=JUDGED), limit=limit)
    for record in records:
        run = record.dagster_run
        result.looked_at += 1
        if not launched_here(run.tags):
            continue
        process = recorded_process(instance, run.run_id)
        ours = gone_socket is not None and (_grpc_info(run.tags) or {}).get("socket") == gone_socket
        if process is None and not ours:
            continue  # STARTING without a process yet: run monitoring's start timeout
        pid, started_by = process or (0, 0.0)
        if not ours and process_runs(pid, started_by):
            continue
        # the process is gone; a run that recorded its end before it exited is finished now
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.status not in JUDGED:
            continue
        outcome = "cancelled" if current.status == DagsterRunStatus.CANCELING else "failed"
        if stop:
            # a STARTED run's work began at its start (or, unrecorded, its process's)
            began = record.start_time
            if began is None and current.status == DagsterRunStatus.STARTED and pid:
                began = started_by
            why = stop_reason(began, pid, outcome)
        else:
            why = SWEEP_REASON.format(pid=pid, outcome=outcome)
        try:
            if current.status == DagsterRunStatus.CANCELING:
                instance.report_run_canceled(current, why)
            else:
                instance.report_run_failed(current, why)
        except Exception as error:  # one run's trouble must not hide the others
            result.errors.append(f"{run.run_id}: {error}")
            continue
        result.marked.append((run.run_id, run.job_name, pid))
    return result


def _group_alive(pgid: int) -> bool:
    """Whether a process of the process group still runs. A zombie does not: one whose parent
    died waits for PID 1 to reap it, which in a container may take long or never happen."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _preload() -> None:
    """Import what opening the instance imports (Dagster's SQLite storage and alembic, the classes
    dagster.yaml names) without opening it: that takes seconds on a busy machine, opening then
    a fraction of one."""
    import alembic.config  # noqa: F401
    import alembic.runtime.migration  # noqa: F401
    import yaml

    import_the_default_classes()

    home = os.environ.get("DAGSTER_HOME")
    try:
        config = yaml.safe_load(Path(home, "dagster.yaml").read_text()) if home else None
    except (OSError, yaml.YAMLError):
        config = None
    for block in (config or {}).values():
        if isinstance(block, dict) and isinstance(block.get("module"), str):
            try:
                importlib.import_module(block["module"])
            except Exception:  # opening the instance says what is wrong, with its context
                pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m invoice_pipelines.housekeeping.dead_runs",
        description="Report runs whose process is gone as failed (the instance of DAGSTER_HOME).",
    )
    parser.add_argument(
        "--after-group",
        type=int,
        default=0,
        help="First wait until no process of this process group runs (make run's services); "
        "SIGTERM or SIGINT do not end the wait but bound it to --timeout seconds.",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=8.0,
        help="After SIGTERM or SIGINT, give up waiting after this many seconds.",
    )
    parser.add_argument(
        "--stop", action="store_true", help="Word the reason as a stop of `make run`."
    )
    parser.add_argument(
        "--gone-socket",
        default=None,
        help="The socket of a code server that has ended with all its processes: its runs in "
        "flight are over, whether or not their process recorded itself.",
    )
    args = parser.parse_args(argv)
    # `make run` starts this beside its services, with Dagster imported long before it is needed:
    # its stop (a TERM to make's process group reaches this process too) only sets the deadline,
    # and the sweep follows the end of the services within a fraction of a second
    deadline: list[float] = []

    def stopping(signum, frame) -> None:
        deadline[:] = deadline or [time.monotonic() + args.timeout]

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    _preload()
    result = DeadRunsResult()
    instance: DagsterInstance | None = None
    try:
        swept = 0.0
        while args.after_group and _group_alive(args.after_group):
            if deadline and time.monotonic() > deadline[0]:
                print("dead runs: the processes did not end in time", file=sys.stderr)
                return 1
            if deadline and instance is None and _storage_exists():
                # the stop has begun: open the instance now, while the services end, and record
                # the runs whose process has already gone. Under load the services took the
                # whole grace before their KILL, and opening plus sweeping after it did not fit
                # in what was left of the stop (the sweep was killed, the runs left in flight)
                instance = DagsterInstance.get()
            if instance is not None and time.monotonic() - swept > 0.5:
                _merge(result, mark_dead_runs(instance, stop=args.stop))
                swept = time.monotonic()
            time.sleep(0.2)
        # not before the stop: opened beside the code server's start, two processes created
        # Dagster's SQLite storage at once (alembic: "more than one head present")
        if instance is None:
            instance = DagsterInstance.get()
        # the group has ended: its runs are over, also those without a recorded process
        _merge(result, mark_dead_runs(instance, stop=args.stop, gone_socket=args.gone_socket))
    finally:
        if instance is not None:
            instance.dispose()
    if result.marked or result.errors:
        print(f"{datetime.now(UTC):%H:%M:%S} dead runs: {result.summary()}", file=sys.stderr)
    return 1 if result.errors else 0


def _storage_exists() -> bool:
    """Whether Dagster's SQLite run storage of `make run` exists (the instance may be opened
    without creating it). Elsewhere (no INVOICE_PIPELINES_DAGSTER_DIR) it waits for the group."""
    base = os.environ.get("INVOICE_PIPELINES_DAGSTER_DIR")
    return bool(base) and Path(base, "history", "runs.db").is_file()


def _merge(into: DeadRunsResult, more: DeadRunsResult) -> None:
    into.looked_at += more.looked_at
    into.marked += more.marked
    into.errors += more.errors


if __name__ == "__main__":
    code = main()
    # the instance is closed and the output written: no interpreter teardown of all of Dagster,
    # which on a busy machine took the stop of `make run` past its bound
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
