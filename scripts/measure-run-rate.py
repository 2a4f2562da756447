"""How many runs per minute the Dagster daemon launches and finishes on this machine (issue 14).

For every setting of max concurrent runs (`--concurrency 2 4`) and every repetition, a trial of its
own on fresh scratch databases (so each trial does the same work):

- a PostgreSQL database for the application (migrated, N organizations seeded: a customer and six
  open sales invoices each, four of them overdue: each run writes four dunning notices per
  organization) and one for Dagster's storage (dagster-postgres, `scheme: postgresql+psycopg2`);
- a temporary DAGSTER_HOME whose dagster.yaml is deploy/dagster.yaml (our
  OrganizationRunCoordinator, the per-organization tag limit, pools, run monitoring, ...) with that
  storage and `max_concurrent_runs` set to the trial's value;
- a code server (as `make run` starts it) and `dagster-daemon run`, each in a session of its own,
  stopped with SIGTERM at the end (SIGKILL only if still there after 30 s);
- the organizations added as partitions (what organizations_sensor does); the project's sensors
  and schedules stopped, so the only runs are the measured ones;
- `dunning_job` runs submitted at once through the webserver's GraphQL `launchRun` (in process,
  against the same code server): mode `per-org` one run per organization (partition = its slug,
  the organization tag set by our coordinator), mode `batched` one run per `--batch-orgs`
  organizations (a partition range, as dunning_sensor makes them). Every run gets the tick's
  `as_of`, as the sensor passes it.

Measured from the run storage: submission -> last run ended, runs launched (RUN_STARTING) and
finished per minute, per-run launch -> start -> end seconds, queue wait; CPU seconds of the daemon,
the code server (its proxy and the gRPC server that proxy starts) and the run processes (the gRPC
server's `multiprocessing` spawn children, one per run, with the compute-log tails they start),
sampled from /proc every 0.5 s (a run's last half second is missed); the whole machine's busy CPU
seconds in the same window (other people's work included) and `uptime` before and after. One
JSON line per trial on stderr as it ends, the JSON summary of all trials as the last stdout line.
A measurement for the README, not a test.

    .venv/bin/python scripts/measure-run-rate.py --orgs 100 --concurrency 2 4   # ~20 min here
    .venv/bin/python scripts/measure-run-rate.py --orgs 100 --concurrency 2 --modes per-org \
        --dequeue-interval 1   # the queue looked at every second instead of every 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VENV_BIN = REPO / ".venv" / "bin"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
BENCH_TAG = "invoice_pipelines/bench-run-rate"
JOB = "dunning_job"
ASSET = "dunning_notices"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
TICK = os.sysconf("SC_CLK_TCK")

LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
  }
}
"""


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# --- scratch databases ---------------------------------------------------------------------------


def app_url(name: str) -> str:
    return f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{name}"


@contextmanager
def scratch_database(name: str):
    from sqlalchemy import create_engine

    admin = create_engine(app_url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield app_url(name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def seed(prefix: str, n: int) -> list[str]:
    """N organizations, set-based: per organization one customer and six open invoices, due 45,
    20, 5 and 3 days ago and in 10 and 20 days: the dunning run writes four notices for them."""
    from sqlalchemy import text

    from invoice_pipelines.db.engine import make_engine, make_system_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines.db.tenancy import system_transaction

    ensure_migrated(make_engine(owner=True))
    system = make_system_engine()
    like = {"like": f"{prefix}%"}
    with system_transaction(system, write=True) as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (slug, name, timezone) "
                "SELECT :prefix || lpad(g::text, 5, '0'), 'Run rate ' || g, 'UTC' "
                "FROM generate_series(1, :n) AS g"
            ),
            {"prefix": prefix, "n": n},
        )
        conn.execute(
            text(
                "INSERT INTO customers (organization_id, customer_number, name, language) "
                "SELECT id, 'K-1', 'Kunde ' || slug, 'de' FROM organizations WHERE slug LIKE :like"
            ),
            like,
        )
        conn.execute(
            text(
                "INSERT INTO sales_invoices (organization_id, invoice_number, sequence_number, "
                "customer_id, issue_date, due_date, currency, net_total, tax_total, gross_total, "
                "amount_paid, amount_due, status) "
                "SELECT c.organization_id, 'RE-' || v.k, v.k, c.id, "
                "CURRENT_DATE + v.due - 14, CURRENT_DATE + v.due, 'EUR', 100, 19, 119, 0, 119, "
                "'open' FROM customers c JOIN organizations o ON o.id = c.organization_id "
                "CROSS JOIN (VALUES (1, -45), (2, -20), (3, -5), (4, -3), (5, 10), (6, 20)) "
                "AS v(k, due) WHERE o.slug LIKE :like"
            ),
            like,
        )
        slugs = [
            row[0]
            for row in conn.execute(
                text("SELECT slug FROM organizations WHERE slug LIKE :like ORDER BY slug"), like
            )
        ]
    system.dispose()
    return slugs


def notice_counts(prefix: str) -> dict:
    from sqlalchemy import text

    from invoice_pipelines.db.engine import make_system_engine
    from invoice_pipelines.db.tenancy import system_transaction

    system = make_system_engine()
    with system_transaction(system) as conn:
        notices = conn.execute(
            text(
                "SELECT count(*) FROM dunning_notices d JOIN organizations o "
                "ON o.id = d.organization_id WHERE o.slug LIKE :like"
            ),
            {"like": f"{prefix}%"},
        ).scalar_one()
        organizations = conn.execute(
            text(
                "SELECT count(DISTINCT d.organization_id) FROM dunning_notices d "
                "JOIN organizations o ON o.id = d.organization_id WHERE o.slug LIKE :like"
            ),
            {"like": f"{prefix}%"},
        ).scalar_one()
    system.dispose()
    return {"notices_created": notices, "organizations_with_notices": organizations}


# --- Dagster: instance, code server, daemon ------------------------------------------------------


def write_dagster_home(
    home: Path, dagster_db: str, max_concurrent_runs: int, dequeue_interval: int | None
) -> None:
    """deploy/dagster.yaml with dagster-postgres storage on the scratch database and the trial's
    max_concurrent_runs (and dequeue interval, if given); everything else as the template has it."""
    config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    config["storage"] = {
        "postgres": {
            "postgres_db": {
                "username": PG["user"],
                "hostname": PG["host"],
                "db_name": dagster_db,
                "port": PG["port"],
                "scheme": "postgresql+psycopg2",
            }
        }
    }
    config["concurrency"]["runs"]["max_concurrent_runs"] = max_concurrent_runs
    if dequeue_interval is not None:
        # QueuedRunCoordinator's own setting (default 5 s): how often the daemon looks at the queue
        config["run_coordinator"]["config"] = {"dequeue_interval_seconds": dequeue_interval}
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def start(cmd: list[str], env: dict, logfile: Path) -> subprocess.Popen:
    """A process in a session (and process group) of its own: what it starts stays in the group."""
    out = logfile.open("ab")
    return subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen, name: str) -> dict:
    """SIGTERM to the group (a clean stop: the daemon ends its iteration), SIGKILL after 30 s."""
    result = {"name": name, "exit": None, "killed": False}
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            result["killed"] = True
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # anything left in the group (a run worker) goes too
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    result["exit"] = process.returncode
    return result


def proc_cpu(pid: int) -> dict:
    """CPU seconds of a process: its own and its reaped children's (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return {"self": 0.0, "children": 0.0}
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return {"self": (utime + stime) / TICK, "children": (cutime + cstime) / TICK}


class GroupSampler:
    """Samples the own CPU seconds of every process in a process group every half second (run
    workers live a few seconds; the last half second of each is lost, the rest is counted)."""

    def __init__(self, pgid: int, exclude: set[int]):
        import threading

        self.pgid, self.exclude = pgid, exclude
        self.seen: dict[tuple[int, str], float] = {}
        self.commands: dict[tuple[int, str], str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in self.exclude:
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) != self.pgid:
                    continue
                key = (int(entry.name), fields[19])  # pid and start time: a pid may be reused
                self.seen[key] = (int(fields[11]) + int(fields[12])) / TICK
                if key not in self.commands:
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    self.commands[key] = cmd[:120]
            except (OSError, ValueError, IndexError):
                continue

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> GroupSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def total(self, server: bool) -> float:
        """CPU seconds of the code server's gRPC process (server) or of everything else: the run
        workers and what they start (the compute-log tails, multiprocessing's tracker)."""
        return sum(
            seconds
            for key, seconds in self.seen.items()
            if ("api grpc" in self.commands.get(key, "")) == server
        )


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (/proc/stat)."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / TICK, total / TICK


def wait_for(predicate, timeout: float, what: str, processes=()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: a process ended early (exit {process.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.5)


def stop_automation(process_context) -> list[str]:
    """Every sensor and schedule of the code location stopped in the instance (the daemon then
    ticks none of them), so the runs in the queue are only the measured ones."""
    instance = process_context.instance
    context = process_context.create_request_context()
    stopped = []
    for location in context.code_locations:
        for repository in location.get_repositories().values():
            for sensor in repository.get_sensors():
                instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)
                stopped.append(sensor.name)
            for schedule in repository.get_schedules():
                instance.stop_schedule(
                    schedule.get_remote_origin_id(), schedule.selector_id, schedule
                )
                stopped.append(schedule.name)
    return stopped


def run_requests(slugs: list[str], mode: str, batch: int, tick: str, trial: str) -> list[dict]:
    """Tags and config of the runs: one per organization, or one per `batch` organizations."""
    config = {"ops": {ASSET: {"config": {"as_of": tick, "requested_by": "measure-run-rate"}}}}
    if mode == "per-org":
        groups = [[slug] for slug in slugs]
    else:
        groups = [slugs[i : i + batch] for i in range(0, len(slugs), batch)]
    requests = []
    for group in groups:
        tags = {BENCH_TAG: trial}
        if len(group) == 1:
            tags["dagster/partition"] = group[0]
        else:
            tags.update({RANGE_START_TAG: group[0], RANGE_END_TAG: group[-1]})
        requests.append({"tags": tags, "config": config, "organizations": len(group)})
    return requests


def summary(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
    }


def trial(args, concurrency: int, mode: str, number: int) -> dict:
    from dagster import DagsterEventType, DagsterInstance, RunsFilter
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster_graphql.test.utils import execute_dagster_graphql, infer_job_selector

    name = f"run_rate_{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="run-rate-"))
    out: dict = {
        "mode": mode,
        "max_concurrent_runs": concurrency,
        "dequeue_interval_seconds": args.dequeue_interval or 5,
        "repetition": number,
        "organizations": args.orgs,
        "uptime_before": uptime(),
    }
    processes: list[tuple[subprocess.Popen, str]] = []
    with ExitStack() as stack:
        url = stack.enter_context(scratch_database(name))
        stack.enter_context(scratch_database(f"{name}_dagster"))
        os.environ["INVOICE_PIPELINES_DB_URL"] = url
        os.environ["INVOICE_PIPELINES_DATA_DIR"] = str(work / "data")
        home = work / "dagster_home"
        os.environ["DAGSTER_HOME"] = str(home)
        os.environ["OMP_THREAD_LIMIT"] = "1"
        write_dagster_home(home, f"{name}_dagster", concurrency, args.dequeue_interval)
        prefix = f"rr{uuid.uuid4().hex[:4]}-"
        t = time.perf_counter()
        slugs = seed(prefix, args.orgs)
        out["seed_seconds"] = round(time.perf_counter() - t, 2)

        env = dict(os.environ)
        socket = work / "code-server.sock"
        workspace = work / "workspace.yaml"
        workspace.write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {
                            "grpc_server": {
                                "socket": str(socket),
                                "host": "localhost",
                                "location_name": "invoice_pipelines",
                            }
                        }
                    ]
                }
            )
        )
        code_server = start(
            [
                str(VENV_BIN / "dagster"),
                "code-server",
                "start",
                "--socket",
                str(socket),
                "--location-name",
                "invoice_pipelines",
                "-m",
                "invoice_pipelines.definitions",
                "-d",
                str(REPO),
                "--log-level",
                "warning",
            ],  # fmt: skip
            env,
            work / "code-server.log",
        )
        processes.append((code_server, "code-server"))

        def stop_all() -> None:
            out["stopped"] = [stop(p, n) for p, n in reversed(processes)]

        stack.callback(stop_all)

        def healthy() -> bool:
            check = subprocess.run(
                [str(VENV_BIN / "dagster"), "api", "grpc-health-check", "--socket", str(socket)],
                capture_output=True,
                env=env,
            )
            return socket.exists() and check.returncode == 0

        wait_for(healthy, 180, "code server", [code_server])

        instance = stack.enter_context(DagsterInstance.get())
        process_context = stack.enter_context(
            WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)]))
        )
        instance.add_dynamic_partitions("organizations", slugs)
        out["automation_stopped"] = len(stop_automation(process_context))

        daemon = start(
            [str(VENV_BIN / "dagster-daemon"), "run", "-w", str(workspace)],
            env,
            work / "daemon.log",
        )
        processes.append((daemon, "dagster-daemon"))

        def daemon_up() -> bool:
            beats = instance.get_daemon_heartbeats()
            return "QUEUED_RUN_COORDINATOR" in beats

        wait_for(daemon_up, 180, "daemon heartbeat", [daemon, code_server])
        time.sleep(2)  # past its first iterations

        tick = datetime.now(UTC).isoformat()
        requests = run_requests(slugs, mode, args.batch_orgs, tick, name)
        out["runs"] = len(requests)
        daemon_cpu0 = proc_cpu(daemon.pid)
        server_cpu0 = proc_cpu(code_server.pid)
        busy0, total0 = machine_busy()
        sampler = GroupSampler(code_server.pid, {code_server.pid})
        sampler._sample()  # the baseline, before the sampling thread starts
        grpc0 = sampler.total(True)
        stack.enter_context(sampler)
        t0 = time.time()
        context = process_context.create_request_context()
        selector = infer_job_selector(context, JOB)
        for request in requests:
            result = execute_dagster_graphql(
                context,
                LAUNCH,
                variables={
                    "executionParams": {
                        "selector": selector,
                        "runConfigData": request["config"],
                        "executionMetadata": {
                            "tags": [{"key": k, "value": v} for k, v in request["tags"].items()]
                        },
                    }
                },
            )
            launched = result.data["launchRun"]
            if launched["__typename"] != "LaunchRunSuccess":
                raise RuntimeError(f"launchRun: {launched}")
        submitted = time.time()
        out["submit_seconds"] = round(submitted - t0, 2)

        bench = RunsFilter(tags={BENCH_TAG: name})

        def all_done() -> bool:
            records = instance.get_run_records(bench)
            return len(records) == len(requests) and all(
                r.dagster_run.status.value in FINISHED for r in records
            )

        wait_for(all_done, args.timeout, "runs", [daemon, code_server])
        done = time.time()
        time.sleep(3)  # the last run processes exit and are reaped by the code server
        daemon_cpu1 = proc_cpu(daemon.pid)
        server_cpu1 = proc_cpu(code_server.pid)
        sampler.__exit__(None, None, None)
        busy1, total1 = machine_busy()

        records = instance.get_run_records(bench)
        ids = {r.dagster_run.run_id for r in records}
        starting = {}
        for event in instance.fetch_run_status_changes(
            DagsterEventType.RUN_STARTING, limit=10 * len(ids) + 100
        ).records:
            if event.run_id in ids:
                starting[event.run_id] = event.timestamp
        statuses: dict[str, int] = {}
        for r in records:
            status = r.dagster_run.status.value
            statuses[status] = statuses.get(status, 0) + 1
        launches = sorted(starting.values())
        ends = sorted(r.end_time for r in records if r.end_time)
        starts = [r.start_time for r in records if r.start_time]
        n = len(records)
        total = ends[-1] - t0
        out.update(
            {
                "statuses": statuses,
                "submit_to_last_end_seconds": round(total, 1),
                "first_launch_after_submit_start_seconds": round(launches[0] - t0, 1),
                "runs_launched_per_minute": round(n / (launches[-1] - t0) * 60, 1),
                "runs_finished_per_minute": round(n / total * 60, 1),
                # between the first and the last end: the steady rate, without the ramp-up
                "runs_finished_per_minute_steady": (
                    round((n - 1) / (ends[-1] - ends[0]) * 60, 1) if n > 1 else None
                ),
                "organizations_per_minute": round(args.orgs / total * 60, 1),
                "run_seconds_start_to_end": summary(
                    [r.end_time - r.start_time for r in records if r.start_time and r.end_time]
                ),
                "run_seconds_launch_to_end": summary(
                    [
                        r.end_time - starting[r.dagster_run.run_id]
                        for r in records
                        if r.end_time and r.dagster_run.run_id in starting
                    ]
                ),
                "run_seconds_launch_to_start": summary(
                    [
                        r.start_time - starting[r.dagster_run.run_id]
                        for r in records
                        if r.start_time and r.dagster_run.run_id in starting
                    ]
                ),
                "queue_wait_seconds": summary(
                    [
                        starting[r.dagster_run.run_id] - r.create_timestamp.timestamp()
                        for r in records
                        if r.dagster_run.run_id in starting
                    ]
                ),
                "runs_started_within_window": len(starts),
                "cpu_seconds": {
                    "daemon": round(daemon_cpu1["self"] - daemon_cpu0["self"], 1),
                    # the proxy `dagster code-server start` and the gRPC server it starts (whose
                    # CPU before the submission is in the baseline)
                    "code_server": round(
                        server_cpu1["self"] - server_cpu0["self"] + sampler.total(True) - grpc0, 1
                    ),
                    "run_processes": round(sampler.total(False), 1),
                    "machine_all_processes": round(busy1 - busy0, 1),
                    "machine_capacity": round(total1 - total0, 1),
                },
                "wait_seconds": round(done - submitted, 1),
                "uptime_after": uptime(),
            }
        )
        out["cpu_seconds"]["run_processes_per_run"] = round(
            out["cpu_seconds"]["run_processes"] / n, 2
        )
        out["run_process_count"] = len(sampler.seen)
        kinds: dict[str, list[float]] = {}
        for key, seconds in sampler.seen.items():
            command = sampler.commands.get(key, "?")
            name = next(
                (
                    label
                    for word, label in (
                        ("api grpc", "grpc server"),
                        ("spawn_main", "run worker"),
                        ("resource_tracker", "multiprocessing tracker"),
                        ("tail ", "compute-log tail"),
                    )
                    if word in command
                ),
                "other: " + command.split(" -")[0][-40:],
            )
            kind = kinds.setdefault(name, [0, 0.0])
            kind[0] += 1
            kind[1] = round(kind[1] + seconds, 1)
        out["run_group_processes"] = kinds  # command: [processes, CPU seconds]
        out.update(notice_counts(prefix))
        if args.keep_logs:
            out["logs"] = str(work)
    for stopped in out.get("stopped", []):
        if stopped["killed"]:
            log(f"{stopped['name']} did not stop within 30 s of SIGTERM: killed")
    if not args.keep_logs:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=200, help="organizations per trial")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[2, 4])
    parser.add_argument(
        "--modes", nargs="+", default=["per-org", "batched"], choices=["per-org", "batched"]
    )
    parser.add_argument(
        "--batch-orgs", type=int, default=100, help="organizations per run (batched)"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--dequeue-interval",
        type=int,
        help="run coordinator's dequeue_interval_seconds (default: not set, Dagster's 5 s)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds a trial may take")
    parser.add_argument("--keep-logs", action="store_true", help="keep daemon and code server logs")
    args = parser.parse_args()
    log(uptime())
    trials = []
    for number in range(1, args.repeat + 1):
        for mode in args.modes:
            for concurrency in args.concurrency:
                log(f"trial: {mode}, max_concurrent_runs {concurrency}, repetition {number}")
                result = trial(args, concurrency, mode, number)
                print(json.dumps(result), file=sys.stderr, flush=True)
                trials.append(result)
    keys = (
        "mode", "max_concurrent_runs", "dequeue_interval_seconds", "repetition", "runs", "statuses",
        "submit_to_last_end_seconds", "runs_launched_per_minute", "runs_finished_per_minute",
        "runs_finished_per_minute_steady", "organizations_per_minute", "run_seconds_start_to_end",
        "run_seconds_launch_to_end", "cpu_seconds", "notices_created", "uptime_before",
        "uptime_after",
    )  # fmt: skip
    print(
        json.dumps(
            {
                "organizations": args.orgs,
                "batch_orgs": args.batch_orgs,
                "machine_cores": os.cpu_count(),
                "trials": [{k: t.get(k) for k in keys} for t in trials],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
