"""Benchmark `month-end`: the first of the month for N organizations, through the daemon.

What the platform does on the 1st (issue 76): every organization's last month exported (both
directions) and its overdue invoices dunned, beside the day's intake. Measured from outside on
PostgreSQL for the application and for Dagster's storage, with the machinery of `bench backfill`
(its scratch databases, services, intake drops and memory sampler: backfill.py):

1. **Seed** a scratch application database set-based (a handful of statements whatever N): N
   organizations with DATEV settings and a default interest, ten customers each, and for the last
   complete month K VALIDATED supplier invoices and K sales invoices each (a VAT row and two lines
   each; live invoices, not history). Every fourth sales invoice is open, the rest paid; each is due
   14 days after its issue, so on the 1st the open ones of the month's first half are overdue. Each
   sales invoice has its generated Factur-X document (one shared file in the document store), as a
   closed month has, so the documents sensor finds nothing to render.
2. **One process**: for every organization, the month's two exports (`run_export` with the stores
   the export assets use) and the dunning as the `dunning_notices` asset does it (`run_overdue` as
   of the dunning tick, the letters, the sending), one after the other, timed. Then reset: the
   exports, notices and dunning runs deleted, the supplier invoices back to VALIDATED, the files
   removed, VACUUM ANALYZE. `--one-process-sample S` times S organizations spread evenly and scales
   by N / S (the organizations are alike).
3. **Through Dagster**: the deployment's instance (deploy/dagster.yaml: run coordinator, limits,
   lanes) on a scratch PostgreSQL database, the N organizations added as partitions in one call,
   then the code server, daemon and webserver. The month-end is started as a person starts a
   period by hand (docs/exports.md): once each month-end sensor had its first tick, its cursor is
   set through the webserver (`setSensorCursor`) to its tick on the 1st (the dunning's 00:00, the
   exports' 03:00, in their zone); the daemon then ticks the sensor as on the 1st, each tick
   submitting a few runs through the instance's `submit_run` and the run coordinator's queue,
   until every run of its period is requested. The dunning first, then the exports (on the 1st
   they are 3 hours apart, so their ticks do not meet). The daemon's own tick times are what `slowest_tick_s`
   reports.
4. **Meanwhile**: a supplier invoice dropped every `--drop-every` s into one organization's upload
   folder, timed to VALIDATED; every `--pages-every` s the UI's pages fetched as the browser does:
   the asset partitions page of `sales_invoice_exports` (its HTML and the partition health query
   the page makes) and the Runs page (its HTML, the runs feed of 25 and its counts). Afterwards the
   daemon's ticks (every sensor and schedule tick of the instance in the run's window, end minus
   start) are read from the instance, and the month-end sensors' ticks that requested runs apart.
5. **Measured**: runs (by job, status), failed runs, seconds from the first launch to the last
   run's end, `ratio_to_one_process`, pairs of runs of one organization at once, intake p50/max,
   slowest tick (by instigator), slowest page, peak RSS/PSS of the whole process tree, and what
   the database shows (every organization's month exported by a run in both directions, every
   organization dunned by a run, the same notices as in one process).

PostgreSQL only; progress on stderr; the last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from invoice_pipelines.cli_args import positive_int
from invoice_pipelines_devtools.bench import backfill as bf

DIRECTIONS = bf.DIRECTIONS
EXPORT_SENSOR, DUNNING_SENSOR = "monthly_exports_sensor", "dunning_sensor"
# the dunning first: at 00:00 on the 1st, the exports at 03:00
SENSORS = (DUNNING_SENSOR, EXPORT_SENSOR)
PAGE_ASSET = "sales_invoice_exports"
SCHEDULE_ZONE = "Europe/Berlin"
SETTINGS = (
    '{"exports": {}, "dunning": {"interest": {"base_rate_percent": "1.27", "margin_percent": "9"}}}'
)
DOCUMENT_KEY = "bench-month-end/invoice.pdf"
DOCUMENT = (
    b"%PDF-1.4\n% bench month-end: one invoice document every seeded invoice points to\n%%EOF\n"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--orgs", type=positive_int, default=200, help="organizations")
    parser.add_argument(
        "--per-month",
        type=positive_int,
        default=20,
        help="supplier invoices and sales invoices per organization in the month (default 20 + 20)",
    )
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds the runs may take")
    parser.add_argument("--drop-every", type=float, default=20.0, help="seconds between drops")
    parser.add_argument(
        "--pages-every", type=float, default=30.0, help="seconds between loads of the UI's pages"
    )
    parser.add_argument("--grace", type=float, default=10.0, help="seconds from TERM to KILL")
    parser.add_argument("--server", default="", help="PostgreSQL server URL (as bench backfill)")
    parser.add_argument(
        "--one-process-sample",
        type=int,
        default=0,
        help="time the one-process month-end of this many organizations, evenly spread, scaled "
        "by N / sample; 0 (default): every organization",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases and folder")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] month-end: {message}", file=sys.stderr, flush=True)


def first_of_month(month: str) -> date:
    """The 1st of the month after `month` ("YYYY-MM"): the day its month-end runs."""
    year, number = (int(part) for part in month.split("-"))
    return date(year + number // 12, number % 12 + 1, 1)


def month_end_ticks(day: date) -> dict[str, datetime]:
    """Each month-end sensor's tick on `day`: its first due tick after the day began (00:00 in
    the schedules' zone, one second before), as the code location's settings say (by default the
    dunning's 00:00 and the exports' 03:00, Berlin)."""
    from invoice_pipelines.exports.sensors import MONTH_END
    from invoice_pipelines.overdue.sensors import SCHEDULE, dunning_cadence

    floor = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(SCHEDULE_ZONE))
    floor = floor - timedelta(seconds=1)
    return {
        DUNNING_SENSOR: dunning_cadence(SCHEDULE).after(floor),
        EXPORT_SENSOR: MONTH_END.after(floor),
    }


# --- seeding: live invoices of one closed month -------------------------------------------------

# the backfill's seed (history, paid), then made a live month: not history, every fourth sales
# invoice open (nothing paid), the organizations with a default interest for their notices
LIVE_MONTH = (
    "UPDATE organizations SET settings = CAST(:settings AS jsonb) WHERE slug LIKE :like",
    "UPDATE incoming_invoices SET history = false, created_by = 'bench-month-end'",
    "UPDATE sales_invoices SET history = false, created_by = 'bench-month-end', "
    "status = CASE WHEN sequence_number % 4 = 1 THEN 'open' ELSE status END, "
    "amount_paid = CASE WHEN sequence_number % 4 = 1 THEN 0 ELSE amount_paid END, "
    "amount_due = CASE WHEN sequence_number % 4 = 1 THEN gross_total ELSE amount_due END, "
    "last_payment_date = CASE WHEN sequence_number % 4 = 1 THEN NULL ELSE last_payment_date END",
)
SEED_DOCUMENTS = """
INSERT INTO sales_invoice_documents (organization_id, sales_invoice_id, kind, status, storage_key,
  size_bytes, sha256, format, format_reason)
SELECT s.organization_id, s.id, 'facturx', 'generated', :key, :size, :sha256, 'facturx', 'bench'
FROM sales_invoices s JOIN organizations o ON o.id = s.organization_id
WHERE o.slug LIKE :like
"""


def seed(owner, prefix: str, n: int, month: str, k: int, document_store) -> list[str]:
    """The organizations and their month, in a few statements; their slugs in id order."""
    import hashlib

    from sqlalchemy import text

    document_store.write(DOCUMENT_KEY, [DOCUMENT])
    firsts = [date.fromisoformat(f"{month}-01")]
    grid = {"like": f"{prefix}%", "months": firsts, "k": k, "customers": bf.CUSTOMERS}
    with owner.begin() as conn:
        conn.execute(text(bf.SEED_ORGANIZATIONS), {"prefix": prefix, "n": n})
        conn.execute(text(bf.SEED_CUSTOMERS), {"like": f"{prefix}%", "customers": bf.CUSTOMERS})
        conn.execute(text(bf.SEED_INCOMING), grid)
        conn.execute(text(bf.SEED_SALES), grid)
        conn.execute(text(LIVE_MONTH[0]), {"settings": SETTINGS, "like": f"{prefix}%"})
        for statement in LIVE_MONTH[1:]:
            conn.execute(text(statement))
        conn.execute(
            text(SEED_DOCUMENTS),
            {
                "like": f"{prefix}%",
                "key": DOCUMENT_KEY,
                "size": len(DOCUMENT),
                "sha256": hashlib.sha256(DOCUMENT).hexdigest(),
            },
        )
        slugs = list(
            conn.execute(
                text("SELECT slug FROM organizations WHERE slug LIKE :like ORDER BY id"),
                {"like": f"{prefix}%"},
            ).scalars()
        )
    bf._vacuum(owner)
    return slugs


# --- one process --------------------------------------------------------------------------------


def _organization(engine, slug: str):
    """What the area functions take for an organization: the Organization value where the code
    has one, else the slug."""
    try:
        from invoice_pipelines.db.tenancy import find_organization
    except ImportError:
        return slug
    return find_organization(engine, slug)


def one_process(slugs: list[str], month: str, dunning_at: datetime) -> dict:
    """Each organization's month-end in this process, one after the other, with the resources a
    command gets (the runs' resources by their names): seconds, exports written, notices."""
    from invoice_pipelines.areas import command_resources
    from invoice_pipelines.exports.domain.documents import DocumentStores
    from invoice_pipelines.exports.domain.pipeline import run_export
    from invoice_pipelines.overdue.domain.letter import write_letters
    from invoice_pipelines.overdue.domain.notice_sending import send_notices_over
    from invoice_pipelines.overdue.domain.pipeline import run_overdue
    from invoice_pipelines.resources.for_commands import EnvResources

    resources = EnvResources(command_resources)
    engine = resources.database
    store, document_store = resources.export_store, resources.document_store
    documents = DocumentStores(resources.upload_store, document_store)
    exports = notices = 0
    export_seconds = dunning_seconds = 0.0
    statuses: dict[str, int] = {}
    per_organization = []
    started = time.perf_counter()
    for slug in slugs:
        begun = time.perf_counter()
        org = _organization(engine, slug)
        for direction in DIRECTIONS:
            result = run_export(
                engine, store, org, month, direction,
                requested_by="bench-month-end", documents=documents,
            )  # fmt: skip
            exports += bool(result.export_id)
        exported = time.perf_counter()
        dunned = run_overdue(engine, org, at=dunning_at, requested_by="bench-month-end")
        statuses[dunned.status] = statuses.get(dunned.status, 0) + 1
        notices += dunned.notices_created
        if dunned.status != "FAILED":
            write_letters(engine, resources.letter_writer, document_store, org)
            send_notices_over(engine, resources, document_store, org)
        now = time.perf_counter()
        export_seconds += exported - begun
        dunning_seconds += now - exported
        per_organization.append(now - begun)
    return {
        "seconds": time.perf_counter() - started,
        "export_seconds": export_seconds,
        "dunning_seconds": dunning_seconds,
        "exports": exports,
        "notices": notices,
        "dunning_statuses": statuses,
        "per_organization": per_organization,
    }


RESET = (
    *bf.RESET[:4],
    "UPDATE incoming_invoices SET status = 'VALIDATED', "
    "processing_version = processing_version - 1 WHERE status = 'EXPORTED'",
    "DELETE FROM dunning_notices",
    "DELETE FROM dunning_runs",
)


def reset(owner, data_dir: Path) -> None:
    """Undo what the one-process month-end wrote (the scratch database holds only this bench's
    organizations), so the runs do the same work; the seeded documents stay."""
    import shutil

    with owner.begin() as conn:
        for statement in RESET:
            conn.exec_driver_sql(statement)
    shutil.rmtree(data_dir / "exports", ignore_errors=True)
    for entry in (data_dir / "documents").glob("*"):
        if entry.name != DOCUMENT_KEY.split("/")[0]:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
    bf._vacuum(owner)


# --- the month-end sensors started as on the 1st -------------------------------------------------

REPOSITORIES = """
query Repositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } } }
    ... on PythonError { message }
  }
}
"""
SET_CURSOR = """
mutation SetCursor($selector: SensorSelector!, $cursor: String) {
  setSensorCursor(sensorSelector: $selector, cursor: $cursor) {
    __typename
    ... on PythonError { message }
    ... on SensorNotFoundError { message }
  }
}
"""


def _graphql(services, query: str, variables: dict) -> dict:
    """The webserver's answer, or an error with its body (a 500 says why only there)."""
    import urllib.error

    try:
        return services.graphql(query, variables)
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")[:2000]
        raise RuntimeError(f"GraphQL HTTP {exc.code}: {body}") from None


def repository(services) -> dict:
    answer = _graphql(services, REPOSITORIES, {})["repositoriesOrError"]
    node = answer["nodes"][0]
    return {"repositoryLocationName": node["location"]["name"], "repositoryName": node["name"]}


def start_cursor(tick: datetime) -> str:
    """The cursor a person sets to start the period of `tick` (lib/periods.py)."""
    import json

    return json.dumps({"tick": tick.isoformat()})


def sensor_cursors(instance) -> dict[str, str | None]:
    """The month-end sensors' cursors as the instance holds them (None before their first tick)."""
    found: dict[str, str | None] = dict.fromkeys(SENSORS)
    for state in instance.all_instigator_state():
        if state.instigator_name in found and state.instigator_data is not None:
            found[state.instigator_name] = state.instigator_data.cursor
    return found


def _progress(cursor: str | None) -> dict:
    import json

    return json.loads(cursor) if cursor else {}


def start_period(services, repo: dict, instance, name: str, tick: datetime, timeout: float):
    """Set sensor `name`'s cursor to `tick` once the daemon ticked it a first time (a cursor set
    before could be overwritten by that first tick's), and again should a tick that was under way
    meanwhile have written over it, until the sensor planned that tick's period."""
    started = time.monotonic()
    set_at = None
    while True:
        cursor = sensor_cursors(instance)[name]
        progress = _progress(cursor)
        if progress.get("tick") == tick.isoformat() and "requested" in progress:
            return
        if cursor is not None and (set_at is None or time.monotonic() - set_at > 90):
            selector = {**repo, "sensorName": name}
            answer = _graphql(
                services, SET_CURSOR, {"selector": selector, "cursor": start_cursor(tick)}
            )["setSensorCursor"]
            if answer["__typename"] != "Sensor":
                raise RuntimeError(f"{name}: {answer}")
            set_at = time.monotonic()
            _log(f"{name}: cursor set to {tick.isoformat()}")
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{name} did not start its period: {cursor}")
        services._alive()
        time.sleep(1)


def wait_for_requests(instance, services, name: str, timeout: float) -> None:
    """Until sensor `name` requested every run of its period."""
    started = last_log = time.monotonic()
    while True:
        progress = _progress(sensor_cursors(instance)[name])
        requested, remaining = progress.get("requested"), progress.get("remaining") or ()
        if requested is not None and not remaining:
            _log(f"{name}: {requested} of {requested} runs requested")
            return
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{name} did not request every run: {progress}")
        if time.monotonic() - last_log > 60:
            _log(f"{name}: {requested} of {(requested or 0) + len(remaining)} runs requested")
            last_log = time.monotonic()
        services._alive()
        time.sleep(2)


def run_month_end(services, repo: dict, instance, ticks: dict[str, datetime], timeout: float):
    """The 1st as the daemon lives it: the dunning's period started, and once all its runs are
    requested the exports' (on the 1st they are 3 hours apart); every run the two sensors
    launched on this scratch instance."""
    from dagster import RunsFilter

    for name in SENSORS:
        start_period(services, repo, instance, name, ticks[name], 600)
        wait_for_requests(instance, services, name, timeout)
    wait_for_submitted(instance, services)
    return {
        record.dagster_run.run_id
        for name in SENSORS
        for record in instance.get_run_records(RunsFilter(tags={"dagster/sensor_name": name}))
    }


def wait_for_submitted(instance, services, most: float = 30.0) -> None:
    """Until the instance holds as many runs of each month-end sensor as its cursor says it
    requested (the last tick's runs are submitted after its cursor is written), or `most`
    seconds."""
    from dagster import RunsFilter

    started, short = time.monotonic(), list(SENSORS)
    while time.monotonic() - started < most:
        cursors = sensor_cursors(instance)
        short = [
            name
            for name in SENSORS
            if instance.get_runs_count(RunsFilter(tags={"dagster/sensor_name": name}))
            < (_progress(cursors[name]).get("requested") or 0)
        ]
        if not short:
            return
        services._alive()
        time.sleep(0.5)
    _log(f"after {most:.0f} s, fewer runs than requested in the instance: {short}")


def sensor_ticks(instance, since: float, until: float) -> dict[str, dict]:
    """The month-end sensors' ticks that requested runs in [since, until]: how many, runs each,
    the slowest (end minus start, seconds), the runs requested."""
    found = {}
    for state in instance.all_instigator_state():
        if state.instigator_name not in SENSORS:
            continue
        ticks = instance.get_ticks(
            state.instigator_origin_id, state.selector_id, after=since, before=until, limit=10_000
        )
        requesting = [t for t in ticks if t.run_ids and t.end_timestamp]
        seconds = [t.end_timestamp - t.timestamp for t in requesting]
        found[state.instigator_name] = {
            "requesting_ticks": len(requesting),
            "runs_requested": sum(len(t.run_ids) for t in requesting),
            "most_runs_a_tick": max((len(t.run_ids) for t in requesting), default=0),
            "slowest_s": round(max(seconds), 2) if seconds else None,
            "p50_s": bf._percentile(seconds, 0.5),
        }
    return found


# --- the UI's pages -----------------------------------------------------------------------------

PARTITION_HEALTH = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        __typename
        ... on TimePartitionStatuses { ranges { status startKey endKey } }
        ... on DefaultPartitionStatuses {
          materializedPartitions materializingPartitions failedPartitions
        }
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey
            secondaryDim {
              __typename
              ... on TimePartitionStatuses { ranges { status startKey endKey } }
              ... on DefaultPartitionStatuses {
                materializedPartitions materializingPartitions failedPartitions
              }
            }
          }
        }
      }
    }
  }
}
"""
RUNS_FEED = """
query RunsFeedRootQuery($limit: Int!, $view: RunsFeedView!) {
  runsFeedOrError(limit: $limit, view: $view) {
    __typename
    ... on RunsFeedConnection {
      cursor hasMore
      results { __typename id runStatus creationTime startTime endTime jobName tags { key value } }
    }
    ... on PythonError { message }
  }
  all: runsFeedCountOrError(view: $view) { ... on RunsFeedCount { count } }
  queued: runsFeedCountOrError(view: $view, filter: {statuses: [QUEUED]}) {
    ... on RunsFeedCount { count }
  }
  inProgress: runsFeedCountOrError(view: $view, filter: {statuses: [STARTING, STARTED]}) {
    ... on RunsFeedCount { count }
  }
}
"""


def _get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()


class Pages(threading.Thread):
    """Every `every` s the two pages as a browser loads them (HTML, then the page's queries)."""

    def __init__(self, services, every: float) -> None:
        super().__init__(daemon=True)
        self.services, self.every = services, every
        self.stop_event = threading.Event()
        self.loads: list[dict] = []

    def load(self) -> dict:
        base = f"http://127.0.0.1:{self.services.port}"
        timed = {}
        started = time.monotonic()
        _get(f"{base}/assets/{PAGE_ASSET}?view=partitions")
        self.services.graphql(PARTITION_HEALTH, {"assetKey": {"path": [PAGE_ASSET]}})
        timed["partitions_page_s"] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        _get(f"{base}/runs")
        self.services.graphql(RUNS_FEED, {"limit": 25, "view": "ROOTS"})
        timed["runs_page_s"] = round(time.monotonic() - started, 2)
        return timed

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.loads.append(self.load())
            except Exception as exc:  # a page that fails is a finding, not the end of the bench
                self.loads.append({"error": f"{type(exc).__name__}: {exc}"[:300]})
            self.stop_event.wait(self.every)


# --- database connections ---------------------------------------------------------------------


# what the server should allow for the month-end beside the daemon, webserver and code server
ENOUGH_CONNECTIONS = 150


class Connections(threading.Thread):
    """Every `every` s: the connections to the scratch application and Dagster databases and to
    the whole server (pg_stat_activity), and the runs in progress (Dagster's runs table); keeps
    each sample, for the peaks and the connections per run."""

    def __init__(self, server_url: str, dagster_url: str, app: str, every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.server_url, self.dagster_url, self.app, self.every = (
            server_url,
            dagster_url,
            app,
            every,
        )
        self.dagster = dagster_url.rsplit("/", 1)[-1]
        self.stop_event = threading.Event()
        self.samples: list[tuple[int, int, int, int]] = []  # app, dagster, server, running
        self.max_connections: int | None = None

    def run(self) -> None:
        from sqlalchemy import create_engine, text

        server = create_engine(self.server_url, isolation_level="AUTOCOMMIT", pool_size=1)
        dagster = create_engine(self.dagster_url, isolation_level="AUTOCOMMIT", pool_size=1)
        with server.connect() as conn:
            self.max_connections = int(conn.execute(text("SHOW max_connections")).scalar_one())
        if self.max_connections < ENOUGH_CONNECTIONS:
            # issue 76: 95-97 of 100 at 1,000 organizations; a refused connection fails a run
            _log(
                f"the server allows {self.max_connections} connections; the month-end peaked at "
                f"95-97 at 1,000 organizations: for more, raise max_connections to "
                f"{ENOUGH_CONNECTIONS} or more (ALTER SYSTEM SET max_connections = 200; restart)"
            )
        activity = text("SELECT datname, count(*) FROM pg_stat_activity GROUP BY 1")
        running = text("SELECT count(*) FROM runs WHERE status IN ('STARTING', 'STARTED')")
        try:
            while not self.stop_event.wait(self.every):
                try:
                    with server.connect() as conn:
                        counts = dict(conn.execute(activity).all())
                    with dagster.connect() as conn:
                        in_progress = conn.execute(running).scalar_one()
                except Exception:  # the server refused this one too: the sample is missed
                    continue
                self.samples.append(
                    (
                        counts.get(self.app, 0),
                        counts.get(self.dagster, 0),
                        sum(v for k, v in counts.items() if k),
                        in_progress,
                    )
                )
        finally:
            server.dispose()
            dagster.dispose()

    def figures(self) -> dict:
        """The peaks, and the connections of both databases per run in progress: the busiest
        sample's, less the quietest sample's (daemon, webserver, code server, sensors)."""
        if not self.samples:
            return {}
        both = [(app + dagster, running) for app, dagster, _, running in self.samples]
        quiet = (
            min(total for total, running in both if running == 0)
            if any(running == 0 for _, running in both)
            else None
        )
        busiest = max(both, key=lambda sample: (sample[1], sample[0]))
        per_run = (
            round((busiest[0] - quiet) / busiest[1], 1)
            if quiet is not None and busiest[1]
            else None
        )
        return {
            "server_max_connections": self.max_connections,
            "peak_app_connections": max(sample[0] for sample in self.samples),
            "peak_dagster_connections": max(sample[1] for sample in self.samples),
            "peak_server_connections": max(sample[2] for sample in self.samples),
            "connections_without_runs": quiet,
            "connections_at_most_runs": {"runs": busiest[1], "connections": busiest[0]},
            "connections_per_run": per_run,
        }


# --- the daemon's ticks -------------------------------------------------------------------------


def daemon_ticks(instance, since: float, until: float) -> dict[str, dict]:
    """Every sensor and schedule tick of the instance that started in [since, until]: per
    instigator, how many and the slowest (end minus start, seconds)."""
    by_name: dict[str, dict] = {}
    for state in instance.all_instigator_state():
        ticks = instance.get_ticks(
            state.instigator_origin_id, state.selector_id, after=since, before=until, limit=100_000
        )
        seconds = [t.end_timestamp - t.timestamp for t in ticks if t.end_timestamp]
        if seconds:
            by_name[state.instigator_name] = {
                "ticks": len(seconds),
                "slowest_s": round(max(seconds), 2),
                "p50_s": bf._percentile(seconds, 0.5),
            }
    return dict(sorted(by_name.items()))


def failure_details(instance, run_ids: list[str], most: int = 5) -> list[dict]:
    """The errors of failed runs as their events hold them (the step's exception, an engine
    event's), first lines only."""
    found = []
    for run_id in run_ids[:most]:
        errors = []
        for entry in instance.all_logs(run_id):
            data = getattr(entry.dagster_event, "event_specific_data", None)
            error = getattr(data, "error", None)
            while error is not None and len(errors) < 6:
                errors.append(f"{error.cls_name}: {error.message.strip()[:300]}")
                error = error.cause
        found.append({"run_id": run_id, "errors": errors})
    return found


# --- what the database shows --------------------------------------------------------------------


def outcome(owner, month: str, organizations: int) -> dict:
    from sqlalchemy import text

    with owner.connect() as conn:
        exported = conn.execute(
            text(
                "SELECT count(DISTINCT (organization_id, direction)) FROM exports "
                "WHERE period = :month AND dagster_run_id IS NOT NULL"
            ),
            {"month": month},
        ).scalar_one()
        dunned = conn.execute(
            text(
                "SELECT count(DISTINCT organization_id) FROM dunning_runs "
                "WHERE dagster_run_id IS NOT NULL AND status <> 'FAILED' AND NOT dry_run"
            )
        ).scalar_one()
        notices = conn.execute(text("SELECT count(*) FROM dunning_notices")).scalar_one()
        left = conn.execute(
            text(
                "SELECT count(*) FROM incoming_invoices i JOIN organizations o "
                "ON o.id = i.organization_id WHERE i.created_by = 'bench-month-end' "
                "AND i.status = 'VALIDATED'"
            )
        ).scalar_one()
    return {
        "month_exports_expected": organizations * len(DIRECTIONS),
        "month_exports_by_runs": exported,
        "organizations_dunned_by_runs": dunned,
        "notices_by_runs": notices,
        "month_supplier_invoices_left_validated": left,
    }


# --- the whole run ------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines.resources.files.stores import document_files

    scratch = bf.Scratch(
        bf._server_url(args.server), Path(tempfile.mkdtemp(prefix="ip-month-end-"))
    )
    data_dir = scratch.root / "data"
    month = bf.history_months(1)[0]
    day = first_of_month(month)
    ticks = month_end_ticks(day)
    result: dict = {
        "scenario": "month-end",
        "organizations": args.orgs,
        "per_month": args.per_month,
        "month": month,
        "month_end_day": day.isoformat(),
        "invoices": 2 * args.orgs * args.per_month,
        "commit": bf._commit(),
        "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    services = None
    previous = signal.signal(signal.SIGTERM, lambda n, f: (_ for _ in ()).throw(SystemExit(143)))
    try:
        app_url = scratch.create("app")
        dagster_url = scratch.create("dagster")
        marker = scratch.tag
        env_values = {
            "INVOICE_PIPELINES_DB_URL": app_url,
            "INVOICE_PIPELINES_DATA_DIR": str(data_dir),
            "INVOICE_PIPELINES_QBO_BASE_URL": f"http://127.0.0.1:{bf._free_port()}",
            "OMP_THREAD_LIMIT": "1",
            # the scratch databases are logged in to as their owner (the test server's login)
            "INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME": "true",
            bf.MARKER: marker,
            **bf._dagster_env(scratch, dagster_url, scratch.root / "dagster_home"),
        }
        drop = (
            "INVOICE_PIPELINES_UPLOAD_DIR",
            "INVOICE_PIPELINES_EXPORT_DIR",
            "INVOICE_PIPELINES_DOCUMENT_DIR",
            "INVOICE_PIPELINES_SYSTEM_DB_URL",
            "INVOICE_PIPELINES_STORAGE",
            "INVOICE_PIPELINES_DAGSTER_DIR",
            "INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR",
        )
        with bf._environment(env_values, drop):
            owner = make_engine(app_url, owner=True)
            ensure_migrated(owner)
            prefix = f"me{scratch.tag[:4]}-"
            t0 = time.perf_counter()
            slugs = seed(owner, prefix, args.orgs, month, args.per_month, document_files())
            result["seed_seconds"] = round(time.perf_counter() - t0, 1)
            _log(f"seeded {args.orgs} organizations' {month} in {result['seed_seconds']} s")

            # the dunning tick's instant: 00:00 on the 1st where it runs by default
            dunning_at = ticks[DUNNING_SENSOR].astimezone(UTC)
            sample = bf.sample_of(slugs, args.one_process_sample)
            alone = one_process(sample, month, dunning_at)
            scale = len(slugs) / len(sample)
            result.update(
                {
                    "one_process_organizations": len(sample),
                    "one_process_measured_seconds": round(alone["seconds"], 1),
                    "one_process_seconds": round(alone["seconds"] * scale, 1),
                    "one_process_export_seconds": round(alone["export_seconds"] * scale, 1),
                    "one_process_dunning_seconds": round(alone["dunning_seconds"] * scale, 1),
                    "one_process_exports": alone["exports"],
                    "one_process_notices": alone["notices"],
                    "one_process_dunning_statuses": alone["dunning_statuses"],
                    "one_process_seconds_per_organization_p50": bf._percentile(
                        alone["per_organization"], 0.5
                    ),
                }
            )
            _log(
                f"one process: {alone['exports']} exports, {alone['notices']} notices of "
                f"{len(sample)} organizations in {alone['seconds']:.1f} s; resetting"
            )
            reset(owner, data_dir)

            from dagster import DagsterInstance

            with DagsterInstance.from_config(env_values["DAGSTER_HOME"]) as instance:
                order = bf.partitions_in_order(instance, slugs)
                services = bf.Services(scratch.root, dict(os.environ))
                result["services_up_s"] = round(services.start(), 1)
                _log(f"code server, webserver and daemon up in {result['services_up_s']} s")
                sampler = bf.MemorySampler(marker)
                sampler.start()
                connections = Connections(
                    scratch.url(scratch.server.database or "postgres"),
                    dagster_url,
                    app_url.rsplit("/", 1)[-1],
                )
                connections.start()
                bf.check_code_location(services)
                repo = repository(services)
                pages = Pages(services, args.pages_every)
                drops = bf.Drops(app_url, data_dir / "uploads" / slugs[0], args.drop_every)
                began, began_at = time.monotonic(), time.time()
                drops.start()
                pages.start()
                mine = run_month_end(services, repo, instance, ticks, args.timeout)
                _log(f"the sensors requested {len(mine)} runs")
                wait_for_runs(instance, mine, args.timeout, services)
                seconds = time.monotonic() - began
                drops.stop_event.set()
                pages.stop_event.set()
                _log(f"every run ended {seconds:.0f} s after the first tick")
                drops.join(timeout=700)
                pages.join(timeout=300)
                result["settled_after_s"] = round(bf._settle(instance), 1)
                sampler.stop_event.set()
                connections.stop_event.set()
                runs = bf.run_records(instance, order)
                failures = failure_details(
                    instance, [r["run_id"] for r in runs if r["status"] == "FAILURE"]
                )
                tick_times = daemon_ticks(instance, began_at, time.time())
                requesting = sensor_ticks(instance, began_at, time.time())
            result.update(
                _figures(result, seconds, runs, mine, requesting, tick_times, drops, pages)
            )
            result["failure_details"] = failures
            result.update(connections.figures())
            result["peak_rss_mb"] = round(sampler.peak_rss_kb / 1024, 1)
            result["peak_pss_mb"] = round(sampler.peak_pss_kb / 1024, 1)
            result["peak_processes"] = sampler.peak_processes
            result.update(outcome(owner, month, len(slugs)))
            owner.dispose()
    finally:
        if services is not None:
            result.update(services.stop(args.grace))
        signal.signal(signal.SIGTERM, previous)
        if args.keep:
            result["scratch"] = {"folder": str(scratch.root), "databases": scratch.created}
        else:
            scratch.drop()
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def wait_for_runs(instance, run_ids: set[str], timeout: float, services) -> None:
    """Until every run of `run_ids` ended (or `timeout`)."""
    from dagster import RunsFilter

    started = last_log = time.monotonic()
    while time.monotonic() - started < timeout:
        records = instance.get_run_records(RunsFilter(run_ids=sorted(run_ids)))
        open_ = [r for r in records if not r.dagster_run.is_finished]
        if not open_:
            return
        if time.monotonic() - last_log > 60:
            _log(
                f"{len(open_)} of {len(run_ids)} runs not ended after {time.monotonic() - started:.0f} s"
            )
            last_log = time.monotonic()
        services._alive()
        time.sleep(2)


def _figures(result, seconds, runs, mine, ticks, tick_times, drops, pages) -> dict:
    month_end = [r for r in runs if r["run_id"] in mine]
    intake = [r for r in runs if r["job"] == "intake_job"]
    other = [r for r in runs if r["run_id"] not in mine and r["job"] != "intake_job"]
    failed = [r for r in month_end if r["status"] != "SUCCESS"]
    last_end = max((r["end"] for r in month_end if r["end"]), default=None)
    first_created = min((r["created"] for r in month_end), default=None)
    latencies = [d["seconds"] for d in drops.results if "seconds" in d]
    loads = [p for p in pages.loads if "error" not in p]
    slowest_tick = max(tick_times.items(), key=lambda item: item[1]["slowest_s"], default=None)
    work = (last_end - first_created) if last_end and first_created else seconds
    return {
        "month_end_ticks": ticks,
        "runs": len(month_end),
        "runs_by_job": bf._count(r["job"] for r in month_end),
        "runs_by_status": bf._count(r["status"] for r in month_end),
        "failed_runs": len(failed),
        "failed_run_details": [
            {k: r[k] for k in ("run_id", "job", "status", "partition_tags", "errors")}
            for r in failed[:10]
        ],
        "month_end_seconds": round(work, 1),
        "ratio_to_one_process": round(work / result["one_process_seconds"], 2),
        "overlapping_organization_runs": len(bf.overlaps(month_end)),
        "overlap_details": bf.overlaps(month_end)[:5],
        "runs_without_organization_slot": sum(1 for r in month_end if not r["slot"]),
        "lanes": bf._count(r["lane"] or "none" for r in month_end),
        "other_runs_by_job": bf._count(r["job"] for r in other),
        "intake_runs": len(intake),
        "intake_runs_failed": sum(1 for r in intake if r["status"] != "SUCCESS"),
        "intake_drops": len(drops.results),
        "intake_statuses": bf._count(d.get("status") or "timeout" for d in drops.results),
        "intake_p50_s": bf._percentile(latencies, 0.5),
        "intake_max_s": max(latencies) if latencies else None,
        "daemon_ticks": tick_times,
        "slowest_tick_s": max((t["slowest_s"] for t in tick_times.values()), default=None),
        "slowest_daemon_tick": slowest_tick[0] if slowest_tick else None,
        "slowest_month_end_tick_s": max(
            (t["slowest_s"] or 0 for t in ticks.values()), default=None
        ),
        "page_loads": len(loads),
        "page_errors": [p["error"] for p in pages.loads if "error" in p][:3],
        "partitions_page_max_s": max((p["partitions_page_s"] for p in loads), default=None),
        "runs_page_max_s": max((p["runs_page_s"] for p in loads), default=None),
        "slowest_page_s": max(
            (max(p["partitions_page_s"], p["runs_page_s"]) for p in loads), default=None
        ),
        **bf.time_breakdown(month_end),
    }
