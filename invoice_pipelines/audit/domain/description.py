"""The data carrier's description: each table's columns with their types and keys, the flat-file
format every table shares, and `index.xml` in the tax administration's description standard
(GDPdU, DTD version 1.5 `gdpdu-01-09-2004.dtd`, which sits beside it).

Every table is VariableLength, UTF-8, `;` between columns, CR LF after each record, text in `"`
(inner `"` doubled), a decimal comma and no digit grouping in the values (the grouping symbol is
declared as the standard asks, and never written). Numbers are written with exactly their
Accuracy's digits, dates as DD.MM.YYYY, timestamps as text in UTC. Line breaks inside a text
become spaces, so a reader that splits records first still reads every record whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum

from lxml import etree

DTD_NAME = "gdpdu-01-09-2004.dtd"
DTD_VERSION = "1.0"  # <Version> of the DataSet: the version of our description
COLUMN_DELIMITER = ";"
RECORD_DELIMITER = "\r\n"
TEXT_ENCAPSULATOR = '"'
DECIMAL_SYMBOL = ","
DIGIT_GROUPING_SYMBOL = "."
DATE_FORMAT = "DD.MM.YYYY"
ENCODING = "utf-8"


class Kind(Enum):
    NUMERIC = "Numeric"
    TEXT = "AlphaNumeric"
    DATE = "Date"


@dataclass(frozen=True)
class Column:
    """One column: its name in the flat file, its type (`accuracy` digits after the decimal
    symbol for a number), what it means."""

    name: str
    kind: Kind
    description: str
    accuracy: int = 0

    def format(self, value: object) -> str:
        if value is None:
            return ""
        if self.kind is Kind.NUMERIC:
            return _number(value, self.accuracy)
        if self.kind is Kind.DATE:
            return _date(value)
        return _encapsulated(self.plain(value))

    def plain(self, value: object) -> str:
        """A text as written, before the encapsulator: a timestamp as YYYY-MM-DD hh:mm:ss, line
        breaks as spaces (what MaxLength counts)."""
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, bool):
            return str(int(value))
        return " ".join(str(value).splitlines())


def number(name: str, description: str, accuracy: int = 0) -> Column:
    return Column(name, Kind.NUMERIC, description, accuracy)


def money(name: str, description: str) -> Column:
    return Column(name, Kind.NUMERIC, description, 2)


def text(name: str, description: str) -> Column:
    return Column(name, Kind.TEXT, description)


def day(name: str, description: str) -> Column:
    return Column(name, Kind.DATE, description)


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    references: str  # the Name of the table referred to


@dataclass(frozen=True)
class TableDescription:
    """One table of the carrier: its file (`url`, relative to index.xml), name, meaning, columns
    (the primary key's first, `key` of them), foreign keys."""

    url: str
    name: str
    description: str
    columns: tuple[Column, ...]
    key: int = 1
    foreign_keys: tuple[ForeignKey, ...] = field(default=())

    def record(self, values: tuple) -> str:
        return COLUMN_DELIMITER.join(c.format(v) for c, v in zip(self.columns, values, strict=True))


def _number(value: object, accuracy: int) -> str:
    if isinstance(value, bool):
        value = int(value)
    quantum = Decimal(1).scaleb(-accuracy)
    written = format(Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP), "f")
    return written.replace(".", DECIMAL_SYMBOL)


def _date(value: object) -> str:
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        value = date.fromisoformat(str(value)[:10])
    return value.strftime("%d.%m.%Y")


def _encapsulated(written: str) -> str:
    doubled = written.replace(TEXT_ENCAPSULATOR, 2 * TEXT_ENCAPSULATOR)
    return f"{TEXT_ENCAPSULATOR}{doubled}{TEXT_ENCAPSULATOR}"


def _add(parent: etree._Element, tag: str, content: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if content is not None:
        element.text = content
    return element


def index_xml(
    *,
    supplier: tuple[str, str, str],
    media_name: str,
    year: int,
    tables: list[tuple[TableDescription, dict[str, int]]],
) -> bytes:
    """index.xml of the carrier: `supplier` (name, location, comment) and each table with the
    longest text written per column, in bytes of UTF-8 (`MaxLength`)."""
    root = etree.Element("DataSet")
    _add(root, "Version", DTD_VERSION)
    data_supplier = _add(root, "DataSupplier")
    for tag, value in zip(("Name", "Location", "Comment"), supplier, strict=True):
        _add(data_supplier, tag, value)
    media = _add(root, "Media")
    _add(media, "Name", media_name)
    for table, longest in tables:
        _table(media, table, longest, year)
    body = etree.tostring(root, encoding="UTF-8", pretty_print=True, xml_declaration=False)
    head = f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE DataSet SYSTEM "{DTD_NAME}">\n'
    return head.encode() + body


def _table(media: etree._Element, table: TableDescription, longest: dict[str, int], year: int):
    element = _add(media, "Table")
    _add(element, "URL", table.url)
    _add(element, "Name", table.name)
    _add(element, "Description", table.description)
    validity = _add(element, "Validity")
    period = _add(validity, "Range")
    _add(period, "From", f"01.01.{year}")
    _add(period, "To", f"31.12.{year}")
    _add(validity, "Format", DATE_FORMAT)
    _add(element, "UTF8")
    _add(element, "DecimalSymbol", DECIMAL_SYMBOL)
    _add(element, "DigitGroupingSymbol", DIGIT_GROUPING_SYMBOL)
    layout = _add(element, "VariableLength")
    _add(layout, "ColumnDelimiter", COLUMN_DELIMITER)
    _add(layout, "RecordDelimiter", RECORD_DELIMITER)
    _add(layout, "TextEncapsulator", TEXT_ENCAPSULATOR)
    for position, column in enumerate(table.columns):
        tag = "VariablePrimaryKey" if position < table.key else "VariableColumn"
        described = _add(layout, tag)
        _add(described, "Name", column.name)
        _add(described, "Description", column.description)
        if column.kind is Kind.NUMERIC:
            _add(_add(described, "Numeric"), "Accuracy", str(column.accuracy))
        elif column.kind is Kind.DATE:
            _add(_add(described, "Date"), "Format", DATE_FORMAT)
        else:
            _add(described, "AlphaNumeric")
            _add(described, "MaxLength", str(max(1, longest.get(column.name, 0))))
    for foreign in table.foreign_keys:
        key = _add(layout, "ForeignKey")
        for name in foreign.columns:
            _add(key, "Name", name)
        _add(key, "References", foreign.references)
