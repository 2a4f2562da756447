"""Invoice lines from tabular text: a header row naming quantity and price/amount columns, then
rows whose numbers satisfy quantity x unit price (less a printed discount) = line amount.

Only rows whose arithmetic holds are kept, so a misread row is dropped rather than reported
with a wrong amount; the table ends at the first totals line.
"""

from __future__ import annotations

import re
from decimal import Decimal
from itertools import permutations

from invoice_pipelines.core.invoice import InvoiceLine
from invoice_pipelines.intake.domain.formats.text.labels import classify_total
from invoice_pipelines.intake.domain.formats.text.numbers import PERCENT, amounts_in, parse_amount

MAX_TABLE_ROWS = 60
MAX_NUMBERS_PER_ROW = 8

_QUANTITY_HEADER = re.compile(
    r"(?<![^\W\d_])(?:menge|anzahl|anz|qty|quantity|quantit[ée]|qt[ée]|aantal|cantidad|"
    r"quantit[àa]|stk|amount)(?![^\W\d_])",
    re.IGNORECASE,
)
_PRICE_HEADER = re.compile(
    r"(?<![^\W\d_])(?:preis|einzelpreis|nettopreis|price|unit\s+price|rate|prix|prijs|"
    r"stukprijs|precio|prezzo|betrag|gesamtbetrag|nettobetrag|total|amount|montant|bedrag|"
    r"importe|importo|prix\s+ht|summe)(?![^\W\d_])",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"(?<![\w.,/\-])-?\d{1,3}(?:[.,\u00a0 ]\d{3})*(?:[.,]\d{1,4})?(?![\d%])(?![.,]\d)"
)
POSITION = re.compile(r"^\s*(\d{1,3})[.)]?\s+(?=\S)")
_DISCOUNT = re.compile(r"(\d{1,2}(?:[.,]\d{1,2})?)\s?%")
_TOLERANCE = Decimal("0.01")
# Headings of what follows the line table
TABLE_END = re.compile(
    r"(?:umsatz|mehrwert)?steuer\s?aufschl[üu]sselung|ust\.?-?aufschl|mwst\.?-?aufschl|"
    r"vat\s+(?:breakdown|summary|analysis)|tax\s+(?:breakdown|summary)|r[ée]capitulatif|"
    r"zahlungsbedingungen|payment\s+terms|conditions\s+de\s+(?:paiement|r[èe]glement)|"
    r"belegsummen|rechnungssummen|btw-?(?:overzicht|specificatie)",
    re.IGNORECASE,
)


def decimal_separator(text: str) -> str | None:
    """ "," when most two-decimal amounts in the text use a decimal comma, "." for a point."""
    # a date ("11.09.2018") or a grouped number ("1.234.567") is not a decimal point
    commas = len(re.findall(r"\d,\d{2}(?!\d|[.,]\d)", text))
    points = len(re.findall(r"\d\.\d{2}(?!\d|[.,]\d)", text))
    if commas == points:
        return None
    return "," if commas > points else "."


def _numbers(row: str, separator: str | None) -> list[tuple[int, int, Decimal]]:
    found = []
    for match in _NUMBER.finditer(row):
        value = parse_amount(match.group(0), decimal_separator=separator)
        if value is not None:
            found.append((match.start(), match.end(), value))
    return found[:MAX_NUMBERS_PER_ROW]


def _close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= _TOLERANCE


def _parse_row(row: str, separator: str | None, index: int) -> InvoiceLine | None:
    position = POSITION.match(row)
    body_start = position.end() if position else 0
    numbers = [n for n in _numbers(row, separator) if n[0] >= body_start]
    money = [
        a for a in amounts_in(row) if a.has_decimals and not a.qualified and a.start >= body_start
    ]
    if len(numbers) < 3 or not money:
        return None
    net = money[-1]
    before = [n for n in numbers if n[1] <= net.start]
    discounts = [Decimal(d.replace(",", ".")) for d in _DISCOUNT.findall(row)]
    for (q_start, q_end, quantity), (_, p_end, price) in permutations(before, 2):
        if quantity <= 0 or (price == 0 and net.value != 0):
            continue  # a free line (1 x 0,00 = 0,00) is a line too
        # a credit row prints its amount negative ("5 Unit(s)  4,55 €  -20,48 €"): then the
        # quantity is what is negative
        if net.value < 0 < quantity and price > 0:
            quantity = -quantity
        product = quantity * price
        for discount in (Decimal(0), *discounts):
            if _close((product * (100 - discount) / 100).quantize(Decimal("0.01")), net.value):
                first = min(q_start, *(n[0] for n in before))
                description = " ".join(row[body_start:first].split()).strip(" :-,|")
                if not re.search(r"[^\W\d_]{2}", description):
                    description = " ".join(row[max(p_end, q_end) : net.start].split())
                rates = [
                    r
                    for r in PERCENT.findall(row)
                    if not discount or Decimal(r.replace(",", ".")) != discount
                ]
                return InvoiceLine(
                    line_id=position.group(1) if position else str(index),
                    description=description or None,
                    quantity=quantity,
                    unit_code=None,
                    unit_price=price,
                    net_amount=net.value,
                    vat_rate=Decimal(rates[-1].replace(",", ".")) if rates else None,
                )
    return None


def extract_lines(lines: list[str]) -> list[InvoiceLine]:
    """The invoice lines of the first table whose header names quantity and price/amount."""
    separator = decimal_separator("\n".join(lines))
    for header_index, header in enumerate(lines):
        if not (_QUANTITY_HEADER.search(header) and _PRICE_HEADER.search(header)):
            continue
        if amounts_in(header):
            continue
        found: list[InvoiceLine] = []
        rows = [row for row in lines[header_index + 1 :] if row.strip()][:MAX_TABLE_ROWS]
        consumed = False
        for offset, row in enumerate(rows):
            if consumed:
                consumed = False  # the second text line of the row before
                continue
            if any(classify_total(row[: a.start]) is not None for a in amounts_in(row)[:1]):
                break  # the totals (the lines' sum first) end the table
            if TABLE_END.search(row) and not amounts_in(row):
                break  # the VAT breakdown, the payment terms, the totals' heading
            line = _parse_row(row, separator, len(found) + 1)
            following = rows[offset + 1] if offset + 1 < len(rows) else ""
            if (
                line is None
                and following
                and not POSITION.match(following)
                and _parse_row(following, separator, 0) is None
            ):
                # The amount column may sit on the row's second text line.
                line = _parse_row(f"{row}   {following.strip()}", separator, len(found) + 1)
                consumed = line is not None
            if line is not None:
                found.append(line)
        if found:
            return found
    return []
