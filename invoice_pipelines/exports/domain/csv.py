"""The CSV export: one row per invoice and a lines file, for spreadsheets and data tools.

UTF-8 without a byte-order mark, comma separated, LF line ends, quotes only where a value needs
them (RFC 4180 quoting), a header row, amounts as plain decimals with a dot ("1234.50"), dates as
ISO 8601 ("2026-11-05"), empty for unknown. On PostgreSQL the lines file is written by COPY
straight from the query (the same text: numeric values keep their scale, dates are ISO).

Text columns (TEXT_COLUMNS: names, numbers, VAT ids, descriptions, codes, all from outside) go
through `core.text.cell_text`: no control or invisible characters (a line break becomes a space,
so every row is one line), a leading `'` where a spreadsheet would see a formula, at most
MAX_TEXT_FIELD_CHARS characters. COPY applies the same rules in SQL (`sql_cell_text`), so both
paths write the same bytes. Number and date columns are ours and written as they are: an amount
of -12.50 stays -12.50.

invoices file columns: see INVOICE_COLUMNS; lines file columns: see LINE_COLUMNS.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import Select, Text, case, func, literal, not_, or_
from sqlalchemy.engine import Connection

from invoice_pipelines.core.text import (
    ASCII_SUSPECT_FIRST,
    CONTROL_CLASS_SQL,
    ELLIPSIS,
    FORMULA_PATTERN,
    FORMULA_PREFIX,
    INVISIBLE_CLASS,
    cell_text,
)
from invoice_pipelines.limits import MAX_TEXT_FIELD_CHARS
from invoice_pipelines.resources.files.files import Files

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
    "corrects_invoice_number",  # a sales credit note: the invoice it corrects (BT-25)
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
# The columns whose values come from documents and partners (text); the others are our ids,
# amounts, rates and dates.
TEXT_COLUMNS = frozenset(
    {
        "invoice_number",
        "corrects_invoice_number",
        "type_code",
        "partner_name",
        "partner_vat_id",
        "currency",
        "vat_breakdown",  # holds the documents' category codes
        "description",
        "unit_code",
        "vat_category",
    }
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


def text_cell(value: object) -> str:
    """A text column's cell: `cell_text` of the value's text, "" for None."""
    if (
        # printable ASCII that does not start with a formula character or a space and is not too
        # long (the common case): what `cell_text` would give back as it is
        type(value) is str
        and value.isascii()
        and value.isprintable()
        and value[:1] not in ASCII_SUSPECT_FIRST
        and len(value) <= MAX_TEXT_FIELD_CHARS
    ):
        return value
    return "" if value is None else cell_text(value if type(value) is str else cell(value))


def decimal_cell(value: object) -> object:
    """A number column's value as `rows_file` hands it to the csv writer: a Decimal as its plain
    text (`cell`), anything else as it is (the writer writes None as nothing, others by str())."""
    if type(value) is Decimal:
        text = str(value)
        return text if "E" not in text else format(value, "f")
    return value


def rows_file(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[bytes]:
    """The CSV file of `rows` (values in the order of `columns`), in blocks of bytes.

    Each cell is `cell(value)`, or `text_cell(value)` in a text column. The csv writer writes
    None as nothing and any other value as its str(), which is `cell` for every value but a
    Decimal (str() may give E notation): the other values of number and date columns are handed
    to it as they are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    width = len(columns)
    # text cells repeat (a supplier's name and VAT id on each of its invoices): each distinct
    # value is made safe once per file
    texts = [(i, {}) for i, name in enumerate(columns) if name in TEXT_COLUMNS]
    others = [i for i, name in enumerate(columns) if name not in TEXT_COLUMNS]
    count = 0
    for row in rows:
        cells = list(row)
        if len(cells) != width:
            raise ValueError(f"a row of {len(cells)} values for {width} columns")
        for i, safe in texts:
            value = cells[i]
            text = safe.get(value)
            if text is None:
                text = safe[value] = text_cell(value)
            cells[i] = text
        for i in others:
            if type(cells[i]) is Decimal:
                cells[i] = _decimal(cells[i])
        writer.writerow(cells)
        count += 1
        if count % BLOCK == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def cells_file(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Iterator[bytes]:
    """`rows_file` of rows whose cells are already what it would hand the csv writer (`text_cell`
    in the text columns, `decimal_cell` for amounts): the same bytes, a block of rows per call of
    the writer instead of a row at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    width = len(columns)
    for start in range(0, len(rows), BLOCK):
        block = rows[start : start + BLOCK]
        if any(len(row) != width for row in block):
            raise ValueError(f"a row of other than {width} values")
        writer.writerows(block)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def sql_cell_text(column):
    """`core.text.cell_text` of a text column as a PostgreSQL expression; NULL for an empty result
    (COPY writes an empty string as `""`, the csv module as nothing: NULL is nothing in both)."""
    column = getattr(column, "element", column)  # the expression of a labelled column
    needs_work = or_(
        column.op("~")(f"[{INVISIBLE_CLASS}{CONTROL_CLASS_SQL}]|{FORMULA_PATTERN}"),
        func.length(column) > MAX_TEXT_FIELD_CHARS,
    )
    printable = func.regexp_replace(
        func.regexp_replace(column, f"[{INVISIBLE_CLASS}]+", "", "g", type_=Text),
        f"[{CONTROL_CLASS_SQL}]",
        " ",
        "g",
        type_=Text,
    )
    # a formula gets the prefix in front of what matched (the pattern is anchored at the start)
    defused = func.regexp_replace(
        printable, f"({FORMULA_PATTERN})", f"{FORMULA_PREFIX}\\1", type_=Text
    )
    cut = case(
        (
            func.length(defused) > MAX_TEXT_FIELD_CHARS,
            func.left(defused, MAX_TEXT_FIELD_CHARS - len(ELLIPSIS), type_=Text)
            + literal(ELLIPSIS, Text),
        ),
        else_=defused,
    )
    # the common case costs one regex match and a length
    return func.nullif(case((not_(needs_work), column), else_=cut), "")


def query_file(conn: Connection, store: Files, key: str, query: Select, columns) -> str:
    """Write the rows of `query` (labelled as `columns`) as a CSV file into the store."""
    if conn.dialect.name == "postgresql":
        query = query.with_only_columns(
            *(
                sql_cell_text(column).label(column.name) if column.name in TEXT_COLUMNS else column
                for column in query.selected_columns
            ),
        )
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        if conn.dialect.paramstyle in ("format", "pyformat"):
            # with every value inlined, each "%" is an escaped one; COPY gets no parameters
            sql = sql.replace("%%", "%")
        cursor = conn.connection.dbapi_connection.cursor()
        copy = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)"
        try:
            return store.write_with(key, lambda handle: _copy_out(cursor, copy, handle))
        finally:
            cursor.close()
    return store.write(key, rows_file(columns, conn.execute(query)))


def _copy_out(cursor, statement: str, handle) -> None:
    """COPY ... TO STDOUT into `handle` on either PostgreSQL driver."""
    if hasattr(cursor, "copy_expert"):  # psycopg2
        cursor.copy_expert(statement, handle)
        return
    with cursor.copy(statement) as copy:  # psycopg 3
        for block in copy:
            handle.write(block)
