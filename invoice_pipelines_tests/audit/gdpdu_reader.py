"""An independent reader of a GDPdU data carrier for the tests: it knows the description standard,
not our writer. It reads index.xml, and each table's flat file by what index.xml declares for it
(codepage, column and record delimiters, text encapsulator, decimal and grouping symbols, each
column's type, accuracy, date format and maximum length), and refuses a value that does not
match its declaration."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from lxml import etree

CODEPAGES = {"ANSI": "cp1252", "UTF8": "utf-8", "UTF16": "utf-16", "OEM": "cp850"}
# the standard's defaults (the DTD's comments)
DEFAULTS = {
    "ColumnDelimiter": ";",
    "RecordDelimiter": "\r\n",
    "TextEncapsulator": '"',
    "DecimalSymbol": ",",
    "DigitGroupingSymbol": ".",
}


@dataclass
class Described:
    name: str
    kind: str  # Numeric | AlphaNumeric | Date
    primary: bool
    accuracy: int = 0
    max_length: int | None = None
    date_format: str = "DD.MM.YYYY"


@dataclass
class Table:
    name: str
    url: str
    columns: list[Described]
    foreign_keys: list[tuple[list[str], str]]
    rows: list[dict] = field(default_factory=list)

    def sum(self, column: str) -> Decimal:
        return sum((r[column] for r in self.rows if r[column] is not None), Decimal(0))

    @property
    def key(self) -> list[str]:
        return [c.name for c in self.columns if c.primary]


def _text(element, tag: str) -> str | None:
    found = element.find(tag)
    return None if found is None else (found.text or "")


def read_carrier(folder: Path) -> dict[str, Table]:
    index = etree.parse(str(folder / "index.xml"))
    tables = {}
    for element in index.getroot().iter("Table"):
        codepage = next((CODEPAGES[c] for c in CODEPAGES if element.find(c) is not None), "cp1252")
        decimal = _text(element, "DecimalSymbol") or DEFAULTS["DecimalSymbol"]
        grouping = _text(element, "DigitGroupingSymbol") or DEFAULTS["DigitGroupingSymbol"]
        layout = element.find("VariableLength")
        assert layout is not None, "only VariableLength tables are read here"
        settings = {tag: _text(layout, tag) or DEFAULTS[tag] for tag in
                    ("ColumnDelimiter", "RecordDelimiter", "TextEncapsulator")}  # fmt: skip
        columns = [_column(c) for c in layout if c.tag in ("VariablePrimaryKey", "VariableColumn")]
        keys = [([n.text for n in k.findall("Name")], k.findtext("References"))
                for k in layout.findall("ForeignKey")]  # fmt: skip
        table = Table(element.findtext("Name"), element.findtext("URL"), columns, keys)
        content = (folder / table.url).read_bytes().decode(codepage)
        for record in _records(content, settings):
            assert len(record) == len(columns), (table.name, record)
            table.rows.append(
                {c.name: _value(c, raw, quoted, decimal, grouping)
                 for c, (raw, quoted) in zip(columns, record, strict=True)}
            )  # fmt: skip
        tables[table.name] = table
    return tables


def _column(element) -> Described:
    name = element.findtext("Name")
    primary = element.tag == "VariablePrimaryKey"
    if element.find("Numeric") is not None:
        accuracy = element.find("Numeric").findtext("Accuracy")
        return Described(name, "Numeric", primary, accuracy=int(accuracy or 0))
    if element.find("Date") is not None:
        return Described(name, "Date", primary,
                         date_format=element.find("Date").findtext("Format") or "DD.MM.YYYY")  # fmt: skip
    length = element.findtext("MaxLength")
    return Described(name, "AlphaNumeric", primary, max_length=int(length) if length else None)


def _records(content: str, settings: dict) -> list[list[tuple[str, bool]]]:
    """Fields of each record, each with whether it was encapsulated: a delimiter inside an
    encapsulated text is text, a doubled encapsulator is one."""
    column, record, quote = (settings[k] for k in
                             ("ColumnDelimiter", "RecordDelimiter", "TextEncapsulator"))  # fmt: skip
    records, fields, chars = [], [], []
    quoted = in_quote = False
    i = 0
    while i < len(content):
        if in_quote:
            if content.startswith(quote + quote, i):
                chars.append(quote)
                i += 2
            elif content.startswith(quote, i):
                in_quote = False
                i += len(quote)
            else:
                chars.append(content[i])
                i += 1
        elif content.startswith(quote, i) and not chars:
            in_quote = quoted = True
            i += len(quote)
        elif content.startswith(column, i):
            fields.append(("".join(chars), quoted))
            chars, quoted = [], False
            i += len(column)
        elif content.startswith(record, i):
            fields.append(("".join(chars), quoted))
            records.append(fields)
            fields, chars, quoted = [], [], False
            i += len(record)
        else:
            assert content[i] not in "\r\n", f"a line break outside a text at {i}"
            chars.append(content[i])
            i += 1
    assert not in_quote and not chars and not fields, "the last record has no record delimiter"
    return records


def _value(column: Described, raw: str, quoted: bool, decimal: str, grouping: str):
    if raw == "" and not quoted:
        return None
    if column.kind == "Numeric":
        assert not quoted, f"{column.name}: a number in the text encapsulator"
        digits = raw.replace(grouping, "")
        whole, _, fraction = digits.partition(decimal)
        assert len(fraction) == column.accuracy, (
            f"{column.name}: {raw!r} is not Accuracy {column.accuracy}"
        )
        return Decimal(f"{whole}.{fraction}" if fraction else whole)
    if column.kind == "Date":
        pattern = column.date_format.replace("DD", "%d").replace("MM", "%m").replace("YYYY", "%Y")
        return datetime.strptime(raw, pattern).date()
    # an importer that counts bytes of the declared encoding (UTF8) cuts nothing (issue 85)
    assert column.max_length is None or len(raw.encode()) <= column.max_length, (column.name, raw)
    return raw


def dangling_foreign_keys(tables: dict[str, Table]) -> list[str]:
    """Each foreign key value without its row in the table it references."""
    problems = []
    for table in tables.values():
        for columns, references in table.foreign_keys:
            target = tables[references]
            known = {tuple(r[k] for k in target.key) for r in target.rows}
            for row in table.rows:
                value = tuple(row[c] for c in columns)
                if all(v is not None for v in value) and value not in known:
                    problems.append(f"{table.name}.{columns} = {value} not in {references}")
    return problems


__all__ = ["date", "dangling_foreign_keys", "read_carrier"]
