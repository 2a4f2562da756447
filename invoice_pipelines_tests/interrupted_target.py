"""What test_interrupted_suite.py runs in a pytest of its own and then interrupts or kills: a
`make run` started by the make-run tests' fixture, and a process started in a session of its
own as any test may start one. Not a test module of the suite (no `test_` in its name): it runs
only when named."""

from __future__ import annotations

import subprocess
import time

from invoice_pipelines_tests.test_make_run import MakeRun
from invoice_pipelines_tests.test_make_run import make_run as make_run  # noqa: F401 (fixture)

UNTIL_STOPPED = 3600  # seconds: longer than the test that stops it waits


def test_make_run_until_interrupted(make_run: MakeRun) -> None:  # noqa: F811
    make_run.wait_for_tour()
    print("the demo is up", flush=True)
    time.sleep(UNTIL_STOPPED)


def test_a_process_of_its_own_session_until_killed() -> None:
    # no helper: a plain Popen, out of pytest's process group and session
    subprocess.Popen(["sleep", str(UNTIL_STOPPED)], start_new_session=True)
    time.sleep(UNTIL_STOPPED)
