"""Overdue invoices of one organization become dunning notices; blocks; the execution log.

One run for one organization:

1. a `dunning_runs` row (RUNNING) is committed, so a run that dies is still visible;
2. one query finds the ids of every invoice that is due for a level it has not had yet (past due in
   the organization's timezone, amount due, not paid, cancelled, deleted or disputed, not history
   that a migration brought in, customer not blocked);
3. they are noticed in chunks, one transaction each: the chunk's candidates are read again (a
   payment may have come in meanwhile) with their payments (`sales_invoice_payments`, one read:
   the interest of each day is on what was open that day), their fee and interest worked out in
   Decimal (`core.dunning`), and the notices inserted by one statement (PostgreSQL: from a COPY)
   that skips any (invoice, level) already there, so re-runs and runs side by side never create
   a notice twice;
4. with `fee_invoices`, the fees and interest not invoiced yet are queued for batch invoicing
   (`overdue.fee_invoices`);
5. the log row gets the outcome: SUCCESS, PARTIAL (some invoices could not be noticed, each with
   its reason) or FAILED (the organization could not be processed at all).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.dates import EARLIEST_DAY, ImplausibleDay
from invoice_pipelines.core.dunning import (
    KINDS,
    Candidate,
    DunningSettings,
    DunningSettingsError,
    InterestSegment,
    NoticeError,
    customer_kind,
    local_date,
    notice_for,
    organization_zone,
    parse_base_rates,
    parse_settings,
)
from invoice_pipelines.core.money import ZERO
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.audit_log import record_audit_entries
from invoice_pipelines.db.tables import (
    customers,
    dunning_notices,
    dunning_runs,
    sales_invoice_payments,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import (
    change_settings,
    system_transaction,
    tenant_transaction,
)
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.overdue.domain.fee_invoices import queue_fee_invoices
from invoice_pipelines.queue.domain.requests import BatchRequestError

UNPAID = ("open", "partially_paid")
CHUNK_SIZE = 5000
WORKERS = 2
MAX_ERRORS_KEPT = 200


@dataclass
class DunningResult:
    """What one run did for one organization (the execution log row says the same)."""

    organization: str
    organization_id: int
    log_id: int | None = None
    as_of: date | None = None
    dry_run: bool = False
    status: str = "RUNNING"
    scanned: int = 0
    candidates: int = 0
    created_by_level: Counter = field(default_factory=Counter)
    fees: Decimal = ZERO
    interest: Decimal = ZERO
    errors: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    fee_invoice_job_id: int | None = None  # the batch invoicing job queued for fees and interest
    notices_invoiced: int = 0

    @property
    def notices_created(self) -> int:
        return sum(self.created_by_level.values())


def _level_case(settings: DunningSettings, today: date):
    """The number of the highest level due for an invoice, from its due date alone (0: none)."""
    whens = [
        (sales_invoices.c.due_date <= today - timedelta(days=level.days), level.number)
        for level in reversed(settings.levels)
    ]
    return case(*whens, else_=0)


def _previous(organization_id: int, first_id: int | None = None, last_id: int | None = None):
    """The highest level each invoice was noticed at: one grouped read, hash-joined (a lookup
    per invoice was most of a run's time)."""
    query = select(
        dunning_notices.c.sales_invoice_id, func.max(dunning_notices.c.level).label("level")
    ).where(dunning_notices.c.organization_id == organization_id)
    if first_id is not None:
        query = query.where(dunning_notices.c.sales_invoice_id.between(first_id, last_id))
    return query.group_by(dunning_notices.c.sales_invoice_id).subquery("previous")


# what a candidate reads of its customer (sales_ledger.py)
CUSTOMER_FIELDS = ("customer_language", "customer_kind", "customer_vat_id")


def _due(organization_id: int, settings: DunningSettings, today: date, previous) -> list:
    """The conditions of an invoice that is due for a level it has not had yet."""
    si = sales_invoices
    return [
        si.c.organization_id == organization_id,
        si.c.status.in_(UNPAID),
        si.c.amount_due > 0,
        si.c.deleted_at.is_(None),
        si.c.disputed.is_(False),
        # a migration's history is reported, never dunned: no notice, fee or interest
        sales_ledger.not_history(),
        si.c.due_date.is_not(None),
        si.c.due_date <= today - timedelta(days=settings.earliest_days),
        sales_ledger.field("customer_dunning_blocked").is_(False),
        _level_case(settings, today) > func.coalesce(previous.c.level, 0),
    ]


def _from(previous):
    """The invoices with their customers (sales_ledger.py) and the level each was noticed at."""
    return sales_ledger.joined(*CUSTOMER_FIELDS).outerjoin(
        previous, previous.c.sales_invoice_id == sales_invoices.c.id
    )


def _candidate_ids(
    conn: Connection, organization_id: int, settings: DunningSettings, today: date
) -> list[int]:
    previous = _previous(organization_id)
    query = (
        select(sales_invoices.c.id)
        .select_from(_from(previous))
        .where(*_due(organization_id, settings, today, previous))
        .order_by(sales_invoices.c.id)
    )
    return list(conn.execute(query).scalars())


def _no_jit(conn: Connection) -> None:
    """PostgreSQL would compile these queries (their cost estimates are high) and spend longer
    compiling than running them."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")


def _scanned(conn: Connection, organization_id: int) -> int:
    """The organization's unpaid invoices but history: what the selection looked through."""
    return conn.execute(
        select(func.count())
        .select_from(sales_invoices)
        .where(
            sales_invoices.c.organization_id == organization_id,
            sales_invoices.c.status.in_(UNPAID),
            sales_ledger.not_history(),
        )
    ).scalar_one()


def _chunk_payments(
    conn: Connection, organization_id: int, first_id: int, last_id: int
) -> dict[int, list[tuple[date, Decimal]]]:
    """The money payments of the chunk's invoices, (day, amount) per invoice: one read."""
    p = sales_invoice_payments.c
    found: dict[int, list[tuple[date, Decimal]]] = {}
    for invoice_id, paid_on, amount in conn.execute(
        select(p.sales_invoice_id, p.paid_on, p.amount).where(
            p.organization_id == organization_id, p.sales_invoice_id.between(first_id, last_id)
        )
    ):
        found.setdefault(invoice_id, []).append((paid_on, Decimal(amount)))
    return found


def _chunk_candidates(
    conn: Connection,
    organization_id: int,
    settings: DunningSettings,
    today: date,
    first_id: int,
    last_id: int,
) -> list[tuple[Candidate, int, str]]:
    si, last = sales_invoices, dunning_notices.alias("last_notice")
    previous = _previous(organization_id, first_id, last_id)
    query = (
        select(
            si.c.id,
            si.c.invoice_number,
            si.c.currency,
            si.c.due_date,
            si.c.amount_due,
            si.c.amount_paid,
            si.c.last_payment_date,
            si.c.customer_id,
            *sales_ledger.fields(*CUSTOMER_FIELDS),
            last.c.level,
            last.c.interest_until,
            last.c.fees_total,
            last.c.interest_total,
            last.c.dunning_costs_total,
        )
        .select_from(
            _from(previous).outerjoin(
                last,
                and_(
                    last.c.sales_invoice_id == si.c.id,
                    last.c.level == previous.c.level,
                    # lets the planner look the chunk's notices up by index, never scan them all
                    last.c.sales_invoice_id.between(first_id, last_id),
                ),
            )
        )
        .where(
            *_due(organization_id, settings, today, previous), si.c.id.between(first_id, last_id)
        )
        .order_by(si.c.id)
    )
    payments = _chunk_payments(conn, organization_id, first_id, last_id)
    return [
        (
            Candidate(
                invoice_id=row.id,
                invoice_number=row.invoice_number,
                currency=row.currency,
                due_date=row.due_date,
                amount_due=row.amount_due,
                last_payment_date=row.last_payment_date,
                previous_level=row.level or 0,
                previous_interest_until=row.interest_until,
                previous_fees_total=row.fees_total or ZERO,
                previous_interest_total=row.interest_total or ZERO,
                kind=customer_kind(row.customer_kind, row.customer_vat_id),
                previous_costs_total=row.dunning_costs_total,
                payments=tuple(payments.get(row.id, ())),
                amount_paid=row.amount_paid,
            ),
            row.customer_id,
            row.customer_language,
        )
        for row in conn.execute(query)
    ]


NOTICE_COLUMNS = (
    "organization_id", "sales_invoice_id", "customer_id", "level", "level_name", "as_of",
    "days_overdue", "currency", "amount_open", "fee", "interest", "interest_rate_percent",
    "interest_from", "interest_until", "fees_total", "interest_total", "total_claimed", "template",
    "channel", "language", "dunning_run_id", "dagster_run_id", "delivery_status",
    "dunning_costs_total", "interest_segments",
)  # fmt: skip
JSON_COLUMNS = frozenset({"interest_segments"})


def _segments(segments: Sequence[InterestSegment]) -> list[dict] | None:
    """A notice's interest segments as its `interest_segments` column holds them."""
    return [
        {"after": s.after.isoformat(), "until": s.until.isoformat(), "amount": str(s.amount)}
        for s in segments
    ] or None


def _insert_notices(conn: Connection, rows: list[dict]) -> list[tuple[int, Decimal, Decimal]]:
    """Insert the notices; an (invoice, level) that exists already is skipped, not doubled.
    Returns (level, fee, interest) of the notices this statement created."""
    cursor_of = getattr(conn.connection.dbapi_connection, "cursor", None)
    if conn.dialect.name == "postgresql" and hasattr(cursor_of(), "copy_expert"):
        return _copy_notices(conn, rows)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(dunning_notices)
        .on_conflict_do_nothing(index_elements=["sales_invoice_id", "level"])
        .returning(dunning_notices.c.level, dunning_notices.c.fee, dunning_notices.c.interest)
    )
    return [tuple(r) for r in conn.execute(statement, rows)]


def _copy_notices(conn: Connection, rows: list[dict]) -> list[tuple[int, Decimal, Decimal]]:
    """PostgreSQL with psycopg2: the chunk goes in by COPY into a temporary table and from there
    in one INSERT ... ON CONFLICT DO NOTHING. A multi-row VALUES statement of the same rows spent
    most of a run being parsed (every value is a literal with psycopg2)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(
            [
                "" if row[c] is None else json.dumps(row[c]) if c in JSON_COLUMNS else row[c]
                for c in NOTICE_COLUMNS
            ]
        )
    buffer.seek(0)
    columns = ", ".join(NOTICE_COLUMNS)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS dunning_notices_in ON COMMIT DELETE ROWS AS "
            f"SELECT {columns} FROM dunning_notices WITH NO DATA"
        )
        cursor.copy_expert(
            f"COPY dunning_notices_in ({columns}) FROM STDIN WITH (FORMAT csv)", buffer
        )
        cursor.execute(
            f"INSERT INTO dunning_notices ({columns}) SELECT {columns} FROM dunning_notices_in "
            "ON CONFLICT (sales_invoice_id, level) DO NOTHING RETURNING level, fee, interest"
        )
        created = [(level, Decimal(fee), Decimal(interest)) for level, fee, interest in cursor]
        cursor.execute("TRUNCATE dunning_notices_in")
    finally:
        cursor.close()
    return created


def _start_log(engine: Engine, org_id: int, run_id: str | None, dry_run: bool, who: str) -> int:
    with tenant_transaction(engine, org_id, write=True) as conn:
        return conn.execute(
            insert(dunning_runs)
            .values(
                organization_id=org_id,
                dagster_run_id=run_id,
                dry_run=dry_run,
                status="RUNNING",
                started_at=utcnow(),
                created_by=who,
            )
            .returning(dunning_runs.c.id)
        ).scalar_one()


def _finish_log(engine: Engine, result: DunningResult) -> None:
    with tenant_transaction(engine, result.organization_id, write=True) as conn:
        conn.execute(
            update(dunning_runs)
            .where(dunning_runs.c.id == result.log_id)
            .values(
                status=result.status,
                as_of=result.as_of,
                finished_at=utcnow(),
                duration_seconds=round(result.seconds, 3),
                invoices_scanned=result.scanned,
                notices_created=result.notices_created,
                notices_by_level=dict(result.created_by_level),
                fees_charged=result.fees,
                interest_charged=result.interest,
                error_count=len(result.errors),
                errors=result.errors[:MAX_ERRORS_KEPT],
            )
        )


def _missing_rate_message(first_day: str) -> str:
    until = date.fromisoformat(first_day) - timedelta(days=1)
    return (
        f"no base rate (§ 247 BGB) is known from {first_day}: default interest was charged up to "
        f"{until.isoformat()} only; set the rate with `invoice-pipelines dunning-base-rate` "
        "(settings.dunning.interest.base_rates) and later notices charge the rest."
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def run_overdue(
    engine: Engine,
    org: Organization,
    *,
    at: datetime | None = None,
    on: date | None = None,
    dry_run: bool = False,
    run_id: str | None = None,
    requested_by: str = "dagster",
    chunk_size: int = CHUNK_SIZE,
) -> DunningResult:
    """Notice one organization's overdue invoices as of `on` (a day in its timezone) or `at` (an
    instant; default now). Never raises for the organization's own data or settings: the result
    (and the execution log) says FAILED with the reason. `dry_run` counts without writing notices."""
    t0 = time.perf_counter()
    result = DunningResult(org.slug, org.id, dry_run=dry_run)
    result.log_id = _start_log(engine, org.id, run_id, dry_run, requested_by)
    try:
        settings = parse_settings(org.settings.get("dunning"), org.country)
        today = on or local_date(at or utcnow(), organization_zone(org.timezone))
        result.as_of = today
        if today < EARLIEST_DAY:
            # the window's upper end is checked where a person gives the day (--as-of, as_of)
            raise ImplausibleDay(
                f"as_of {today.isoformat()} is before {EARLIEST_DAY.isoformat()}, "
                "earlier than anything this system keeps."
            )
        with tenant_transaction(engine, org.id) as conn:
            _no_jit(conn)
            result.scanned = _scanned(conn, org.id)
            ids = _candidate_ids(conn, org.id, settings, today)
        result.candidates = len(ids)
        chunks = [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]
        names = {level.number: level.name for level in settings.levels}
        missing: list[str] = []

        def notice(chunk: list[int]) -> tuple[list, list]:
            return _notice_chunk(engine, org, settings, today, chunk[0], chunk[-1], result, run_id)

        # PostgreSQL: two chunks in flight, one connection each, so the database writes one
        # chunk while Python works out the next (SQLite has one writer)
        workers = WORKERS if engine.dialect.name == "postgresql" else 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                for created, errors in pool.map(notice, chunks):
                    for error in errors:
                        if "missing_base_rate_from" in error:
                            missing.append(error["missing_base_rate_from"])
                        else:
                            result.errors.append(error)
                    for level, fee, interest in created:
                        result.created_by_level[names[level]] += 1
                        result.fees += fee
                        result.interest += interest
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        if missing:
            result.errors.append({"message": _missing_rate_message(min(missing))})
        if settings.fee_invoices and not dry_run:
            try:
                result.fee_invoice_job_id, result.notices_invoiced = queue_fee_invoices(
                    engine, org, requested_by=requested_by
                )
            except BatchRequestError as exc:
                result.errors.append({"message": f"fee invoices not queued: {exc}"})
        result.status = "PARTIAL" if result.errors else "SUCCESS"
    except (DunningSettingsError, ImplausibleDay) as exc:
        result.status = "FAILED"
        result.errors.append({"message": str(exc)})
    except SQLAlchemyError as exc:
        # the database refused something of this organization's: recorded, the others go on
        result.status = "FAILED"
        result.errors.append({"message": f"database error: {_first_line(exc)}"})
    result.seconds = time.perf_counter() - t0
    _finish_log(engine, result)
    return result


def _notice_chunk(
    engine: Engine,
    org: Organization,
    settings: DunningSettings,
    today: date,
    first_id: int,
    last_id: int,
    result: DunningResult,
    run_id: str | None,
) -> tuple[list, list]:
    """Notice one chunk in one transaction; returns (created (level, fee, interest), errors)."""
    errors, missing = [], set()
    with tenant_transaction(engine, org.id, write=True) as conn:
        _no_jit(conn)
        rows = []
        for candidate, customer_id, language in _chunk_candidates(
            conn, org.id, settings, today, first_id, last_id
        ):
            try:
                figures = notice_for(candidate, settings, today, org.currency)
            except NoticeError as exc:
                errors.append(
                    {
                        "invoice_id": candidate.invoice_id,
                        "invoice_number": candidate.invoice_number,
                        "message": str(exc),
                    }
                )
                continue
            if figures is None:
                continue
            if figures.missing_base_rate_from is not None:
                missing.add(figures.missing_base_rate_from)
            level = figures.level
            rows.append(
                {
                    "organization_id": org.id,
                    "sales_invoice_id": candidate.invoice_id,
                    "customer_id": customer_id,
                    "level": level.number,
                    "level_name": level.name,
                    "as_of": today,
                    "days_overdue": figures.days_overdue,
                    "currency": candidate.currency,
                    "amount_open": candidate.amount_due,
                    "fee": figures.fee,
                    "interest": figures.interest,
                    "interest_rate_percent": figures.interest_rate_percent,
                    "interest_from": figures.interest_from,
                    "interest_until": figures.interest_until,
                    "interest_segments": _segments(figures.interest_segments),
                    "fees_total": figures.fees_total,
                    "interest_total": figures.interest_total,
                    "total_claimed": figures.total_claimed,
                    "dunning_costs_total": figures.costs_total,
                    "template": level.template,
                    "channel": level.channel,
                    "language": language,
                    "dunning_run_id": result.log_id,
                    "dagster_run_id": run_id,
                    "delivery_status": (
                        "pending" if settings.deliver and level.channel != "in_app" else None
                    ),
                }
            )
        if missing:
            # one line per chunk, merged per run by run_overdue
            errors.append({"missing_base_rate_from": min(missing).isoformat()})
        if not rows:
            return [], errors
        if result.dry_run:
            return [(r["level"], r["fee"], r["interest"]) for r in rows], errors
        return _insert_notices(conn, rows), errors


def set_dunning_block(
    engine: Engine,
    organization_id: int,
    *,
    customer_ids: Sequence[int] = (),
    invoice_ids: Sequence[int] = (),
    blocked: bool,
    reason: str,
    requested_by: str,
) -> tuple[list[int], list[int]]:
    """Set (or lift) the dunning block of customers and the disputed flag of invoices, recorded in
    the audit log. Returns (changed ids, ids not found in the organization)."""
    if bool(customer_ids) == bool(invoice_ids):
        raise ValueError("Name either customers or invoices, not both and not neither.")
    table, column, entity = (
        (customers, customers.c.dunning_blocked, "customer")
        if customer_ids
        else (sales_invoices, sales_invoices.c.disputed, "sales_invoice")
    )
    ids = sorted({int(i) for i in (customer_ids or invoice_ids)})
    with tenant_transaction(engine, organization_id, write=True) as conn:
        found = set(
            conn.execute(
                update(table)
                .where(table.c.organization_id == organization_id, table.c.id.in_(ids))
                .values({column: blocked})
                .returning(table.c.id)
            ).scalars()
        )
        action = (
            ("dunning.block" if blocked else "dunning.unblock")
            if customer_ids
            else ("dunning.dispute" if blocked else "dunning.undispute")
        )
        if found:
            details = {"reason": reason, column.name: blocked}
            record_audit_entries(
                conn, organization_id, requested_by, action, entity, sorted(found), details
            )
    return sorted(found), [i for i in ids if i not in found]


def set_customer_kind(
    engine: Engine,
    organization_id: int,
    customer_ids: Sequence[int],
    kind: str | None,
    *,
    requested_by: str,
) -> tuple[list[int], list[int]]:
    """Set customers' kind (business, consumer; None: read from the VAT id), recorded in the audit
    log. Returns (changed ids, ids not found in the organization)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be business, consumer or None, got {kind!r}")
    ids = sorted({int(i) for i in customer_ids})
    with tenant_transaction(engine, organization_id, write=True) as conn:
        found = set(
            conn.execute(
                update(customers)
                .where(customers.c.organization_id == organization_id, customers.c.id.in_(ids))
                .values(kind=kind)
                .returning(customers.c.id)
            ).scalars()
        )
        if found:
            details = {"kind": kind}
            record_audit_entries(
                conn,
                organization_id,
                requested_by,
                "customer.kind",
                "customer",
                sorted(found),
                details,
            )
    return sorted(found), [i for i in ids if i not in found]


def set_base_rate(system: Engine, org: Organization, valid_from: str, percent: str) -> list:
    """Add (or replace) the § 247 BGB base rate of the half-year from `valid_from` in the
    organization's `settings.dunning.interest.base_rates`; checked like the settings (a bad value
    is a DunningSettingsError naming it; `system`: the system engine, which writes the
    organization's row). Returns the organization's base_rates."""
    entry = {"from": str(valid_from).strip(), "percent": str(percent).strip()}
    parse_base_rates([entry], "--from/--percent")

    def added(current: dict) -> dict:
        dunning = dict(current.get("dunning") or {})
        interest = dict(dunning.get("interest") or {})
        rates = [r for r in interest.get("base_rates", []) if r.get("from") != entry["from"]]
        interest["base_rates"] = sorted([*rates, entry], key=lambda r: r["from"])
        dunning["interest"] = interest
        parse_settings(dunning, org.country)  # the whole setting still works
        return {**current, "dunning": dunning}

    with system_transaction(system, write=True) as conn:
        _, after = change_settings(conn, org.id, added)
    return after["dunning"]["interest"]["base_rates"]


def last_successful_run(system: Engine) -> datetime | None:
    """When the most recent SUCCESS or PARTIAL run of any organization ended (for the freshness
    check: a run that noticed what it could counts as having run)."""

    with system_transaction(system) as conn:
        return conn.execute(
            select(func.max(dunning_runs.c.finished_at)).where(
                dunning_runs.c.status.in_(("SUCCESS", "PARTIAL")),
                dunning_runs.c.dry_run.is_(False),
            )
        ).scalar_one()
