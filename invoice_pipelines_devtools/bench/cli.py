"""Benchmark: how long a person waits for a command (issue 47), against the same-run floor.

Times `invoice-pipelines --help`, `incoming list`, `incoming show` and `batch-status` as a user
runs them (the console script next to this interpreter, each a process of its own, wall time from
start to exit) on the database INVOICE_PIPELINES_DB_URL names, `--runs` times each, interleaved
round by round with the floor: a Python process that imports SQLAlchemy and runs one query on the
same database (what any command that reads the database cannot avoid). Prints per command the
median and p95 seconds and its ratio to the floor's median; the load average before and after
says whether the machine was idle. Seeds one organization with one incoming invoice in review
and one batch job (left in the database: use a scratch one).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from invoice_pipelines.cli_args import positive_int

# the floor's one query names the database it ran on (SQLite has no current_database(): its file)
FLOOR = (
    "import sys\n"
    "import sqlalchemy\n"
    "engine = sqlalchemy.create_engine(sys.argv[1])\n"
    "pg = engine.dialect.name == 'postgresql'\n"
    "name = 'current_database()' if pg else repr(str(engine.url.database))\n"
    "with engine.connect() as conn:\n"
    "    query = f'SELECT {name}, count(*) FROM organizations'\n"
    "    print(conn.execute(sqlalchemy.text(query)).one()[0])\n"
)
CLI = "import sys; from invoice_pipelines.cli import main; sys.exit(main(sys.argv[1:]))"
LIMIT_METHOD = (
    "a Python process that imports SQLAlchemy, connects to the same database and runs one query "
    "(SELECT count(*) FROM organizations, with the database's name), started and timed like the commands, interleaved with "
    "them round by round"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=positive_int, default=10, help="runs of each command")


def _console_script() -> list[str]:
    """The `invoice-pipelines` a user runs: the console script beside this interpreter, else the
    same entry point through `python -c`."""
    script = Path(sys.executable).parent / "invoice-pipelines"
    return [str(script)] if script.is_file() else [sys.executable, "-c", CLI]


def _seed(engine) -> tuple[str, int, int]:
    """One organization with an incoming invoice in review and a batch job no sensor takes."""
    from datetime import date
    from decimal import Decimal

    from sqlalchemy import insert

    from invoice_pipelines.billing.invoicing_kinds import enqueue_sales_orders
    from invoice_pipelines.db.tables import incoming_invoices, organizations
    from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction

    slug = f"bench-cli-{uuid.uuid4().hex[:8]}"
    with system_transaction(engine, write=True) as conn:
        org_id = conn.execute(
            insert(organizations).values(slug=slug, name=slug).returning(organizations.c.id)
        ).scalar_one()
    with tenant_transaction(engine, org_id, write=True) as conn:
        doc_id = conn.execute(
            insert(incoming_invoices)
            .values(
                organization_id=org_id,
                content_hash=uuid.uuid4().hex,
                status="NEEDS_REVIEW",
                invoice_number="BENCH-1",
                issue_date=date(2026, 11, 2),
                currency="EUR",
                gross_total=Decimal("119.00"),
                raw_json={"filename": "bench.xml"},
            )
            .returning(incoming_invoices.c.id)
        ).scalar_one()
    job_id = enqueue_sales_orders(engine, org_id, all_reviewed=True, runner="bench-cli")
    return slug, doc_id, job_id


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[-6:])} ended with exit {done.returncode}: "
            f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}"
        )
    return seconds, done.stdout


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def run(args: argparse.Namespace) -> dict:
    from invoice_pipelines.db.engine import URL_VAR, database_url, make_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines_devtools.bench.limit import current_database, limit_fields

    ensure_migrated(make_engine(owner=True))
    engine = make_engine()
    slug, doc_id, job_id = _seed(engine)
    dialect = engine.dialect.name
    with engine.connect() as conn:
        database = current_database(conn)
    engine.dispose()
    url = database_url()
    env = {**os.environ, URL_VAR: url}
    cli = _console_script()
    commands = {
        "floor": [sys.executable, "-c", FLOOR, url],
        "--help": [*cli, "--help"],
        "incoming list": [*cli, "incoming", "list", "--org", slug],
        "incoming show": [*cli, "incoming", "show", "--org", slug, "--id", str(doc_id)],
        "batch-status": [*cli, "batch-status", str(job_id)],
    }
    load_before = os.getloadavg()
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    floor_database = ""
    for _round in range(args.runs):
        for name, command in commands.items():
            took, printed = _timed(command, env)
            seconds[name].append(took)
            if name == "floor":
                floor_database = printed.strip()
    load_after = os.getloadavg()
    floor = statistics.median(seconds["floor"])
    figures = {
        name: {
            "median_s": round(statistics.median(values), 3),
            "p95_s": round(_p95(values), 3),
            "ratio_to_floor": round(statistics.median(values) / floor, 2),
        }
        for name, values in seconds.items()
    }
    reads = [
        figures[name]["median_s"] for name in ("incoming list", "incoming show", "batch-status")
    ]
    result = {
        "scenario": "cli",
        "dialect": dialect,
        "runs": args.runs,
        "commands": figures,
        "ratios": {name: f["ratio_to_floor"] for name, f in figures.items() if name != "floor"},
        "slowest_read_median_s": max(reads),
        "slowest_read_per_s": round(1 / max(reads), 3),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cores": os.cpu_count(),
        "organization_left": slug,
    }
    return limit_fields(
        result,
        "slowest_read_per_s",
        1 / floor,
        LIMIT_METHOD,
        limit_seconds=round(floor, 3),
        database_name=database,
        limit_database=floor_database,
    )
