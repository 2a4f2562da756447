"""Batch job requests: validate what to invoice, and enqueue it as a pending batch job."""

# A batch job is one row of `batch_jobs`; anything that can write that table can enqueue work. The
# row's `kind` names the kind that runs it and its `request` says what to do, in the kind's own
# terms: invoicing (`billing/domain/invoicing_kinds.py`: orders or customers' lines, with the documents or
# sending asked for after them, queued with the job as its follow-ups), documents
# (`documents/domain/batch.py`), communications (`delivery/domain/batch.py`), credit notes
# (`billing/domain/credit_note_jobs.py`: one credit note per item, each issued exactly once, through
# `queue/domain/atomic.py`). A kind's `follow_ups` are queued with its job, in the same transaction.
#
# `status` starts `pending`; the batch jobs sensor launches one run per pending job (rows whose
# `dagster_run_id` is already set belong to a runner outside Dagster, such as `batch-invoice --wait`).

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.engine import Connection

from invoice_pipelines.core.batch_requests import BatchRequestError

# what a batch request the user must fix raises (a kind's own request checks in core raise it too)
from invoice_pipelines.core.chunks import chunked
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.audit_log import record_audit_entries
from invoice_pipelines.db.tables import batch_jobs
from invoice_pipelines.db.tenancy import UnknownOrganization, find_organization, tenant_transaction
from invoice_pipelines.queue.domain.job_kind import FollowUps

# payment terms when the organization's settings give none (`settings.payment_terms_days`); the
# same default the schema gives a customer's payment terms
DEFAULT_DUE_DAYS = 14

# The largest id a request may name: PostgreSQL's bigint (and SQLite's INTEGER); a larger one
# would end in an OverflowError in the driver instead of a sentence.
MAX_ID = 2**63 - 1


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


def organization_due_days(org: Organization) -> int:
    """Days until an invoice is due when a request gives none: the organization's payment terms."""
    value = org.settings.get("payment_terms_days")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return DEFAULT_DUE_DAYS


def lookup_organization(system: Engine, organization_id: int) -> Organization:
    """The organization of a queued job (its `organization_id`), for the work that starts from a
    job id (a retry, a chunk); one that is gone is the request's error."""
    try:
        return find_organization(system, organization_id)
    except UnknownOrganization as exc:
        raise BatchRequestError(str(exc)) from exc


def record_audit(
    conn: Connection, org_id: int, who: str, action: str, job_id: int, details: dict
) -> None:
    record_audit_entries(conn, org_id, who, action, "batch_job", [job_id], details)


def insert_job(
    engine: Engine,
    org: Organization,
    *,
    kind: str,
    request: dict,
    invoice_date: date | None,
    due_days: int | None,
    created_by: str | None,
    runner: str | None,
    retry_of_job_id: int | None = None,
    follow_ups: FollowUps | None = None,
    conn: Connection | None = None,
) -> int:
    """Queue a pending job of `kind`; its id. `follow_ups` are its kind's
    (`Requests.follow_ups`), given by the caller that has the kind: the jobs they name are queued
    with it, in the same transaction (each without follow-ups of its own)."""
    if due_days is None:
        due_days = organization_due_days(org)
    check_due_days(due_days)
    if conn is None:
        with tenant_transaction(engine, org.id, write=True) as own:
            return insert_job(
                engine,
                org,
                kind=kind,
                request=request,
                invoice_date=invoice_date,
                due_days=due_days,
                created_by=created_by,
                runner=runner,
                retry_of_job_id=retry_of_job_id,
                follow_ups=follow_ups,
                conn=own,
            )
    who = created_by or "unknown"
    job_id = conn.execute(
        insert(batch_jobs)
        .values(
            organization_id=org.id,
            kind=kind,
            request=request,
            invoice_date=invoice_date or organization_today(org.timezone),
            due_days=due_days,
            status="pending",
            created_by=who,
            dagster_run_id=runner,
            retry_of_job_id=retry_of_job_id,
            # known now for explicit lists; the start of processing sets the final count
            total_count=len(set(request.get("order_ids", [])))
            or len(request.get("customers", []))
            or len(set(request.get("invoice_ids", [])))
            or len(request.get("items", [])),
        )
        .returning(batch_jobs.c.id)
    ).scalar_one()
    lists = ("order_ids", "customers", "invoice_ids", "items")
    summary = {k: v for k, v in request.items() if k not in lists}
    if "order_ids" in request:
        summary["orders"] = len(request["order_ids"])
    if "customers" in request:
        summary["customers"] = len(request["customers"])
    if "invoice_ids" in request:
        summary["invoices"] = len(request["invoice_ids"])
    if "items" in request:
        summary["items"] = len(request["items"])
    record_audit(conn, org.id, who, "batch_job.enqueued", job_id, {"kind": kind, **summary})
    for follow_up_kind, follow_up in follow_ups(request, job_id) if follow_ups else ():
        # queued with its job (an invoicing job's documents or sending), in one commit: a crash
        # between the two cannot lose it, and it exists once (it waits until job_id has finished)
        insert_job(
            engine,
            org,
            kind=follow_up_kind,
            request=follow_up,
            invoice_date=invoice_date,
            due_days=due_days,
            created_by=created_by,
            runner=None,
            conn=conn,
        )
    return job_id


def validate_order_ids(values: Iterable[int | str]) -> list[int]:
    return positive_ids(values, "sales order")


def positive_ids(values: Iterable[int | str], what: str) -> list[int]:
    """`values` as ids of `what` ("sales order"), in their order; BatchRequestError names the
    first that is no positive id, or says that none was given."""
    ids: list[int] = []
    for value in values:
        text = str(value).strip()
        if not text.isdigit() or not 0 < int(text) <= MAX_ID:
            raise BatchRequestError(f"{what} ids are positive integers, not {value!r}")
        ids.append(int(text))
    if not ids:
        raise BatchRequestError(f"no {what} ids given")
    return ids


def missing_ids(
    engine: Engine, organization_id: int, table: Table, ids: Iterable[int]
) -> list[int]:
    """Those of `ids` that are no row of `table` (sales_orders, customers, items) in the organization."""
    wanted = sorted(set(ids))
    found: set[int] = set()
    with tenant_transaction(engine, organization_id) as conn:
        for chunk in chunked(wanted, 5000):
            found.update(
                conn.execute(
                    select(table.c.id).where(
                        table.c.organization_id == organization_id, table.c.id.in_(chunk)
                    )
                ).scalars()
            )
    return [i for i in wanted if i not in found]


def parse_order_ids(text: str) -> list[int]:
    """`--orders 12,13, 14` -> [12, 13, 14]."""
    return validate_order_ids(part for part in text.split(",") if part.strip())
