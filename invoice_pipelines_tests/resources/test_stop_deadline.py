"""stop_deadline: a process of `make run` ends on its own at its deadline once the stop has begun
(and says where it stood), and a run the stop cut off says so in fitting words."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from invoice_pipelines.resources.stop_deadline import STOP_FILE, cut_off_words, work_time

HANGS = textwrap.dedent(
    """
    import threading, time
    from invoice_pipelines.resources import stop_deadline
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


def test_a_run_whose_work_had_not_begun_was_still_starting():
    said = cut_off_words(None, how="; the stop marked it failed")
    assert "was stopped while this run was still starting" in said
    assert "the stop marked it failed" in said
    assert "of work" not in said


def test_a_process_that_does_not_end_ends_itself_at_its_deadline(tmp_path: Path):
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
    assert "Thread" in said and "wait" in said


def test_without_a_stop_file_nothing_is_watched(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != STOP_FILE}
    code = "from invoice_pipelines.resources import stop_deadline as s; s.watch('x'); s.end(3)"
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 3
    assert list(tmp_path.iterdir()) == []
