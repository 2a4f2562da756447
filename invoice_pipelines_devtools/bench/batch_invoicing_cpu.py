"""Batch invoicing's work per statement against setbased_limit.sql's, as backend CPU time.

    python -m invoice_pipelines_devtools.bench.batch_invoicing_cpu --orders 20000 --trials 6
    python -m invoice_pipelines_devtools.bench.batch_invoicing_cpu --variant a.sql --variant b.sql

A bench's wall time on a shared machine says as much about the other processes as about the code.
This counts what each statement costs the PostgreSQL backend that runs it: its CPU time from
`/proc/<pid>/schedstat`, read before and after the statement (the server must be on this
machine). It seeds an organization of the database INVOICE_PIPELINES_DB_URL names (as the bench
does), claims a job over its orders, and per trial runs the claim's item insert and one chunk's
statements (`billing/domain/chunk_postgres.py`, a 5,000-order window) in a transaction that is rolled
back, and after each trial `setbased_limit.sql`'s statements the same way (n = --orders). Printed in milliseconds per
`--chunk-size` orders, medians over the trials. `--variant FILE.sql` (repeatable) is applied by
the owner before each of its trials, the variants alternating: an A/B of schema changes on a
scratch database. Nothing of the organization stays; the variants' changes do.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import text

from invoice_pipelines.billing.domain import chunk_postgres, invoicing
from invoice_pipelines.billing.domain.chunk_transaction import chunk_context
from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.cli_args import positive_int
from invoice_pipelines.db.engine import make_engine, make_system_engine
from invoice_pipelines.db.migrate import ensure_migrated
from invoice_pipelines.db.tenancy import scope_to_organization
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain.item_rows import record_items_statement
from invoice_pipelines.queue.domain.jobs import get_batch_job
from invoice_pipelines.queue.domain.transitions import job_row
from invoice_pipelines_devtools.bench import batch_invoicing
from invoice_pipelines_devtools.bench.limit import SHARED_BENCH, libpq

CHUNK = (
    "TAKE_ORDERS",
    "TAKE_LINES",
    "CLASSIFY",
    "ALLOCATE_IDS",
    "TAXES",
    "HOLD_ITEMS",
    "INVOICES",
    "LINES",
    "BREAKDOWNS",
    "MARK_ORDERS",
    "RECORD_ITEMS",
    "TAKE_STOCK",
)


def backend_cpu_ms(conn) -> float:
    """CPU time the connection's backend has used so far, in milliseconds."""
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e6


def _timed(conn, run) -> float:
    before = backend_cpu_ms(conn)
    run()
    return backend_cpu_ms(conn) - before


def chunk_trial(engine, org, job, pending_job_id: int, orders: int, size: int, after: int):
    """CPU per statement of the claim's insert (scaled to `size` orders) and of one chunk of
    `org` (the Organization) its `job`."""
    org_id = org.id
    out: dict[str, float] = {}
    with engine.connect() as conn:
        with conn.begin() as transaction:
            scope_to_organization(conn, org_id)
            conn.exec_driver_sql("SET LOCAL jit = off")
            spent = _timed(
                conn,
                lambda: invoicing._expand_all_reviewed(conn, pending_job_id, org_id, None),
            )
            out["CLAIM (items)"] = spent * size / orders
            transaction.rollback()
        with conn.begin() as transaction:
            scope_to_organization(conn, org_id)
            ctx = chunk_context(conn, org, job, job_row(conn, job.id), size, after, utcnow(), 0)
            params = chunk_postgres._params(ctx)
            conn.exec_driver_sql("SET LOCAL jit = off")
            conn.exec_driver_sql(chunk_postgres.CREATE_TEMP_TABLES)
            for name in CHUNK:
                if name == "CLASSIFY":
                    conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
                statement = (
                    record_items_statement(chunk_postgres.ITEM_OUTCOMES)
                    if name
                    == "RECORD_ITEMS"  # queue/domain/item_rows.py writes the items since issue 39
                    else getattr(chunk_postgres, name)
                )
                bound = dict(params)
                if name == "ALLOCATE_IDS":
                    bound["n"] = conn.execute(text(chunk_postgres.COUNTS)).one().succeeded
                out[name] = _timed(conn, lambda s=statement, b=bound: conn.execute(text(s), b))
            transaction.rollback()
    return out


def limit_statements(owner, script: Path, orders: int, size: int) -> dict[str, float]:
    """CPU per statement of the limit script's transaction, scaled to `size` orders."""
    sql = "\n".join(
        line
        for line in script.read_text().splitlines()
        if not line.startswith("\\") and not line.lstrip().startswith("--")
    ).replace(":n", str(orders))
    statements = [s.strip() for s in sql.split(";") if s.strip()]
    out: dict[str, float] = {}
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("DISCARD TEMP")  # a pooled connection keeps the last run's t0
        timed = False
        for statement in statements:
            if statement.lower() == "begin":
                timed = True
            spent = _timed(conn, lambda s=statement: conn.exec_driver_sql(s.replace("%", "%%")))
            if timed and statement.lower() not in ("begin", "commit"):
                out[re.sub(r"\s+", " ", statement)[:48]] = spent * size / orders
            if statement.lower() == "commit":
                timed = False
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS setlimit CASCADE")
    return out


def apply_variant(owner, path: Path) -> None:
    target, env = libpq(owner.url)
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", str(path)],
        env=env,
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    from invoice_pipelines.db.tenancy import find_organization

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=positive_int, default=20_000)
    parser.add_argument("--chunk-size", type=positive_int, default=5_000)
    parser.add_argument("--trials", type=positive_int, default=6)
    parser.add_argument("--variant", type=Path, action="append", default=[])
    parser.add_argument("--limit-sql", type=Path, default=SHARED_BENCH / "setbased_limit.sql")
    args = parser.parse_args(argv)
    owner = make_engine(owner=True)
    ensure_migrated(owner)
    if owner.dialect.name != "postgresql":
        raise SystemExit("PostgreSQL only: point INVOICE_PIPELINES_DB_URL at it")
    engine = make_engine()
    system = make_system_engine()
    slug = f"cpu-{uuid.uuid4().hex[:10]}"
    org_id = batch_invoicing.seed(engine, system, slug, args.orders, 3)
    org = find_organization(engine, slug)
    try:
        job = get_batch_job(
            engine, enqueue_sales_orders(engine, org, all_reviewed=True, created_by="cpu")
        )
        invoicing.claim_batch_job(engine, org, job, "cpu")
        job = get_batch_job(engine, job.id)
        pending = enqueue_sales_orders(engine, org, all_reviewed=True, created_by="cpu")
        batch_invoicing.settle(owner)
        variants = args.variant or [None]
        use_limit = args.limit_sql.is_file()
        limit_runs: dict[str, list[float]] = {}
        runs: dict[str, dict[str, list[float]]] = {str(v): {} for v in variants}
        windows = max(1, args.orders // args.chunk_size)
        for trial in range(args.trials):
            for variant in variants:
                if variant is not None:
                    apply_variant(owner, variant)
                after = (trial % windows) * args.chunk_size
                spent = chunk_trial(engine, org, job, pending, args.orders, args.chunk_size, after)
                for name, ms in spent.items():
                    runs[str(variant)].setdefault(name, []).append(ms)
            if use_limit:
                # between the trials, so both meet the same machine: a shared machine's CPU time
                # per statement drifts by a third within minutes
                for name, ms in limit_statements(
                    owner, args.limit_sql, args.orders, args.chunk_size
                ).items():
                    limit_runs.setdefault(name, []).append(ms)
    finally:
        batch_invoicing.drop_organization(system, org_id)
    names = [str(v.name) if v else "the job" for v in variants]
    print(f"ms of backend CPU per {args.chunk_size:,} orders, medians of {args.trials} trials")
    print(f"{'statement':<50}" + "".join(f"{n:>16}" for n in names))
    totals = [0.0] * len(variants)
    for name in runs[str(variants[0])]:
        medians = [statistics.median(runs[str(v)][name]) for v in variants]
        totals = [t + m for t, m in zip(totals, medians, strict=True)]
        print(f"{name:<50}" + "".join(f"{m:16.1f}" for m in medians))
    print(f"{'total':<50}" + "".join(f"{t:16.1f}" for t in totals))
    if limit_runs:
        medians = {name: statistics.median(values) for name, values in limit_runs.items()}
        print(f"\n{args.limit_sql.name}, the same way, run after each trial (medians)")
        for name, ms in medians.items():
            print(f"{name:<50}{ms:16.1f}")
        print(f"{'total':<50}{sum(medians.values()):16.1f}")
        for variant, total in zip(names, totals, strict=True):
            print(f"{variant} / the script: {total / sum(medians.values()):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
