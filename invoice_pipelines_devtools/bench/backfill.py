"""Benchmark `backfill`: N organizations x M months of history exported by one Dagster backfill.

What a data engineer does when a migration brings organizations with their history (issue 55),
measured from outside, on PostgreSQL for the application and for Dagster's storage:

1. **Seed** a scratch application database on the PostgreSQL server of INVOICE_PIPELINES_DB_URL
   (or `--server`), set-based (one statement per table whatever N: `generate_series`): N
   organizations with DATEV settings as the exports need them (Beraternummer, Mandantennummer,
   SKR03), ten customers each, and for each organization and month K VALIDATED supplier invoices
   (a VAT row and two lines each, 19 % or 7 %, eight suppliers) and K paid sales invoices to those
   customers (a VAT row and two lines each), all `history = true` (migration 0036: a migration's
   history, exported but never rendered, sent, pushed or dunned). Months: the M months ending with
   the last complete month (UTC).
2. **One process**: `run_export` for every organization-month, both directions, in this process,
   timed, with the stores the export assets use (export store and document stores under the scratch
   data folder). Then what it wrote is reset: its `exports`, `export_items`, `partner_accounts` and
   export audit rows are deleted, its supplier invoices go back EXPORTED -> VALIDATED (and their
   processing version back by one), its files are removed, and the tables are VACUUM ANALYZEd. So
   the backfill does the same work on the same rows in the same database (one seed, not two sets:
   a second set would double what every sensor of the running instance looks at, and the two
   halves would differ in cache and statistics). With `--one-process-sample K` only K
   organizations spread evenly over the N are exported here, and their time is scaled by N / K:
   the seeded organizations are alike, so at 1,000 organizations a sample of 100 measures the
   same rate in a tenth of the time (the per-organization spread is reported beside it).
3. **The backfill through Dagster**: a DAGSTER_HOME of its own with the deployment's instance
   (deploy/dagster.yaml: the project's run coordinator, concurrency limits and lanes, run
   monitoring, sensors) on a scratch PostgreSQL database for Dagster's storage; the project's code
   server (`python -m invoice_pipelines.code_server`, as scripts/run-dagster.sh starts it: runs
   forked from a warm process), `dagster-daemon run` and `dagster-webserver`, every one in a
   process group of its own with SIGINT/SIGTERM at their defaults. The N organizations are added
   as dynamic partitions (`organizations`) in one call before the services start; then ONE asset
   backfill of `incoming_invoice_exports` and `sales_invoice_exports` over the rectangle of all N
   organizations x M months is launched through the webserver's GraphQL (`launchPartitionBackfill`
   with `partitionsByAssets` and a partition range per asset, as the UI does) and polled
   (`partitionBackfillOrError`) until it ends or `--timeout`.
4. **Measured**: runs (by job and status), failed runs with their errors, minutes from launch to
   the backfill's end, organization-months a minute, `ratio_to_one_process` = backfill seconds /
   one-process seconds, `overlapping_organization_runs` (pairs of runs whose organizations
   intersect and whose [start, end] overlap; a run's organizations come from its
   `dagster/partition`, `dagster/partition/organizations` or range tags, a range being the
   rectangle between its two ends in the instance's order of organizations), the runs that were
   not backfill or intake runs (`other_runs_by_job`; `render_send_push_dun_runs` counts those of
   them that render, send, push or dun and were not started by a schedule: a documents run for
   history would be one; the `history_*` counts say what any run did to history), intake latency (every
   `--drop-every` seconds a valid CII e-invoice is dropped into one organization's upload folder and
   timed until it leaves the intake, VALIDATED expected), peak memory of the whole process tree
   (daemon, code server, webserver, runs, parse workers: every process carrying this bench's marker
   in its environment, sampled every second; RSS summed, which counts pages shared by forked runs
   once per process, and PSS, which shares them out), and where a run's time goes (from its events:
   queue wait, start to first step, step time per partition, events written).
5. **Cleanup**: TERM to every process the bench started (their groups, and strays that carry the
   marker), KILL after `--grace` seconds; the scratch databases and folder are dropped unless
   `--keep`.

The last stdout line is JSON with `ratio_to_one_process`, `failed_runs`,
`overlapping_organization_runs`, `intake_p50_s` and the rest; `per_s` is organization-months per
second of the backfill, against the one-process rate as its limit (`fraction_of_limit` =
1 / ratio). PostgreSQL only. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from invoice_pipelines.cli_args import positive_int

REPO = Path(__file__).resolve().parents[2]
ASSETS = ("incoming_invoice_exports", "sales_invoice_exports")
DIRECTIONS = ("incoming", "sales")
MARKER = "INVOICE_PIPELINES_BENCH_BACKFILL"
DONE = ("VALIDATED", "NEEDS_REVIEW", "FAILED", "EXPORTED")
TERMINAL = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
# jobs that render, send, push or dun: no sensor may start one because of history
RENDER_SEND_PUSH_DUN = frozenset(
    {
        "documents_job",
        "send_invoices_job",
        "send_text_messages_job",
        "dunning_job",
        "qbo_invoices_job",
        "qbo_bills_job",
        "qbo_push_bills_job",
    }
)
CUSTOMERS = 10
SUPPLIERS = 8
LIMIT_METHOD = (
    "the same exports (run_export for every organization-month, both directions, with the stores "
    "the export assets use) one after the other in one Python process on the same database, right "
    "before the backfill, whose rows were then reset to VALIDATED"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--orgs", type=positive_int, default=100, help="organizations")
    parser.add_argument("--months", type=positive_int, default=24, help="months of history")
    parser.add_argument(
        "--per-month",
        type=positive_int,
        default=20,
        help="supplier invoices and sales invoices per organization and month (default 20 + 20)",
    )
    parser.add_argument(
        "--timeout", type=float, default=7200.0, help="seconds the backfill may take at most"
    )
    parser.add_argument(
        "--drop-every", type=float, default=20.0, help="seconds between intake drops"
    )
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds from TERM to KILL at the end"
    )
    parser.add_argument(
        "--server",
        default="",
        help="PostgreSQL server URL for the scratch databases (default: INVOICE_PIPELINES_DB_URL "
        "if it is PostgreSQL, else postgresql+psycopg2://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--one-process-sample",
        type=int,
        default=0,
        help="time the one-process exports of this many organizations, evenly spread over the N, "
        "and scale their time by N / sample (the seeded organizations are alike: same customers, "
        "suppliers and invoices a month); 0 (default): every organization",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases and folder")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] backfill: {message}", file=sys.stderr, flush=True)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def history_months(count: int, today: date | None = None) -> list[str]:
    """The `count` months ending with the last complete one, oldest first ("YYYY-MM")."""
    today = today or datetime.now(UTC).date()
    year, month = today.year, today.month
    months = []
    for _ in range(count):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        months.append(f"{year:04d}-{month:02d}")
    return months[::-1]


# --- scratch databases ------------------------------------------------------------------------


def _server_url(given: str):
    from sqlalchemy.engine import make_url

    url = given or os.environ.get("INVOICE_PIPELINES_DB_URL", "")
    if not url.startswith("postgresql"):
        url = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    return make_url(url).set(drivername="postgresql+psycopg2")


@dataclass
class Scratch:
    """The scratch application and Dagster databases and folder of one bench run."""

    server: object
    root: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    created: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    def create(self, kind: str) -> str:
        from sqlalchemy import create_engine

        name = f"bench_backfill_{self.tag}_{kind}"
        admin = create_engine(
            self.url(self.server.database or "postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        self.created.append(name)
        return self.url(name)

    def drop(self) -> None:
        from sqlalchemy import create_engine

        admin = create_engine(
            self.url(self.server.database or "postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            for name in self.created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        shutil.rmtree(self.root, ignore_errors=True)


# --- seeding: a handful of statements whatever N ----------------------------------------------

SEED_ORGANIZATIONS = """
INSERT INTO organizations (slug, name, datev_berater_nr, datev_mandant_nr, datev_chart, settings)
SELECT :prefix || lpad(g::text, 5, '0'), 'Migration ' || g || ' GmbH', 29098, 10000 + g, 'SKR03',
       '{"exports": {}}'::jsonb
FROM generate_series(1, :n) AS g
"""
SEED_CUSTOMERS = """
INSERT INTO customers (organization_id, customer_number, name, street, postal_code, city)
SELECT o.id, 'K-' || c, 'Kunde ' || c || ' ' || o.name, 'Hauptstraße ' || c, '10115', 'Berlin'
FROM organizations o CROSS JOIN generate_series(1, :customers) AS c
WHERE o.slug LIKE :like
"""
# one row per organization, month and invoice: its index, net amount and VAT rate
_GRID = """
SELECT o.id AS org, right(o.slug, 5) AS org_no, m.first AS first, m.no AS month_no, i,
       (100 + (o.id * 37 + m.no * 11 + i * 53) % 900 + i % 100 / 100.0)::numeric(18, 2) AS net,
       CASE WHEN i % 4 = 0 THEN 7 ELSE 19 END AS rate
FROM organizations o
CROSS JOIN (SELECT first::date AS first, row_number() OVER (ORDER BY first) AS no
            FROM unnest(CAST(:months AS date[])) AS first) AS m
CROSS JOIN generate_series(1, :k) AS i
WHERE o.slug LIKE :like
"""
SEED_INCOMING = f"""
WITH grid AS ({_GRID}),
inv AS (
  INSERT INTO incoming_invoices (organization_id, status, processing_version, format, content_hash,
    invoice_number, invoice_number_key, type_code, seller_name, seller_vat_id, issue_date,
    due_date, currency, net_total, tax_total, gross_total, amount_due, history, created_by)
  SELECT org, 'VALIDATED', 2, 'cii',
         md5('in' || org || '-' || first || '-' || i) || md5('bench' || org || first || i),
         'ER-' || org_no || '-' || to_char(first, 'YYYYMM') || '-' || lpad(i::text, 4, '0'),
         'er' || org_no || to_char(first, 'YYYYMM') || lpad(i::text, 4, '0'),
         '380', 'Lieferant ' || (i % {SUPPLIERS}) || ' GmbH', 'DE' || (100000000 + i % {SUPPLIERS}),
         first + (i - 1) % 28, first + (i - 1) % 28 + 14, 'EUR', net,
         round(net * rate / 100, 2), net + round(net * rate / 100, 2),
         net + round(net * rate / 100, 2), true, 'bench-backfill'
  FROM grid
  RETURNING id, organization_id, net_total, tax_total
),
tax AS (
  INSERT INTO incoming_invoice_taxes (organization_id, incoming_invoice_id, vat_category, vat_rate,
    basis, amount)
  SELECT organization_id, id, 'S',
         CASE WHEN tax_total = round(net_total * 0.19, 2) THEN 19 ELSE 7 END, net_total, tax_total
  FROM inv
)
INSERT INTO incoming_invoice_lines (organization_id, incoming_invoice_id, line_no, description,
  quantity, unit_code, unit_price, net_amount, vat_category, vat_rate)
SELECT organization_id, id, n, CASE n WHEN 1 THEN 'Material' ELSE 'Versand' END, 1, 'C62',
       CASE n WHEN 1 THEN net_total - 10 ELSE 10 END, CASE n WHEN 1 THEN net_total - 10 ELSE 10 END,
       'S', CASE WHEN tax_total = round(net_total * 0.19, 2) THEN 19 ELSE 7 END
FROM inv CROSS JOIN generate_series(1, 2) AS n
"""
SEED_SALES = f"""
WITH grid AS ({_GRID}),
inv AS (
  INSERT INTO sales_invoices (organization_id, invoice_number, sequence_number, customer_id,
    type_code, issue_date, due_date, currency, net_total, tax_total, gross_total, amount_paid,
    amount_due, status, last_payment_date, history, created_by)
  SELECT g.org, 'RE-' || to_char(first, 'YYYY-MM') || '-' || lpad(i::text, 5, '0'),
         (month_no - 1) * :k + i, c.id, '380', first + (i - 1) % 28, first + (i - 1) % 28 + 14,
         'EUR', net, round(net * rate / 100, 2), net + round(net * rate / 100, 2),
         net + round(net * rate / 100, 2), 0, 'paid', first + (i - 1) % 28 + 10, true,
         'bench-backfill'
  FROM grid g
  JOIN customers c ON c.organization_id = g.org AND c.customer_number = 'K-' || (1 + i % :customers)
  RETURNING id, organization_id, net_total, tax_total
),
tax AS (
  INSERT INTO sales_invoice_taxes (organization_id, sales_invoice_id, vat_category, vat_rate,
    basis, amount)
  SELECT organization_id, id, 'S',
         CASE WHEN tax_total = round(net_total * 0.19, 2) THEN 19 ELSE 7 END, net_total, tax_total
  FROM inv
)
INSERT INTO sales_invoice_lines (organization_id, sales_invoice_id, line_no, description, quantity,
  unit_price, net_amount, vat_rate, vat_category)
SELECT organization_id, id, n, CASE n WHEN 1 THEN 'Beratung' ELSE 'Reisekosten' END, 1,
       CASE n WHEN 1 THEN net_total - 10 ELSE 10 END, CASE n WHEN 1 THEN net_total - 10 ELSE 10 END,
       CASE WHEN tax_total = round(net_total * 0.19, 2) THEN 19 ELSE 7 END, 'S'
FROM inv CROSS JOIN generate_series(1, 2) AS n
"""


def seed(owner, prefix: str, n: int, months: list[str], k: int) -> list[str]:
    """The organizations and their history, in four statements; their slugs in id order."""
    from sqlalchemy import text

    from invoice_pipelines.core.rules import invoice_number_key

    firsts = [date.fromisoformat(f"{month}-01") for month in months]
    grid = {"like": f"{prefix}%", "months": firsts, "k": k, "customers": CUSTOMERS}
    with owner.begin() as conn:
        conn.execute(text(SEED_ORGANIZATIONS), {"prefix": prefix, "n": n})
        conn.execute(text(SEED_CUSTOMERS), {"like": f"{prefix}%", "customers": CUSTOMERS})
        conn.execute(text(SEED_INCOMING), grid)
        conn.execute(text(SEED_SALES), grid)
        slugs = list(
            conn.execute(
                text("SELECT slug FROM organizations WHERE slug LIKE :like ORDER BY id"),
                {"like": f"{prefix}%"},
            ).scalars()
        )
        # the key the intake would have stored (the duplicate check reads it)
        number, key = conn.execute(
            text("SELECT invoice_number, invoice_number_key FROM incoming_invoices LIMIT 1")
        ).one()
    if invoice_number_key(number) != key:
        raise RuntimeError(f"seeded key {key!r} is not the intake's {invoice_number_key(number)!r}")
    _vacuum(owner)
    return slugs


def _vacuum(owner) -> None:
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


# --- one process --------------------------------------------------------------------------------


def sample_of(slugs: list[str], size: int) -> list[str]:
    """`size` organizations spread evenly over `slugs` (every one where size is 0 or too large)."""
    if size <= 0 or size >= len(slugs):
        return list(slugs)
    step = len(slugs) / size
    return [slugs[int(i * step)] for i in range(size)]


def one_process(
    app_url: str, slugs: list[str], months: list[str]
) -> tuple[float, int, list[float]]:
    """Seconds of every organization-month's export in both directions, the exports written, and
    each organization's seconds."""
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.tenancy import find_organization
    from invoice_pipelines.exports.domain.documents import DocumentStores
    from invoice_pipelines.exports.domain.pipeline import run_export
    from invoice_pipelines.resources.files.stores import document_files, export_files, uploads

    engine = make_engine(app_url)
    store = export_files()
    documents = DocumentStores(uploads(), document_files())
    written = 0
    per_organization = []
    started = time.perf_counter()
    for slug in slugs:
        begun = time.perf_counter()
        for period in months:
            for direction in DIRECTIONS:
                result = run_export(
                    engine,
                    store,
                    find_organization(engine, slug),
                    period,
                    direction,
                    requested_by="bench-backfill",
                    documents=documents,
                )
                written += bool(result.export_id)
        per_organization.append(time.perf_counter() - begun)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, written, per_organization


RESET = (
    "DELETE FROM export_items",
    "DELETE FROM exports",
    "DELETE FROM partner_accounts",
    "DELETE FROM audit_log WHERE action = 'export'",
    "UPDATE incoming_invoices SET status = 'VALIDATED', "
    "processing_version = processing_version - 1 WHERE status = 'EXPORTED' AND history",
)


def reset(owner, data_dir: Path) -> None:
    """Undo what the one-process exports wrote (the scratch database holds only this bench's
    organizations), so the backfill does the same work."""
    with owner.begin() as conn:
        for statement in RESET:
            conn.exec_driver_sql(statement)
    shutil.rmtree(data_dir / "exports", ignore_errors=True)
    _vacuum(owner)


# --- the services -------------------------------------------------------------------------------


def _default_signals() -> None:
    # a service started from a background shell inherits SIGINT ignored, and Dagster's code
    # server and daemon copy SIGINT's handling to SIGTERM (scripts/run-dagster.sh says why)
    for number in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


class Services:
    """The code server, the webserver and the daemon, each in a process group of its own."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.socket = root / "code-server.sock"
        self.port = _free_port()
        self.workspace = root / "workspace.yaml"
        self.workspace.write_text(
            "load_from:\n  - grpc_server:\n"
            f"      socket: {self.socket}\n      host: localhost\n"
            "      location_name: invoice_pipelines\n"
        )

    def _start(self, name: str, argv: list[str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                argv,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_default_signals,
            )

    def _alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def start(self, timeout: float = 600.0) -> float:
        bin_dir = Path(sys.executable).parent
        started = time.monotonic()
        self._start(
            "code-server",
            [sys.executable, "-m", "invoice_pipelines.code_server", "code-server", "start",
             "--socket", str(self.socket), "--location-name", "invoice_pipelines",
             "-m", "invoice_pipelines.definitions", "-d", str(REPO), "--log-level", "warning"],
        )  # fmt: skip
        while True:
            self._alive()
            if self.socket.exists() and self._serving():
                break
            if time.monotonic() - started > timeout:
                raise RuntimeError("the code server did not answer")
            time.sleep(0.5)
        self._start(
            "webserver",
            [str(bin_dir / "dagster-webserver"), "-w", str(self.workspace), "-h", "127.0.0.1",
             "-p", str(self.port), "--dagster-log-level", "warning"],
        )  # fmt: skip
        self._start(
            "daemon",
            [str(bin_dir / "dagster-daemon"), "run", "-w", str(self.workspace),
             "--log-level", "warning"],
        )  # fmt: skip
        while True:
            self._alive()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/server_info", timeout=2)
                return time.monotonic() - started
            except OSError:
                if time.monotonic() - started > timeout:
                    raise RuntimeError("the webserver did not answer") from None
                time.sleep(1)

    def _serving(self) -> bool:
        """The code server answers the standard gRPC health check for the service "DagsterApi"
        (what `dagster api grpc-health-check` asks), asked from this process with grpcio's own
        health client: a new interpreter importing Dagster at every poll took CPU from the code
        server starting beside it."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(f"unix:{self.socket}") as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="DagsterApi"), timeout=5
                )
            except grpc.RpcError:
                return False
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    def graphql(self, query: str, variables: dict) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
        if answer.get("errors"):
            raise RuntimeError(f"GraphQL: {answer['errors']}")
        return answer["data"]

    def stop(self, grace: float) -> dict:
        """TERM to every group and stray, KILL after `grace`; what had to be killed."""
        marker = self.env[MARKER]
        for proc in self.procs.values():
            _signal_group(proc.pid, signal.SIGTERM)
        for pid in marked_pids(marker):
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and marked_pids(marker):
            time.sleep(0.2)
        left = marked_pids(marker)
        for proc in self.procs.values():
            _signal_group(proc.pid, signal.SIGKILL)
        for pid in left:
            _signal(pid, signal.SIGKILL)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        return {"killed_after_grace": len(left)}


def _signal_group(pgid: int, number: int) -> None:
    try:
        os.killpg(pgid, number)
    except (ProcessLookupError, PermissionError):
        pass


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except (ProcessLookupError, PermissionError):
        pass


def marked_pids(marker: str) -> list[int]:
    """Processes whose environment carries this bench run's marker (the services, the runs they
    start and the parse workers, which leave the services' process groups)."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


class MemorySampler(threading.Thread):
    """Every second: RSS and PSS summed over the marked processes; keeps the peaks."""

    def __init__(self, marker: str) -> None:
        super().__init__(daemon=True)
        self.marker = marker
        self.stop_event = threading.Event()
        self.peak_rss_kb = self.peak_pss_kb = self.peak_processes = 0

    @staticmethod
    def _kb(path: Path, key: str) -> int:
        try:
            for line in path.read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def run(self) -> None:
        while not self.stop_event.wait(1.0):
            pids = marked_pids(self.marker)
            rss = sum(self._kb(Path(f"/proc/{pid}/status"), "VmRSS:") for pid in pids)
            pss = sum(self._kb(Path(f"/proc/{pid}/smaps_rollup"), "Pss:") for pid in pids)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_pss_kb = max(self.peak_pss_kb, pss)
            self.peak_processes = max(self.peak_processes, len(pids))


# --- intake drops -----------------------------------------------------------------------------


class Drops(threading.Thread):
    """Every `every` seconds one valid CII e-invoice into `slug`'s upload folder, timed until its
    document leaves the intake (VALIDATED expected)."""

    def __init__(self, app_url: str, inbox: Path, every: float, timeout: float = 600.0) -> None:
        super().__init__(daemon=True)
        self.app_url, self.inbox, self.every, self.timeout = app_url, inbox, every, timeout
        self.stop_event = threading.Event()
        self.results: list[dict] = []

    def run(self) -> None:
        from sqlalchemy import create_engine

        from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices

        engine = create_engine(self.app_url)
        documents = synthetic_xml_invoices(10_000, seed=int(time.time()), kinds=("cii",))
        self.inbox.mkdir(parents=True, exist_ok=True)
        try:
            while not self.stop_event.is_set():
                name, data = next(documents)
                name = f"drop-{len(self.results):03d}-{name}"
                dropped = time.monotonic()
                self.results.append(self._drop(engine, name, data))
                self.stop_event.wait(max(0.0, self.every - (time.monotonic() - dropped)))
        finally:
            engine.dispose()

    def _drop(self, engine, name: str, data: bytes) -> dict:
        from sqlalchemy import text

        dropped = time.monotonic()
        (self.inbox / name).write_bytes(data)
        status = None
        while time.monotonic() - dropped < self.timeout:
            with engine.connect() as conn:
                status = conn.execute(
                    text(
                        "SELECT i.status FROM incoming_invoices i JOIN uploads u "
                        "ON u.incoming_invoice_id = i.id WHERE u.filename = :name"
                    ),
                    {"name": name},
                ).scalar()
            if status in DONE:
                return {
                    "file": name,
                    "status": status,
                    "seconds": round(time.monotonic() - dropped, 2),
                }
            time.sleep(0.25)
        return {"file": name, "status": status, "timeout": True}


# --- the backfill -----------------------------------------------------------------------------

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
  }
}
"""
STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions error { message } }
    ... on PythonError { message }
  }
}
"""


WORKSPACE = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries { name locationOrLoadError { __typename ... on PythonError { message } } }
    }
    ... on PythonError { message }
  }
}
"""


def check_code_location(services: Services) -> None:
    """Refuse to launch into a code location that did not load (its error, in one sentence)."""
    answer = services.graphql(WORKSPACE, {})["workspaceOrError"]
    for entry in answer.get("locationEntries") or [answer]:
        loaded = entry.get("locationOrLoadError") or entry
        if loaded.get("__typename") in ("PythonError", None) or "message" in loaded:
            message = (loaded.get("message") or "no message").strip().splitlines()[-1]
            raise RuntimeError(f"the code location did not load: {message}")


def launch(services: Services, slugs: list[str], months: list[str]) -> str:
    """ONE asset backfill of both export assets over the rectangle of every organization and
    month (keys "month|organization"), as the UI launches one; its id."""
    first, last = f"{months[0]}|{slugs[0]}", f"{months[-1]}|{slugs[-1]}"
    params = {
        "partitionsByAssets": [
            {
                "assetKey": {"path": [asset]},
                "partitions": {"ranges": [{"start": first, "end": last}]},
            }
            for asset in ASSETS
        ],
        "title": f"bench backfill: {len(slugs)} organizations x {len(months)} months",
    }
    answer = services.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
    if answer["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"the backfill was not launched: {answer}")
    return answer["backfillId"]


def wait_for(services: Services, backfill_id: str, timeout: float) -> dict:
    started = time.monotonic()
    last_log = 0.0
    while True:
        answer = services.graphql(STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        status = answer.get("status")
        if status in TERMINAL or time.monotonic() - started > timeout:
            return answer
        if time.monotonic() - last_log > 60:
            _log(f"backfill {backfill_id}: {status} after {time.monotonic() - started:.0f} s")
            last_log = time.monotonic()
        services._alive()
        time.sleep(2)


# --- what the runs show -----------------------------------------------------------------------


def organizations_of(tags: dict, order: dict[str, int]) -> set[str]:
    """The organizations a run works on, from its tags (`order`: slug -> position among the
    dynamic partitions; a range is the rectangle between its ends)."""

    def org(key: str | None) -> str | None:
        for part in (key or "").split("|"):
            if part in order:
                return part
        return None

    named = tags.get("dagster/partition/organizations") or org(tags.get("dagster/partition"))
    if named:
        return {named}
    start, end = org(tags.get(RANGE_START)), org(tags.get(RANGE_END))
    if start and end:
        low, high = sorted((order[start], order[end]))
        by_position = {position: slug for slug, position in order.items()}
        return {by_position[p] for p in range(low, high + 1)}
    return set()


def overlaps(runs: list[dict]) -> list[dict]:
    """Pairs of runs with a shared organization whose [start, end] overlap."""
    pairs = []
    timed = [r for r in runs if r["start"] is not None and r["organizations"]]
    for i, a in enumerate(timed):
        for b in timed[i + 1 :]:
            shared = a["organizations"] & b["organizations"]
            a_end, b_end = a["end"] or time.time(), b["end"] or time.time()
            if shared and a["start"] < b_end and b["start"] < a_end:
                pairs.append(
                    {
                        "runs": [a["run_id"], b["run_id"]],
                        "organizations": sorted(shared)[:5],
                        "overlap_s": round(min(a_end, b_end) - max(a["start"], b["start"]), 1),
                        "tags": [a["partition_tags"], b["partition_tags"]],
                    }
                )
    return pairs


def _run_events(instance, run_id: str) -> dict:
    from dagster import DagsterEventType

    events = instance.all_logs(run_id)
    first_step = step_started = None
    step_seconds = 0.0
    materializations = 0
    errors = []
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            first_step = entry.timestamp if first_step is None else first_step
            step_started = entry.timestamp
        elif event.event_type == DagsterEventType.STEP_SUCCESS and step_started is not None:
            step_seconds += entry.timestamp - step_started
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materializations += 1
        elif event.event_type in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
            errors.append((entry.message or "")[:400])
    return {
        "events": len(events),
        "first_step": first_step,
        "step_seconds": step_seconds,
        "materializations": materializations,
        "errors": errors,
    }


def partitions_in_order(instance, slugs: list[str]) -> dict[str, int]:
    """Add the organizations' partitions (one call) and return each key's place in Dagster's
    order of them: what a range of partitions, from one key to another, spans."""
    from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME

    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
    keys = instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME)
    return {slug: i for i, slug in enumerate(keys)}


def run_records(instance, order: dict[str, int]) -> list[dict]:
    from dagster import RunsFilter

    runs = []
    for record in instance.get_run_records(RunsFilter()):
        run = record.dagster_run
        tags = dict(run.tags)
        events = _run_events(instance, run.run_id)
        partition_tags = {
            key: value
            for key, value in tags.items()
            if key.startswith("dagster/partition") or key.startswith("dagster/asset_partition")
        }
        runs.append(
            {
                "run_id": run.run_id,
                "job": run.job_name,
                "status": run.status.value,
                "backfill": tags.get("dagster/backfill"),
                "created": record.create_timestamp.timestamp(),
                "start": record.start_time,
                "end": record.end_time,
                "organizations": organizations_of(tags, order),
                "partition_tags": partition_tags,
                "slot": tags.get("invoice_pipelines/organization_slot"),
                "lane": tags.get("invoice_pipelines/lane"),
                "schedule": tags.get("dagster/schedule_name"),
                **events,
            }
        )
    return runs


IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def _settle(instance, timeout: float = 180.0) -> float:
    """Wait until no run is queued or in flight (the last intake run ends before the stop, which
    would otherwise cut it off); the seconds it took."""
    from dagster import DagsterRunStatus, RunsFilter

    started = time.monotonic()
    statuses = [DagsterRunStatus(status) for status in IN_FLIGHT]
    while time.monotonic() - started < timeout:
        if not instance.get_runs(RunsFilter(statuses=statuses), limit=1):
            break
        time.sleep(1)
    return time.monotonic() - started


def _edges(runs: list[dict], backfill_id: str, launched: float, ended: float) -> dict:
    """The backfill's time outside its runs: launch to its first run, last run's end to its end."""
    mine = [r for r in runs if r["backfill"] == backfill_id]
    if not mine:
        return {}
    last_end = max((r["end"] for r in mine if r["end"]), default=None)
    busy = sum(r["end"] - r["start"] for r in mine if r["start"] and r["end"])
    return {
        "launch_to_first_run_created_s": round(min(r["created"] for r in mine) - launched, 1),
        "last_run_end_to_backfill_end_s": round(ended - last_end, 1) if last_end else None,
        "run_seconds_total": round(busy, 1),
    }


def time_breakdown(runs: list[dict]) -> dict:
    """Where a backfill run's time goes: queue, start to first step, steps per partition."""
    done = [r for r in runs if r["start"] and r["end"]]
    queue = [r["start"] - r["created"] for r in done]
    to_step = [r["first_step"] - r["start"] for r in done if r["first_step"]]
    per_partition = [
        (r["end"] - r["first_step"]) / r["materializations"]
        for r in done
        if r["first_step"] and r["materializations"]
    ]
    return {
        "queue_wait_p50_s": _percentile(queue, 0.5),
        "queue_wait_max_s": _percentile(queue, 1.0),
        "start_to_first_step_p50_s": _percentile(to_step, 0.5),
        "start_to_first_step_max_s": _percentile(to_step, 1.0),
        "run_seconds_p50": _percentile([r["end"] - r["start"] for r in done], 0.5),
        "materializations_per_run_p50": _percentile([r["materializations"] for r in done], 0.5),
        "first_step_to_end_per_materialization_p50_s": _percentile(per_partition, 0.5),
        "step_seconds_per_materialization_p50": _percentile(
            [r["step_seconds"] / r["materializations"] for r in done if r["materializations"]], 0.5
        ),
        "events_per_run_p50": _percentile([r["events"] for r in done], 0.5),
        "max_runs_at_once": _most_at_once(done),
    }


def _most_at_once(runs: list[dict]) -> int:
    edges = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def outcome(owner, slugs: list[str], months: list[str]) -> dict:
    """What a user would look at in the application database afterwards."""
    from sqlalchemy import text

    with owner.connect() as conn:
        months_exported = conn.execute(
            text(
                "SELECT count(DISTINCT (organization_id, period, direction)) FROM exports "
                "WHERE period = ANY(:months)"
            ),
            {"months": months},
        ).scalar_one()
        by_runs, runs = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT dagster_run_id) FROM exports WHERE dagster_run_id IS NOT NULL"
            )
        ).one()
        left = conn.execute(
            text("SELECT count(*) FROM incoming_invoices WHERE history AND status = 'VALIDATED'")
        ).scalar_one()
        # what a run of the render, send, push and dunning jobs would leave for history: a
        # run of such a job (the dunning schedule's, say) that did nothing for it is no harm
        touched = {
            table: conn.execute(
                text(
                    f"SELECT count(*) FROM {table} t JOIN sales_invoices s "
                    "ON s.id = t.sales_invoice_id WHERE s.history"
                )
            ).scalar_one()
            for table in (
                "sales_invoice_documents",
                "deliveries",
                "dunning_notices",
                "qbo_push_queue",
            )
        }
    return {
        "exports_expected": len(slugs) * len(months) * len(DIRECTIONS),
        "organization_month_directions_exported": months_exported,
        "exports_written_by_runs": by_runs,
        "runs_that_wrote_exports": runs,
        "history_supplier_invoices_left_validated": left,
        "history_sales_documents": touched["sales_invoice_documents"],
        "history_deliveries": touched["deliveries"],
        "history_dunning_notices": touched["dunning_notices"],
        "history_qbo_pushes": touched["qbo_push_queue"],
    }


# --- the whole run ----------------------------------------------------------------------------


@contextmanager
def _environment(values: dict[str, str], drop: tuple[str, ...] = ()):
    saved = {name: os.environ.get(name) for name in (*values, *drop)}
    for name in drop:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _dagster_env(scratch: Scratch, dagster_url: str, home: Path) -> dict[str, str]:
    from sqlalchemy.engine import make_url

    url = make_url(dagster_url)
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_USERNAME": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_HOST": url.host or "127.0.0.1",
        "DAGSTER_PG_DB": url.database,
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "invoice_pipelines"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def run(args: argparse.Namespace) -> dict:
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.migrate import ensure_migrated

    scratch = Scratch(_server_url(args.server), Path(tempfile.mkdtemp(prefix="ip-bench-backfill-")))
    data_dir = scratch.root / "data"
    months = history_months(args.months)
    result: dict = {
        "scenario": "backfill",
        "organizations": args.orgs,
        "months": args.months,
        "per_month": args.per_month,
        "organization_months": args.orgs * args.months,
        "first_month": months[0],
        "last_month": months[-1],
        "invoices": 2 * args.orgs * args.months * args.per_month,
        "commit": _commit(),
        "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    services = None
    # a TERM ends the bench through its `finally` (the services run in sessions of their own)
    previous = signal.signal(signal.SIGTERM, lambda n, f: (_ for _ in ()).throw(SystemExit(143)))
    try:
        app_url = scratch.create("app")
        dagster_url = scratch.create("dagster")
        marker = scratch.tag
        env_values = {
            "INVOICE_PIPELINES_DB_URL": app_url,
            "INVOICE_PIPELINES_DATA_DIR": str(data_dir),
            "INVOICE_PIPELINES_QBO_BASE_URL": f"http://127.0.0.1:{_free_port()}",
            "OMP_THREAD_LIMIT": "1",
            MARKER: marker,
            **_dagster_env(scratch, dagster_url, scratch.root / "dagster_home"),
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
        with _environment(env_values, drop):
            owner = make_engine(app_url, owner=True)
            ensure_migrated(owner)
            prefix = f"bf{scratch.tag[:4]}-"
            t0 = time.perf_counter()
            slugs = seed(owner, prefix, args.orgs, months, args.per_month)
            result["seed_seconds"] = round(time.perf_counter() - t0, 1)
            _log(
                f"seeded {args.orgs} organizations x {args.months} months in {result['seed_seconds']} s"
            )

            sample = sample_of(slugs, args.one_process_sample)
            measured, written, per_organization = one_process(app_url, sample, months)
            seconds = measured * len(slugs) / len(sample)
            result["one_process_organizations"] = len(sample)
            result["one_process_measured_seconds"] = round(measured, 1)
            result["one_process_seconds"] = round(seconds, 1)
            result["one_process_method"] = (
                "every organization"
                if len(sample) == len(slugs)
                else f"{len(sample)} of {len(slugs)} organizations, evenly spread, scaled by "
                f"{len(slugs) / len(sample):g}"
            )
            result["one_process_seconds_per_organization"] = {
                "min": round(min(per_organization), 3),
                "p50": round(_percentile(per_organization, 0.5), 3),
                "max": round(max(per_organization), 3),
            }
            result["one_process_exports"] = written
            result["one_process_organization_months_per_minute"] = round(
                len(sample) * len(months) / measured * 60, 1
            )
            _log(
                f"one process: {written} exports of {len(sample)} organizations in "
                f"{measured:.1f} s ({result['one_process_method']}: {seconds:.1f} s); resetting"
            )
            reset(owner, data_dir)

            from dagster import DagsterInstance

            with DagsterInstance.from_config(env_values["DAGSTER_HOME"]) as instance:
                order = partitions_in_order(instance, slugs)
                services = Services(scratch.root, dict(os.environ))
                result["services_up_s"] = round(services.start(), 1)
                _log(f"code server, webserver and daemon up in {result['services_up_s']} s")
                sampler = MemorySampler(marker)
                sampler.start()
                drops = Drops(app_url, data_dir / "uploads" / slugs[0], args.drop_every)
                check_code_location(services)
                launched, launched_at = time.monotonic(), time.time()
                backfill_id = launch(services, slugs, months)
                drops.start()
                _log(f"backfill {backfill_id} launched")
                answer = wait_for(services, backfill_id, args.timeout)
                backfill_seconds = time.monotonic() - launched
                drops.stop_event.set()
                _log(f"backfill {answer.get('status')} after {backfill_seconds:.0f} s")
                drops.join(timeout=700)
                result["settled_after_s"] = round(_settle(instance), 1)
                sampler.stop_event.set()
                runs = run_records(instance, order)
            result.update(
                _figures(result, args, backfill_id, answer, backfill_seconds, runs, drops, sampler)
            )
            result.update(_edges(runs, backfill_id, launched_at, launched_at + backfill_seconds))
            result.update(outcome(owner, slugs, months))
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


def _figures(result, args, backfill_id, answer, seconds, runs, drops, sampler) -> dict:
    from invoice_pipelines_devtools.bench.limit import limit_fields

    mine = [r for r in runs if r["backfill"] == backfill_id]
    intake = [r for r in runs if r["job"] == "intake_job"]
    other = [r for r in runs if r["backfill"] != backfill_id and r["job"] != "intake_job"]
    failed = [r for r in mine if r["status"] != "SUCCESS"]
    pairs = overlaps(mine)
    latencies = [d["seconds"] for d in drops.results if "seconds" in d]
    org_months = result["organization_months"]
    figures = {
        "backfill_id": backfill_id,
        "backfill_status": answer.get("status"),
        "backfill_partitions": answer.get("numPartitions"),
        "backfill_error": (answer.get("error") or {}).get("message"),
        "backfill_seconds": round(seconds, 1),
        "backfill_minutes": round(seconds / 60, 2),
        "organization_months_per_minute": round(org_months / seconds * 60, 1),
        "organization_months_per_s": round(org_months / seconds, 3),
        "ratio_to_one_process": round(seconds / result["one_process_seconds"], 2),
        "runs": len(mine),
        "runs_by_status": _count(r["status"] for r in mine),
        "failed_runs": len(failed),
        "failed_run_details": [
            {k: r[k] for k in ("run_id", "status", "partition_tags", "slot", "errors")}
            for r in failed[:10]
        ],
        "runs_without_organization_slot": sum(1 for r in mine if not r["slot"]),
        "overlapping_organization_runs": len(pairs),
        "overlap_details": pairs[:10],
        "other_runs": len(other),
        "other_runs_by_job": _count(r["job"] for r in other),
        # started by a sensor or a person: a schedule's tick (the dunning schedule's at its hour,
        # over every organization) comes whatever the history; what it did to history is in
        # history_deliveries / history_dunning_notices / history_qbo_pushes
        "render_send_push_dun_runs": sum(
            1 for r in other if r["job"] in RENDER_SEND_PUSH_DUN and not r["schedule"]
        ),
        "scheduled_render_send_push_dun_runs": sum(
            1 for r in other if r["job"] in RENDER_SEND_PUSH_DUN and r["schedule"]
        ),
        "intake_runs": len(intake),
        "intake_runs_failed": sum(1 for r in intake if r["status"] != "SUCCESS"),
        "intake_drops": len(drops.results),
        "intake_statuses": _count(d.get("status") or "timeout" for d in drops.results),
        "intake_timeouts": sum(1 for d in drops.results if d.get("timeout")),
        "intake_p50_s": _percentile(latencies, 0.5),
        "intake_max_s": max(latencies) if latencies else None,
        "intake_seconds": latencies,
        "peak_rss_mb": round(sampler.peak_rss_kb / 1024, 1),
        "peak_pss_mb": round(sampler.peak_pss_kb / 1024, 1),
        "peak_processes": sampler.peak_processes,
        **time_breakdown(mine),
    }
    limit = org_months / result["one_process_seconds"]
    figures = limit_fields(figures, "organization_months_per_s", limit, LIMIT_METHOD)
    return figures


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))
