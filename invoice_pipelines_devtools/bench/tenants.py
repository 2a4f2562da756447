"""Benchmark `tenants`: every sensor and schedule tick of the code location with N organizations.

Creates N organizations with a little data each (a customer; every `--busy-every`-th one also an
upload waiting in its drop zone, a queued batch-invoicing job and a sales invoice without its
documents), then evaluates, as the daemon would, each sensor and each schedule of the project's own
definitions with their real resources, against a Dagster instance whose storage is on the same
database server: `organizations_sensor` first (its partition requests are then applied, timed
apart), every other sensor once (the upload sensor twice: the tick that registers the waiting files
and a quiet one), and every schedule once. Prints per tick its seconds and run requests.

Use a scratch database: the sensors look at every organization in it. The bench removes its
organizations afterwards unless `--keep`; the Dagster instance's scratch database always goes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from invoice_pipelines.cli_args import positive_int
from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import ensure_migrated
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.settings import env
from invoice_pipelines_devtools.bench.limit import limit_fields, per_second


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--orgs", type=positive_int, default=1000, help="organizations to create")
    parser.add_argument(
        "--busy-every",
        type=positive_int,
        default=100,
        help="every n-th organization has an upload, a queued batch job and an invoice waiting",
    )
    parser.add_argument("--keep", action="store_true", help="keep the organizations afterwards")


def _seed(engine, prefix: str, n: int, busy_every: int) -> None:
    """Set-based: one statement per table, whatever N."""
    postgres = engine.dialect.name == "postgresql"
    series = (
        "SELECT g AS i FROM generate_series(1, :n) AS g"
        if postgres
        else "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) "
        "SELECT i FROM s"
    )
    pad = "lpad(i::text, 6, '0')" if postgres else "substr('000000' || i, -6, 6)"
    with system_transaction(engine) as conn:
        conn.execute(
            text(
                f"INSERT INTO organizations (slug, name) SELECT :prefix || {pad}, "
                f"'Tenant ' || i FROM ({series}) AS s"
            ),
            {"prefix": prefix, "n": n},
        )
        conn.execute(
            text(
                "INSERT INTO customers (organization_id, customer_number, name, email) "
                "SELECT id, 'K-1', 'Kunde ' || slug, 'ap@' || slug || '.example' "
                "FROM organizations WHERE slug LIKE :like"
            ),
            {"like": f"{prefix}%"},
        )
        tail = "right(o.slug, 6)" if postgres else "substr(o.slug, -6, 6)"
        number = f"CAST({tail} AS INTEGER)"
        conn.execute(
            text(
                "INSERT INTO batch_jobs (organization_id, kind, request, status, created_by) "
                "SELECT o.id, 'sales_orders', '{\"order_ids\": []}', 'pending', 'bench' "
                f"FROM organizations o WHERE o.slug LIKE :like AND {number} % {busy_every} = 0"
            ),
            {"like": f"{prefix}%"},
        )
        conn.execute(
            text(
                "INSERT INTO sales_invoices (organization_id, invoice_number, sequence_number, "
                "customer_id, issue_date, due_date, currency, net_total, tax_total, gross_total, "
                "amount_due) "
                "SELECT o.id, 'RE-1', 1, c.id, :day, :day, 'EUR', 100, 19, 119, 119 "
                "FROM organizations o JOIN customers c ON c.organization_id = o.id "
                f"WHERE o.slug LIKE :like AND {number} % {busy_every} = 0"
            ),
            {"like": f"{prefix}%", "day": datetime.now(UTC).date()},
        )


def _drop_zones(root: Path, prefix: str, n: int, busy_every: int) -> int:
    """A drop-zone folder per organization, a settled file in every busy one."""
    files = 0
    past = time.time() - 3600
    for i in range(1, n + 1):
        folder = root / f"{prefix}{i:06d}"
        folder.mkdir(parents=True)
        if i % busy_every == 0:
            path = folder / "rechnung.xml"
            path.write_bytes(f"<Invoice><ID>{prefix}{i}</ID></Invoice>".encode())
            os.utime(path, (past, past))
            files += 1
    return files


def _instance(stack: ExitStack, url: str, home: Path):
    """A Dagster instance of its own: on PostgreSQL a scratch database beside the application's
    (dropped afterwards), so ticks read dagster-postgres storage as a deployment does."""
    from dagster import instance_for_test
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    if not url.startswith("postgresql"):
        return stack.enter_context(instance_for_test(temp_dir=str(home)))
    app_url = make_url(url).set(drivername="postgresql+psycopg2")
    name = f"{app_url.database}_dagster_{uuid.uuid4().hex[:8]}"
    admin = create_engine(app_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    stack.callback(drop)
    dagster_url = app_url.set(database=name).render_as_string(hide_password=False)
    dagster_url = dagster_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    overrides = {"storage": {"postgres": {"postgres_url": dagster_url}}}
    return stack.enter_context(instance_for_test(overrides=overrides))


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - start, 3)


def run(args: argparse.Namespace) -> dict:
    from dagster import build_schedule_context, build_sensor_context, partition_loading_context

    url = env("INVOICE_PIPELINES_DB_URL")
    ensure_migrated(make_engine(owner=True))
    engine = make_engine()
    prefix = f"t{uuid.uuid4().hex[:6]}-"
    work = Path(tempfile.mkdtemp(prefix="bench-tenants-"))
    os.environ["INVOICE_PIPELINES_UPLOAD_DIR"] = str(work / "uploads")
    os.environ["INVOICE_PIPELINES_UPLOAD_SETTLE_SECONDS"] = "1"
    sensor_seconds: dict[str, float | list[float]] = {}
    schedule_seconds: dict[str, float] = {}
    runs: dict[str, int] = {}
    out: dict = {"scenario": "tenants", "db": engine.dialect.name, "organizations": args.orgs}
    with ExitStack() as stack:
        _, out["seed_seconds"] = _timed(lambda: _seed(engine, prefix, args.orgs, args.busy_every))
        out["uploads_waiting"], _ = _timed(
            lambda: _drop_zones(work / "uploads", prefix, args.orgs, args.busy_every)
        )
        instance = _instance(stack, url, work / "dagster")
        from invoice_pipelines.definitions import build_definitions

        defs = build_definitions()
        resources = dict(defs.resources or {})
        repository = defs.get_repository_def()

        def needed(definition) -> dict:
            # only what the tick uses: the code location's parser and renderer resources start
            # worker processes, which a sensor never needs
            return {k: resources[k] for k in definition.required_resource_keys if k in resources}

        def tick(name: str, cursor: str | None = None):
            sensor_def = defs.get_sensor_def(name)
            with (
                partition_loading_context(dynamic_partitions_store=instance),
                build_sensor_context(
                    instance=instance,
                    cursor=cursor,
                    resources=needed(sensor_def),
                    sensor_name=name,
                    repository_def=repository,
                ) as context,
            ):
                data, seconds = _timed(lambda: sensor_def.evaluate_tick(context))
            return data, seconds

        data, first = tick("organizations_sensor")
        added = sum(len(r.partition_keys) for r in data.dynamic_partitions_requests or [])
        start = time.perf_counter()
        for request in data.dynamic_partitions_requests or []:
            if hasattr(request, "partition_keys") and type(request).__name__.startswith("Add"):
                instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        out["partitions_added"] = added
        out["partitions_add_seconds"] = round(time.perf_counter() - start, 3)
        _, second = tick("organizations_sensor", data.cursor)
        sensor_seconds["organizations_sensor"] = [first, second]
        runs["organizations_sensor"] = 0

        data, first = tick("upload_sensor")
        _, second = tick("upload_sensor", data.cursor)
        sensor_seconds["upload_sensor"] = [first, second]
        runs["upload_sensor"] = len(data.run_requests or [])

        for sensor_def in defs.sensors or []:
            if sensor_def.name in sensor_seconds:
                continue
            data, seconds = tick(sensor_def.name)
            sensor_seconds[sensor_def.name] = seconds
            runs[sensor_def.name] = len(data.run_requests or [])

        for schedule_def in defs.schedules or []:
            with (
                partition_loading_context(dynamic_partitions_store=instance),
                build_schedule_context(
                    instance=instance,
                    resources=needed(schedule_def),
                    repository_def=repository,
                    scheduled_execution_time=datetime.now(UTC),
                ) as context,
            ):
                data, seconds = _timed(lambda: schedule_def.evaluate_tick(context))  # noqa: B023
            schedule_seconds[schedule_def.name] = seconds
            runs[schedule_def.name] = len(data.run_requests or [])

        floor_seconds, out["database_name"] = _floor(engine, work / "uploads")
        out["limit_seconds"] = round(floor_seconds, 3)
        out["limit_database"] = out["database_name"]
        if not args.keep:
            with system_transaction(engine) as conn:
                # everything of an organization goes with it (ON DELETE CASCADE)
                conn.execute(
                    text("DELETE FROM organizations WHERE slug LIKE :like"), {"like": f"{prefix}%"}
                )
    shutil.rmtree(work, ignore_errors=True)
    engine.dispose()
    ticks = [v for v in sensor_seconds.values() for v in (v if isinstance(v, list) else [v])]
    out.update(
        {
            "sensor_tick_seconds": sensor_seconds,
            "schedule_tick_seconds": schedule_seconds,
            "runs_requested": runs,
            "runs_requested_total": sum(runs.values()),
            "slowest_tick_seconds": max([*ticks, *schedule_seconds.values()], default=0),
            "kept": bool(args.keep),
        }
    )
    # the headline: organizations per second of one round of every tick timed above
    out["tick_seconds_total"] = round(sum(ticks) + sum(schedule_seconds.values()), 3)
    out["organizations_per_s"] = per_second(args.orgs, out["tick_seconds_total"])
    return limit_fields(
        out,
        "organizations_per_s",
        args.orgs / floor_seconds if floor_seconds else None,
        LIMIT_METHOD,
    )


LIMIT_METHOD = (
    "one pass over what the ticks must at least read, on the same database and drop zones right "
    "after them: one query listing every organization, one counting the queued batch jobs and the "
    "invoices without documents per organization, and one directory listing per drop zone; "
    "against the sum of every sensor and schedule tick timed (organizations_per_s)"
)


def _floor(engine, uploads: Path) -> tuple[float, str]:
    """Seconds of the floor's reads, and the database they ran on."""
    from invoice_pipelines_devtools.bench.limit import current_database

    started = time.perf_counter()
    with system_transaction(engine) as conn:
        database = current_database(conn)
        slugs = conn.execute(text("SELECT id, slug FROM organizations")).all()
        conn.execute(
            text(
                "SELECT organization_id, count(*) FROM batch_jobs WHERE status = 'pending' "
                "GROUP BY organization_id"
            )
        ).all()
        conn.execute(
            text(
                "SELECT i.organization_id, count(*) FROM sales_invoices i WHERE NOT EXISTS "
                "(SELECT 1 FROM sales_invoice_documents d WHERE d.sales_invoice_id = i.id) "
                "GROUP BY i.organization_id"
            )
        ).all()
    for _, slug in slugs:
        try:
            with os.scandir(uploads / slug) as entries:
                for entry in entries:
                    entry.stat()
        except FileNotFoundError:
            pass
    return time.perf_counter() - started, database
