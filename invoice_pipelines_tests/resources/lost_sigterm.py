"""A SIGTERM lost the way a run lost it (test_run_term.py, warming up), for the scripts the
stop-signal tests run in a fresh interpreter (resources/test_stop_signal.py, billing/ and
quickbooks/test_stop_signal_*.py).

`install_dagsters_handler` does what Dagster's run worker does (`raise_interrupts_as`): SIGTERM
raises its interrupt from the handler, in whatever code runs. `lose_a_sigterm` sends the process
SIGTERM from inside a weakref callback, where Python prints "Exception ignored" and drops the
handler's raise: the run goes on, and only `stop_signal` remembers the signal."""

from __future__ import annotations

import os
import signal
import weakref

from dagster import DagsterExecutionInterruptedError


def install_dagsters_handler() -> None:
    def dagsters_handler(signo, frame):
        raise DagsterExecutionInterruptedError()

    signal.signal(signal.SIGTERM, dagsters_handler)


class _Collected:
    pass


def _callback(ref: weakref.ref) -> None:
    # the signal is handled while this runs (the loop gives the handler its turn): the raise
    # from Dagster's handler is lost
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):
        pass


def lose_a_sigterm() -> None:
    """SIGTERM this process inside a weakref callback, run as the object goes."""
    held = _Collected()
    ref = weakref.ref(held, _callback)  # noqa: F841 - alive until `held` goes, so it calls back
    del held
