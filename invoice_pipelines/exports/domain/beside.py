"""The connection beside an export (PostgreSQL, `lines_beside`): what it reads in the export's
snapshot before it writes the lines file (the month's VAT rows; for incoming invoices the
invoices, the accounts given so far and the register's, the latest version's items), and how
the export takes those rows, or reads them itself when that connection failed first."""

from __future__ import annotations

from concurrent.futures import Future, wait
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from invoice_pipelines.exports.domain import lines_beside
from invoice_pipelines.exports.domain.accounts import (
    assign_accounts,
    given_query,
    kind_of,
    number_accounts,
    registered_query,
)
from invoice_pipelines.exports.domain.files import remove_leftover
from invoice_pipelines.exports.domain.job import Job
from invoice_pipelines.exports.domain.reads import (
    booked_lines_query,
    invoice_records,
    invoices_query,
    vat_rows_query,
)
from invoice_pipelines.exports.domain.versions import EarlyRecord, items_query, new_version_likely
from invoice_pipelines.resources.files.files import Files


@dataclass
class Beside:
    """What the connection beside reads for the export, in its snapshot, before the lines file:
    each a Future of its rows (None where not read there)."""

    vat_rows: Future  # the month's VAT rows
    invoices: Future | None = None  # incoming: the month's invoices,
    given: Future | None = None  # the suppliers' accounts given so far,
    registered: Future | None = None  # the supplier register's accounts,
    before: Future | None = None  # the latest version's items (when there is one)


def start_beside(conn, engine: Engine, store: Files, pool, job: Job, snapshot, latest, keys):
    """On PostgreSQL the lines file is written by a second connection in the export's own
    snapshot (PostgreSQL's exported snapshot: the same rows, whatever commits meanwhile), from the
    start when a new version is likely (documents of the month wait in VALIDATED; sales invoices:
    the month was never exported and has some), while the export's connection reads and plans:
    the lines of every invoice of the month. Should the plan skip an invoice, it is written again
    without them; should no version be written after all, it is removed.

    That connection first reads the month's VAT rows for the export's (the same snapshot), and,
    for incoming invoices, before them the month's invoices and the accounts its suppliers may
    have (and after them the latest version's items): the export's connection then records the
    version from the start, and the recording (the items' foreign-key checks and the status
    changes, the longest part of an export) waits for no read.

    Returns the lines file's future and a `Beside` of the rows' futures (None, None where not
    started)."""
    settings, period, direction = job.settings, job.period, job.direction
    org = settings.organization_id
    if snapshot is None or not new_version_likely(conn, org, period, direction, latest):
        return None, None
    remove_leftover(store, keys["csv_lines"])
    beside = Beside(Future())
    reads = []
    if direction == "incoming":
        beside.invoices, beside.given, beside.registered = Future(), Future(), Future()
        reads += [
            (beside.invoices, invoices_query(org, period, direction)),
            (beside.given, given_query(org, kind_of(direction))),
            (beside.registered, registered_query(org)),
        ]
    reads.append((beside.vat_rows, vat_rows_query(org, period, direction)))
    if direction == "incoming" and latest is not None:
        beside.before = Future()
        reads.append((beside.before, items_query(latest)))
    early_lines = pool.submit(
        lines_beside.write_lines_beside,
        engine,
        snapshot,
        org,
        store,
        keys["csv_lines"],
        booked_lines_query(org, period, direction, skipped=()),
        first=lines_beside.read_into(*reads),
    )
    return early_lines, beside


def read_beside(conn, job: Job, beside: Beside, early_lines: Future, early: EarlyRecord):
    """The month's incoming invoices read beside, their suppliers' accounts (the new ones
    numbered from the accounts given so far, read beside too: the rows to write once the
    recording is done) and the early record, which stays unless the connection beside failed
    before it had the invoices: this one would then read the version being recorded, so that is
    undone, the invoices are read here, their new suppliers get their accounts at once and the
    version is recorded after the plan. (invoices, partners, new accounts' rows, early record)"""
    settings, period, direction = job.settings, job.period, job.direction
    org = settings.organization_id
    rows = lines_beside.rows_beside(beside.invoices, early_lines)
    if rows is None:
        early.undo()
        invoices = invoice_records(conn.execute(invoices_query(org, period, direction)).all())
        return invoices, assign_accounts(conn, settings, direction, invoices), [], None
    invoices = invoice_records(rows)
    partners, new_accounts = number_accounts(
        settings,
        direction,
        invoices,
        beside_or_here(
            beside.given, early_lines, early, conn, given_query(org, kind_of(direction))
        ),
        lambda: beside_or_here(beside.registered, early_lines, early, conn, registered_query(org)),
    )
    return invoices, partners, new_accounts, early


def beside_or_here(rows: Future, beside: Future, early, conn, query) -> list:
    """The rows the connection beside read into `rows`, or, when it failed before it had them,
    those of `query` read on this connection once the recording is done with it."""
    found = lines_beside.rows_beside(rows, beside)
    if found is not None:
        return found
    if early is not None:
        wait([early.recording])
        early.recording.result()
    return conn.execute(query).all()
