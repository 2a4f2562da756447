"""Benchmark: one organization with N sales invoices, about 10 % of them overdue across the levels.

Seeds a fresh organization in bulk SQL (generate_series on PostgreSQL, a recursive CTE on SQLite;
seeding is not measured): 1,000 customers, every other one a business (a VAT id, so the German
rules' interest from the due date and flat fee apply; the others are consumers); per 100 invoices 5 a reminder late (1-13 days, one of
them partly paid), 3 a first dunning late (14-29 days), 2 a final notice late (30-89 days), 50
paid and 40 not yet due. Then times `run_overdue` exactly as the dunning asset runs it (the
organization charges default interest), and the same run again at once, which must create
nothing. The organization stays (deleting a million invoices row by row through their foreign
keys takes longer than the benchmark): run it in a scratch database.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import date

from invoice_pipelines.cli_args import positive_int

CUSTOMERS = 1000
TODAY = date(2026, 11, 20)
SETTINGS = {"dunning": {"interest": {"base_rate_percent": "1.27", "margin_percent": "9"}}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--invoices", type=positive_int, default=100_000, help="sales invoices to seed"
    )
    parser.add_argument(
        "--chunk-size", type=positive_int, default=5000, help="overdue invoices per transaction"
    )


def _numbers(dialect: str, n: int) -> str:
    if dialect == "postgresql":
        return f"SELECT g FROM generate_series(1, {int(n)}) AS g"
    return (
        f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {int(n)}) "
        "SELECT g FROM s"
    )


def _seed(engine, org_id: int, n: int) -> None:
    from sqlalchemy import text

    from invoice_pipelines.db.tenancy import tenant_transaction

    dialect = engine.dialect.name
    if dialect == "postgresql":
        days = "(CAST(:today AS date) + CAST({offset} AS integer))"
        money = "(({cents})::numeric / 100)"
    else:
        days = "date(:today, ({offset}) || ' days')"
        money = "(({cents}) / 100.0)"
    bucket = "(g % 100)"
    # days from today to the due date, per bucket (negative: past due)
    offset = (
        f"CASE WHEN {bucket} < 5 THEN -(1 + g % 13) WHEN {bucket} < 8 THEN -(14 + g % 16) "
        f"WHEN {bucket} < 10 THEN -(30 + g % 60) WHEN {bucket} < 60 THEN -(g % 60) "
        "ELSE 1 + g % 30 END"
    )
    gross_cents = "(10000 + ((g % 65536) * 7919) % 500000)"
    status = (
        f"CASE WHEN {bucket} = 4 THEN 'partially_paid' WHEN {bucket} BETWEEN 10 AND 59 "
        "THEN 'paid' ELSE 'open' END"
    )
    due_cents = (
        f"CASE WHEN {bucket} = 4 THEN {gross_cents} / 2 WHEN {bucket} BETWEEN 10 AND 59 THEN 0 "
        f"ELSE {gross_cents} END"
    )
    with tenant_transaction(engine, org_id, write=True) as conn:
        conn.execute(
            text(
                "INSERT INTO customers (organization_id, customer_number, name, language, vat_id) "
                f"SELECT :org, 'K-' || g, 'Kunde ' || g, CASE WHEN g % 4 = 0 THEN 'en' ELSE 'de' "
                # every other customer a business (a VAT id): German interest and flat fee
                "END, CASE WHEN g % 2 = 1 THEN 'DE' || (100000000 + g) END "
                f"FROM ({_numbers(dialect, CUSTOMERS)}) AS numbers"
            ),
            {"org": org_id},
        )
        first_customer = conn.execute(
            text("SELECT min(id) FROM customers WHERE organization_id = :org"), {"org": org_id}
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO sales_invoices (organization_id, invoice_number, sequence_number, "
                "customer_id, issue_date, due_date, currency, net_total, tax_total, gross_total, "
                "amount_paid, amount_due, status, last_payment_date) "
                f"SELECT :org, 'BR-' || g, g, :first + g % {CUSTOMERS}, "
                f"{days.format(offset=f'({offset}) - 14')}, {days.format(offset=offset)}, 'EUR', "
                f"{money.format(cents=f'{gross_cents} * 100 / 119')}, "
                f"{money.format(cents=f'{gross_cents} - {gross_cents} * 100 / 119')}, "
                f"{money.format(cents=gross_cents)}, "
                f"{money.format(cents=f'{gross_cents} - ({due_cents})')}, "
                f"{money.format(cents=due_cents)}, {status}, "
                f"CASE WHEN {bucket} = 4 THEN {days.format(offset='-1')} END "
                f"FROM ({_numbers(dialect, n)}) AS numbers"
            ),
            {"org": org_id, "first": first_customer, "today": TODAY.isoformat()},
        )


def _settle(owner_engine) -> None:
    """Fresh statistics, as a database that has been running has them (not measured)."""
    if owner_engine.dialect.name == "postgresql":
        with owner_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE sales_invoices, customers, dunning_notices")
    else:
        with owner_engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def run(args: argparse.Namespace) -> dict:
    from sqlalchemy import func, select

    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines.db.tables import dunning_notices, organizations
    from invoice_pipelines.db.tenancy import (
        find_organization,
        system_transaction,
        tenant_transaction,
    )
    from invoice_pipelines.overdue.domain.pipeline import run_overdue
    from invoice_pipelines_devtools.bench.limit import limit_fields

    owner = make_engine(owner=True)
    ensure_migrated(owner)
    engine = make_engine()
    slug = f"bench-overdue-{uuid.uuid4().hex[:8]}"
    with system_transaction(engine, write=True) as conn:
        org_id = conn.execute(
            organizations.insert()
            .values(slug=slug, name="Benchmark overdue", timezone="UTC", settings=SETTINGS)
            .returning(organizations.c.id)
        ).scalar_one()
    t0 = time.perf_counter()
    _seed(engine, org_id, args.invoices)
    seed_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    _settle(owner)
    settle_seconds = time.perf_counter() - t0

    limit = set_based_limit(engine, org_id, TODAY)
    _settle(owner)  # the limit's rolled-back rows leave nothing for the run to step over

    first = run_overdue(
        engine,
        find_organization(engine, slug),
        on=TODAY,
        requested_by="bench",
        chunk_size=args.chunk_size,
    )
    second = run_overdue(
        engine,
        find_organization(engine, slug),
        on=TODAY,
        requested_by="bench",
        chunk_size=args.chunk_size,
    )
    with tenant_transaction(engine, org_id) as conn:
        stored = conn.execute(
            select(func.count()).where(dunning_notices.c.organization_id == org_id)
        ).scalar_one()
        counts = (
            select(func.count().label("n"))
            .where(dunning_notices.c.organization_id == org_id)
            .group_by(dunning_notices.c.sales_invoice_id)
            .subquery()
        )
        per_invoice = conn.execute(select(func.max(counts.c.n))).scalar()
    result = {
        "scenario": "overdue",
        "database": engine.dialect.name,
        "organization": slug,
        "as_of": TODAY.isoformat(),
        "invoices": args.invoices,
        "scanned": first.scanned,
        "overdue": first.candidates,
        "notices_created": first.notices_created,
        "notices_by_level": dict(first.created_by_level),
        "notices_stored": stored,
        "most_notices_per_invoice": per_invoice,
        "fees_charged": f"{first.fees:.2f}",
        "interest_charged": f"{first.interest:.2f}",
        "status": first.status,
        "errors": len(first.errors),
        "seconds": round(first.seconds, 3),
        "invoices_per_s": round(args.invoices / first.seconds, 1) if first.seconds else None,
        "second_run_notices_created": second.notices_created,
        "second_run_seconds": round(second.seconds, 3),
        "seed_seconds": round(seed_seconds, 3),
        "settle_seconds": round(settle_seconds, 3),
    }
    return limit_fields(
        result,
        "invoices_per_s",
        args.invoices / limit["seconds"] if limit["seconds"] else None,
        LIMIT_METHOD,
        limit_seconds=round(limit["seconds"], 3),
        limit_notices=limit["notices"],
        database_name=limit["database"],
        limit_database=limit["database"],
    )


LIMIT_METHOD = (
    "one INSERT..SELECT into dunning_notices (its keys, unique index and foreign key) of the same "
    "notices, on the same database just before the run and rolled back: the run's own selection "
    "(the same overdue invoices and levels), fee and simple interest worked out in SQL, every "
    "column the run writes; no chunks, no Decimal arithmetic in Python, no execution log"
)


def set_based_limit(engine, org_id: int, today: date) -> dict:
    """Time the notices as one set-based statement, then roll it back: seconds, rows, database."""
    from sqlalchemy import Integer, and_, case, cast, func, insert, literal, null, select

    from invoice_pipelines.core.dunning import parse_settings
    from invoice_pipelines.db.tables import customers, dunning_notices
    from invoice_pipelines.db.tables import sales_invoices as si
    from invoice_pipelines.db.tenancy import find_organization
    from invoice_pipelines.overdue.domain.pipeline import (
        _due,
        _from,
        _level_case,
        _no_jit,
        _previous,
    )
    from invoice_pipelines_devtools.bench.limit import current_database, rolled_back

    org = find_organization(engine, org_id)
    settings = parse_settings(org.section("dunning"), org.country)

    previous = _previous(org_id)
    level = _level_case(settings, today)
    levels = settings.levels

    def by_level(value) -> object:
        return case(*[(level == lv.number, value(lv)) for lv in levels], else_=null())

    if engine.dialect.name == "postgresql":
        days = literal(today) - si.c.due_date
    else:
        days = cast(
            func.julianday(literal(today.isoformat())) - func.julianday(si.c.due_date), Integer
        )
    base = settings.base_rates.fixed or 0
    rate = case(
        (customers.c.vat_id.is_not(None), base + settings.margin_business_percent),
        else_=base + settings.margin_consumer_percent,
    )
    fee = by_level(lambda lv: lv.fee_fixed + func.round(si.c.amount_due * lv.fee_percent / 100, 2))
    interest = by_level(
        lambda lv: (
            func.round(si.c.amount_due * rate / 100 * days / 365, 2)
            if lv.charge_interest
            else literal(0)
        )
    )
    columns = {
        "organization_id": si.c.organization_id,
        "sales_invoice_id": si.c.id,
        "customer_id": si.c.customer_id,
        "level": level,
        "level_name": by_level(lambda lv: lv.name),
        "as_of": literal(today),
        "days_overdue": days,
        "currency": si.c.currency,
        "amount_open": si.c.amount_due,
        "fee": fee,
        "interest": interest,
        "interest_rate_percent": rate,
        "interest_from": si.c.due_date,
        "interest_until": literal(today),
        "fees_total": fee,
        "interest_total": interest,
        "total_claimed": si.c.amount_due + fee + interest,
        "template": by_level(lambda lv: lv.template),
        "channel": by_level(lambda lv: lv.channel),
        "language": customers.c.language,
    }
    statement = insert(dunning_notices).from_select(
        list(columns),
        select(*columns.values())
        .select_from(_from(previous))
        .where(and_(*_due(org_id, settings, today, previous))),
    )
    with rolled_back(engine, org_id) as conn:
        database = current_database(conn)
        _no_jit(conn)
        started = time.perf_counter()
        notices = conn.execute(statement).rowcount
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "notices": notices, "database": database}
