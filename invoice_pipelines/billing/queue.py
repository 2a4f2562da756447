"""The batch invoicing queue: enqueue, cancel, retry, status, stuck-job cleanup and daily stats."""

# A batch job is one row of `batch_jobs`; anything that can write that table can enqueue work. The
# row's `request` says what to invoice:
#
# - kind `sales_orders`: `{"order_ids": [12, 13, ...]}` or `{"all_reviewed": true, "up_to": "2026-11-30"}`
#   (`up_to` optional: only orders dated up to that day);
# - kind `customer_lines`: `{"customers": [{"customer_id": 5, "lines": [{"item_id": 7, "quantity": "2",
#   "unit_price": "19.90"}, ...]}, ...]}` (price, description and VAT default to the item's).
#
# `status` starts `pending`; the batch jobs sensor launches one run per pending job (rows whose
# `dagster_run_id` is already set belong to a runner outside Dagster, such as `batch-invoice --wait`).

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from invoice_pipelines.core.money import MoneyError, to_decimal
from invoice_pipelines.db.tables import (
    BATCH_JOB_STATUSES,
    audit_log,
    batch_job_items,
    batch_jobs,
    organizations,
)
from invoice_pipelines.db.tenancy import (
    resolve_organization,
    system_transaction,
    tenant_transaction,
)
from invoice_pipelines.db.types import utcnow

SALES_ORDERS = "sales_orders"
CUSTOMER_LINES = "customer_lines"
TERMINAL_STATUSES = ("completed", "completed_with_errors", "failed", "cancelled")
DEFAULT_STUCK_AFTER = timedelta(minutes=30)
MAX_ERRORS_ON_JOB = 100  # batch_jobs.errors keeps the first ones; batch_job_items has them all
# payment terms when the organization's settings give none (`settings.payment_terms_days`); the
# same default the schema gives a customer's payment terms
DEFAULT_DUE_DAYS = 14


class BatchRequestError(ValueError):
    """A batch request the user must fix (unknown organization, bad date, empty order list...)."""


class UnknownBatchJob(LookupError):
    """No batch job with that id."""


@dataclass(frozen=True)
class BatchJob:
    """A batch job as a user sees it (`batch-status`, the progress bar, the sensor)."""

    id: int
    organization_id: int
    organization_slug: str
    kind: str
    status: str
    invoice_date: date | None
    due_days: int
    total_count: int
    processed_count: int
    successful_count: int
    failed_count: int
    skipped_count: int
    cancel_requested: bool
    retry_of_job_id: int | None
    runner: str | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    estimated_duration_seconds: float | None
    failure_reason: str | None
    errors: list[dict] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organization": self.organization_slug,
            "kind": self.kind,
            "status": self.status,
            "invoice_date": self.invoice_date.isoformat() if self.invoice_date else None,
            "due_days": self.due_days,
            "total": self.total_count,
            "processed": self.processed_count,
            "successful": self.successful_count,
            "failed": self.failed_count,
            "skipped": self.skipped_count,
            "cancel_requested": self.cancel_requested,
            "retry_of_job_id": self.retry_of_job_id,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "duration_seconds": self.duration_seconds,
            "estimated_duration_seconds": self.estimated_duration_seconds,
            "failure_reason": self.failure_reason,
            "errors": self.errors,
        }


def local_runner_name(prefix: str = "cli") -> str:
    """Marks a job as processed by this process (not by a Dagster run), e.g. `cli:host:1234`."""
    return f"{prefix}:{socket.gethostname()[:40]}:{os.getpid()}"


def organization_today(timezone: str) -> date:
    """Today's date where the organization is: the default invoice date."""
    return datetime.now(ZoneInfo(timezone)).date()


def parse_day(value: str | date | None, what: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BatchRequestError(f"{what} must be a date like 2026-11-30, not {value!r}") from exc


def check_due_days(value: int | None, what: str = "due days") -> None:
    """Refuse negative due days (None: the organization's payment terms, checked nowhere else)."""
    if value is not None and value < 0:
        raise BatchRequestError(f"{what} must be 0 or more, not {value}")


def organization_due_days(org: Mapping[str, Any]) -> int:
    """Days until an invoice is due when a request gives none: the organization's payment terms."""
    value = (org.get("settings") or {}).get("payment_terms_days")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return DEFAULT_DUE_DAYS


def _organization(engine: Engine, organization: str | int) -> dict:
    try:
        return resolve_organization(engine, organization)
    except LookupError as exc:
        raise BatchRequestError(str(exc)) from exc


def record_audit(
    conn: Connection, org_id: int, who: str, action: str, job_id: int, details: dict
) -> None:
    conn.execute(
        insert(audit_log).values(
            organization_id=org_id,
            created_by=who,
            action=action,
            entity_type="batch_job",
            entity_id=str(job_id),
            details=details,
        )
    )


def _insert_job(
    engine: Engine,
    org: dict,
    *,
    kind: str,
    request: dict,
    invoice_date: date | None,
    due_days: int | None,
    created_by: str | None,
    runner: str | None,
    retry_of_job_id: int | None = None,
    conn: Connection | None = None,
) -> int:
    if due_days is None:
        due_days = organization_due_days(org)
    check_due_days(due_days)
    if conn is None:
        with tenant_transaction(engine, org["id"], write=True) as own:
            return _insert_job(
                engine,
                org,
                kind=kind,
                request=request,
                invoice_date=invoice_date,
                due_days=due_days,
                created_by=created_by,
                runner=runner,
                retry_of_job_id=retry_of_job_id,
                conn=own,
            )
    who = created_by or "unknown"
    job_id = conn.execute(
        insert(batch_jobs)
        .values(
            organization_id=org["id"],
            kind=kind,
            request=request,
            invoice_date=invoice_date or organization_today(org["timezone"]),
            due_days=due_days,
            status="pending",
            created_by=who,
            dagster_run_id=runner,
            retry_of_job_id=retry_of_job_id,
            # known now for explicit lists; the start of processing sets the final count
            total_count=len(set(request.get("order_ids", []))) or len(request.get("customers", [])),
        )
        .returning(batch_jobs.c.id)
    ).scalar_one()
    summary = {k: v for k, v in request.items() if k != "order_ids" and k != "customers"}
    if "order_ids" in request:
        summary["orders"] = len(request["order_ids"])
    if "customers" in request:
        summary["customers"] = len(request["customers"])
    record_audit(conn, org["id"], who, "batch_job.enqueued", job_id, {"kind": kind, **summary})
    return job_id


def enqueue_sales_orders(
    engine: Engine,
    organization: str | int,
    *,
    order_ids: Sequence[int] | None = None,
    all_reviewed: bool = False,
    up_to: date | str | None = None,
    invoice_date: date | str | None = None,
    due_days: int | None = None,
    created_by: str | None = None,
    runner: str | None = None,
) -> int:
    """Queue invoicing of sales orders: explicit ids, or every reviewed order (up to a date).

    Returns the job id at once; the work happens in `process_batch_job`. `runner` marks the job as
    taken by a process outside Dagster so the sensor leaves it alone. `due_days` None: the
    organization's payment terms (`organization_due_days`).
    """
    org = _organization(engine, organization)
    if (order_ids is None) == (not all_reviewed):
        raise BatchRequestError("give either order ids or all_reviewed, not both or neither")
    if order_ids is not None:
        ids = validate_order_ids(order_ids)
        request: dict = {"order_ids": ids}
        if up_to is not None:
            raise BatchRequestError("up_to only applies to all_reviewed")
    else:
        up_to_day = parse_day(up_to, "up_to")
        request = {"all_reviewed": True, "up_to": up_to_day.isoformat() if up_to_day else None}
    return _insert_job(
        engine,
        org,
        kind=SALES_ORDERS,
        request=request,
        invoice_date=parse_day(invoice_date, "invoice date"),
        due_days=due_days,
        created_by=created_by,
        runner=runner,
    )


def validate_order_ids(values: Iterable[int | str]) -> list[int]:
    ids: list[int] = []
    for value in values:
        text = str(value).strip()
        if not text.isdigit() or int(text) <= 0:
            raise BatchRequestError(f"sales order ids are positive integers, not {value!r}")
        ids.append(int(text))
    if not ids:
        raise BatchRequestError("no sales order ids given")
    return ids


def missing_ids(
    engine: Engine, organization_id: int, table: Table, ids: Iterable[int]
) -> list[int]:
    """Those of `ids` that are no row of `table` (sales_orders, customers, items) in the organization."""
    wanted = sorted(set(ids))
    found: set[int] = set()
    with tenant_transaction(engine, organization_id) as conn:
        for start in range(0, len(wanted), 5000):
            found.update(
                conn.execute(
                    select(table.c.id).where(
                        table.c.organization_id == organization_id,
                        table.c.id.in_(wanted[start : start + 5000]),
                    )
                ).scalars()
            )
    return [i for i in wanted if i not in found]


def parse_order_ids(text: str) -> list[int]:
    """`--orders 12,13, 14` -> [12, 13, 14]."""
    return validate_order_ids(part for part in text.split(",") if part.strip())


def _decimal_text(value: object, what: str) -> str:
    try:
        return str(to_decimal(value))
    except MoneyError as exc:
        raise BatchRequestError(f"{what}: {exc}") from exc


def normalize_customer_lines(customers: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Validate a customer-driven request; amounts become decimal strings (exact in JSON)."""
    if not customers:
        raise BatchRequestError("no customers given")
    result = []
    for n, entry in enumerate(customers, start=1):
        where = f"customer entry {n}"
        customer_id = entry.get("customer_id")
        if not isinstance(customer_id, int) or isinstance(customer_id, bool) or customer_id <= 0:
            raise BatchRequestError(f"{where}: customer_id must be a positive integer")
        lines = entry.get("lines") or []
        if not lines:
            raise BatchRequestError(f"{where}: no lines")
        normalized = []
        for m, line in enumerate(lines, start=1):
            at = f"{where}, line {m}"
            item_id = line.get("item_id")
            line_type = line.get("line_type") or ("item" if item_id is not None else "charge")
            if line_type not in ("item", "discount", "charge"):
                raise BatchRequestError(f"{at}: line_type must be item, discount or charge")
            out: dict[str, Any] = {"line_type": line_type, "item_id": item_id}
            if item_id is not None and (not isinstance(item_id, int) or isinstance(item_id, bool)):
                raise BatchRequestError(f"{at}: item_id must be an integer")
            out["quantity"] = _decimal_text(line.get("quantity", 1), f"{at} quantity")
            for key in ("unit_price", "vat_rate"):
                if line.get(key) is not None:
                    out[key] = _decimal_text(line[key], f"{at} {key}")
            for key in ("description", "vat_category"):
                if line.get(key) is not None:
                    out[key] = str(line[key])
            if item_id is None:
                missing = [
                    k
                    for k in ("description", "unit_price", "vat_rate", "vat_category")
                    if k not in out
                ]
                if missing:
                    raise BatchRequestError(
                        f"{at}: a line without item_id needs {', '.join(missing)}"
                    )
            normalized.append(out)
        result.append({"customer_id": customer_id, "lines": normalized})
    return result


def enqueue_customer_lines(
    engine: Engine,
    organization: str | int,
    customers: Sequence[Mapping[str, Any]],
    *,
    invoice_date: date | str | None = None,
    due_days: int | None = None,
    created_by: str | None = None,
    runner: str | None = None,
) -> int:
    """Queue invoices for customers with given items, quantities and prices (no sales orders)."""
    org = _organization(engine, organization)
    return _insert_job(
        engine,
        org,
        kind=CUSTOMER_LINES,
        request={"customers": normalize_customer_lines(customers)},
        invoice_date=parse_day(invoice_date, "invoice date"),
        due_days=due_days,
        created_by=created_by,
        runner=runner,
    )


def _job_from_row(row: Mapping[str, Any]) -> BatchJob:
    return BatchJob(
        id=row["id"],
        organization_id=row["organization_id"],
        organization_slug=row["slug"],
        kind=row["kind"],
        status=row["status"],
        invoice_date=row["invoice_date"],
        due_days=row["due_days"],
        total_count=row["total_count"],
        processed_count=row["processed_count"],
        successful_count=row["successful_count"],
        failed_count=row["failed_count"],
        skipped_count=row["skipped_count"],
        cancel_requested=bool(row["cancel_requested"]),
        retry_of_job_id=row["retry_of_job_id"],
        runner=row["dagster_run_id"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        completed_at=row["completed_at"],
        duration_seconds=row["duration_seconds"],
        estimated_duration_seconds=row["estimated_duration_seconds"],
        failure_reason=row["failure_reason"],
        errors=list(row["errors"] or []),
    )


def _job_query():
    return select(batch_jobs, organizations.c.slug).join(
        organizations, organizations.c.id == batch_jobs.c.organization_id
    )


def get_batch_job(engine: Engine, job_id: int) -> BatchJob:
    """One job by id, whatever its organization (the id is what `batch-invoice` printed)."""
    with system_transaction(engine) as conn:
        row = conn.execute(_job_query().where(batch_jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise UnknownBatchJob(f"no batch job {job_id}")
    return _job_from_row(row)


def list_batch_jobs(
    engine: Engine,
    organization: str | int | None = None,
    *,
    status: str | None = None,
    limit: int = 20,
) -> list[BatchJob]:
    """The most recent jobs first: of one organization (id or slug) or of all, optionally in one
    status (`batch-list`)."""
    if status is not None and status not in BATCH_JOB_STATUSES:
        raise BatchRequestError(
            f"unknown status {status!r}; one of {', '.join(BATCH_JOB_STATUSES)}"
        )
    query = _job_query().order_by(batch_jobs.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(batch_jobs.c.status == status)
    if organization is None:
        with system_transaction(engine) as conn:  # every tenant's jobs, on purpose
            return [_job_from_row(r) for r in conn.execute(query).mappings()]
    org_id = _organization(engine, organization)["id"]
    with tenant_transaction(engine, org_id) as conn:
        rows = conn.execute(query.where(batch_jobs.c.organization_id == org_id)).mappings()
        return [_job_from_row(r) for r in rows]


def job_item_outcomes(
    engine: Engine, job: BatchJob, *, statuses: Sequence[str] = ("failed",), limit: int = 50
) -> list[dict]:
    """Per-order outcomes of a job (default: the failures), in request order."""
    with tenant_transaction(engine, job.organization_id) as conn:
        rows = conn.execute(
            select(
                batch_job_items.c.position,
                batch_job_items.c.sales_order_id,
                batch_job_items.c.customer_id,
                batch_job_items.c.status,
                batch_job_items.c.sales_invoice_id,
                batch_job_items.c.error_code,
                batch_job_items.c.error_message,
                batch_job_items.c.payload,
            )
            .where(batch_job_items.c.batch_job_id == job.id, batch_job_items.c.status.in_(statuses))
            .order_by(batch_job_items.c.position)
            .limit(limit)
        ).mappings()
        return [dict(r) for r in rows]


def cancel_batch_job(engine: Engine, job_id: int, *, cancelled_by: str | None = None) -> BatchJob:
    """Cancel a job: a pending job at once, a processing job at its next chunk boundary.

    What a processing job already committed stays (those invoices exist and keep their numbers);
    the orders it did not reach stay uninvoiced and eligible.
    """
    job = get_batch_job(engine, job_id)
    who = cancelled_by or "unknown"
    now = utcnow()
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        status = conn.execute(
            _lock(select(batch_jobs.c.status).where(batch_jobs.c.id == job_id), conn)
        ).scalar_one()
        if status == "pending":
            conn.execute(
                update(batch_jobs)
                .where(batch_jobs.c.id == job_id)
                .values(status="cancelled", cancel_requested=True, completed_at=now, updated_at=now)
            )
        elif status == "processing":
            conn.execute(
                update(batch_jobs)
                .where(batch_jobs.c.id == job_id)
                .values(cancel_requested=True, updated_at=now)
            )
        else:
            return get_batch_job(engine, job_id)
        record_audit(
            conn, job.organization_id, who, "batch_job.cancel_requested", job_id, {"status": status}
        )
    return get_batch_job(engine, job_id)


def _lock(query, conn: Connection):  # noqa: ANN001, ANN202 - a Select in, the same Select out
    # SQLite has no row locks; its writers hold the database lock from BEGIN IMMEDIATE instead.
    # FOR NO KEY UPDATE: a chunk in flight holds KEY SHARE on its job (the invoices' foreign key),
    # which FOR UPDATE would wait for, while that chunk may wait for the caller (a progress callback)
    return query.with_for_update(key_share=True) if conn.dialect.name == "postgresql" else query


def retry_failed(
    engine: Engine, job_id: int, *, created_by: str | None = None, runner: str | None = None
) -> int | None:
    """A new pending job over exactly the failed orders (or customers) of `job_id`; None if none failed.

    For a job that failed as a whole, the orders it did not reach count as failed too.
    """
    job = get_batch_job(engine, job_id)
    if not job.done:
        raise BatchRequestError(
            f"batch job {job_id} is {job.status}; retry it when it has finished"
        )
    # a failed job also hands on the orders it never reached; a cancelled one does not
    statuses = ("failed", "pending") if job.status == "failed" else ("failed",)
    org = _organization(engine, job.organization_id)
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        # one retry per job: the row lock orders concurrent requests, the check refuses the second
        conn.execute(_lock(select(batch_jobs.c.id).where(batch_jobs.c.id == job_id), conn))
        earlier = conn.execute(
            select(batch_jobs.c.id).where(batch_jobs.c.retry_of_job_id == job_id).limit(1)
        ).scalar()
        if earlier is not None:
            raise BatchRequestError(
                f"batch job {job_id} was already retried as job {earlier}; retry that one instead"
            )
        rows = conn.execute(
            select(
                batch_job_items.c.id,
                batch_job_items.c.sales_order_id,
                batch_job_items.c.payload,
                batch_job_items.c.status,
            )
            .where(batch_job_items.c.batch_job_id == job_id, batch_job_items.c.status.in_(statuses))
            .order_by(batch_job_items.c.position)
        ).all()
        if not rows:
            return None
        if job.kind == SALES_ORDERS:
            ids = [r.sales_order_id or int((r.payload or {})["sales_order_id"]) for r in rows]
            request: dict = {"order_ids": ids}
        else:
            request = {"customers": [r.payload for r in rows]}
        new_id = _insert_job(
            engine,
            org,
            kind=job.kind,
            request=request,
            invoice_date=job.invoice_date,
            due_days=job.due_days,
            created_by=created_by or job.created_by,
            runner=runner,
            retry_of_job_id=job_id,
            conn=conn,
        )
        # the orders the failed job never reached now belong to the retry: restarting the old job
        # must not invoice them too (customer lines have no unique key that would stop it)
        unreached = [r.id for r in rows if r.status == "pending"]
        if unreached:
            conn.execute(
                update(batch_job_items)
                .where(batch_job_items.c.id.in_(unreached))
                .values(
                    status="failed",
                    error_code="handed_to_retry",
                    error_message=f"not reached; handed to retry job {new_id}",
                    updated_at=utcnow(),
                )
            )
    return new_id


@dataclass(frozen=True)
class QueuedJob:
    """What the sensor needs to launch a run for a job."""

    id: int
    organization_slug: str
    kind: str
    runner: str | None = None


def pending_jobs(
    engine: Engine,
    *,
    after_id: int,
    recent_since: datetime,
    exclude_ids: Iterable[int] = (),
    limit: int = 100,
) -> list[QueuedJob]:
    """Pending jobs that no runner has taken: those after the sensor's cursor, plus recent ones.

    The recent window catches a job whose id was allocated before the cursor's but committed
    after the sensor read (ids are handed out at INSERT, rows become visible at COMMIT).
    """
    with system_transaction(engine) as conn:
        rows = conn.execute(
            select(batch_jobs.c.id, organizations.c.slug, batch_jobs.c.kind)
            .join(organizations, organizations.c.id == batch_jobs.c.organization_id)
            .where(
                batch_jobs.c.status == "pending",
                batch_jobs.c.dagster_run_id.is_(None),
                or_(batch_jobs.c.id > after_id, batch_jobs.c.created_at >= recent_since),
                # excluded in SQL, not after the LIMIT: jobs launched but not yet started would
                # otherwise fill every page and hide newer ones
                batch_jobs.c.id.not_in(sorted(set(exclude_ids))),
            )
            .order_by(batch_jobs.c.id)
            .limit(limit)
        ).all()
    return [QueuedJob(r.id, r.slug, r.kind) for r in rows]


def processing_jobs(engine: Engine, *, limit: int = 100) -> list[QueuedJob]:
    """Jobs in processing with their runner: the sensor resumes those whose Dagster run died."""
    with system_transaction(engine) as conn:
        rows = conn.execute(
            select(
                batch_jobs.c.id,
                organizations.c.slug,
                batch_jobs.c.kind,
                batch_jobs.c.dagster_run_id,
            )
            .join(organizations, organizations.c.id == batch_jobs.c.organization_id)
            # a job someone asked to cancel is not resumed; the stuck-job cleanup ends it cancelled
            .where(batch_jobs.c.status == "processing", batch_jobs.c.cancel_requested.is_(False))
            .order_by(batch_jobs.c.id)
            .limit(limit)
        ).all()
    return [QueuedJob(r.id, r.slug, r.kind, r.dagster_run_id) for r in rows]


def fail_stuck_jobs(
    engine: Engine, *, stuck_after: timedelta = DEFAULT_STUCK_AFTER, now: datetime | None = None
) -> list[BatchJob]:
    """Fail jobs that made no progress for `stuck_after`, with a reason a user can act on.

    Stuck: processing with no chunk committed (heartbeat) for that long, or pending while taken by
    a runner outside Dagster that never started. Their unfinished items become failed items
    (`job_stuck`), so `retry` covers exactly them; the orders themselves were not invoiced and stay
    eligible for any job.
    """
    now = now or utcnow()
    limit = now - stuck_after
    minutes = int(stuck_after.total_seconds() // 60)
    last_sign_of_life = func.coalesce(
        batch_jobs.c.heartbeat_at, batch_jobs.c.started_at, batch_jobs.c.created_at
    )
    stuck_filter = or_(
        and_(batch_jobs.c.status == "processing", last_sign_of_life < limit),
        and_(
            batch_jobs.c.status == "pending",
            batch_jobs.c.dagster_run_id.is_not(None),
            batch_jobs.c.created_at < limit,
        ),
    )
    failed: list[int] = []
    with system_transaction(engine, write=True) as conn:
        candidates = conn.execute(
            _lock(
                select(
                    batch_jobs.c.id,
                    batch_jobs.c.organization_id,
                    batch_jobs.c.started_at,
                    last_sign_of_life.label("seen"),
                    batch_jobs.c.cancel_requested,
                ),
                conn,
            )
            .where(stuck_filter)
            .order_by(batch_jobs.c.id)
        ).all()
        for job_id, org_id, started_at, seen, cancel_requested in candidates:
            if cancel_requested:
                # the user asked to stop it and its run died before the next chunk boundary: it
                # ends cancelled, and the orders it did not reach stay unprocessed, not "failed"
                conn.execute(
                    update(batch_jobs)
                    .where(batch_jobs.c.id == job_id)
                    .values(
                        status="cancelled",
                        failure_reason="cancelled; the run ended before the next chunk boundary",
                        completed_at=now,
                        updated_at=now,
                    )
                )
                record_audit(
                    conn, org_id, "stuck-job-cleanup", "batch_job.cancelled_stuck", job_id, {}
                )
                failed.append(job_id)
                continue
            seen_text = seen.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            reason = (
                f"no progress for more than {minutes} minutes (last progress {seen_text}): the run "
                "processing this job died or hangs. Committed invoices stay; the orders not reached "
                "were not invoiced and stay eligible (retry the failed items)."
            )
            conn.execute(
                update(batch_job_items)
                .where(
                    batch_job_items.c.batch_job_id == job_id, batch_job_items.c.status == "pending"
                )
                .values(
                    status="failed",
                    error_code="job_stuck",
                    error_message="not processed: the job was stopped as stuck",
                    updated_at=now,
                )
            )
            failed_items = (
                select(func.count())
                .where(
                    batch_job_items.c.batch_job_id == job_id, batch_job_items.c.status == "failed"
                )
                .scalar_subquery()
            )
            conn.execute(
                update(batch_jobs)
                .where(batch_jobs.c.id == job_id)
                .values(
                    status="failed",
                    failure_reason=reason,
                    failed_count=failed_items,
                    processed_count=batch_jobs.c.total_count,
                    completed_at=now,
                    duration_seconds=(now - started_at).total_seconds() if started_at else None,
                    updated_at=now,
                )
            )
            record_audit(
                conn,
                org_id,
                "stuck-job-cleanup",
                "batch_job.failed_stuck",
                job_id,
                {"reason": reason},
            )
            failed.append(job_id)
    return [get_batch_job(engine, job_id) for job_id in failed]


@dataclass(frozen=True)
class BatchStats:
    """One organization's batch invoicing on one day (its own timezone)."""

    day: date
    jobs: int
    jobs_by_status: dict[str, int]
    orders_requested: int
    invoices_created: int
    failed_items: int
    skipped_items: int
    average_duration_seconds: float | None
    orders_per_second: float | None


def batch_stats(engine: Engine, organization: str | int, day: date | None = None) -> BatchStats:
    """Jobs created on `day` (default: today where the organization is) and what they did."""
    org = _organization(engine, organization)
    zone = ZoneInfo(org["timezone"])
    day = day or organization_today(org["timezone"])
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    with tenant_transaction(engine, org["id"]) as conn:
        rows = conn.execute(
            select(
                batch_jobs.c.status,
                func.count().label("jobs"),
                func.coalesce(func.sum(batch_jobs.c.total_count), 0).label("total"),
                func.coalesce(func.sum(batch_jobs.c.successful_count), 0).label("successful"),
                func.coalesce(func.sum(batch_jobs.c.failed_count), 0).label("failed"),
                func.coalesce(func.sum(batch_jobs.c.skipped_count), 0).label("skipped"),
            )
            .where(
                batch_jobs.c.organization_id == org["id"],
                batch_jobs.c.created_at >= start,
                batch_jobs.c.created_at < end,
            )
            .group_by(batch_jobs.c.status)
            .order_by(batch_jobs.c.status)
        ).all()
        timed = conn.execute(
            select(batch_jobs.c.processed_count, batch_jobs.c.duration_seconds).where(
                batch_jobs.c.organization_id == org["id"],
                batch_jobs.c.created_at >= start,
                batch_jobs.c.created_at < end,
                batch_jobs.c.duration_seconds.is_not(None),
            )
        ).all()
    seconds = sum(t.duration_seconds for t in timed)
    return BatchStats(
        day=day,
        jobs=sum(r.jobs for r in rows),
        jobs_by_status={r.status: r.jobs for r in rows},
        orders_requested=sum(int(r.total) for r in rows),
        invoices_created=sum(int(r.successful) for r in rows),
        failed_items=sum(int(r.failed) for r in rows),
        skipped_items=sum(int(r.skipped) for r in rows),
        average_duration_seconds=round(seconds / len(timed), 3) if timed else None,
        orders_per_second=round(sum(t.processed_count for t in timed) / seconds, 1)
        if seconds > 0
        else None,
    )
