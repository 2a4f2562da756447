"""The CSV export: one row per invoice and a lines file, for spreadsheets and data tools.

UTF-8 without a byte-order mark, comma separated, LF line ends, quotes only where a value needs
them (RFC 4180 quoting), a header row, amounts as plain decimals with a dot ("1234.50"), dates as
ISO 8601 ("2026-11-05"), empty for unknown. On PostgreSQL the lines file is written by COPY
straight from the query (the same text: numeric values keep their scale, dates are ISO).

invoices file columns: see INVOICE_COLUMNS; lines file columns: see LINE_COLUMNS.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import Select
from sqlalchemy.engine import Connection

from invoice_pipelines.resources.files import FileStore

INVOICE_COLUMNS = (
    "invoice_id",  # our id of the incoming or sales invoice
    "invoice_number",
    "type_code",  # UNTDID 1001: 380 invoice, 381 credit note, ...
    "issue_date",
    "due_date",
    "partner_account",  # DATEV creditor (suppliers) or debtor (customers) account
    "partner_name",
    "partner_vat_id",
    "currency",
    "net_total",
    "tax_total",
    "gross_total",
    "vat_breakdown",  # "S 19: 100.00 + 19.00; S 7: 50.00 + 3.50" (category rate: basis + VAT)
)
LINE_COLUMNS = (
    "invoice_id",
    "invoice_number",
    "line_no",
    "description",
    "quantity",
    "unit_code",
    "unit_price",
    "net_amount",
    "vat_category",
    "vat_rate",
)
BLOCK = 2000


def _decimal(value: Decimal) -> str:
    text = str(value)  # fast and exact; only tiny or huge values come out in E notation
    return format(value, "f") if "E" in text else text


_CELL = {Decimal: _decimal, date: date.isoformat, int: str, str: str}


def cell(value: object) -> str:
    if value is None:
        return ""
    return _CELL.get(type(value), str)(value)


def rows_file(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(map(cell, row))
        count += 1
        if count % BLOCK == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def query_file(conn: Connection, store: FileStore, key: str, query: Select, columns) -> str:
    """Write the rows of `query` (labelled as `columns`) as a CSV file into the store."""
    if conn.dialect.name == "postgresql":
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            return store.write_with(
                key,
                lambda handle: cursor.copy_expert(
                    f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", handle
                ),
            )
        finally:
            cursor.close()
    return store.write(key, rows_file(columns, conn.execute(query)))
