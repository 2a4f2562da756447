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
- push (issue 56; no drops): documents beside a QuickBooks push of hours. The simulator's limit is
  set to `--push-per-minute` (default 30 requests a minute per company, the least that takes a
  batch request of 30; QBO's is 500). A first batch of `--push-orders` orders (3,600: 2 hours at
  30 a minute) is queued; the phase waits for its invoicing run, for a qbo_invoices_job run of
  the organization STARTED that has pushed some of them, and for the batch's documents. Then the
  big batch of `--orders` orders is queued, and from the end of its invoicing run to the start of
  its documents run is timed (`documents_start_s`). After that start the run storage is read
  again: `push_under_way_beside` is true only when a push run of the organization had started
  before the documents' start and had not ended then (still STARTED, or ended after it).
  `push_projected_hours`: what both batches still had to push at that moment, at the simulator's
  limit. The last line's top level carries the three; without a push beside, `documents_start_s`
  is null there and the bench exits non-zero after printing it.

Per drop it also splits the wait, from the application database and Dagster's run records:
drop -> registered (upload sensor), registered -> run created, created -> started (queue and the
run process's start), started -> done (the intake itself). p50/p95 per phase; JSON on the last
line.
"""

from __future__ import annotations

import argparse
import json
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
        default=30,
        help="the simulated QuickBooks' requests a minute per company in the push phase (default "
        "30, the least: a batch request of 30 invoices counts 30; QBO's is 500)",
    )
    parser.add_argument(
        "--push-orders",
        type=int,
        default=3600,
        help="orders of the push phase's first batch, whose QuickBooks push is under way when the "
        "big batch (--orders) is queued (default 3600: 2 hours at 30 a minute)",
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

    from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
    from invoice_pipelines.db.tables import (
        customers,
        items,
        organizations,
        sales_order_lines,
        sales_orders,
    )
    from invoice_pipelines.db.tenancy import (
        find_organization,
        system_transaction,
        tenant_transaction,
    )

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
    return enqueue_sales_orders(
        engine, find_organization(engine, slug), order_ids=order_ids, created_by="bench-latency"
    )


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


def _simulator_limit(make_run: MakeRun, per_minute: int) -> None:
    """The simulated QuickBooks' requests a minute per company (all companies), checked."""
    import httpx

    base_url = make_run.env["INVOICE_PIPELINES_QBO_BASE_URL"]
    answer = httpx.post(f"{base_url}/_sim/config", json={"per_minute": per_minute}, timeout=30)
    answer.raise_for_status()
    if answer.json().get("per_minute") != per_minute:
        raise RuntimeError(f"the simulator did not take per_minute={per_minute}: {answer.text}")


def _push_counts(engine, slug: str, job_ids: list[int]) -> dict[str, int]:
    """Of the invoices of the batch jobs `job_ids`: how many there are, how many QuickBooks has."""
    from sqlalchemy import and_, func, select

    from invoice_pipelines.db.tables import organizations, qbo_push_queue, sales_invoices
    from invoice_pipelines.db.tenancy import system_transaction

    q = qbo_push_queue.c
    pushed = and_(q.sales_invoice_id == sales_invoices.c.id, q.action == "create")
    with system_transaction(engine) as conn:
        org_id = conn.execute(
            select(organizations.c.id).where(organizations.c.slug == slug)
        ).scalar_one()
        mine = and_(
            sales_invoices.c.organization_id == org_id,
            sales_invoices.c.batch_job_id.in_(job_ids),
        )
        invoices = conn.execute(select(func.count()).where(mine)).scalar_one()
        done = conn.execute(
            select(func.count())
            .select_from(sales_invoices.join(qbo_push_queue, pushed))
            .where(mine, q.status == "pushed")
        ).scalar_one()
    return {"invoices": invoices, "pushed": done}


def push_under_way_at(spans: list[tuple[float, float | None]], moment: float) -> bool:
    """Whether one of the push runs `spans` ((start, end) epoch seconds; end None for a run still
    STARTED when its record was read, after `moment`) had started at `moment` and not ended."""
    return any(start <= moment and (end is None or end > moment) for start, end in spans)


def _push_spans(instance, since: float) -> list[tuple[float, float | None]]:
    """(start, end) of the qbo_invoices_job runs created after `since` that started: end None for
    a run STARTED now, the runs that ended without an end time left out."""
    spans = []
    for record in _runs_of(instance, "qbo_invoices_job", since):
        run = record.dagster_run
        if not record.start_time:
            continue
        if record.end_time:
            spans.append((record.start_time, record.end_time))
        elif run.status.value == "STARTED":
            spans.append((record.start_time, None))
    return spans


def _batch_ended(instance, since: float, timeout: float):
    """The record of the first batch invoicing run created after `since`, once it has ended."""

    def ended():
        runs = _runs_of(instance, "batch_invoicing_job", since)
        return runs[0] if runs and runs[0].end_time else None

    return _wait_for("the batch invoicing run", ended, timeout)


def _documents_done(engine, instance, slug: str, job_id: int) -> bool:
    """No invoice of the batch job waits for its document and no documents run is busy."""
    from sqlalchemy import func, select

    from invoice_pipelines.db.tables import sales_invoices
    from invoice_pipelines.db.tenancy import system_transaction
    from invoice_pipelines.documents.domain.pipeline import waiting_for_documents

    with system_transaction(engine) as conn:
        waiting = conn.execute(
            select(func.count()).where(
                *waiting_for_documents(), sales_invoices.c.batch_job_id == job_id
            )
        ).scalar_one()
    return not waiting and not _busy_runs(instance).get("documents_job")


def _first_push(make_run: MakeRun, engine, instance, slug: str, args) -> dict:
    """A first batch of `--push-orders`, its documents done and its QuickBooks push under way:
    a push run STARTED that has pushed some of its invoices (module doc)."""
    since = time.time()
    job_id = _queue_bulk(engine, slug, args.push_orders)
    _log(f"push phase: first batch job {job_id} over {args.push_orders} orders")
    patience = args.timeout + args.push_orders / 50
    _batch_ended(instance, since, patience)

    def under_way():
        spans = _push_spans(instance, since)
        counts = _push_counts(engine, slug, [job_id])
        if push_under_way_at(spans, time.time()) and counts["pushed"] > 0:
            return counts
        return None

    counts = _wait_for("the first batch's QuickBooks push", under_way, patience + 180)
    _log(f"push phase: the first push is under way ({counts}); waiting for its documents")
    _wait_for(
        "the first batch's documents",
        lambda: True if _documents_done(engine, instance, slug, job_id) else None,
        patience,
    )
    if not push_under_way_at(_push_spans(instance, since), time.time()):
        raise RuntimeError("the first batch's push ended before its documents: raise --push-orders")
    return {"since": since, "job_id": job_id, "pushed_before": counts["pushed"]}


def _push_phase(make_run: MakeRun, engine, instance, slug: str, args) -> dict:
    """Documents of a big batch beside a QuickBooks push of hours (module doc)."""
    per_minute = args.push_per_minute
    if per_minute < 30:
        raise SystemExit("--push-per-minute: at least 30 (one batch request counts 30)")
    _simulator_limit(make_run, per_minute)
    first = _first_push(make_run, engine, instance, slug, args)
    since = time.time()
    job_id = _queue_bulk(engine, slug, args.orders)
    _log(f"push phase: batch job {job_id} over {args.orders} orders, QBO at {per_minute}/min")
    batch = _batch_ended(instance, since, args.timeout + args.orders / 50)

    def documents_started():
        runs = [r for r in _runs_of(instance, "documents_job", since) if r.start_time]
        return min(runs, key=lambda r: r.start_time) if runs else None

    documents = _wait_for("the batch's documents run", documents_started, args.timeout)
    counts = _push_counts(engine, slug, [first["job_id"], job_id])
    # read after the documents' start: a push run still STARTED now overlaps it
    spans = _push_spans(instance, first["since"])
    moment = documents.start_time
    beside = push_under_way_at(spans, moment)
    overlap = [
        {
            "started_before_s": round(moment - start, 1),
            "ended_after_s": None if end is None else round(end - moment, 1),
        }
        for start, end in spans
        if push_under_way_at([(start, end)], moment)
    ]
    left = counts["invoices"] - counts["pushed"]
    result = {
        "orders": args.orders,
        "push_orders": args.push_orders,
        "qbo_per_minute": per_minute,
        "first_push_projected_hours": round(args.push_orders / per_minute / 60, 2),
        # what the push had left when the documents started, at the simulator's limit
        "push_left_invoices": left,
        "push_projected_hours": round(left / per_minute / 60, 2),
        "push_projected_hours_at_qbo_500": round(left / 500 / 60, 2),
        "pushed_before_batch": first["pushed_before"],
        "pushed_at_documents": counts["pushed"],
        "batch_run_s": round(batch.end_time - batch.start_time, 1) if batch.start_time else None,
        # from the end of the batch invoicing run (its invoices are there) to the documents' start
        "documents_start_s": round(documents.start_time - batch.end_time, 2),
        "push_runs_started": len(spans),
        "push_under_way_beside": beside,
        # the push run beside: how long before the documents' start it started, how long after
        # it ended (null: still STARTED when read)
        "push_run_beside": overlap[0] if overlap else None,
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
                result.update(_push_verdict(result["phases"][phase]))
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
                raise SystemExit(f"unknown phase {phase!r}: idle, bulk or push")
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
    if "push" in result["phases"] and not result["push_under_way_beside"]:
        # the JSON still goes out as the last line, then the bench fails: a documents start with
        # no push beside it proves nothing about documents beside a push
        print(json.dumps(result, default=str), flush=True)
        raise SystemExit(
            "bench latency: no QuickBooks push run was under way when the documents started; "
            "documents_start_s proves nothing (see the push phase's JSON)"
        )
    return result


def _push_verdict(phase: dict) -> dict:
    """The push phase's figures on the last line's top level: documents_start_s only when a push
    run of the organization was verified under way beside the documents' start."""
    beside = bool(phase["push_under_way_beside"])
    return {
        "documents_start_s": phase["documents_start_s"] if beside else None,
        "push_under_way_beside": beside,
        "push_projected_hours": phase["push_projected_hours"],
    }
