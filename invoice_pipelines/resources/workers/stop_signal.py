"""A run's SIGTERM (or SIGINT), remembered where no signal handler can lose it.

Dagster ends a run on SIGTERM by raising `DagsterExecutionInterruptedError` from its signal
handler, in whatever Python code the main thread runs at that moment. When that code is a weakref
callback or a `__del__` (SQLAlchemy's `_collection_gced`, run by the garbage collector while the
run's resources start), Python prints "Exception ignored in ..." and drops the exception: the
interrupt is lost, and the run went on to its end, past the grace of `make run`'s stop (seen in
`test_run_term.py`, warming up, 6 of 9 rounds beside two busy processes). Dagster swaps its
handlers as it enters and leaves each phase, so a handler of ours would be replaced.

What no Python handler decides is the signal's wakeup file (`signal.set_wakeup_fd`): the
interpreter's C-level handler writes the signal's number into it as the signal arrives, before
any Python code runs, whichever Python handler is installed. `remember()` points it at a pipe of
this process; `received()` reads the pipe (without blocking) and, once a SIGTERM or SIGINT was
written, says so for the rest of the process's life; `raise_if_received()` raises Dagster's
interrupt where the run's long work checks it (the worker pool, before and while it waits for
its workers; batch invoicing before each chunk; the QuickBooks invoice and bill pushes before
each batch or bill: docs/architecture.md, "Recovery"). A process that never called `remember()`
(a CLI, the code server's threads, a test process that started no run) is never told it received
one.
"""

from __future__ import annotations

import os
import signal
import threading

STOPS = (signal.SIGTERM, signal.SIGINT)

# the pipe of the process that made it (a forked child inherits the numbers, not the meaning)
_state: dict[str, int | bool | None] = {"pid": None, "read": None, "write": None, "seen": False}


def remember() -> bool:
    """From now on this process remembers a SIGTERM or SIGINT (main thread only; once per
    process, a forked child makes its own). False where it cannot: not the main thread, or the
    wakeup file already belongs to someone else (an asyncio loop's signal handlers), left as it
    is."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if _state["pid"] == os.getpid():
        return True
    inherited = _state["write"] if _state["pid"] is not None else None
    read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except ValueError:  # (not the main interpreter)
        os.close(read)
        os.close(write)
        return False
    if previous not in (-1, inherited):
        signal.set_wakeup_fd(previous)
        os.close(read)
        os.close(write)
        return False
    if inherited is not None:  # the parent's pipe, as forked: this process's own from now on
        for fd in (_state["read"], _state["write"]):
            try:
                os.close(fd)  # type: ignore[arg-type]
            except OSError:
                pass
    _state.update(pid=os.getpid(), read=read, write=write, seen=False)
    return True


def received() -> bool:
    """Whether this process was sent SIGTERM or SIGINT since `remember()`."""
    if _state["pid"] != os.getpid():
        return False  # never remembered here (a forked child's state is its parent's)
    if _state["seen"]:
        return True
    while True:
        try:
            data = os.read(_state["read"], 512)  # type: ignore[arg-type]
        except (BlockingIOError, InterruptedError):
            return False
        if not data:
            return False
        if any(number in STOPS for number in data):
            _state["seen"] = True
            return True


def raise_if_received() -> None:
    """Dagster's interrupt, as its own handler raises it, when this process was told to stop."""
    if received():
        from dagster import DagsterExecutionInterruptedError

        raise DagsterExecutionInterruptedError(
            "the run's process was sent SIGTERM; Dagster's own interrupt was lost on the way "
            "(resources/workers/stop_signal.py)"
        )
