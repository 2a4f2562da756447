"""Every process of `make run` ends on its own within the stop's grace period (issue 56, item 7).

The stop of `make run` (scripts/run-dagster.sh) writes the seconds each process has left into a
file, `INVOICE_PIPELINES_STOP_FILE`, then sends SIGTERM to its process group; what is still running
after the grace gets SIGKILL, and the stop says which processes needed it. Seen at load 10 on a
2-core machine, everything Dagster ran needed it, for reasons of their own:

- the webserver and the QBO simulator had done their shutdown and spent the rest of the grace in
  the interpreter's teardown (their one thread left "Garbage-collecting" all of Dagster's objects);
- the daemon joins each of its threads, mid-tick, for up to 30 s;
- the code server waits for its runs, then for its cleanup thread (which opens an instance: the
  storage's alembic scripts, seconds under load), then the gRPC server's own grace.

So a process of `make run` here does two things. `watch()` starts a thread that looks for the stop
file every 0.2 s and, once it is there, arms faulthandler's watchdog: a thread of C that needs no
interpreter lock, so it fires on time whatever Python does (teardown included). Should the
process still run when its seconds are up, the watchdog writes where each of its threads was into
`<stop file>.<pid>` and ends the process itself (exit 1); the stop says so in stop.log in one
line, and copies the threads there only when the stop hung (a process needed SIGKILL:
scripts/stop-log.sh; issue 73: a normal stop wrote a 130-line thread dump):
its work in flight is left as a kill leaves it (the stop's sweep records the runs), but the
stop knows where it stood. `end()` ends a service's main without the interpreter's teardown
(flushed output and logs; nothing of it writes a file at exit). `main()` runs a console script
of the venv (`dagster-webserver`, `dagster-daemon`) with both:

    python -m invoice_pipelines.resources.workers.stop_deadline .venv/bin/dagster-webserver -w ... -p 3000

Without `INVOICE_PIPELINES_STOP_FILE` (anywhere but `make run`) `watch()` does nothing.

`cut_off_words()`: how a run the stop cut off says so, in its own failure (code_server.py) or, when
its process ended before it could record one, in the sweep's (housekeeping/dead_runs.py): after
how long a time of work, or, for a run whose work had not begun, that it was still starting.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

STOP_FILE = "INVOICE_PIPELINES_STOP_FILE"
POLL_SECONDS = 0.2
_watching: dict[str, bool] = {}


def stop_seconds(path: Path) -> float | None:
    """The seconds the stop file gives each process, None before the stop (or unreadable)."""
    try:
        return float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def watch(name: str) -> None:
    """From the stop of `make run` on, this process ends itself at its deadline at the latest
    (once per process; a forked child calls it again for itself)."""
    path = os.environ.get(STOP_FILE)
    if not path or _watching.get("pid") == os.getpid():
        return
    _watching["pid"] = os.getpid()
    thread = threading.Thread(
        target=_wait_for_the_stop, args=(Path(path), name), name="stop-deadline", daemon=True
    )
    thread.start()


def _wait_for_the_stop(path: Path, name: str) -> None:
    stop = threading.Event()
    while (seconds := stop_seconds(path)) is None:
        stop.wait(POLL_SECONDS)
    dump = open(f"{path}.{os.getpid()}", "w")  # noqa: SIM115 (faulthandler keeps it open)
    dump.write(f"{name} (pid {os.getpid()}) still ending {seconds:g} s after the stop, where:\n")
    dump.flush()
    faulthandler.dump_traceback_later(seconds, exit=True, file=dump)


def stopping() -> bool:
    """Whether the stop of `make run` has begun (this process being one of it)."""
    path = os.environ.get(STOP_FILE)
    return bool(path) and stop_seconds(Path(path)) is not None


def work_time(seconds: float) -> str:
    """`40 seconds`, `1 minute`, `12 minutes`, `2 hours 5 minutes`."""

    def count(n: int, unit: str) -> str:
        return f"{n} {unit}" if n == 1 else f"{n} {unit}s"

    seconds = max(0, int(seconds))
    if seconds < 60:
        return count(seconds, "second")
    hours, minutes = divmod(seconds // 60, 60)
    if not hours:
        return count(minutes, "minute")
    return count(hours, "hour") + (f" {count(minutes, 'minute')}" if minutes else "")


# what to do about the work not done: a batch job's run (the queue's, tagged with its job) is
# resumed by its sensor once make run is up again, so "re-execute" was wrong for it (issue 85)
RE_EXECUTE = (
    "Its work is not done: a batch job's run is resumed by its sensor after the restart, with "
    "nothing to do; any other run: re-execute it, or the failed partitions of its backfill "
    "(README, Recovery)."
)


def cut_off_words(started_at: float | None, now: float | None = None, how: str = "") -> str:
    """What a run the stop of `make run` ended says: cut off after its time of work (`started_at`:
    its start, a timestamp), or, without one, that it was still starting. `how`: how its end
    came to be recorded, if not by the run itself."""
    if started_at is None:
        said = "`make run` was stopped while this run was still starting, before its work began"
    else:
        worked = work_time((time.time() if now is None else now) - started_at)
        said = f"Cut off by the stop of `make run` after {worked} of work"
    return f"{said}{how}. {RE_EXECUTE}"


def end(code: object = 0) -> None:
    """End the process now, as `sys.exit(code)` would, without the interpreter's teardown."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def run_to_the_end(name: str, entry: Callable[[], object]) -> None:
    """Run a service's main with `watch()`, and `end()` however it ends: a stop (Ctrl-C, or
    SIGTERM as Dagster raises it) is a normal end."""
    watch(name)
    try:
        code = entry()
    except SystemExit as exit_:
        code = exit_.code
    except KeyboardInterrupt:
        code = 0
    end(code)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise SystemExit(
            "usage: python -m invoice_pipelines.resources.workers.stop_deadline SCRIPT ..."
        )
    name = Path(args[0]).name
    (script,) = entry_points(group="console_scripts", name=name)
    sys.argv = args
    run_to_the_end(name, script.load())


if __name__ == "__main__":
    main()
