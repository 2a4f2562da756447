"""Benchmark: how long a person waits for a command (issue 47), against the same-run floor.

Times `invoice-pipelines --help`, `incoming list`, `incoming show`, the review round trip
(`incoming review --set ... --confirm`, then `incoming review --reopen` back to review) and
`batch-status` as a user runs them (the console script next to this interpreter, each a process of
its own, wall time from start to exit) on the database INVOICE_PIPELINES_DB_URL names, `--runs`
times each, interleaved round by round with the floor: a Python process that imports SQLAlchemy
and runs one query on the same database (what any command that reads the database cannot avoid).
Prints per command the median and p95 seconds, its ratio to the floor's median and whether it is
within the command budget (median <= 1.0 s, and <= 2x the floor for a command that reads or writes
the database); the load average before and after says whether the machine was idle. Seeds one
organization with one incoming invoice in review (no seller name: the review sets it, confirms,
and reopens it, so every round reviews the same document from NEEDS_REVIEW) and one batch job
(left in the database: use a scratch one).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid

from invoice_pipelines.cli_args import positive_int
from invoice_pipelines_devtools.bench.console import console_script

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
# the command budget (issue 47): a command answers within a second, and one that reads or writes
# the database within twice the floor
BUDGET_SECONDS = 1.0
BUDGET_RATIO = 2.0
READS = ("incoming list", "incoming show", "batch-status")
REVIEWS = ("incoming review --confirm", "incoming review --reopen")
REVIEWER = "bench-cli"
LIMIT_METHOD = (
    "a Python process that imports SQLAlchemy, connects to the same database and runs one query "
    "(SELECT count(*) FROM organizations, with the database's name), started and timed like the commands, interleaved with "
    "them round by round"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=positive_int, default=10, help="runs of each command")


def _seed(engine) -> tuple[str, int, int, int]:
    """One organization (its slug and id) with an incoming invoice in review that lacks only its
    seller's name, and a batch job no sensor takes."""
    from datetime import date
    from decimal import Decimal

    from sqlalchemy import insert

    from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
    from invoice_pipelines.core.rules import invoice_number_key
    from invoice_pipelines.db.tables import incoming_invoices, organizations
    from invoice_pipelines.db.tenancy import (
        find_organization,
        system_transaction,
        tenant_transaction,
    )

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
                # as the intake stores it with the number (the duplicate check reads it)
                invoice_number_key=invoice_number_key("BENCH-1"),
                issue_date=date(2026, 11, 2),
                currency="EUR",
                gross_total=Decimal("119.00"),
                raw_json={"filename": "bench.xml"},
                processing_version=1,
            )
            .returning(incoming_invoices.c.id)
        ).scalar_one()
    job_id = enqueue_sales_orders(
        engine, find_organization(engine, org_id), all_reviewed=True, runner="bench-cli"
    )
    return slug, org_id, doc_id, job_id


def _version(engine, org_id: int, doc_id: int) -> int:
    """The processing_version a reviewer looks at (`incoming show` prints it) before a review."""
    from sqlalchemy import select

    from invoice_pipelines.db.tables import incoming_invoices
    from invoice_pipelines.db.tenancy import tenant_transaction

    with tenant_transaction(engine, org_id) as conn:
        return conn.execute(
            select(incoming_invoices.c.processing_version).where(incoming_invoices.c.id == doc_id)
        ).scalar_one()


def _reviews(cli: list[str], slug: str, doc_id: int) -> dict[str, tuple[list[str], str]]:
    """The review round trip: (argv without --version, the status the document ends in)."""
    review = [*cli, "incoming", "review", "--org", slug, "--id", str(doc_id), "--by", REVIEWER]
    return {
        "incoming review --confirm": (
            [*review, "--set", "seller_name=Bench Lieferant GmbH", "--confirm"],
            "VALIDATED",
        ),
        "incoming review --reopen": (
            [*review, "--reopen", "--reason", "bench cli: the round trip again"],
            "NEEDS_REVIEW",
        ),
    }


def _status_printed(printed: str) -> str | None:
    try:
        return json.loads(printed.strip().splitlines()[-1])["status"]
    except (ValueError, IndexError, KeyError, TypeError):
        return None


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


def _within_budget(name: str, median: float, ratio: float) -> bool:
    """--help: within the second; every other command also within twice the floor."""
    return median <= BUDGET_SECONDS and (name == "--help" or ratio <= BUDGET_RATIO)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def run(args: argparse.Namespace) -> dict:
    from invoice_pipelines.db.engine import URL_VAR, database_url, make_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines_devtools.bench.limit import current_database, limit_fields

    ensure_migrated(make_engine(owner=True))
    engine = make_engine()
    slug, org_id, doc_id, job_id = _seed(engine)
    dialect = engine.dialect.name
    with engine.connect() as conn:
        database = current_database(conn)
    url = database_url()
    env = {**os.environ, URL_VAR: url}
    cli = console_script()
    commands = {
        "floor": [sys.executable, "-c", FLOOR, url],
        "--help": [*cli, "--help"],
        "incoming list": [*cli, "incoming", "list", "--org", slug],
        "incoming show": [*cli, "incoming", "show", "--org", slug, "--id", str(doc_id)],
        "batch-status": [*cli, "batch-status", str(job_id)],
    }
    reviews = _reviews(cli, slug, doc_id)
    order = ["floor", "--help", "incoming list", "incoming show", *reviews, "batch-status"]
    load_before = os.getloadavg()
    seconds: dict[str, list[float]] = {name: [] for name in order}
    floor_database = ""
    for _round in range(args.runs):
        for name in order:
            if name in reviews:
                # the version the reviewer saw in `incoming show`, read here outside the timing
                argv, ends_in = reviews[name]
                command = [*argv, "--version", str(_version(engine, org_id, doc_id))]
            else:
                command, ends_in = commands[name], None
            took, printed = _timed(command, env)
            seconds[name].append(took)
            if name == "floor":
                floor_database = printed.strip()
            elif ends_in and _status_printed(printed) != ends_in:
                raise RuntimeError(f"{name} left the document {_status_printed(printed)}")
    load_after = os.getloadavg()
    engine.dispose()
    floor = statistics.median(seconds["floor"])
    figures = {}
    for name, values in seconds.items():
        median = statistics.median(values)
        figures[name] = {
            "median_s": round(median, 3),
            "p95_s": round(_p95(values), 3),
            "ratio_to_floor": round(median / floor, 2),
        }
        if name != "floor":
            figures[name]["within_budget"] = _within_budget(name, median, median / floor)
    reads = [figures[name]["median_s"] for name in READS]
    result = {
        "scenario": "cli",
        "dialect": dialect,
        "runs": args.runs,
        "commands": figures,
        "ratios": {name: f["ratio_to_floor"] for name, f in figures.items() if name != "floor"},
        "all_within_budget": all(f.get("within_budget", True) for f in figures.values()),
        "slowest_read_median_s": max(reads),
        "slowest_read_per_s": round(1 / max(reads), 3),
        "slowest_review_median_s": max(figures[name]["median_s"] for name in REVIEWS),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cores": os.cpu_count(),
        # PYTHONDONTWRITEBYTECODE: no process caches what it compiles, so every command compiles
        # the modules it imports (the floor SQLAlchemy's) again unless an install compiled them
        "python_dont_write_bytecode": bool(sys.flags.dont_write_bytecode),
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
