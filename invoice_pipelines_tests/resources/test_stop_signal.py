"""A run's SIGTERM that Dagster's handler loses (raised inside a weakref callback, "Exception
ignored") still stops the run's work at the worker pool (resources/workers/stop_signal.py).

Each case is a fresh interpreter that does what Dagster's run worker does: a SIGTERM handler that
raises Dagster's interrupt, then the signal arriving while the garbage collector runs a weakref
callback, as it did during a documents run's resource init (test_run_term.py, warming up)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from dagster import DagsterExecutionInterruptedError
    from invoice_pipelines.resources.workers import stop_signal
    from invoice_pipelines_tests.resources.lost_sigterm import install_dagsters_handler, lose_a_sigterm
    from invoice_pipelines.resources.workers.worker_pool import WorkerPool

    install_dagsters_handler()
    remembered = stop_signal.remember() if sys.argv[1] == "remember" else None

    if sys.argv[2] == "signal":
        lose_a_sigterm()
    if sys.argv[1] == "fork":  # the parent remembered first; the signal is the child's
        stop_signal.remember()
        child = os.fork()
        if child:
            os.waitpid(child, 0)
            print("parent received:", stop_signal.received(), flush=True)
            sys.exit(0)
        stop_signal.remember()
        lose_a_sigterm()
        print("child received:", stop_signal.received(), flush=True)
        os._exit(0)
    print("lost, going on", flush=True)
    with WorkerPool(workers=1, target="invoice_pipelines_tests.resources.test_stop_signal:echo",
                    memory_bytes=0) as pool:
        try:
            print("parsed", pool.parse(b"x", "a.pdf"), flush=True)
        except DagsterExecutionInterruptedError as stop:
            print("interrupted:", stop, flush=True)
    """
)


def echo(data: bytes, filename: str, **_options) -> str:
    """Worker target: the file's name."""
    return filename


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120
    )


def test_a_lost_sigterm_stops_the_pool_of_a_process_that_remembers_it() -> None:
    done = _run("remember", "signal")
    assert "Exception ignored" in done.stderr  # Dagster's own interrupt was lost
    assert "lost, going on" in done.stdout
    assert "interrupted: the run's process was sent SIGTERM" in done.stdout, done.stdout
    assert "parsed" not in done.stdout


def test_without_remembering_the_lost_sigterm_is_lost() -> None:
    # what the runs did before: the pool reads the file as if nothing had happened
    done = _run("no", "signal")
    assert "Exception ignored" in done.stderr
    assert "parsed a.pdf" in done.stdout, done.stdout + done.stderr


def test_a_process_that_remembers_and_was_sent_nothing_reads_on() -> None:
    done = _run("remember", "quiet")
    assert "parsed a.pdf" in done.stdout, done.stdout + done.stderr


def test_a_forked_child_remembers_its_own_signal_not_its_parents() -> None:
    done = _run("fork", "quiet")
    assert "child received: True" in done.stdout, done.stdout + done.stderr
    assert "parent received: False" in done.stdout, done.stdout + done.stderr
