"""The tables of an organization's fiscal year as the carrier holds them: each one's description
(audit/domain/description.py) and the read that fills it, all in one snapshot of the database.

Which rows belong to the year: an invoice dated in it (an incoming one without a date: received
in it), and every invoice a payment, dunning notice or credit note of the year names, so every
foreign key of the carrier finds its row; the DATEV export versions of the year's months with
their bookings as the files the tax advisor got say them; payments, dunning notices, supplier
changes and audit rows of the year by their own day. Customers and suppliers: the register as
it stands (master data the year's rows refer to). Year boundaries are the organization's local
midnight of 1 January.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, literal, null, or_, select, union

from invoice_pipelines.audit.domain.description import (
    Column,
    ForeignKey,
    TableDescription,
    day,
    money,
    number,
    text,
)
from invoice_pipelines.core.export_files import file_keys
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import (
    audit_log,
    customers,
    dunning_notices,
    export_items,
    exports,
    incoming_invoice_lines,
    incoming_invoice_payments,
    incoming_invoice_taxes,
    incoming_invoices,
    incoming_reviews,
    processing_errors,
    sales_invoice_documents,
    sales_invoice_lines,
    sales_invoice_payments,
    sales_invoice_taxes,
    sales_invoices,
    supplier_changes,
    suppliers,
    uploads,
)
from invoice_pipelines.resources.files.files import Files


@dataclass(frozen=True)
class Year:
    """The fiscal year as the reads compare: its days and its instants (local midnight)."""

    year: int
    first: date
    after: date
    start: datetime
    end: datetime

    @classmethod
    def of(cls, organization: Organization, year: int) -> Year:
        zone = ZoneInfo(organization.timezone or "Europe/Berlin")
        return cls(
            year,
            date(year, 1, 1),
            date(year + 1, 1, 1),
            datetime(year, 1, 1, tzinfo=zone),
            datetime(year + 1, 1, 1, tzinfo=zone),
        )

    def days(self, column):
        return and_(column >= self.first, column < self.after)

    def instants(self, column):
        return and_(column >= self.start, column < self.end)


# where the carrier keeps the files the tables name, relative to index.xml
ORIGINALS = "originals"
DOCUMENTS = "documents"
LETTERS = "letters"
EXPORT_FILES = "exports"


@dataclass(frozen=True)
class Wanted:
    """A file the tables name: its path in the carrier, which store holds it and its key there,
    and the SHA-256 recorded when it was stored (None where none was)."""

    path: str
    store: str  # upload_store | document_store | export_store
    key: str
    sha256: str | None


@dataclass
class Reading:
    """What the reads need besides the connection: the year, the organization, the export store
    (the DATEV files are read back as written) and the files the tables name, collected."""

    conn: Connection
    organization: Organization
    year: Year
    export_store: Files
    files: list[Wanted]
    missing: list[str]


Read = Callable[[Reading], Iterator[tuple]]


@dataclass(frozen=True)
class CarrierTable:
    description: TableDescription
    read: Read


def _incoming_ids(r: Reading):
    y, ii = r.year, incoming_invoices
    paid = select(incoming_invoice_payments.c.incoming_invoice_id).where(
        y.days(incoming_invoice_payments.c.paid_on)
    )
    return select(ii.c.id).where(
        ii.c.organization_id == r.organization.id,
        or_(
            y.days(ii.c.issue_date),
            and_(ii.c.issue_date.is_(None), y.instants(ii.c.created_at)),
            ii.c.id.in_(paid),
        ),
    )


def _sales_ids(r: Reading):
    y, si = r.year, sales_invoices
    named = union(
        select(sales_invoice_payments.c.sales_invoice_id).where(
            y.days(sales_invoice_payments.c.paid_on)
        ),
        select(dunning_notices.c.sales_invoice_id).where(y.days(dunning_notices.c.as_of)),
        select(si.c.corrects_invoice_id).where(
            si.c.corrects_invoice_id.is_not(None), y.days(si.c.issue_date)
        ),
    )
    return select(si.c.id).where(
        si.c.organization_id == r.organization.id,
        or_(y.days(si.c.issue_date), si.c.id.in_(named)),
    )


def _rows(r: Reading, query) -> Iterator[tuple]:
    for row in r.conn.execution_options(yield_per=2000).execute(query):
        yield tuple(row)


def _original_path(upload_id: int, filename: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[-120:]
    return f"{ORIGINALS}/{upload_id}-{safe}"


def _read_originals(r: Reading) -> Iterator[tuple]:
    u = uploads
    query = (
        select(u.c.id, u.c.filename, u.c.storage_key, u.c.size_bytes, u.c.content_hash)
        .select_from(u.join(incoming_invoices, incoming_invoices.c.upload_id == u.c.id))
        .where(u.c.organization_id == r.organization.id)
        .where(incoming_invoices.c.id.in_(_incoming_ids(r)))
        .order_by(u.c.id)
    )
    for upload_id, filename, key, size, sha in r.conn.execute(query):
        path = _original_path(upload_id, filename)
        r.files.append(Wanted(path, "upload_store", key, sha))
        yield (upload_id, filename, path, size, sha)


def _read_incoming_history(r: Reading) -> Iterator[tuple]:
    """The recorded steps of each document: received, the intake's findings, a person's review,
    each export that booked or skipped it, and the status it has now (with when it got it)."""
    ids = _incoming_ids(r)
    ii, pe, rv, ei, ex = (
        incoming_invoices,
        processing_errors,
        incoming_reviews,
        export_items,
        exports,
    )
    org = r.organization.id
    queries = (
        select(ii.c.id, ii.c.created_at, literal("received"), ii.c.created_by, ii.c.format).where(
            ii.c.id.in_(ids)
        ),
        select(
            pe.c.incoming_invoice_id,
            pe.c.created_at,
            literal("finding"),
            null(),
            pe.c.stage + ": " + pe.c.message,
        ).where(pe.c.organization_id == org, pe.c.incoming_invoice_id.in_(ids)),
        select(
            rv.c.incoming_invoice_id,
            rv.c.reviewed_at,
            rv.c.action,
            rv.c.reviewed_by,
            rv.c.field,
        ).where(rv.c.organization_id == org, rv.c.incoming_invoice_id.in_(ids)),
        select(
            ei.c.incoming_invoice_id,
            ex.c.created_at,
            ei.c.status,
            ex.c.created_by,
            ex.c.period,
        )
        .select_from(ei.join(ex, ex.c.id == ei.c.export_id))
        .where(ei.c.organization_id == org, ei.c.incoming_invoice_id.in_(ids)),
        select(ii.c.id, ii.c.status_changed_at, "status " + ii.c.status, null(), null()).where(
            ii.c.id.in_(ids)
        ),
    )
    events = [tuple(row) for query in queries for row in r.conn.execute(query)]
    events.sort(key=lambda e: (e[0], e[1]))
    for number_, event in enumerate(events, start=1):
        yield (number_, *event)


_EXTENSIONS = {"facturx": "pdf", "xrechnung": "xml", "peppol": "xml"}


def _read_documents(r: Reading) -> Iterator[tuple]:
    d, si = sales_invoice_documents, sales_invoices
    query = (
        select(
            d.c.id,
            d.c.sales_invoice_id,
            si.c.invoice_number,
            d.c.kind,
            d.c.format,
            d.c.storage_key,
            d.c.size_bytes,
            d.c.sha256,
        )
        .select_from(d.join(si, si.c.id == d.c.sales_invoice_id))
        .where(d.c.organization_id == r.organization.id, d.c.status == "generated")
        .where(d.c.sales_invoice_id.in_(_sales_ids(r)))
        .order_by(d.c.id)
    )
    for doc_id, invoice_id, number_, kind, fmt, key, size, sha in r.conn.execute(query):
        path = f"{DOCUMENTS}/{doc_id}-{_safe(number_)}.{_EXTENSIONS.get(kind, 'bin')}"
        r.files.append(Wanted(path, "document_store", key, sha))
        yield (doc_id, invoice_id, kind, fmt, path, size, sha)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _of_year(r: Reading, table, in_year, *names: str):
    """The columns `names` of the organization's rows of `table` that `in_year` places in the
    year, by id."""
    return r.conn.execute(
        select(*(table.c[name] for name in names))
        .where(table.c.organization_id == r.organization.id, in_year)
        .order_by(table.c.id)
    )


def _read_supplier_changes(r: Reading) -> Iterator[tuple]:
    sc = supplier_changes
    names = ("id", "supplier_id", "action", "changed_by", "changed_at", "reason", "before", "after")
    for row in _of_year(r, sc, r.year.instants(sc.c.changed_at), *names):
        yield (*row[:6], _json(row[6]), _json(row[7]))


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _export_rows(r: Reading):
    e = exports
    return r.conn.execute(
        select(
            e.c.id,
            e.c.direction,
            e.c.period,
            e.c.version,
            e.c.closed,
            e.c.invoice_count,
            e.c.booking_count,
            e.c.net_total,
            e.c.tax_total,
            e.c.gross_total,
            e.c.created_at,
            e.c.created_by,
            e.c.files,
            e.c.notes,
            e.c.purged_at,
        )
        .where(
            e.c.organization_id == r.organization.id,
            e.c.period >= f"{r.year.year:04d}-01",
            e.c.period <= f"{r.year.year:04d}-12",
        )
        .order_by(e.c.id)
    ).all()


def _version_keys(r: Reading, row) -> dict[str, str]:
    provisional = bool((row.notes or {}).get("provisional"))
    keys = file_keys(
        r.organization.slug, row.period, row.direction, row.version, provisional=provisional
    )
    recorded = set(row.files or {})
    return {kind: key for kind, key in keys.items() if not recorded or kind in recorded}


def _read_exports(r: Reading) -> Iterator[tuple]:
    for row in _export_rows(r):
        datev = ""
        if row.purged_at is None:
            for kind, key in _version_keys(r, row).items():
                path = f"{EXPORT_FILES}/{key.split('/', 1)[1]}"
                r.files.append(Wanted(path, "export_store", key, None))
                if kind == "datev":
                    datev = path
        yield (
            row.id,
            row.direction,
            row.period,
            row.version,
            row.closed,
            row.invoice_count,
            row.booking_count,
            row.net_total,
            row.tax_total,
            row.gross_total,
            row.created_at,
            row.created_by,
            datev or None,
            row.purged_at,
        )


def _read_bookings(r: Reading) -> Iterator[tuple]:
    """Each booking as the DATEV file of its export version says it (read back from the export
    store): what the tax advisor imported, with the version and the Beleglink."""
    for row in _export_rows(r):
        key = _version_keys(r, row).get("datev")
        if row.purged_at is not None or key is None:
            continue
        try:
            data = r.export_store.read(key)
        except (FileNotFoundError, OSError):
            r.missing.append(f"{EXPORT_FILES}/{key.split('/', 1)[1]}")
            continue
        for no, fields in enumerate(_datev_records(data), start=1):
            yield (
                row.id,
                no,
                row.direction,
                row.period,
                row.version,
                Decimal(fields[0].replace(",", ".")),
                fields[1],
                fields[2],
                int(fields[6]),
                int(fields[7]),
                fields[8] or None,
                _belegdatum(fields[9], row.period),
                fields[10],
                fields[13],
                fields[19] or None,
            )


def _datev_records(data: bytes) -> list[list[str]]:
    """The booking rows of a Buchungsstapel: Windows-1252 unless it starts with a UTF-8 BOM, `;`
    between fields, text in double quotes; the header and the column names are its first two."""
    content = (
        data.decode("utf-8-sig") if data.startswith(b"\xef\xbb\xbf") else data.decode("cp1252")
    )
    records = list(csv.reader(io.StringIO(content, newline=""), delimiter=";", quotechar='"'))
    return [fields for fields in records[2:] if fields]


def _belegdatum(ttmm: str, period: str) -> date | None:
    """The Belegdatum (TTMM: day and month) as a date of the export's month's year, or of the year
    before for a later month; None for a field that is no day (the file's text is in the row)."""
    year, month = int(period[:4]), int(period[5:7])
    try:
        day_, month_ = int(ttmm[:2]), int(ttmm[2:4])
        return date(year - 1 if month_ > month else year, month_, day_)
    except ValueError:
        return None


def _read_payments(r: Reading) -> Iterator[tuple]:
    sp, ip = sales_invoice_payments, incoming_invoice_payments
    rest = ("qbo_payment_id", "paid_on", "amount", "source")
    for row in _of_year(r, sp, r.year.days(sp.c.paid_on), "id", "sales_invoice_id", *rest):
        yield (f"S{row[0]}", "received", row[1], None, *row[2:])
    for row in _of_year(r, ip, r.year.days(ip.c.paid_on), "id", "incoming_invoice_id", *rest):
        yield (f"I{row[0]}", "paid", None, row[1], *row[2:])


def _read_dunning(r: Reading) -> Iterator[tuple]:
    n = dunning_notices
    for row in _of_year(
        r,
        n,
        r.year.days(n.c.as_of),
        "id",
        "sales_invoice_id",
        "customer_id",
        "level",
        "level_name",
        "as_of",
        "days_overdue",
        "currency",
        "amount_open",
        "fee",
        "interest",
        "total_claimed",
        "delivery_status",
        "letter_status",
        "letter_key",
    ):
        path = None
        if row.letter_status == "written" and row.letter_key:
            path = f"{LETTERS}/{row.id}-level{row.level}.pdf"
            r.files.append(Wanted(path, "document_store", row.letter_key, None))
        yield (*row[:14], path)


def _read_audit(r: Reading) -> Iterator[tuple]:
    a = audit_log
    names = ("id", "created_at", "created_by", "action", "entity_type", "entity_id", "details")
    for row in _of_year(r, a, r.year.instants(a.c.created_at), *names):
        yield (*row[:6], _json(row[6]))


def _same_names(
    description: TableDescription,
    table,
    ids: Callable | None = None,
    parent: str = "id",
    **renamed: str,
) -> CarrierTable:
    """A table whose columns are the database table's of the same names (`renamed`: the carrier's
    name -> the column's), of the organization's rows (with `ids`: those whose `parent` is among
    the year's), by id."""
    names = [renamed.get(column.name, column.name) for column in description.columns]

    def read(r: Reading) -> Iterator[tuple]:
        query = select(*(table.c[name] for name in names)).where(
            table.c.organization_id == r.organization.id
        )
        if ids is not None:
            query = query.where(table.c[parent].in_(ids(r)))
        return _rows(r, query.order_by(table.c.id))

    return CarrierTable(description, read)


_INCOMING = ForeignKey(("incoming_invoice_id",), "incoming_invoices")
_SALES = ForeignKey(("sales_invoice_id",), "sales_invoices")
_UTC = "when, UTC (YYYY-MM-DD hh:mm:ss)"


def _t(url: str, description: str, columns: tuple[Column, ...], *keys: ForeignKey, key: int = 1):
    return TableDescription(f"{url}.csv", url, description, columns, key, tuple(keys))


def _invoice_lines(
    url: str,
    description: str,
    invoice: ForeignKey,
    label: str,
    table,
    ids: Callable,
    *,
    unit_code: bool = False,
) -> CarrierTable:
    """The lines of one direction's invoices, of the year's invoices (`invoice`: the key to them,
    `label` its column's meaning); the incoming ones carry their unit (`unit_code`)."""
    [parent] = invoice.columns
    unit = (text("unit_code", "unit (UN/ECE rec. 20)"),) if unit_code else ()
    columns = (
        number("id", "line id"),
        number(parent, label),
        number("line_no", "position"),
        text("description", "item"),
        number("quantity", "quantity", 4),
        *unit,
        number("unit_price", "net unit price", 4),
        money("net_amount", "net line amount"),
        text("vat_category", "VAT category code"),
        number("vat_rate", "VAT rate, percent", 2),
    )
    return _same_names(_t(url, description, columns, invoice), table, ids, parent)


def _vat_breakdown(
    url: str, description: str, invoice: ForeignKey, label: str, table, ids: Callable
) -> CarrierTable:
    """The VAT breakdown of one direction's invoices, of the year's invoices (`invoice`: the key to
    them, `label` its column's meaning)."""
    [parent] = invoice.columns
    columns = (
        number("id", "breakdown id"),
        number(parent, label),
        text("vat_category", "VAT category code"),
        number("vat_rate", "VAT rate, percent", 2),
        money("basis", "taxable amount"),
        money("amount", "VAT amount"),
    )
    return _same_names(_t(url, description, columns, invoice), table, ids, parent)


CARRIER_TABLES: tuple[CarrierTable, ...] = (
    CarrierTable(
        _t(
            "originals",
            "The originals of the incoming invoices as they arrived (file in the carrier by its "
            "relative path), with the SHA-256 recorded when they were stored.",
            (
                number("upload_id", "upload id"),
                text("filename", "file name as received"),
                text("file", "path of the original in this carrier"),
                number("size_bytes", "size in bytes"),
                text("sha256", "SHA-256 recorded when the original was stored"),
            ),
        ),
        _read_originals,
    ),
    _same_names(
        _t(
            "incoming_invoices",
            "Incoming invoices (received from suppliers) dated in the year, received in it "
            "without a date, or paid in it.",
            (
                number("id", "incoming invoice id"),
                text("invoice_number", "the supplier's invoice number (BT-1)"),
                text("type_code", "380 invoice, 381 credit note (BT-3)"),
                text("seller_name", "supplier name as on the document"),
                text("seller_vat_id", "supplier VAT id"),
                day("issue_date", "invoice date"),
                day("due_date", "due date"),
                day("service_date", "delivery date or end of the invoicing period"),
                text("currency", "ISO 4217"),
                money("net_total", "net amount"),
                money("tax_total", "VAT amount"),
                money("gross_total", "gross amount"),
                money("amount_due", "amount due"),
                text("status", "lifecycle status now"),
                text("format", "document format read"),
                text("einvoice_class", "e-invoice class under German VAT law"),
                text("received_at", "received, " + _UTC),
                number("upload_id", "the original (table originals)"),
                text("content_sha256", "SHA-256 of the original's bytes"),
            ),
            ForeignKey(("upload_id",), "originals"),
        ),
        incoming_invoices,
        _incoming_ids,
        "id",
        received_at="created_at",
        content_sha256="content_hash",
    ),
    _invoice_lines(
        "incoming_invoice_lines",
        "Lines of the incoming invoices (BG-25).",
        _INCOMING,
        "incoming invoice",
        incoming_invoice_lines,
        _incoming_ids,
        unit_code=True,
    ),
    _vat_breakdown(
        "incoming_invoice_vat",
        "VAT breakdown of the incoming invoices (BG-23).",
        _INCOMING,
        "incoming invoice",
        incoming_invoice_taxes,
        _incoming_ids,
    ),
    CarrierTable(
        _t(
            "incoming_invoice_history",
            "Status history of the incoming invoices: received, the intake's findings, a "
            "person's review, each export that booked or skipped them, the status now.",
            (
                number("entry_no", "entry"),
                number("incoming_invoice_id", "incoming invoice"),
                text("at", _UTC),
                text(
                    "event",
                    "received, finding, corrected/confirmed/rejected, "
                    "exported/skipped, status <now>",
                ),
                text("by", "who"),
                text("detail", "format, finding, field reviewed, or export month"),
            ),
            _INCOMING,
        ),
        _read_incoming_history,
    ),
    _same_names(
        _t(
            "customers",
            "Customers (the register as it stands).",
            (
                number("id", "customer id"),
                text("customer_number", "customer number"),
                text("name", "name"),
                text("street", "street"),
                text("postal_code", "postal code"),
                text("city", "city"),
                text("country", "country (ISO 3166)"),
                text("vat_id", "VAT id"),
                text("kind", "business or consumer"),
                number("active", "1 active, 0 not"),
            ),
        ),
        customers,
    ),
    _same_names(
        _t(
            "sales_invoices",
            "Sales invoices (380) and credit notes (381) issued in the year, and those a payment, "
            "dunning notice or credit note of the year names.",
            (
                number("id", "sales invoice id"),
                text("invoice_number", "invoice number (gapless)"),
                text("type_code", "380 invoice, 381 credit note"),
                number("customer_id", "customer"),
                day("issue_date", "invoice date"),
                day("due_date", "due date"),
                text("currency", "ISO 4217"),
                money("net_total", "net amount"),
                money("tax_total", "VAT amount"),
                money("gross_total", "gross amount"),
                money("amount_paid", "paid so far"),
                money("amount_due", "still due"),
                text("status", "open, partially_paid, paid, cancelled"),
                number("corrects_invoice_id", "a credit note: the invoice it corrects"),
                text("credit_reason", "a credit note: why"),
                text("created_at", "recorded, " + _UTC),
            ),
            ForeignKey(("customer_id",), "customers"),
            ForeignKey(("corrects_invoice_id",), "sales_invoices"),
        ),
        sales_invoices,
        _sales_ids,
        "id",
    ),
    _invoice_lines(
        "sales_invoice_lines",
        "Lines of the sales invoices and credit notes.",
        _SALES,
        "sales invoice",
        sales_invoice_lines,
        _sales_ids,
    ),
    _vat_breakdown(
        "sales_invoice_vat",
        "VAT breakdown of the sales invoices and credit notes.",
        _SALES,
        "sales invoice",
        sales_invoice_taxes,
        _sales_ids,
    ),
    CarrierTable(
        _t(
            "sales_invoice_documents",
            "The documents written for the sales invoices (Factur-X or PDF, XRechnung, Peppol "
            "UBL), by relative path in this carrier, with the SHA-256 recorded when written.",
            (
                number("id", "document id"),
                number("sales_invoice_id", "sales invoice"),
                text("kind", "facturx, xrechnung, peppol"),
                text("format", "facturx or pdf"),
                text("file", "path of the document in this carrier"),
                number("size_bytes", "size in bytes"),
                text("sha256", "SHA-256 recorded when the document was written"),
            ),
            _SALES,
        ),
        _read_documents,
    ),
    _same_names(
        _t(
            "suppliers",
            "The supplier register as it stands.",
            (
                number("id", "supplier id"),
                text("name", "name"),
                text("vat_id", "VAT id"),
                text("tax_number", "tax number"),
                number("datev_creditor_account", "DATEV creditor account"),
                text("origin", "person or first_invoice"),
                text("confirmed_at", "confirmed by a person, " + _UTC),
                text("confirmed_by", "who confirmed it"),
                number("active", "1 active, 0 not"),
                number("version", "changes so far"),
            ),
        ),
        suppliers,
    ),
    CarrierTable(
        _t(
            "supplier_changes",
            "Every change of the supplier register in the year: who, when, why, before, after.",
            (
                number("id", "change id"),
                number("supplier_id", "supplier"),
                text("action", "what was done"),
                text("changed_by", "who"),
                text("changed_at", _UTC),
                text("reason", "why"),
                text("before", "the supplier before (JSON)"),
                text("after", "the supplier after (JSON)"),
            ),
            ForeignKey(("supplier_id",), "suppliers"),
        ),
        _read_supplier_changes,
    ),
    CarrierTable(
        _t(
            "datev_exports",
            "The DATEV export versions of the year's months (a month exported again after a "
            "correction is a new version; every version is listed), with their files.",
            (
                number("id", "export id"),
                text("direction", "incoming or sales"),
                text("period", "month, YYYY-MM"),
                number("version", "version of the month"),
                number("closed", "1: written as closed (Festschreibung)"),
                number("invoice_count", "invoices booked"),
                number("booking_count", "booking rows"),
                money("net_total", "net amount booked"),
                money("tax_total", "VAT booked"),
                money("gross_total", "gross amount booked"),
                text("created_at", "written, " + _UTC),
                text("created_by", "who asked for it"),
                text("datev_file", "the Buchungsstapel as delivered, path in this carrier"),
                text("purged_at", "files removed after retention, " + _UTC),
            ),
        ),
        _read_exports,
    ),
    CarrierTable(
        _t(
            "datev_bookings",
            "Every booking row of the year's DATEV Buchungsstapel files, as written to the tax "
            "advisor: export version, amount, accounts, BU key, Belegfeld 1 and the Beleglink to "
            "the document in the DATEV document package.",
            (
                number("export_id", "export version"),
                number("booking_no", "row in the file"),
                text("direction", "incoming or sales"),
                text("period", "month, YYYY-MM"),
                number("version", "version of the month"),
                money("amount", "Umsatz (without sign)"),
                text("side", "S debit, H credit"),
                text("currency", "WKZ"),
                number("account", "Konto"),
                number("contra_account", "Gegenkonto"),
                text("tax_key", "BU-Schlüssel"),
                day("document_date", "Belegdatum"),
                text("document_number", "Belegfeld 1"),
                text("posting_text", "Buchungstext"),
                text("document_link", "Beleglink"),
            ),
            ForeignKey(("export_id",), "datev_exports"),
            key=2,
        ),
        _read_bookings,
    ),
    CarrierTable(
        _t(
            "payments",
            "Payments of the year: received on sales invoices, paid on incoming invoices.",
            (
                text("payment_key", "S<id> received, I<id> paid"),
                text("direction", "received or paid"),
                number("sales_invoice_id", "sales invoice paid"),
                number("incoming_invoice_id", "incoming invoice paid"),
                text("payment_reference", "the payment's id in the accounting system"),
                day("paid_on", "day of the payment"),
                money("amount", "amount applied to the invoice"),
                text("source", "where it was read"),
            ),
            _SALES,
            _INCOMING,
        ),
        _read_payments,
    ),
    CarrierTable(
        _t(
            "dunning_notices",
            "Dunning notices of the year, with their letters by relative path.",
            (
                number("id", "notice id"),
                number("sales_invoice_id", "sales invoice"),
                number("customer_id", "customer"),
                number("level", "dunning level"),
                text("level_name", "level name"),
                day("as_of", "issued for"),
                number("days_overdue", "days overdue"),
                text("currency", "ISO 4217"),
                money("amount_open", "open amount"),
                money("fee", "fee added by this notice"),
                money("interest", "interest added by this notice"),
                money("total_claimed", "total claimed"),
                text("delivery_status", "e-mail delivery"),
                text("letter_status", "the letter: written or failed"),
                text("letter", "the letter, path in this carrier"),
            ),
            _SALES,
            ForeignKey(("customer_id",), "customers"),
        ),
        _read_dunning,
    ),
    CarrierTable(
        _t(
            "audit_trail",
            "The audit trail of the year: who started or changed what, when.",
            (
                number("id", "audit row id"),
                text("created_at", _UTC),
                text("created_by", "who"),
                text("action", "what"),
                text("entity_type", "of what kind"),
                text("entity_id", "which"),
                text("details", "details (JSON)"),
            ),
        ),
        _read_audit,
    ),
)
