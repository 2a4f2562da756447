"""Writing version N+1 of a month: its files, while the database records the version beside."""

from __future__ import annotations

import logging
from concurrent.futures import wait

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.db.audit_log import record_audit_entries
from invoice_pipelines.db.tables import exports
from invoice_pipelines.exports.domain import fingerprints, lines_beside
from invoice_pipelines.exports.domain.accounts import write_accounts
from invoice_pipelines.exports.domain.csv import LINE_COLUMNS, query_file
from invoice_pipelines.exports.domain.datev import bookings_file, partners_file
from invoice_pipelines.exports.domain.documents import write_package
from invoice_pipelines.exports.domain.files import remove_leftover
from invoice_pipelines.exports.domain.job import Job
from invoice_pipelines.exports.domain.payments import payment_changes
from invoice_pipelines.exports.domain.reads import booked_lines_query
from invoice_pipelines.exports.domain.rendering import partner_rows, render
from invoice_pipelines.exports.domain.result import Clock, ExportResult
from invoice_pipelines.exports.domain.versions import (
    export_values,
    insert_export,
    insert_skipped_items,
    items_before,
    record,
    version_notes,
)

log = logging.getLogger(__name__)


def write_version(
    engine, conn, store, pool, job: Job, snapshot, latest, before, version, keys, invoices,
    booked, pending, partners, rendered, early_lines, early, result: ExportResult, clock: Clock,
    package=None, accounts=(),
):  # fmt: skip
    """Version `version` of the month: its `exports` row and items, the status changes and its
    files. `early_lines`: the lines file being written already (no invoice skipped), or None;
    `early`: the row and items being recorded already (nothing skipped), or None; `accounts`:
    the rows of new partners' accounts to write once the recording is done (`write_accounts`).
    (files, export id, notes)"""
    settings, period, direction = job.settings, job.period, job.direction
    header = job.header
    if before is None:
        before = items_before(conn, latest)
    notes = {**result.notes, **version_notes(latest, before, booked)}
    notes.update(payment_changes(latest, result))
    if result.rewritten:
        # not a correction: the same bookings, written again because the files were gone
        notes["rewrites_version"] = latest.version
        notes["rewritten_because"] = result.rewritten
        notes["warning"] = (
            f"version {version} books exactly what version {latest.version} booked: import "
            f"it into DATEV only where version {latest.version} was never imported"
        )
    for kind, key in keys.items():
        # a file of this version number that no export row refers to is a leftover of an
        # attempt that did not commit (the lock is held: nobody else writes this version)
        if not (kind == "csv_lines" and early_lines is not None):
            remove_leftover(store, key)
    if package is not None and package.packed:
        # kept with the version: a later run that finds the month unchanged reports it too
        notes["documents_packed"] = len(package.packed)
    values = export_values(job, booked, result, notes)
    if early is not None:
        export_id, recording = early.export_id, early.recording
    else:
        export_id = insert_export(conn, store, job, version, keys, values)
        insert_skipped_items(conn, job, export_id, invoices, result)
        # The database records while this thread renders and writes the files that need no
        # database (the driver releases the GIL while a statement runs; nothing else uses the
        # connection meanwhile).
        recording = pool.submit(record, conn, job, export_id, len(booked), len(pending))
    # On PostgreSQL the lines file is written at the same time (or was already) by a second
    # connection in the export's snapshot; the skipped invoices are named to it, as it cannot
    # see the items this transaction recorded.
    lines_query = booked_lines_query(
        settings.organization_id,
        period,
        direction,
        export_id,
        skipped=[invoice_id for invoice_id, _, _ in result.skipped] if snapshot else None,
    )
    lines = early_lines
    if lines is None and snapshot is not None:
        lines = pool.submit(
            lines_beside.write_lines_beside,
            engine,
            snapshot,
            settings.organization_id,
            store,
            keys["csv_lines"],
            lines_query,
        )
    try:
        if rendered is None:
            rendered = render(job, header, booked, partners, result)
        files = {
            "datev": store.write(
                keys["datev"], bookings_file(header, rendered.bookings, settings.encoding)
            ),
            "datev_partners": store.write(
                keys["datev_partners"],
                partners_file(
                    header, partner_rows(booked, partners, result.payments), settings.encoding
                ),
            ),
            # the same bytes the fingerprint hashes
            "csv": store.write(keys["csv"], rendered.csv),
        }
        if package is not None and package.packed:
            files["datev_documents"] = write_package(
                store, keys["datev_documents"], package, job.documents
            )
            result.documents_packed = len(package.packed)
        recording.result()
        if early is not None:
            early.check(len(booked), len(pending))
            early.savepoint.commit()  # the version's: RELEASE SAVEPOINT
        # the connection is free again: the new partners' accounts, while the lines file may
        # still be written beside
        write_accounts(conn, list(accounts))
    finally:
        wait([recording] if lines is None else [recording, lines])
    clock.lap("record_and_write")
    if lines is not None:
        try:
            files["csv_lines"] = lines.result()
        except DBAPIError as exc:
            # the second connection failed (none to be had, or it broke): write the file on
            # this connection after all, as without one
            log.warning("export %s: the lines file beside it failed (%s); again", export_id, exc)
            lines = None
            remove_leftover(store, keys["csv_lines"])
    if lines is None:
        # SQLite: the lines file follows the recorded items, on this connection
        files["csv_lines"] = query_file(conn, store, keys["csv_lines"], lines_query, LINE_COLUMNS)
    clock.lap("write_lines")
    conn.execute(
        update(exports)
        .where(exports.c.id == export_id)
        .values(
            fingerprint=fingerprints.version_fingerprint(rendered, booked, result),
            # what was written (the row recorded before the plan named every kind of file)
            files=dict(files),
            **{**values, "booking_count": len(rendered.bookings)},
        )
    )
    record_audit_entries(
        conn,
        settings.organization_id,
        job.requested_by,
        "export",
        "export",
        [export_id],
        {
            "direction": direction,
            "period": period,
            "version": version,
            "invoices": len(booked),
            "skipped": len(result.skipped),
            "documents": len(package.packed) if package is not None else 0,
            "dagster_run_id": job.run_id,
        },
    )
    return files, export_id, notes
