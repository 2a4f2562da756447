"""`make run` started with SIGINT ignored (issue 46): it says so, and SIGINT stops it all the same.

A script that starts `make run &` (or `bash -c 'trap "" INT; exec make run'`) hands make and
everything below it SIGINT ignored. bash cannot trap a signal that was ignored when it started,
so a SIGINT to make's process group stopped nothing: make and the script ignored it, Dagster's
services (in a process group of their own) never got it, and only the sweep that records
interrupted runs took it, waited out its timeout and ended. The runs that a later kill ended were
then worded as crashes by the next start's dead-runs sensor. Now the script says that SIGINT is
ignored, starts itself again with SIGINT at its default and stops on it as on SIGTERM.

Slow: the whole of `make run` with the demo, and an export backfill stopped mid-run.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from invoice_pipelines_tests.test_make_run import started_by
from invoice_pipelines_tests.test_make_run_stop import (
    BACKFILL_SECONDS,
    IN_FLIGHT,
    SIGINT_BIT,
    Checkout,
    _backfill,
    _launch_export_backfill,
    assert_nothing_left,
    checkout,  # noqa: F401 (the fixture)
    ignored_signals,
    warm_process,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1500, method="signal"),  # signal: the fixture still cleans up
]

SAID = "make run: SIGINT is ignored in this shell (started in the background?)"
# the dead-runs sensor's wording: a run whose process died without a stop that recorded it
CRASH_WORDING = "dead_runs_sensor: the run's process"


def _sigint_ignored_by_a_shell() -> None:
    """`bash -c 'trap "" INT; exec make run'`: SIGINT ignored from the start, SIGTERM not."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_sigint_to_a_make_run_started_with_sigint_ignored_stops_it_and_its_runs(
    checkout: Checkout,  # noqa: F811 (the fixture imported above)
) -> None:
    instance = checkout.start(signals=_sigint_ignored_by_a_shell)
    instance.wait_for_tour()
    out = instance.output()
    assert SAID in out, out[-3000:]
    assert f"kill -TERM {instance.proc.pid}" in out, out[-3000:]

    procs = started_by(instance.proc.pid)
    # make keeps SIGINT ignored as it got it; the script and the services it started do not
    script = [p for p in procs if "run-dagster.sh" in p.cmdline]
    services = [
        p
        for p in procs
        if ("/.venv/bin/" in p.cmdline or "python" in p.cmdline)
        and "multiprocessing.resource_tracker" not in p.cmdline
        and "housekeeping.dead_runs" not in p.cmdline  # ignores it until its handler is set
    ]
    assert script and any("dagster-daemon" in p.cmdline for p in services), procs
    # (the code server's warm process for runs ignores SIGINT by design, and ends with the server)
    ignoring = [
        p
        for p in script + services
        if ignored_signals(p.pid) & SIGINT_BIT and not warm_process(p.pid)
    ]
    assert not ignoring, [(p.pid, p.cmdline, hex(ignored_signals(p.pid))) for p in ignoring]

    backfill_id = _launch_export_backfill(instance)
    deadline = time.monotonic() + BACKFILL_SECONDS
    while "STARTED" not in (runs := _backfill(instance, backfill_id)[1]).values():
        assert time.monotonic() < deadline, f"no run of the backfill started: {runs}"
        time.sleep(0.5)
    procs = started_by(instance.proc.pid)
    before = checkout.run_statuses()

    os.killpg(instance.proc.pid, signal.SIGINT)  # kill -INT -- -<make's process group>
    assert_nothing_left(instance, checkout, procs)
    assert instance.proc.returncode == 0

    # every run in flight recorded its end as a stop, none is left for the crash wording
    after = checkout.run_statuses()
    in_flight = {run_id for run_id, (status, _) in before.items() if status in IN_FLIGHT}
    assert in_flight, before
    assert not {r: s for r, s in after.items() if s[0] in IN_FLIGHT}, after
    reasons = checkout.run_failures(
        [r for r in in_flight if after[r][0] in ("FAILURE", "CANCELED")]
    )
    assert all(reasons.values()), reasons
    assert not [r for r in reasons.values() if CRASH_WORDING in r], reasons
