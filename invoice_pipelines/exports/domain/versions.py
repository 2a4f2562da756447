"""The versions of a month in the database: the latest one and whether its files are still there,
what changed since, and recording a new one (its `exports` row, its items, the status changes)."""

from __future__ import annotations

from concurrent.futures import wait
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update

from invoice_pipelines.core.export_files import file_keys
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.money import ZERO
from invoice_pipelines.db.incoming_status import StaleDocument, change_status_where
from invoice_pipelines.db.tables import export_items, exports
from invoice_pipelines.exports.domain.job import Job
from invoice_pipelines.exports.domain.reads import (
    booked_incoming,
    insert_booked_items,
    sales_in_month,
    validated_in_month,
)
from invoice_pipelines.exports.domain.result import ExportResult
from invoice_pipelines.resources.files.files import Files


def latest_version(conn, organization_id: int, direction: str, period: str):
    e = exports.c
    return conn.execute(
        select(
            e.id, e.version, e.fingerprint, e.files, e.closed, e.purged_at, e.purge_result, e.notes
        )
        .where(e.organization_id == organization_id, e.direction == direction, e.period == period)
        .order_by(e.version.desc())
        .limit(1)
    ).first()


def files_gone(conn, store: Files, job: Job, latest) -> str | None:
    """Why the latest version's files cannot be handed out again, or None when all are there.

    A version whose files are missing without a record of it is marked `missing` (as housekeeping
    marks a version it found without files), so its row no longer claims files that are gone.
    """
    if latest.purged_at is not None:
        when = latest.purged_at.date().isoformat()
        if latest.purge_result == "missing":
            return f"the files of version {latest.version} were found missing on {when}"
        return f"the files of version {latest.version} were removed by archive retention on {when}"
    recorded = set(latest.files or {})
    provisional = bool((latest.notes or {}).get("provisional"))
    keys = file_keys(
        job.settings.slug, job.period, job.direction, latest.version, provisional=provisional
    )
    missing = sorted(
        kind for kind, key in keys.items() if kind in recorded and not store.exists(key)
    )
    if not missing:
        return None
    now = datetime.now(UTC)
    conn.execute(
        update(exports)
        .where(exports.c.id == latest.id, exports.c.purged_at.is_(None))
        .values(purged_at=now, purge_result="missing")
    )
    return (
        f"the files of version {latest.version} were missing on {now.date().isoformat()} "
        f"({', '.join(missing)})"
    )


def items_before(conn, latest) -> dict[int, str]:
    """invoice id -> status of its item in the latest version ({} when there is none)."""
    if latest is None:
        return {}
    return items_by_invoice(conn.execute(items_query(latest)))


def items_query(latest):
    """The latest version's items: (incoming invoice id, sales invoice id, status)."""
    items = export_items.c
    return select(items.incoming_invoice_id, items.sales_invoice_id, items.status).where(
        items.export_id == latest.id
    )


def items_by_invoice(rows) -> dict[int, str]:
    """invoice id -> status, of the rows of `items_query`."""
    return {incoming_id or sales_id: status for incoming_id, sales_id, status in rows}


def version_notes(latest, before: dict[int, str], booked) -> dict:
    """What changed since the latest version: corrected, new and removed invoices."""
    if latest is None:
        return {}
    now = {inv.id: inv for inv, _ in booked}
    corrected = sorted(
        (inv.number or str(inv.id))
        for inv in now.values()
        if before.get(inv.id) == "exported" and inv.status == Status.VALIDATED.value
    )
    added = sorted(i for i in now if before.get(i) != "exported")
    removed = sorted(i for i, status in before.items() if status == "exported" and i not in now)
    notes: dict = {"replaces_version": latest.version}
    if corrected:
        notes["corrected"] = corrected
    if added:
        notes["newly_booked"] = len(added)
    if removed:
        notes["no_longer_booked"] = removed
    if latest.closed:
        notes["warning"] = (
            f"version {latest.version} was exported with Festschreibung (month closed): its "
            "bookings are locked in DATEV and must be reversed there, not overwritten"
        )
    return notes


def export_values(job: Job, booked, result: ExportResult, notes) -> dict:
    """The columns of an `exports` row that the plan decides."""
    sums = result.totals.get(job.settings.currency, [ZERO, ZERO, ZERO])
    return {
        "invoice_count": len(booked),
        "booking_count": result.booking_count,
        "skipped_count": len(result.skipped),
        "net_total": sums[0],
        "tax_total": sums[1],
        "gross_total": sums[2],
        "notes": {
            **notes,
            **({"provisional": True} if job.provisional else {}),
            "totals_by_currency": {
                cur: [format(v, "f") for v in values] for cur, values in result.totals.items()
            },
        },
    }


def insert_export(conn, store, job: Job, version, keys, values: dict) -> int:
    settings = job.settings
    return conn.execute(
        insert(exports)
        .values(
            organization_id=settings.organization_id,
            direction=job.direction,
            period=job.period,
            version=version,
            fingerprint="",  # set once the rows are rendered, in the same transaction
            files={kind: store.location(key) for kind, key in keys.items()},
            closed=job.closed,
            dagster_run_id=job.run_id,
            created_by=job.requested_by,
            **values,
        )
        .returning(exports.c.id)
    ).scalar_one()


def insert_skipped_items(conn, job: Job, export_id: int, invoices, result) -> None:
    """The skipped invoices one by one (few, each with its reason); the booked ones follow in one
    INSERT ... SELECT over the same month (the snapshot makes it the set that was read)."""
    if not result.skipped:
        return
    column = "incoming_invoice_id" if job.direction == "incoming" else "sales_invoice_id"
    by_id = {inv.id: inv for inv in invoices}
    conn.execute(
        insert(export_items),
        [
            {
                "organization_id": job.settings.organization_id,
                "export_id": export_id,
                column: invoice_id,
                "invoice_number": (number or None) and number[:128],
                "status": "skipped",
                "reason": reason,
                "document_version": by_id[invoice_id].version,
                "net_total": by_id[invoice_id].net_total,
                "tax_total": by_id[invoice_id].tax_total,
                "gross_total": by_id[invoice_id].gross_total,
            }
            for invoice_id, number, reason in result.skipped
        ],
    )


@dataclass
class EarlyRecord:
    """A version recorded before its plan was known (`record_early`)."""

    savepoint: object
    export_id: int
    recording: object  # the Future of the items and status changes: (items, documents moved)

    def undo(self) -> None:
        wait([self.recording])
        self.savepoint.rollback()

    def check(self, booked: int, pending: int) -> None:
        """Once recorded: an item for each of the `booked` invoices the export read and each of
        the `pending` VALIDATED ones moved, else nothing of it is kept (the transaction rolls
        back), as `record` checks when it is given the counts."""
        inserted, moved = self.recording.result()
        if inserted != booked:
            raise RuntimeError(
                f"export {self.export_id}: {inserted} items recorded for {booked} invoices"
            )
        if moved != pending:
            raise StaleDocument(
                f"{moved} documents were {Status.VALIDATED} where {pending} were expected: "
                "someone changed them meanwhile"
            )


def record_early(conn, store, pool, job: Job, version, keys, invoices=None) -> EarlyRecord:
    """In a savepoint, the `exports` row of the new version (what the plan decides is set when
    the files are written) and, on another thread, an item for every invoice of the month and
    VALIDATED -> EXPORTED, as if the plan skipped nothing: only then is it the version's.
    `invoices`: the month's invoices, or None when they are being read meanwhile (the counts are
    then checked by `EarlyRecord.check` before the savepoint is kept)."""
    savepoint = conn.begin_nested()
    export_id = insert_export(
        conn,
        store,
        job,
        version,
        keys,
        export_values(job, invoices or [], ExportResult("", "", ""), {}),
    )
    if invoices is None:
        booked = pending = None
    else:
        booked = len(invoices)
        pending = sum(1 for inv in invoices if inv.status == Status.VALIDATED.value)
    recording = pool.submit(record, conn, job, export_id, booked, pending)
    return EarlyRecord(savepoint, export_id, recording)


def record(
    conn, job: Job, export_id: int, booked: int | None, pending: int | None
) -> tuple[int, int]:
    """The booked items (every invoice of the month the export did not record as skipped) and
    the status changes: database work only. (items recorded, documents moved); checked against
    `booked` and `pending` when they are given (None: the caller checks)."""
    settings, period, direction = job.settings, job.period, job.direction
    inserted = conn.execute(
        insert_booked_items(settings.organization_id, period, direction, export_id)
    ).rowcount
    if inserted < 0:
        # psycopg 3 under SQLAlchemy 2.1 reports no row count for an INSERT: count them
        inserted = conn.execute(
            select(func.count())
            .select_from(export_items)
            .where(export_items.c.export_id == export_id, export_items.c.status == "exported")
        ).scalar_one()
    if booked is not None and inserted != booked:
        raise RuntimeError(f"export {export_id}: {inserted} items recorded for {booked} invoices")
    moved = 0
    if direction == "incoming":
        moved = change_status_where(
            conn,
            settings.organization_id,
            booked_incoming(settings.organization_id, period, export_id),
            Status.VALIDATED,
            Status.EXPORTED,
            pending,
        )
    return inserted, moved


def new_version_likely(conn, organization_id: int, period: str, direction: str, latest) -> bool:
    """Whether the export will most likely write a new version (only the plan can tell): incoming
    documents of the month wait in VALIDATED, or a month of sales invoices was never exported."""
    if direction == "incoming":
        waiting = validated_in_month(organization_id, period)
    elif latest is None:
        waiting = sales_in_month(organization_id, period)
    else:
        return False
    return conn.execute(select(waiting.exists())).scalar_one()
