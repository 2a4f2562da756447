"""stop_deadline: a process of `make run` ends on its own at its deadline once the stop has begun
(and says where it stood), and a run the stop cut off says so in fitting words."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from invoice_pipelines.resources.workers.stop_deadline import STOP_FILE, cut_off_words, work_time

ROOT = Path(__file__).resolve().parents[2]

HANGS = textwrap.dedent(
    """
    import threading, time
    from invoice_pipelines.resources.workers import stop_deadline
    stop_deadline.watch("hangs")
    print("watching", flush=True)
    threading.Event().wait()  # a shutdown that never ends
    """
)


def test_the_time_of_work_reads_as_a_person_says_it():
    assert work_time(40) == "40 seconds"
    assert work_time(61) == "1 minute"
    assert work_time(12 * 60 + 5) == "12 minutes"
    assert work_time(2 * 3600 + 5 * 60) == "2 hours 5 minutes"
    assert work_time(3600) == "1 hour"


def test_a_run_at_work_is_cut_off_after_its_time_of_work_not_still_starting():
    now = time.time()
    said = cut_off_words(now - 12 * 60, now=now)
    assert said.startswith("Cut off by the stop of `make run` after 12 minutes of work.")
    assert "still starting" not in said
    assert "re-execute" in said
    # a batch job's run is resumed by its sensor: re-executing it is not what to do (issue 85)
    assert "a batch job's run is resumed by its sensor after the restart" in said


def test_a_run_whose_work_had_not_begun_was_still_starting():
    said = cut_off_words(None, how="; the stop marked it failed")
    assert "was stopped while this run was still starting" in said
    assert "the stop marked it failed" in said
    assert "of work" not in said


def test_a_process_that_does_not_end_ends_itself_at_its_deadline(tmp_path: Path):
    said = _ended_at_its_deadline(tmp_path)
    assert "Thread" in said and "wait" in said


def _ended_at_its_deadline(tmp_path: Path) -> str:
    """A process that ignores the stop, ended by its deadline; what it left for stop.log."""
    stop_file = tmp_path / "stopping"
    env = {**os.environ, STOP_FILE: str(stop_file)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HANGS], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "watching"
        time.sleep(0.5)
        assert proc.poll() is None  # no stop yet: no deadline
        stop_file.write_text("1\n")
        assert proc.wait(timeout=30) == 1  # faulthandler's exit, not a signal
    finally:
        proc.kill()
        proc.wait()
    said = (tmp_path / f"stopping.{proc.pid}").read_text()
    assert said.startswith(f"hangs (pid {proc.pid}) still ending 1 s after the stop, where:")
    return said


def _stop_log(stop_file: Path, hung: str) -> str:
    """What the stop of `make run` writes into stop.log of the processes that ended at their
    deadline (scripts/stop-log.sh), `hung` non-empty when a process needed SIGKILL."""
    script = 'source scripts/stop-log.sh && said_where_they_stood "$1" "$2"'
    done = subprocess.run(
        ["bash", "-c", script, "stop-log", str(stop_file), hung],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_a_normal_stop_says_one_line_a_process_and_a_hung_one_where_its_threads_were(
    tmp_path: Path,
):
    # issue 73: a normal stop wrote a 130-line thread dump into stop.log
    dump = _ended_at_its_deadline(tmp_path)
    # a process that ended before its deadline left its line alone: nothing to say
    (tmp_path / "stopping.1").write_text("daemon (pid 1) still ending 1 s after the stop, where:\n")
    pid = dump.split("(pid ")[1].split(")")[0]
    assert _stop_log(tmp_path / "stopping", "").splitlines() == [
        f"hangs (pid {pid}) still ending 1 s after the stop: ended itself at its deadline"
    ]
    # the stop hung (a process needed SIGKILL): where every thread of it stood
    assert _stop_log(tmp_path / "stopping", "1") == dump


def test_without_a_stop_file_nothing_is_watched(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != STOP_FILE}
    code = (
        "from invoice_pipelines.resources.workers import stop_deadline as s; s.watch('x'); s.end(3)"
    )
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 3
    assert list(tmp_path.iterdir()) == []
