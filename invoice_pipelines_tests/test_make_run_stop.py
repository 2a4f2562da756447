"""Stopping `make run` (issue 37, "Runs end"): every process it started ends within 10 s, also when
it was started without a terminal (`setsid make run &` from a script: SIGINT and SIGQUIT ignored
from the start, as a shell's `&` leaves them), and no service keeps SIGINT or SIGTERM ignored;
a backfill stopped mid-run has every run in flight ended (failed or cancelled, with the reason)
by the stop, and completes after the next start.

`make run` started with SIGINT ignored (issue 46: `make run &` in a script) says so, and SIGINT
stops it all the same. bash cannot trap a signal that was ignored when it started, so a SIGINT to
make's process group once stopped nothing: make and the script ignored it, Dagster's services (in
a process group of their own) never got it, and the runs a later kill ended were worded as crashes
by the next start's dead-runs sensor. Now the script says that SIGINT is ignored, starts itself
again with SIGINT at its default and stops on it as on SIGTERM.

One test, two starts of the whole of Dagster with the demo, each serving every check it can: the
first started with SIGINT ignored and stopped by SIGINT mid-backfill, the second started from a
terminal and stopped by Ctrl-C. A TERM to the group of a `setsid make run &` is the stop of
test_make_postgres.py, SIGTERM to make alone the stop of test_make_run.py. Everything lives in
tmp_path and on free ports; every wait is bounded, and whatever happens the process group is
killed at the end.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from invoice_pipelines_tests.processes import Owned, start_owned
from invoice_pipelines_tests.test_make_run import (
    REPO,
    START_SECONDS,
    STOP_SECONDS,
    Proc,
    _free_port,
    alive,
    assert_no_kill_was_needed,
    started_by,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1500, method="signal"),  # signal: the finally blocks still clean up
]

BACKFILL_SECONDS = 600  # a deadline, not a measurement
ORGANIZATIONS = ("brandt-it-service", "mueller-werkzeugbau", "acme-office-supplies")
# 3 x 48 partitions. Dagster cuts a backfill along the dimension with fewer keys: per organization,
# a run of 40 months and a run of 8 (the exports' backfill policy). Runs of one organization wait
# for each other, so at most 3 are in flight at the stop and at least 3 wait for the next start
MONTHS = 48
IN_FLIGHT = ("STARTING", "STARTED", "CANCELING")
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")
STOPPED = "make run: stopped (Dagster, its runs and the demo services)"
SAID = "make run: SIGINT is ignored in this shell (started in the background?)"
# the dead-runs sensor's wording: a run whose process died without a stop that recorded it
CRASH_WORDING = "dead_runs_sensor: the run's process"
# a run at work when the stop came (issue 56: one that had worked for 12 minutes read "... still
# starting"), whether the run said it itself or the stop's sweep said it for it
CUT_OFF_WORDING = "Cut off by the stop of `make run` after"
# Dagster's words for an interrupted run, which the stop replaces
NOT_A_STOP_WORDING = ("still starting", "No user initiated termination", "outside the execution")
SIGINT_BIT, SIGTERM_BIT = 1 << (signal.SIGINT - 1), 1 << (signal.SIGTERM - 1)


def _ignore_interrupts() -> None:
    """What a non-interactive shell's `&` does to a command it starts: SIGINT and SIGQUIT
    ignored (and so for everything it starts, unless reset)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def ignored_signals(pid: int) -> int:
    """The signals `pid` ignores (SigIgn); 0 for a process that ended after it was listed (a run
    or a worker that finished meanwhile ignores nothing any more: a fresh-clone CI run met one)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in status.splitlines():
        if line.startswith("SigIgn:"):
            return int(line.split()[1], 16)
    return 0


def warm_process(pid: int) -> bool:
    """Whether `pid` is the code server's warm process for runs (invoice_pipelines/code_server.py:
    multiprocessing's forkserver, a child of the `api grpc` server; the runs forked from it show
    its command line too, but their parent is the warm process). Python's forkserver ignores
    SIGINT by design (a ^C meant for its children must not end it) and ends when the server that
    started it ends (its lifeline pipe closes), or on SIGTERM like everything else."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        parent = Path(f"/proc/{ppid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return b"multiprocessing.forkserver" in cmdline and b"api\0grpc" in parent


def of_this_checkout(marker: str) -> list[Proc]:
    """Every live process whose environment names this test's data dir, wherever it went
    (re-parented to PID 1, another session or process group)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:  # a process may end between any two reads
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if marker.encode() not in environ or state == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
        except OSError:
            continue
        found.append(Proc(int(entry.name), 0, cmdline))
    return found


@dataclass
class Instance:
    """One `make run` of the test's data dir."""

    proc: subprocess.Popen
    log: Path
    port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_tour(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if "Dagster UI is up" in self.output():
                return
            if self.proc.poll() is not None:
                pytest.fail(
                    f"make run exited with {self.proc.returncode}:\n{self.output()[-4000:]}"
                )
            time.sleep(1)
        pytest.fail(f"the UI did not come up in {START_SECONDS} s:\n{self.output()[-4000:]}")

    def graphql(self, query: str, **variables) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer
        return answer["data"]


@dataclass
class Checkout:
    data_dir: Path
    db_url: str
    start: Callable[..., Instance]

    def run_statuses(self) -> dict[str, tuple[str, str]]:
        """run id -> (status, job) from Dagster's run storage (the services may be gone)."""
        path = self.data_dir / "dagster" / "history" / "runs.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            rows = conn.execute("SELECT run_id, status, pipeline_name FROM runs").fetchall()
        return {run_id: (status, job) for run_id, status, job in rows}

    def _events(self, run_id: str, types: tuple[str, ...]) -> list[dict]:
        """The `dagster_event` of each of a run's events of these types, in order (none where
        the run has no event log)."""
        path = self.data_dir / "dagster" / "history" / "runs" / f"{run_id}.db"
        if not path.exists():
            return []
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            rows = conn.execute(
                "SELECT event FROM event_logs WHERE dagster_event_type IN "
                f"({', '.join('?' for _ in types)}) ORDER BY id",
                types,
            ).fetchall()
        return [json.loads(event).get("dagster_event") or {} for (event,) in rows]

    def run_failure_messages(self, run_ids) -> dict[str, list[str]]:
        """run id -> the messages of all its RUN_FAILURE events (a run may have two: its own
        and its process's, Dagster's `_report_run_failed_if_not_finished`)."""
        return {
            run_id: [e.get("message") or "" for e in self._events(run_id, ("PIPELINE_FAILURE",))]
            for run_id in run_ids
        }

    def failure_details(self, run_ids) -> dict[str, list[str]]:
        """run id -> what its STEP_FAILURE, RUN_FAILURE and engine events say, errors included:
        for the message of an assertion about runs that should not have failed (a run whose
        launch failed says why only in an engine event, its RUN_FAILURE in Dagster's default
        words)."""
        found: dict[str, list[str]] = {}
        for run_id in run_ids:
            for event in self._events(run_id, ("STEP_FAILURE", "PIPELINE_FAILURE", "ENGINE_EVENT")):
                data = event.get("event_specific_data") or {}
                error = (data.get("error") or {}) if isinstance(data, dict) else {}
                found.setdefault(run_id, []).append(
                    f"{event.get('message') or ''} {error.get('message') or ''}".strip()
                )
        return found

    def run_failures(self, run_ids) -> dict[str, str]:
        """run id -> the message of its (last) RUN_FAILURE / RUN_CANCELED event."""
        found = {}
        for run_id in run_ids:
            for event in self._events(run_id, ("PIPELINE_FAILURE", "PIPELINE_CANCELED")):
                found[run_id] = event.get("message") or ""
        return found


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    data_dir = tmp_path / "data"
    db_url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(_free_port()),
        "INVOICE_PIPELINES_DATA_DIR": str(data_dir),
        "INVOICE_PIPELINES_DB_URL": db_url,
        "INVOICE_PIPELINES_QBO_BASE_URL": f"http://127.0.0.1:{_free_port()}",
        "INVOICE_PIPELINES_SMTP_PORT": str(_free_port()),
        "INVOICE_PIPELINES_SMS_URL": f"http://127.0.0.1:{_free_port()}",
        "INVOICE_PIPELINES_PEPPOL_AP_URL": f"http://127.0.0.1:{_free_port()}",
        "INVOICE_PIPELINES_DEMO_IMAP_PORT": str(_free_port()),
        "INVOICE_PIPELINES_DEMO_MAIL_SMTP_PORT": str(_free_port()),
    }
    for name in (
        "DAGSTER_HOME",
        "INVOICE_PIPELINES_UPLOAD_DIR",
        "INVOICE_PIPELINES_QBO_TOKEN_URL",
        "INVOICE_PIPELINES_QBO_TOKEN_KEY",
        "MAKEFLAGS",
        "MFLAGS",
        # under `make test` (CI) MAKELEVEL is 1: make would then print "make[1]: Leaving
        # directory" after the stop line, which a user's `make run` never does
        "MAKELEVEL",
    ):
        env.pop(name, None)
    started: list[Owned] = []

    def start(*, signals: Callable[[], None] = _default_signals) -> Instance:
        log = tmp_path / f"make-run-{len(started) + 1}.log"
        with log.open("wb") as out:
            # a session of its own: `setsid make run`, no terminal; make leads its process
            # group; marked, so nothing it starts outlives the test or the suite (processes.py)
            owned = start_owned(
                ["make", "run"],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=signals,
            )
        started.append(owned)
        return Instance(owned.proc, log, int(env["PORT"]))

    try:
        yield Checkout(data_dir, db_url, start)
    finally:
        # whatever the test did, nothing it started outlives it
        for owned in started:
            owned.kill()
        for p in of_this_checkout(str(data_dir)):
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def assert_nothing_left(instance: Instance, data_dir: Path, procs: list[Proc]) -> float:
    """Within STOP_SECONDS of the signal no process of the `make run` of `data_dir` runs, and it
    ended normally with its stop line last; returns the seconds."""
    started = time.monotonic()
    deadline = started + STOP_SECONDS
    while (left := alive(procs) + of_this_checkout(str(data_dir))) and time.monotonic() < deadline:
        time.sleep(0.1)
    took = time.monotonic() - started
    assert not left, f"still running {STOP_SECONDS} s after the signal: " + "; ".join(
        f"{p.pid} {p.cmdline}" for p in left
    )
    instance.proc.wait(timeout=5)
    out = instance.output()
    # a normal end: no "make: *** [Makefile:..: run] Error 143"
    assert "make: ***" not in out, out[-3000:]
    # the tour stays the last thing in the terminal, then the one line of the stop
    tail = out[out.index("Logs of the services") :].splitlines()[1:]
    stop_log = data_dir / "logs" / "stop.log"
    assert [line for line in tail if line.strip()] == [STOPPED], (
        out[-1500:] + "\n--- stop.log:\n" + stop_log.read_text(errors="replace")[-3000:]
    )
    assert_no_kill_was_needed(data_dir)
    return took


def assert_no_service_ignores_a_stop(procs: list[Proc]) -> None:
    """No service `make run` started ignores SIGINT or SIGTERM, however it was started: a shell
    (make, its recipe, the script) keeps SIGINT ignored as it got it, and so does the code
    server's warm process for runs (Python's forkserver ignores SIGINT by design and ends with the
    server), but none ignores SIGTERM. Multiprocessing's resource tracker ignores both by design
    and ends with its pipe."""
    procs = [p for p in procs if "multiprocessing.resource_tracker" not in p.cmdline]
    services = [p for p in procs if "/.venv/bin/" in p.cmdline or "python" in p.cmdline]
    assert any("code-server start" in p.cmdline for p in services), procs
    assert any("api grpc" in p.cmdline for p in services), procs
    assert any("dagster-daemon" in p.cmdline for p in services), procs
    for p in procs:
        interrupt = SIGINT_BIT if p in services and not warm_process(p.pid) else 0
        if "housekeeping.dead_runs" in p.cmdline:
            interrupt = 0  # the sweep ignores SIGINT until its handler is set
        mask = interrupt | SIGTERM_BIT
        ignored = ignored_signals(p.pid)
        assert not ignored & mask, (p, hex(ignored))


def _partition_keys(instance: Instance) -> dict[str, list[str]]:
    dims = instance.graphql(
        '{ assetNodeOrError(assetKey: {path: ["incoming_invoice_exports"]}) '
        "{ ... on AssetNode { partitionKeysByDimension { name partitionKeys } } } }"
    )["assetNodeOrError"]["partitionKeysByDimension"]
    return {d["name"]: d["partitionKeys"] for d in dims}


def _launch_export_backfill(instance: Instance) -> str:
    # the organizations are a dynamic partition set that the tenants sensor fills after the start;
    # as a user would, wait until the UI lists them (under load the UI came up before its tick,
    # and a backfill asked for at once was PartitionKeysNotFoundError: 2 of the first 5 rounds)
    deadline = time.monotonic() + START_SECONDS
    while not set(ORGANIZATIONS) <= set(
        (keys := _partition_keys(instance)).get("organizations", [])
    ):
        assert time.monotonic() < deadline, f"the organizations' partitions never came: {keys}"
        time.sleep(1)
    months = keys["month"][-MONTHS:]
    answer = instance.graphql(
        "mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: "
        "$params) { __typename ... on LaunchBackfillSuccess { backfillId } "
        "... on PythonError { message } } }",
        params={
            "partitionNames": [f"{m}|{o}" for m in months for o in ORGANIZATIONS],
            "assetSelection": [{"path": ["incoming_invoice_exports"]}],
        },
    )["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


def _backfill(instance: Instance, backfill_id: str) -> tuple[str, dict[str, str]]:
    data = instance.graphql(
        "query($id: String!) { partitionBackfillOrError(backfillId: $id) "
        "{ ... on PartitionBackfill { status } } "
        'runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) '
        "{ ... on Runs { results { runId status } } } }",
        id=backfill_id,
    )
    runs = {r["runId"]: r["status"] for r in data["runsOrError"]["results"]}
    return data["partitionBackfillOrError"]["status"], runs


def _sigint_ignored_by_a_shell() -> None:
    """`bash -c 'trap "" INT; exec make run'`: SIGINT ignored from the start, SIGTERM not."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_mid_backfill(instance: Instance, checkout: Checkout, backfill_id: str) -> set[str]:
    """SIGINT to the process group of a `make run` started with SIGINT ignored, once a run of the
    backfill has started: everything ends within STOP_SECONDS, and every run in flight recorded
    its end as a stop, with the reason (none left for the next start's crash wording)."""
    deadline = time.monotonic() + BACKFILL_SECONDS
    while "STARTED" not in (runs := _backfill(instance, backfill_id)[1]).values():
        assert time.monotonic() < deadline, f"no run of the backfill started: {runs}"
        time.sleep(0.5)
    procs = started_by(instance.proc.pid)
    before = checkout.run_statuses()
    os.killpg(instance.proc.pid, signal.SIGINT)  # kill -INT -- -<make's process group>
    assert_nothing_left(instance, checkout.data_dir, procs)
    assert instance.proc.returncode == 0

    after = checkout.run_statuses()
    in_flight = {run_id for run_id, (status, _) in before.items() if status in IN_FLIGHT}
    assert in_flight, before
    assert not {r: s for r, s in after.items() if s[0] in IN_FLIGHT}, after
    reasons = checkout.run_failures(
        [r for r in in_flight if after[r][0] in ("FAILURE", "CANCELED")]
    )
    assert all(reasons.values()), reasons
    assert not [r for r in reasons.values() if CRASH_WORDING in r], reasons
    # the runs at work say they were cut off by the stop, after how long, in every failure event
    # (a run at work may also have finished before the signal reached it: a short export run)
    at_work = {r for r in in_flight if before[r][0] == "STARTED" and after[r][0] == "FAILURE"}
    said = checkout.run_failure_messages(at_work)
    for run_id in at_work:
        assert said[run_id], (run_id, said)
        for message in said[run_id]:
            assert CUT_OFF_WORDING in message, (run_id, said[run_id])
            assert not [w for w in NOT_A_STOP_WORDING if w in message], (run_id, said[run_id])
    return in_flight


def test_a_backfill_stopped_mid_run_completes_after_a_restart(checkout: Checkout) -> None:
    # started as a script's `make run &` does (issue 46): SIGINT ignored from the start. The
    # script says so, starts itself again with SIGINT at its default, and stops on it
    first = checkout.start(signals=_sigint_ignored_by_a_shell)
    first.wait_for_tour()
    out = first.output()
    assert SAID in out, out[-3000:]
    assert f"kill -TERM {first.proc.pid}" in out, out[-3000:]
    assert_no_service_ignores_a_stop(started_by(first.proc.pid))
    backfill_id = _launch_export_backfill(first)
    in_flight = _stop_mid_backfill(first, checkout, backfill_id)

    # the next start, from a terminal, completes the backfill; Ctrl-C ends it
    second = checkout.start()
    second.wait_for_tour()
    deadline = time.monotonic() + BACKFILL_SECONDS
    while True:
        status, runs = _backfill(second, backfill_id)
        if status.startswith("COMPLETED") and all(s in TERMINAL for s in runs.values()):
            break
        assert time.monotonic() < deadline, (status, runs)
        time.sleep(2)
    assert status in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED"), status
    # the runs not in flight at the stop (queued, or not yet asked for) did their work
    waited = {r: s for r, s in runs.items() if r not in in_flight}
    assert waited, (in_flight, runs)
    failed = {r for r, s in waited.items() if s != "SUCCESS"}
    assert not failed, (in_flight, runs, checkout.failure_details(failed))
    procs = started_by(second.proc.pid)
    os.killpg(second.proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals make's group
    assert_nothing_left(second, checkout.data_dir, procs)
    statuses = checkout.run_statuses()
    assert not {r: s for r, s in statuses.items() if s[0] in IN_FLIGHT}, statuses
