"""Invoice lines read by column: the line table under a header row, each value taken from the
column its header names.

The text layer is printed with its layout kept (`pdftotext -layout`; OCR text as Tesseract lays
it out), so a character's column is where the word stands on the page: a value belongs to the
header word it stands under. This reads the tables the row-by-row reader (lines.py) cannot: no
quantity or price column ("Pos. / Leistung / Betrag"), a quantity the row reader takes for a
position number, the amount on the item's second text line, descriptions over several lines
(joined), subtotals and amounts carried to the next page (recognised and not counted, the table
goes on after them).

Nothing here is trusted on its own: the intake uses these lines only when they add up to the net
the page prints (BR-CO-10, intake/domain/proofs.py), and their rates only when the VAT they give
is the VAT printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from invoice_pipelines.core.invoice import InvoiceLine
from invoice_pipelines.intake.domain.formats.text.labels import classify_total
from invoice_pipelines.intake.domain.formats.text.lines import (
    POSITION,
    TABLE_END,
    decimal_separator,
)
from invoice_pipelines.intake.domain.formats.text.numbers import PERCENT, amounts_in, parse_amount

MAX_TABLE_ROWS = 120
# how far (in characters) a value may stand beside its header word and still be under it
MARGIN = 8

_WORD = r"(?<![^\W\d_])(?:{})(?![^\W\d_])"
_AMOUNT_HEADER = re.compile(
    _WORD.format(
        r"betrag(?:\s+netto)?|nettobetrag|gesamtbetrag|gesamt(?:preis)?(?:\s+netto)?|summe|entgelt|"
        r"(?:net\s+)?amount|net|netto|total\s+(?:h\.?t\.?|net|netto)(?![^\W\d_])|total|"
        r"line\s+total|montant(?:\s+h\.?t\.?)?|prix\s+ht|bedrag|importe|importo|kwota|warto[sś][cć]|"
        r"belopp|bel[øo]b|price\s+w/o\s+tax"
    ),
    re.IGNORECASE,
)
_QUANTITY_HEADER = re.compile(
    _WORD.format(
        r"menge|anzahl|anz|qty|quantity|quantit[ée]|qt[ée]|q\.t[àa]|aantal|cantidad|quantit[àa]|"
        r"stk|ilo[sś][cć]|antal|stunden|std|hours|hrs|units"
    ),
    re.IGNORECASE,
)
_PRICE_HEADER = re.compile(
    _WORD.format(
        r"preis|einzelpreis|nettopreis|e-preis|ep|price|unit\s+price|rate|prix(?:\s+unitaire)?|"
        r"prijs|stukprijs|precio|prezzo|cena(?:\s+netto)?|ansatz|stundensatz|satz|unit\s+cost"
    ),
    re.IGNORECASE,
)
_RATE_HEADER = re.compile(
    _WORD.format(
        r"mwst|ust|ust\.|vat|tax|iva|tva|btw|steuer|steuersatz|vat\s+%|moms|taux(?:\s+tva)?|"
        r"tax\s+rate|vat\s+rate"
    ),
    re.IGNORECASE,
)
# a row that sums the rows above it, on this page or carried to the next: not an invoice line
_SUBTOTAL = re.compile(
    r"zwischensumme|[üu]bertrag|subtotal|sub-total|sous-total|carried\s+forward|brought\s+forward|"
    r"carry\s+forward|summe\s+seite|seitensumme|page\s+total|report(?:\s+[àa]\s+reporter)?|"
    r"[àa]\s+reporter|riporto|transporte|suma\s+y\s+sigue",
    re.IGNORECASE,
)
_NET_WORDS = re.compile(r"net|netto|ht\b|excl", re.IGNORECASE)
_GROSS_WORDS = re.compile(r"brutto|gross|ttc|incl", re.IGNORECASE)
_CURRENCY_WORDS = re.compile(r"\(?(?:chf|eur|usd|gbp|pln|huf|€|\$|£)\)?|\s", re.IGNORECASE)
_PAGE_NOTE = re.compile(r"\b(?:seite|page|pagina|página|blatt)\s+\d", re.IGNORECASE)
_NUMBER = re.compile(
    r"(?<![\w.,/\-])-?(?:\d{1,3}(?:[.,\u00a0' ]\d{3})+|\d+)(?:[.,]\d{1,4})?(?![\w%])"
)
# a token that is money (not a word of the description): "615,00", "$1,200.00", "-305,00"
_MONEY_TOKEN = re.compile(r"[-(]?[€$£]?-?\d{1,3}(?:[.,'\u00a0]\d{3})*[.,]\d{2}[€$£)]?")


@dataclass(frozen=True)
class _Column:
    start: int
    end: int

    def holds(self, start: int, end: int, margin: int = MARGIN) -> bool:
        return start <= self.end + margin and end >= self.start - margin


@dataclass(frozen=True)
class _Header:
    amount: _Column
    quantity: _Column | None
    price: _Column | None
    rate: _Column | None


@dataclass
class _Item:
    description: list[str] = field(default_factory=list)
    quantity: Decimal | None = None
    price: Decimal | None = None
    rate: Decimal | None = None
    amount: Decimal | None = None
    position: str | None = None


def _span(match: re.Match[str]) -> _Column:
    return _Column(match.start(), match.end())


def _header(line: str) -> _Header | None:
    """The columns of a table header: at least a description and an amount column, the amount
    being the right-most column, and no amounts in the line."""
    if amounts_in(line) or len(re.findall(r"\S+", line)) < 2:
        return None
    amounts = list(_AMOUNT_HEADER.finditer(line))
    if not amounts:
        return None
    # the line's net amount: the right-most net column where a gross one stands beside it
    # ("Wartość netto ... VAT ... Wartość brutto"), else the right-most amount column, which
    # ends the header (a currency may follow it: "Betrag CHF")
    nets = [m for m in amounts if _NET_WORDS.search(line[m.start() : m.end() + 8])]
    chosen = nets[-1] if nets and _GROSS_WORDS.search(line[nets[-1].end() :]) else amounts[-1]
    if chosen is amounts[-1] and _CURRENCY_WORDS.sub("", line[chosen.end() :]).strip():
        return None
    amount = _span(chosen)
    left = line[: amount.start]

    def column(pattern: re.Pattern[str]) -> _Column | None:
        found = [m for m in pattern.finditer(left) if m.end() <= amount.start]
        return _span(found[-1]) if found else None

    quantity, price, rate = column(_QUANTITY_HEADER), column(_PRICE_HEADER), column(_RATE_HEADER)
    if rate is None:
        # a rate column right of the amount ("Wartość netto  VAT  Wartość brutto")
        after = [m for m in _RATE_HEADER.finditer(line) if m.start() >= amount.end]
        rate = _span(after[0]) if after else None
    return _Header(amount, quantity, price, rate)


def _nearest(header: _Header, start: int, end: int) -> _Column | None:
    """The header column a value stands under: of those within MARGIN, the nearest."""
    columns = [c for c in (header.amount, header.quantity, header.price, header.rate) if c]
    near = [c for c in columns if c.holds(start, end)]
    middle = (start + end) / 2
    return min(near, key=lambda c: abs((c.start + c.end) / 2 - middle), default=None)


def _under(
    column: _Column | None, header: _Header, line: str, separator: str | None
) -> Decimal | None:
    if column is None:
        return None
    for match in _NUMBER.finditer(line):
        if _nearest(header, match.start(), match.end()) is column:
            return parse_amount(match.group(0), decimal_separator=separator)
    return None


def _rate(column: _Column | None, line: str) -> Decimal | None:
    if column is None:
        return None
    for match in PERCENT.finditer(line):
        if column.holds(match.start(), match.end()):
            return Decimal(match.group(1).replace(",", "."))
    return None


def _description(line: str, header: _Header) -> str:
    """The row's words outside the columns of numbers (a quantity's unit stays: "20 Stk")."""
    text = list(line)
    columns = [c for c in (header.amount, header.quantity, header.price, header.rate) if c]
    for match in re.finditer(r"\S+", line):
        under = any(c.holds(match.start(), match.end(), 1) for c in columns)
        if (under and re.search(r"\d", match.group(0))) or _MONEY_TOKEN.fullmatch(match.group(0)):
            text[match.start() : match.end()] = " " * (match.end() - match.start())
    words = " ".join("".join(text).split())
    return re.sub(r"^(?:€|\$|£|EUR)\s*|\s*(?:€|\$|£|EUR|%)$", "", words).strip(" :-|")


def _ends_table(line: str) -> bool:
    found = amounts_in(line)
    if found and classify_total(line[: found[0].start]) is not None:
        return True
    return bool(TABLE_END.search(line))


def _same_columns(a: _Header, b: _Header) -> bool:
    """Whether two headers have the same columns (wherever they stand)."""
    return (a.quantity is None, a.price is None, a.rate is None) == (
        b.quantity is None,
        b.price is None,
        b.rate is None,
    )


def _read_rows(rows: list[str], header: _Header, separator: str | None) -> list[_Item]:
    items: list[_Item] = []
    pending: _Item | None = None
    for row in rows:
        if not row.strip():
            continue
        repeated = _header(row)
        if repeated is not None:
            if not _same_columns(repeated, header):
                break  # another table's header (the VAT breakdown's)
            header = repeated  # the header repeated on the next page, where columns moved
            continue
        if _SUBTOTAL.search(row):
            continue  # a subtotal or an amount carried forward: the table goes on
        if _ends_table(row):
            break
        if _PAGE_NOTE.search(row) and not any(a.has_decimals for a in amounts_in(row)):
            continue  # the next page's running head
        amount = [
            a
            for a in amounts_in(row)
            if a.has_decimals and not a.qualified and header.amount.holds(a.start, a.end)
        ]
        # the right-most amount near the amount column is its value (a unit price may stand
        # close to its left)
        amount = amount[-1:]
        quantity = _under(header.quantity, header, row, separator)
        price = _under(header.price, header, row, separator)
        rate = _rate(header.rate, row)
        position = POSITION.match(row)
        if position and quantity is not None and header.quantity.holds(*position.span(1)):
            position = None  # the number stands under the quantity: it is the quantity
        description = _description(row[position.end() :] if position else row, header)
        if position:
            description = _description(" " * position.end() + row[position.end() :], header)
        if not amount:
            if quantity is not None or price is not None:
                if pending is not None and items:
                    items[-1].description += pending.description
                pending = _Item([description] if description else [], quantity, price, rate)
                pending.position = position.group(1) if position else None
            elif description:
                target = pending if pending is not None else (items[-1] if items else None)
                if target is not None:
                    target.description.append(description)
            continue
        item = pending or _Item()
        pending = None
        if description:
            item.description.append(description)
        item.quantity = item.quantity if quantity is None else quantity
        item.price = item.price if price is None else price
        item.rate = item.rate if rate is None else rate
        item.amount = amount[0].value
        if position:
            item.position = position.group(1)
        items.append(item)
    return items


def read_table(lines: list[str]) -> list[InvoiceLine]:
    """The lines of the first table under a header with an amount column, read by column; an
    empty list when there is none or it is not understood."""
    for index, line in enumerate(lines):
        header = _header(line)
        if header is None:
            continue
        rows = lines[index + 1 : index + 1 + MAX_TABLE_ROWS]
        items = _read_rows(rows, header, decimal_separator("\n".join(lines)))
        if items:
            return [
                InvoiceLine(
                    line_id=item.position or str(number),
                    description=" ".join(item.description) or None,
                    quantity=item.quantity,
                    unit_code=None,
                    unit_price=item.price,
                    net_amount=item.amount,
                    vat_rate=item.rate,
                )
                for number, item in enumerate(items, start=1)
            ]
    return []
