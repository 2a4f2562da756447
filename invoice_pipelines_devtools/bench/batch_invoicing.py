"""Benchmark: invoice N seeded sales orders in one batch job; verify gapless numbers and exactly once."""

# `invoice-pipelines bench batch-invoicing --orders 100000` seeds N reviewed orders (about 3 lines
# each) in a fresh organization of the database named by INVOICE_PIPELINES_DB_URL, runs the batch
# job and prints one JSON object as the last stdout line. `--legacy-loop` (PostgreSQL) reproduces the
# design this replaces: a PL/pgSQL function invoicing one order, called in a loop with a progress
# update per order, all in one transaction.

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.billing.domain.chunk_transaction import SEQUENCE_NAME
from invoice_pipelines.billing.domain.invoicing import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_WORKERS,
    claim_batch_job,
    process_batch_job,
)
from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.cli_args import positive_int
from invoice_pipelines.core.numbering import is_gapless
from invoice_pipelines.db.engine import make_engine, make_system_engine
from invoice_pipelines.db.migrate import ensure_migrated
from invoice_pipelines.db.tables import (
    batch_jobs,
    customers,
    invoice_number_sequences,
    items,
    organizations,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
    sales_order_lines,
    sales_orders,
)
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.queue.domain.jobs import get_batch_job
from invoice_pipelines_devtools.bench.limit import (
    SHARED_BENCH,
    current_database,
    limit_fields,
    run_psql_file,
)

D = Decimal
CUSTOMERS = 1000
# a small catalogue with the VAT mix real orders have: 19 %, 7 %, 0 % reverse charge; stock items
CATALOGUE: list[tuple[str, Decimal, Decimal, str, bool]] = [
    (f"SKU-{n:03d}", D(price), D(rate), category, stock)
    for n, (price, rate, category, stock) in enumerate(
        [
            ("24.90", "19.00", "S", True),
            ("189.00", "19.00", "S", True),
            ("78.50", "19.00", "S", False),
            ("45.00", "19.00", "S", False),
            ("39.95", "7.00", "S", True),
            ("64.00", "19.00", "S", True),
            ("12.3456", "19.00", "S", True),
            ("2.99", "7.00", "S", True),
            ("120.00", "0.00", "AE", False),
            ("15.00", "0.00", "Z", False),
        ]
        * 5
    )
]
ORDER_DATE = date(2026, 10, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--orders", type=positive_int, default=100_000, help="sales orders to seed and invoice"
    )
    parser.add_argument(
        "--lines",
        type=positive_int,
        default=3,
        help="item lines per order (every 10th order also gets a discount line)",
    )
    parser.add_argument(
        "--chunk-size", type=positive_int, default=DEFAULT_CHUNK_SIZE, help="orders per transaction"
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=DEFAULT_WORKERS,
        help="PostgreSQL: chunks of the job in flight at once (1: one chunk at a time)",
    )
    parser.add_argument(
        "--legacy-loop",
        action="store_true",
        help="PostgreSQL: the old design (PL/pgSQL per-order function in a loop, progress per order)",
    )
    parser.add_argument(
        "--no-error-handling",
        action="store_true",
        help="with --legacy-loop: no per-order EXCEPTION block (one bad order aborts the batch)",
    )
    parser.add_argument(
        "--via-dagster",
        action="store_true",
        help="run the job through batch_invoicing_job in process",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the benchmark organization (default: delete it)"
    )
    parser.add_argument(
        "--limit-sql",
        type=Path,
        default=SHARED_BENCH / "setbased_limit.sql",
        help="the set-based limit script, run with psql -v n=ORDERS on the same database "
        "(default: ../shared/bench/setbased_limit.sql beside the repository)",
    )
    parser.add_argument(
        "--limit-runs",
        type=positive_int,
        default=3,
        help="times the limit script runs, once before the job and the rest after it; the limit is "
        "their median (one run moved by a quarter from run to run on a quiet machine, the job by "
        "a tenth)",
    )


def run(args: argparse.Namespace) -> dict:
    if args.orders < 1:
        raise SystemExit("--orders must be at least 1")
    owner = make_engine(owner=True)
    ensure_migrated(owner)
    engine = make_engine()
    system = make_system_engine()
    if args.legacy_loop and engine.dialect.name != "postgresql":
        raise SystemExit(
            "--legacy-loop reproduces a PL/pgSQL design: point INVOICE_PIPELINES_DB_URL at PostgreSQL"
        )
    slug = f"bench-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    org_id = seed(engine, system, slug, args.orders, args.lines)
    seed_seconds = time.perf_counter() - started
    _log(
        f"seeded {args.orders:,} orders in {seed_seconds:.2f}s ({engine.dialect.name}, organization {slug})"
    )
    settle_seconds = settle(owner)
    # the limit's first run before the job and the others after it: the limit is measured in the
    # minutes around the job, not only in the ones that follow it (a shared machine's speed moves
    # within minutes, and a run whose limit came only from later minutes missed the floor)
    limit_before = set_based_limit(owner, args.limit_sql, args.orders, runs=1)
    checkpoint(owner)  # the seeding's WAL written out before the clock, as before each limit run
    try:
        if args.legacy_loop:
            guarded = not args.no_error_handling
            job_id, seconds = _run_legacy(engine, system, slug, guarded=guarded)
            fallbacks = fallback_causes = None
            mode = "legacy-loop" if guarded else "legacy-loop without per-order error handling"
        else:
            job_id, seconds, fallbacks, fallback_causes = _run_batch(
                engine, system, slug, args.chunk_size, args.workers, via_dagster=args.via_dagster
            )
            mode = "set-based" + (" via dagster" if args.via_dagster else "")
        checks = verify(engine, org_id, args.orders)
        job = get_batch_job(engine, job_id)
    finally:
        if not args.keep:
            cleanup_started = time.perf_counter()
            drop_organization(system, org_id)
            settle(owner)
            _log(
                f"deleted the benchmark organization in {time.perf_counter() - cleanup_started:.2f}s"
            )
    limit, method, where = set_based_limit(
        owner, args.limit_sql, args.orders, runs=args.limit_runs - 1, before=limit_before
    )
    result = {
        "scenario": "batch-invoicing",
        "mode": mode,
        "db": engine.dialect.name,
        "orders": args.orders,
        "lines_per_order": args.lines,
        "chunk_size": None if args.legacy_loop else args.chunk_size,
        "workers": None
        if args.legacy_loop or engine.dialect.name != "postgresql"
        else args.workers,
        "invoices_created": checks["invoices"],
        "seconds": round(seconds, 3),
        "orders_per_s": round(args.orders / seconds, 1) if seconds > 0 else None,
        "seed_seconds": round(seed_seconds, 3),
        "settle_seconds": round(settle_seconds, 3),
        "job_status": job.status,
        # chunks redone one at a time under the sequence lock after their attempt in flight was
        # rolled back (0 when nothing else wrote numbers meanwhile), and why
        "fallbacks": fallbacks,
        "fallback_causes": fallback_causes,
        "gapless": checks["gapless"],
        "exactly_once": checks["exactly_once"],
        "totals_consistent": checks["totals_consistent"],
        "job_id": job_id,
        "organization": slug,
        "kept": bool(args.keep),
    }
    return limit_fields(result, "orders_per_s", limit, method, **where)


LIMIT_METHOD = (
    "{script} with psql -v n={orders} on the same database, the median of {runs} runs, the "
    "first right before the job and the others right after it, each after a CHECKPOINT as the "
    "job's run is: three "
    "INSERT..SELECT and one UPDATE turning the same number of reviewed orders (3 lines each) into "
    "invoices with gapless numbers, lines and VAT rows in one transaction, with the keys and "
    "foreign keys a real schema has; no queue, no chunks, no checks"
)


def set_based_limit(
    owner: Engine,
    script: Path,
    orders: int,
    *,
    runs: int = 3,
    before: tuple[float | None, str, dict] | None = None,
) -> tuple[float | None, str, dict]:
    """(orders/s of the set-based limit script, how it was measured, where it ran): run `runs`
    times on the bench's own database, each after a checkpoint (as the job's run is), its scratch
    schema dropped after each; the limit is the median of these runs and those of `before` (what
    an earlier call measured before the job)."""
    values: list[float] = []
    seconds: list[float] = []
    if before is not None:
        if before[0] is None:
            return before
        values += before[2]["limit_runs_per_s"]
        seconds += before[2]["limit_seconds_with_seeding"]
    with owner.connect() as conn:
        where: dict = {"database_name": current_database(conn), "limit_database": None}
    if before is not None:
        where["limit_database"] = before[2]["limit_database"]
    if owner.dialect.name != "postgresql":
        return None, "not measured: the set-based limit script is PostgreSQL's (psql)", where
    if not script.is_file():
        return None, f"not measured: the limit script {script} does not exist", where
    for _ in range(runs):
        checkpoint(owner)
        try:
            ran = run_psql_file(owner.url, script, {"n": orders})
        except (OSError, RuntimeError) as exc:
            return None, f"not measured: {exc}", where
        finally:
            with owner.connect() as conn:
                conn.exec_driver_sql("DROP SCHEMA IF EXISTS setlimit CASCADE")
                conn.commit()
        values.append(float(ran["value"]))
        seconds.append(round(ran["seconds"], 3))
        where["limit_database"] = ran["database"]
    if not values:
        return None, "not measured: --limit-runs 0", where
    where["limit_runs_per_s"] = values
    where["limit_runs_before_job"] = len(before[2]["limit_runs_per_s"]) if before else 0
    where["limit_seconds_with_seeding"] = seconds
    method = LIMIT_METHOD.format(script=script.name, orders=orders, runs=len(values))
    return statistics.median(values), method, where


def checkpoint(owner: Engine) -> None:
    """Write out what earlier statements left in the WAL (PostgreSQL), so that a checkpoint
    the seeding or an earlier run made due does not fall into a measured part."""
    if owner.dialect.name != "postgresql":
        return
    try:
        with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("CHECKPOINT")
    except DBAPIError as exc:  # a login without pg_checkpoint: measured without, and said so
        _log(f"no CHECKPOINT before a measured part: {str(exc).splitlines()[0]}")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed(engine: Engine, system: Engine, slug: str, n_orders: int, lines_per_order: int) -> int:
    """A fresh organization with customers, the catalogue and `n_orders` reviewed orders."""
    with system_transaction(system, write=True) as conn:
        org_id = conn.execute(
            insert(organizations)
            .values(slug=slug, name=f"Benchmark {slug}")
            .returning(organizations.c.id)
        ).scalar_one()
    with tenant_transaction(engine, org_id, write=True) as conn:
        conn.execute(
            insert(customers),
            [
                {
                    "organization_id": org_id,
                    "customer_number": f"C-{n:05d}",
                    "name": f"Customer {n}",
                }
                for n in range(CUSTOMERS)
            ],
        )
        conn.execute(
            insert(items),
            [
                {
                    "organization_id": org_id,
                    "sku": sku if n < 10 else f"{sku}-{n}",
                    "name": f"Item {n}",
                    "unit_price": price,
                    "vat_rate": rate,
                    "vat_category": category,
                    "is_stock_item": stock,
                    "inventory_quantity": D(10_000_000) if stock else D(0),
                }
                for n, (sku, price, rate, category, stock) in enumerate(CATALOGUE)
            ],
        )
        if conn.dialect.name == "postgresql":
            _seed_orders_postgres(conn, org_id, n_orders, lines_per_order)
        else:
            _seed_orders_python(conn, org_id, n_orders, lines_per_order)
    return org_id


# Orders arrive over 60 days, as in a real shop: later orders have later dates and higher ids.


def _seed_orders_postgres(conn, org_id: int, n_orders: int, lines_per_order: int) -> None:
    conn.execute(
        text(
            """
            INSERT INTO sales_orders (organization_id, order_number, customer_id, order_date, status, currency, created_by)
            SELECT :org, 'B-' || lpad(g::text, 7, '0'), c.id, :day + ((g - 1) * 60 / :n)::int, 'reviewed', 'EUR', 'bench'
            FROM generate_series(1, :n) AS g
            JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM customers WHERE organization_id = :org) AS c
              ON c.k = g % :customers
            """
        ),
        {"org": org_id, "n": n_orders, "day": ORDER_DATE, "customers": CUSTOMERS},
    )
    conn.execute(
        text(
            """
            WITH catalogue AS (
                SELECT id, unit_price, vat_rate, vat_category, name, row_number() OVER (ORDER BY id) - 1 AS k
                FROM items WHERE organization_id = :org
            ), orders AS (
                SELECT id, row_number() OVER (ORDER BY id) AS g FROM sales_orders WHERE organization_id = :org
            )
            INSERT INTO sales_order_lines (organization_id, sales_order_id, line_no, line_type, item_id,
                                           description, quantity, unit_price, vat_rate, vat_category)
            SELECT :org, o.id, n, 'item', i.id, i.name, 1 + (o.g * 7 + n) % 5, i.unit_price, i.vat_rate, i.vat_category
            FROM orders o
            CROSS JOIN generate_series(1, :lines) AS n
            JOIN catalogue i ON i.k = (o.g * 13 + n * 17) % :items
            UNION ALL
            SELECT :org, o.id, :lines + 1, 'discount', NULL, 'Discount', 1, -5.00, 19.00, 'S'
            FROM orders o WHERE o.g % 10 = 0
            """
        ),
        {"org": org_id, "lines": lines_per_order, "items": len(CATALOGUE)},
    )


def _seed_orders_python(conn, org_id: int, n_orders: int, lines_per_order: int) -> None:
    customer_ids = list(
        conn.execute(
            select(customers.c.id)
            .where(customers.c.organization_id == org_id)
            .order_by(customers.c.id)
        ).scalars()
    )
    catalogue = conn.execute(
        select(items.c.id, items.c.name, items.c.unit_price, items.c.vat_rate, items.c.vat_category)
        .where(items.c.organization_id == org_id)
        .order_by(items.c.id)
    ).all()
    conn.execute(
        insert(sales_orders),
        [
            {
                "organization_id": org_id,
                "order_number": f"B-{g:07d}",
                "customer_id": customer_ids[g % len(customer_ids)],
                "order_date": ORDER_DATE + timedelta(days=(g - 1) * 60 // n_orders),
                "status": "reviewed",
                "currency": "EUR",
                "created_by": "bench",
            }
            for g in range(1, n_orders + 1)
        ],
    )
    order_ids = conn.execute(
        select(sales_orders.c.id)
        .where(sales_orders.c.organization_id == org_id)
        .order_by(sales_orders.c.id)
    ).scalars()
    rows = []
    for g, order_id in enumerate(order_ids, start=1):
        for n in range(1, lines_per_order + 1):
            item = catalogue[(g * 13 + n * 17) % len(catalogue)]
            rows.append(
                {
                    "organization_id": org_id,
                    "sales_order_id": order_id,
                    "line_no": n,
                    "line_type": "item",
                    "item_id": item.id,
                    "description": item.name,
                    "quantity": D(1 + (g * 7 + n) % 5),
                    "unit_price": item.unit_price,
                    "vat_rate": item.vat_rate,
                    "vat_category": item.vat_category,
                }
            )
        if g % 10 == 0:
            rows.append(
                {
                    "organization_id": org_id,
                    "sales_order_id": order_id,
                    "line_no": lines_per_order + 1,
                    "line_type": "discount",
                    "item_id": None,
                    "description": "Discount",
                    "quantity": D(1),
                    "unit_price": D("-5.00"),
                    "vat_rate": D("19.00"),
                    "vat_category": "S",
                }
            )
    conn.execute(insert(sales_order_lines), rows)


def _run_batch(
    engine: Engine,
    system: Engine,
    slug: str,
    chunk_size: int,
    workers: int,
    *,
    via_dagster: bool,
) -> tuple[int, float, int | None, dict[str, int] | None]:
    """(job id, seconds, fallbacks, their causes); None where the run does not report them."""
    from invoice_pipelines.db.tenancy import find_organization

    if via_dagster:
        from dagster import DagsterInstance, Definitions

        from invoice_pipelines.areas import kinds
        from invoice_pipelines.billing import defs as billing
        from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
        from invoice_pipelines.resources.database.engines import Database, SystemDatabase

        job = Definitions.merge(
            billing.defs,
            Definitions(
                resources={
                    "database": Database(url=engine.url.render_as_string(hide_password=False)),
                    "system_database": SystemDatabase(
                        url=engine.url.render_as_string(hide_password=False)
                    ),
                    # the areas' kinds, as definitions.py binds them for every run
                    "batch_kinds": kinds(),
                }
            ),
        ).resolve_job_def("batch_invoicing_job")
        instance = DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
        started = time.perf_counter()
        result = job.execute_in_process(
            run_config={
                "ops": {
                    "sales_invoices": {
                        "config": {
                            "request": {"all_reviewed": {}},
                            "chunk_size": chunk_size,
                            "workers": workers,
                        }
                    }
                }
            },
            instance=instance,
            partition_key=slug,
        )
        seconds = time.perf_counter() - started
        # the materialization carries the count and, when there were any, the causes
        [event] = result.asset_materializations_for_node("sales_invoices")
        metadata = event.metadata
        fallbacks = metadata["fallbacks"].value
        causes = metadata["fallback_causes"].value if "fallback_causes" in metadata else {}
        return metadata["batch_job_id"].value, seconds, fallbacks, causes
    started = time.perf_counter()
    job_id = enqueue_sales_orders(
        engine, find_organization(system, slug), all_reviewed=True, created_by="bench"
    )
    last_report = [0.0]

    def report(job) -> None:
        now = time.perf_counter()
        if now - last_report[0] >= 1.0 or job.done:
            last_report[0] = now
            _log(f"  {job.processed_count:,}/{job.total_count:,} orders after {now - started:.2f}s")

    job = process_batch_job(
        engine,
        job_id,
        system=system,
        chunk_size=chunk_size,
        runner="bench",
        on_progress=report,
        workers=workers,
    )
    seconds = time.perf_counter() - started
    for cause, count in sorted(job.fallback_causes.items()):
        _log(f"  {count} chunk(s) under the sequence lock after a fallback: {cause}")
    return job_id, seconds, job.fallbacks, job.fallback_causes


def verify(engine: Engine, org_id: int, n_orders: int) -> dict:
    """Gapless numbers 1..N, one invoice per order, totals that add up."""
    with tenant_transaction(engine, org_id) as conn:
        numbers = list(
            conn.execute(
                select(sales_invoices.c.sequence_number).where(
                    sales_invoices.c.organization_id == org_id
                )
            ).scalars()
        )
        invoiced_orders = conn.execute(
            select(func.count(func.distinct(sales_invoices.c.sales_order_id))).where(
                sales_invoices.c.organization_id == org_id
            )
        ).scalar_one()
        orders_marked = conn.execute(
            select(func.count()).where(
                sales_orders.c.organization_id == org_id, sales_orders.c.status == "invoiced"
            )
        ).scalar_one()
        last_value = conn.execute(
            select(invoice_number_sequences.c.last_value).where(
                invoice_number_sequences.c.organization_id == org_id,
                invoice_number_sequences.c.name == SEQUENCE_NAME,
            )
        ).scalar()
        # money sums are compared in Python Decimal: SQLite would add floats
        invoice_sums = _decimal_sums(
            conn,
            select(
                sales_invoices.c.net_total, sales_invoices.c.tax_total, sales_invoices.c.gross_total
            ).where(sales_invoices.c.organization_id == org_id),
        )
        line_net = _decimal_sums(
            conn,
            select(sales_invoice_lines.c.net_amount).where(
                sales_invoice_lines.c.organization_id == org_id
            ),
        )
        tax_sums = _decimal_sums(
            conn,
            select(sales_invoice_taxes.c.basis, sales_invoice_taxes.c.amount).where(
                sales_invoice_taxes.c.organization_id == org_id
            ),
        )
    net, tax, gross = invoice_sums
    return {
        "invoices": len(numbers),
        "gapless": is_gapless(numbers) and last_value == len(numbers),
        "exactly_once": len(numbers) == n_orders == invoiced_orders == orders_marked,
        "totals_consistent": net + tax == gross and line_net[0] == net and tax_sums == [net, tax],
    }


def _decimal_sums(conn, query) -> list[Decimal]:
    sums: list[Decimal] | None = None
    for row in conn.execute(query):
        if sums is None:
            sums = [D(0)] * len(row)
        sums = [s + v for s, v in zip(sums, row, strict=True)]
    return sums or [D(0)] * len(query.selected_columns)


# The tables a run writes in bulk. A production database has had autovacuum and autoanalyze over
# its orders long before they are invoiced; right after a bulk seed (or the previous run's
# cleanup) they would instead run during the measured job, on the same two cores.
SETTLED_TABLES = (
    "sales_orders",
    "sales_order_lines",
    "sales_invoices",
    "sales_invoice_lines",
    "sales_invoice_taxes",
    "batch_jobs",
    "batch_job_items",
    "items",
    "customers",
)


def settle(owner: Engine) -> float:
    """VACUUM ANALYZE the bulk-written tables (outside the measured time); seconds it took."""
    started = time.perf_counter()
    if owner.dialect.name == "postgresql":
        with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM ANALYZE {', '.join(SETTLED_TABLES)}")
    else:
        with owner.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    return time.perf_counter() - started


def drop_organization(system: Engine, org_id: int) -> None:
    """Remove the benchmark organization and everything in it (ON DELETE CASCADE)."""
    with system_transaction(system, write=True) as conn:
        # jobs and invoices first, so the organization's cascade has less to check row by row
        conn.execute(delete(sales_invoices).where(sales_invoices.c.organization_id == org_id))
        conn.execute(delete(batch_jobs).where(batch_jobs.c.organization_id == org_id))
        conn.execute(delete(organizations).where(organizations.c.id == org_id))


# The design this replaces, reproduced to measure it here: one PL/pgSQL call per order (number
# from the sequence row, invoice, lines one by one, breakdown, totals), with per-order error
# handling (a subtransaction) and a progress update of the job row per order, all inside the one
# transaction of the calling loop.
LEGACY_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION pg_temp.legacy_invoice_order(p_order_id bigint, p_job_id bigint, p_issue date, p_due date)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_order record;
    v_line record;
    v_seq integer;
    v_invoice_id bigint;
    v_net numeric(18, 2);
    v_tax numeric(18, 2);
BEGIN
    SELECT * INTO v_order FROM sales_orders WHERE id = p_order_id FOR UPDATE;
    IF v_order.status NOT IN ('reviewed', 'pending') THEN
        RAISE EXCEPTION USING MESSAGE = 'order ' || p_order_id || ' has status ' || v_order.status;
    END IF;
    IF EXISTS (SELECT 1 FROM sales_invoices WHERE sales_order_id = p_order_id) THEN
        RETURN NULL;
    END IF;
    UPDATE invoice_number_sequences SET last_value = last_value + 1, updated_at = clock_timestamp()
    WHERE organization_id = v_order.organization_id AND name = 'sales_invoices'
    RETURNING last_value INTO v_seq;
    INSERT INTO sales_invoices (organization_id, invoice_number, sequence_number, sales_order_id, customer_id,
                                batch_job_id, issue_date, due_date, currency, net_total, tax_total,
                                gross_total, amount_due, created_by)
    VALUES (v_order.organization_id, 'RE-' || extract(year FROM p_issue) || '-' || lpad(v_seq::text, 6, '0'),
            v_seq, p_order_id, v_order.customer_id, p_job_id, p_issue, p_due, v_order.currency, 0, 0, 0, 0, 'legacy')
    RETURNING id INTO v_invoice_id;
    FOR v_line IN SELECT * FROM sales_order_lines WHERE sales_order_id = p_order_id ORDER BY line_no LOOP
        INSERT INTO sales_invoice_lines (organization_id, sales_invoice_id, line_no, line_type, item_id, description,
                                         quantity, unit_price, net_amount, vat_rate, vat_category)
        VALUES (v_order.organization_id, v_invoice_id, v_line.line_no, v_line.line_type, v_line.item_id,
                v_line.description, v_line.quantity, v_line.unit_price,
                round(v_line.quantity * v_line.unit_price, 2), v_line.vat_rate, v_line.vat_category);
        IF v_line.item_id IS NOT NULL AND v_line.line_type = 'item' THEN
            UPDATE items SET inventory_quantity = inventory_quantity - v_line.quantity
            WHERE id = v_line.item_id AND is_stock_item;
        END IF;
    END LOOP;
    INSERT INTO sales_invoice_taxes (organization_id, sales_invoice_id, vat_category, vat_rate, basis, amount)
    SELECT v_order.organization_id, v_invoice_id, vat_category, vat_rate, sum(net_amount),
           round(sum(net_amount) * vat_rate / 100, 2)
    FROM sales_invoice_lines WHERE sales_invoice_id = v_invoice_id GROUP BY vat_category, vat_rate;
    SELECT sum(basis), sum(amount) INTO v_net, v_tax FROM sales_invoice_taxes WHERE sales_invoice_id = v_invoice_id;
    UPDATE sales_invoices SET net_total = v_net, tax_total = v_tax, gross_total = v_net + v_tax,
                              amount_due = v_net + v_tax
    WHERE id = v_invoice_id;
    UPDATE sales_orders SET status = 'invoiced', invoiced_at = clock_timestamp() WHERE id = p_order_id;
    RETURN v_invoice_id;
END
$$;

CREATE OR REPLACE FUNCTION pg_temp.legacy_batch_invoice(p_job_id bigint) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_job record;
    v_item record;
    v_invoice_id bigint;
    v_done integer := 0;
BEGIN
    SELECT * INTO v_job FROM batch_jobs WHERE id = p_job_id;
    FOR v_item IN SELECT id, sales_order_id FROM batch_job_items WHERE batch_job_id = p_job_id ORDER BY position LOOP
        BEGIN
            v_invoice_id := pg_temp.legacy_invoice_order(v_item.sales_order_id, p_job_id, v_job.invoice_date,
                                                         v_job.invoice_date + v_job.due_days);
            UPDATE batch_job_items SET status = 'succeeded', sales_invoice_id = v_invoice_id WHERE id = v_item.id;
            UPDATE batch_jobs SET processed_count = processed_count + 1, successful_count = successful_count + 1,
                                  heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
            WHERE id = p_job_id;
        EXCEPTION WHEN OTHERS THEN
            UPDATE batch_job_items SET status = 'failed', error_message = SQLERRM WHERE id = v_item.id;
            UPDATE batch_jobs SET processed_count = processed_count + 1, failed_count = failed_count + 1,
                                  heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
            WHERE id = p_job_id;
        END;
        v_done := v_done + 1;
    END LOOP;
    UPDATE batch_jobs SET status = 'completed', completed_at = clock_timestamp() WHERE id = p_job_id;
    RETURN v_done;
END
$$;

-- The same loop without per-order error handling: one failing order aborts the whole batch.
CREATE OR REPLACE FUNCTION pg_temp.legacy_batch_invoice_unguarded(p_job_id bigint) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_job record;
    v_item record;
    v_invoice_id bigint;
    v_done integer := 0;
BEGIN
    SELECT * INTO v_job FROM batch_jobs WHERE id = p_job_id;
    FOR v_item IN SELECT id, sales_order_id FROM batch_job_items WHERE batch_job_id = p_job_id ORDER BY position LOOP
        v_invoice_id := pg_temp.legacy_invoice_order(v_item.sales_order_id, p_job_id, v_job.invoice_date,
                                                     v_job.invoice_date + v_job.due_days);
        UPDATE batch_job_items SET status = 'succeeded', sales_invoice_id = v_invoice_id WHERE id = v_item.id;
        UPDATE batch_jobs SET processed_count = processed_count + 1, successful_count = successful_count + 1,
                              heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE id = p_job_id;
        v_done := v_done + 1;
    END LOOP;
    UPDATE batch_jobs SET status = 'completed', completed_at = clock_timestamp() WHERE id = p_job_id;
    RETURN v_done;
END
$$;
"""


def _run_legacy(
    engine: Engine, system: Engine, slug: str, *, guarded: bool = True
) -> tuple[int, float]:
    from invoice_pipelines.db.tenancy import find_organization

    org = find_organization(system, slug)
    job_id = enqueue_sales_orders(
        engine, org, all_reviewed=True, created_by="bench-legacy", runner="legacy"
    )
    job = get_batch_job(engine, job_id)
    claim_batch_job(engine, org, job, "legacy")  # the same items; the loop below does the invoicing
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        conn.execute(
            text(
                "INSERT INTO invoice_number_sequences (organization_id, name, last_value) "
                "VALUES (:org, :name, 0) ON CONFLICT DO NOTHING"
            ),
            {"org": job.organization_id, "name": SEQUENCE_NAME},
        )
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        # pg_temp functions live in this session only: create and call on the same connection
        conn.exec_driver_sql(LEGACY_FUNCTIONS)
        started = time.perf_counter()
        function = "legacy_batch_invoice" if guarded else "legacy_batch_invoice_unguarded"
        conn.execute(text(f"SELECT pg_temp.{function}(:job)"), {"job": job_id})
    return job_id, time.perf_counter() - started
