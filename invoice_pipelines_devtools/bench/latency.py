"""Benchmark: a dropped invoice, from the drop to VALIDATED, through `make run`'s Dagster.

Starts `make run` as a user does (scripts/run-dagster.sh: the repository's dagster.yaml, the code
server, the daemon with its sensors, run queue and DefaultRunLauncher), on a scratch data folder and
SQLite application database of its own, on free ports; waits until the demo's own first work is
done; then drops N distinct invoices (`--kinds`: e-invoices, text PDFs, scans) one at a time into the demo organization's drop zone
(a random 0-5 s pause before each, so drops fall anywhere between two sensor ticks) and times each
until its document has left the intake (VALIDATED, or NEEDS_REVIEW / FAILED, reported apart):

- idle: nothing else queued or running;
- bulk: while a batch invoicing run of `--orders` new orders of the same organization works (it is
  queued the way an application queues one: a pending `batch_jobs` row, which batch_jobs_sensor
  launches), followed by the documents run and the QuickBooks push of those invoices that the
  sensors launch for them, as in the demo;
- push (issue 56; no drops): a batch of `--orders` orders whose QuickBooks push is hours long (the
  simulator's limit, `--push-per-minute`, 500 as QBO's: 100,000 invoices are 3.3 hours; lower
  it, 30 at least, for a small batch of the same class). From the end of the batch invoicing run it
  times the start of the organization's documents run, and says whether the push was under way
  beside it: `documents_start_s`, also on the last line's top level.

Per drop it also splits the wait, from the application database and Dagster's run records:
drop -> registered (upload sensor), registered -> run created, created -> started (queue and the
run process's start), started -> done (the intake itself). p50/p95 per phase; JSON on the last
line.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DONE = ("VALIDATED", "NEEDS_REVIEW", "FAILED", "EXPORTED")
BUSY_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=20, help="drops per phase (default 20)")
    parser.add_argument(
        "--orders",
        type=int,
        default=2000,
        help="orders of the batch invoicing run of the bulk phase (default 2000)",
    )
    parser.add_argument(
        "--phases",
        default="idle,bulk",
        help="comma-separated: idle, bulk, push (default idle,bulk)",
    )
    parser.add_argument(
        "--push-per-minute",
        type=int,
        default=500,
        help="the simulated QuickBooks' requests a minute per company in the push phase (QBO's "
        "500; at least 30, a batch of 30 invoices counts 30)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds a drop may take at most"
    )
    parser.add_argument(
        "--kinds",
        default="cii,ubl,text-pdf,text-pdf-review,scan",
        help="what is dropped, in turn: cii, ubl, xrechnung-cii, xrechnung-ubl (e-invoices that "
        "end VALIDATED), text-pdf (a page without XML: VALIDATED or NEEDS_REVIEW by the "
        "organization's policy), text-pdf-review (a page whose grand total net plus VAT does not "
        "make: NEEDS_REVIEW), scan (the text-pdf page scanned, read by OCR); default "
        "cii,ubl,text-pdf,text-pdf-review,scan",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


class MakeRun:
    """`make run` on a scratch data folder, ended with SIGTERM to its process group."""

    def __init__(self, root: Path) -> None:
        self.data_dir = root / "data"
        self.db_url = f"sqlite:///{root / 'app.sqlite3'}"
        self.log = root / "make-run.log"
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(_free_port()),
            "INVOICE_PIPELINES_DATA_DIR": str(self.data_dir),
            "INVOICE_PIPELINES_DB_URL": self.db_url,
            "INVOICE_PIPELINES_QBO_BASE_URL": f"http://127.0.0.1:{_free_port()}",
        }
        for name in (
            "DAGSTER_HOME",
            "INVOICE_PIPELINES_UPLOAD_DIR",
            "INVOICE_PIPELINES_QBO_TOKEN_URL",
            "INVOICE_PIPELINES_QBO_TOKEN_KEY",
            "MAKEFLAGS",
            "MFLAGS",
        ):
            env.pop(name, None)
        self.env = env
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["make", "run"],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_for_ui(self, timeout: float = 600.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if "Dagster UI is up" in self.log.read_text(errors="replace"):
                return time.monotonic() - started
            if self.proc.poll() is not None:
                raise RuntimeError(f"make run exited: {self.log.read_text()[-2000:]}")
            time.sleep(1)
        raise RuntimeError(f"the UI did not come up in {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def instance(self):
        """Dagster's instance of this `make run` (the repository's dagster.yaml), read-only use."""
        from dagster import DagsterInstance

        os.environ["INVOICE_PIPELINES_DAGSTER_DIR"] = str(self.data_dir / "dagster")
        os.environ["INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR"] = str(
            self.data_dir / "dagster" / "compute_logs"
        )
        os.environ["INVOICE_PIPELINES_DB_URL"] = self.db_url
        return DagsterInstance.from_config(str(REPO))


def _busy_runs(instance) -> dict[str, int]:
    from dagster import DagsterRunStatus, RunsFilter

    runs = instance.get_runs(
        RunsFilter(statuses=[DagsterRunStatus(status) for status in BUSY_STATUSES])
    )
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.job_name] = counts.get(run.job_name, 0) + 1
    return counts


def _document(engine, filename: str):
    from sqlalchemy import select

    from invoice_pipelines.db.tables import incoming_invoices, uploads
    from invoice_pipelines.db.tenancy import system_transaction

    with system_transaction(engine) as conn:
        return conn.execute(
            select(
                incoming_invoices.c.id,
                incoming_invoices.c.status,
                uploads.c.created_at,
                incoming_invoices.c.status_changed_at,
            )
            .join(uploads, uploads.c.incoming_invoice_id == incoming_invoices.c.id)
            .where(uploads.c.filename == filename)
        ).first()


def _intake_run(instance, document_id: int):
    """The record of the intake_job run that was launched for the document."""
    from dagster import RunsFilter

    for record in instance.get_run_records(RunsFilter(job_name="intake_job"), limit=200):
        config = (record.dagster_run.run_config or {}).get("ops", {}).get("incoming_invoices", {})
        if document_id in ((config.get("config") or {}).get("document_ids") or []):
            return record
    return None


def _drop_one(run: MakeRun, engine, instance, slug: str, name: str, data: bytes, timeout: float):
    inbox = run.data_dir / "uploads" / slug
    busy = _busy_runs(instance)
    dropped = time.time()
    (inbox / name).write_bytes(data)
    row = None
    while time.time() - dropped < timeout:
        row = _document(engine, name)
        if row is not None and row.status in DONE:
            break
        time.sleep(0.2)
    done = time.time()
    if row is None or row.status not in DONE:
        return {"file": name, "timeout": True, "busy_beside": busy}
    result = {
        "file": name,
        "status": row.status,
        "seconds": round(done - dropped, 2),
        "busy_beside": busy,
        "registered_s": round(row.created_at.timestamp() - dropped, 2),
    }
    record = _intake_run(instance, row.id)
    if record is not None:
        result["run_created_s"] = round(record.create_timestamp.timestamp() - dropped, 2)
        if record.start_time:
            result["run_started_s"] = round(record.start_time - dropped, 2)
        if record.end_time:
            result["run_ended_s"] = round(record.end_time - dropped, 2)
    return result


def _quiet(instance, engine, timeout: float = 600.0) -> float:
    """Wait until no run is queued or running and no document waits; the seconds it took."""
    from sqlalchemy import func, select

    from invoice_pipelines.db.tables import incoming_invoices
    from invoice_pipelines.db.tenancy import system_transaction

    started = time.monotonic()
    calm = 0
    while time.monotonic() - started < timeout:
        with system_transaction(engine) as conn:
            waiting = conn.execute(
                select(func.count()).where(
                    incoming_invoices.c.status.in_(["UPLOADED", "CREATED", "PARSED"])
                )
            ).scalar_one()
        calm = calm + 1 if not waiting and not _busy_runs(instance) else 0
        if calm >= 5:
            return time.monotonic() - started
        time.sleep(1)
    return time.monotonic() - started


def _queue_bulk(engine, slug: str, orders: int) -> int:
    """`orders` reviewed one-line orders of the organization and a pending batch job over them."""
    from sqlalchemy import insert, select

    from invoice_pipelines.billing.invoicing_kinds import enqueue_sales_orders
    from invoice_pipelines.db.tables import (
        customers,
        items,
        organizations,
        sales_order_lines,
        sales_orders,
    )
    from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction

    with system_transaction(engine) as conn:
        org_id = conn.execute(
            select(organizations.c.id).where(organizations.c.slug == slug)
        ).scalar_one()
    tag = uuid.uuid4().hex[:6]
    with tenant_transaction(engine, org_id, write=True) as conn:
        customer_ids = list(
            conn.execute(select(customers.c.id).where(customers.c.organization_id == org_id))
            .scalars()
            .all()
        )
        item = conn.execute(
            select(items.c.id, items.c.name, items.c.unit_price, items.c.vat_rate)
            .where(items.c.organization_id == org_id, items.c.vat_category == "S")
            .order_by(items.c.id)
        ).first()
        conn.execute(
            insert(sales_orders),
            [
                {
                    "organization_id": org_id,
                    "order_number": f"LAT-{tag}-{n:06d}",
                    "customer_id": customer_ids[n % len(customer_ids)],
                    "order_date": date.today(),
                    "status": "reviewed",
                    "currency": "EUR",
                    "created_by": "bench-latency",
                }
                for n in range(orders)
            ],
        )
        order_ids = list(
            conn.execute(
                select(sales_orders.c.id).where(
                    sales_orders.c.organization_id == org_id,
                    sales_orders.c.order_number.like(f"LAT-{tag}-%"),
                )
            ).scalars()
        )
        conn.execute(
            insert(sales_order_lines),
            [
                {
                    "organization_id": org_id,
                    "sales_order_id": order_id,
                    "line_no": 1,
                    "line_type": "item",
                    "item_id": item.id,
                    "description": item.name,
                    "quantity": 1 + order_id % 3,
                    "unit_price": item.unit_price,
                    "vat_rate": item.vat_rate,
                    "vat_category": "S",
                }
                for order_id in order_ids
            ],
        )
    return enqueue_sales_orders(engine, slug, order_ids=order_ids, created_by="bench-latency")


def _phase(run: MakeRun, engine, instance, slug: str, documents, args) -> dict:
    drops = []
    for name, data in documents:
        time.sleep(random.uniform(0, 5))
        drop = _drop_one(run, engine, instance, slug, name, data, args.timeout)
        _log(f"{name}: {drop.get('status', 'timeout')} after {drop.get('seconds')} s")
        drops.append(drop)
    seconds = [d["seconds"] for d in drops if "seconds" in d]
    summary = {
        "drops": len(drops),
        "timeouts": sum(1 for d in drops if d.get("timeout")),
        "statuses": sorted({d.get("status", "timeout") for d in drops}),
        "p50_s": _percentile(seconds, 0.5),
        "p95_s": _percentile(seconds, 0.95),
        "max_s": max(seconds) if seconds else None,
    }
    for part in ("registered_s", "run_created_s", "run_started_s", "run_ended_s"):
        summary[f"{part[:-2]}_p50_s"] = _percentile([d[part] for d in drops if part in d], 0.5)
    beside: dict[str, int] = {}
    for drop in drops:
        for job, count in drop["busy_beside"].items():
            beside[job] = max(beside.get(job, 0), count)
    summary["most_runs_beside"] = beside
    # by what was dropped (the file's last suffixes: cii.xml, ubl.xml, pdf, png for a scan) and
    # what it became
    by_kind: dict[str, list[float]] = {}
    for drop in drops:
        if "seconds" in drop:
            name = drop["file"]
            kind = ".".join(name.split(".")[-2:]) if name.endswith(".xml") else name.split(".")[-1]
            by_kind.setdefault(f"{kind} {drop['status']}", []).append(drop["seconds"])
    summary["p50_s_by_kind"] = {k: _percentile(v, 0.5) for k, v in sorted(by_kind.items())}
    summary["drops_by_kind"] = {k: len(v) for k, v in sorted(by_kind.items())}
    summary["drops_detail"] = drops
    return summary


def _runs_of(instance, job_name: str, since: float) -> list:
    """The run records of `job_name` created after `since` (epoch seconds), oldest first."""
    from dagster import RunsFilter

    records = instance.get_run_records(RunsFilter(job_name=job_name), limit=200)
    mine = [r for r in records if r.create_timestamp.timestamp() >= since]
    return sorted(mine, key=lambda r: r.create_timestamp)


def _wait_for(what: str, find, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found is not None:
            return found
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


def _push_phase(make_run: MakeRun, engine, instance, slug: str, args) -> dict:
    """A batch whose QuickBooks push takes hours; when its documents start (module doc)."""
    import httpx

    per_minute = max(30, args.push_per_minute)
    base_url = make_run.env["INVOICE_PIPELINES_QBO_BASE_URL"]
    httpx.post(f"{base_url}/_sim/config", json={"per_minute": per_minute}, timeout=30)
    since = time.time()
    job_id = _queue_bulk(engine, slug, args.orders)
    _log(f"push phase: batch job {job_id} over {args.orders} orders, QBO at {per_minute}/min")

    def batch_ended():
        runs = _runs_of(instance, "batch_invoicing_job", since)
        return runs[0] if runs and runs[0].end_time else None

    batch = _wait_for("the batch invoicing run", batch_ended, args.timeout + args.orders / 100)
    ended = batch.end_time

    def documents_started():
        runs = [r for r in _runs_of(instance, "documents_job", since) if r.start_time]
        return min(runs, key=lambda r: r.start_time) if runs else None

    documents = _wait_for("the documents run", documents_started, args.timeout)
    pushes = [r for r in _runs_of(instance, "qbo_invoices_job", since) if r.start_time]
    beside = [
        r for r in pushes if r.start_time <= documents.start_time and (r.end_time or 1e18) > ended
    ]
    result = {
        "orders": args.orders,
        "qbo_per_minute": per_minute,
        "push_projected_hours": round(args.orders / per_minute / 60, 2),
        "batch_run_s": round(ended - batch.start_time, 1) if batch.start_time else None,
        # from the end of the batch invoicing run (its invoices are there) to the documents' start
        "documents_start_s": round(documents.start_time - ended, 2),
        "push_started_s": round(pushes[0].start_time - ended, 2) if pushes else None,
        "push_under_way_beside": bool(beside),
        "push_runs_started": len(pushes),
    }
    _log(f"push phase: {result}")
    return result


def _exit_on_term(signum, frame) -> None:
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace) -> dict:
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices
    from invoice_pipelines_devtools.demo.seed import DEMO_UPLOAD_ORGANIZATION

    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    root = Path(tempfile.mkdtemp(prefix="ip-bench-latency-"))
    result: dict = {"scenario": "latency", "n": args.n, "phases": {}}
    # a TERM (timeout, kill) ends the bench through its `finally`: `make run` runs in a session of
    # its own, so without this it outlived the bench, daemon, code server, runs and all
    signal.signal(signal.SIGTERM, _exit_on_term)
    make_run = MakeRun(root)
    try:
        result["ui_up_s"] = round(make_run.wait_for_ui(), 1)
        _log(f"make run is up in {result['ui_up_s']} s; waiting for the demo's first work")
        engine = make_engine(make_run.db_url)
        instance = make_run.instance()
        result["demo_settled_s"] = round(_quiet(instance, engine), 1)
        kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
        documents = list(
            synthetic_xml_invoices(args.n * len(phases), seed=int(time.time()), kinds=kinds)
        )
        slug = DEMO_UPLOAD_ORGANIZATION
        for index, phase in enumerate(phases):
            mine = [
                (f"latency-{phase}-{i:03d}-{name}", data)
                for i, (name, data) in enumerate(documents[index * args.n : (index + 1) * args.n])
            ]
            if phase == "push":
                result["phases"][phase] = _push_phase(make_run, engine, instance, slug, args)
                result["documents_start_s"] = result["phases"][phase]["documents_start_s"]
                continue
            if phase == "bulk":
                job_id = _queue_bulk(engine, slug, args.orders)
                _log(f"queued batch job {job_id} over {args.orders} orders; waiting for its run")
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and not _busy_runs(instance).get(
                    "batch_invoicing_job"
                ):
                    time.sleep(0.5)
                result["bulk_orders"] = args.orders
            elif phase != "idle":
                raise SystemExit(f"unknown phase {phase!r}: idle or bulk")
            _log(f"phase {phase}: {len(mine)} drops")
            result["phases"][phase] = _phase(make_run, engine, instance, slug, mine, args)
            if phase == "idle":
                _quiet(instance, engine)
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        make_run.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(root)], check=False)
        else:
            result["scratch"] = str(root)
    result["p50_s"] = {k: v["p50_s"] for k, v in result["phases"].items() if "p50_s" in v}
    result["p95_s"] = {k: v["p95_s"] for k, v in result["phases"].items() if "p95_s" in v}
    return result
