"""A VAT breakdown printed as its own small table, one row per rate with no label of its own:

    USt-Satz     Nettobetrag     USt-Betrag            VAT rate   Net      VAT      Gross
    19 %            198,00          37,62              20 %       100.00   20.00    120.00
    7 %             275,00          19,25              5 %         40.00    2.00     42.00

Which number is the basis and which the VAT is not taken from the headings (their words and
order vary) but from the row's own arithmetic: the VAT is its basis times the rate (within a cent
per line, at most EN 16931's one currency unit), and with a third number, basis + VAT is it. The
rows are kept only as a whole block that the caller checks against the totals read (their VAT
adds up to the VAT total, their bases to the net), so a row misread proves nothing.
"""

from __future__ import annotations

import re
from decimal import Decimal

from invoice_pipelines.core.invoice import VatBreakdown
from invoice_pipelines.intake.domain.formats.text import labels as L
from invoice_pipelines.intake.domain.formats.text.numbers import PERCENT, amounts_in

# a row's words besides its rate and amounts may only name the tax, its category or a currency
_ROW_WORDS = re.compile(
    r"(?:[^\W\d_]{1,2}|standard|normal|reduced|reduziert|erm[äa][ßs]igt|r[ée]duit|normaal|"
    r"laag|hoog|satz|rate|taux|eur|usd|gbp|chf|€|\$|£)\.?",
    re.IGNORECASE,
)
# rows of one block stand at most this many lines with text apart
_ROW_GAP = 2
# a rate printed as a bare number: "7", "19", "5,5" (never two decimals, which are money)
_BARE_RATE = re.compile(r"\d{1,2}(?:[.,]\d)?")
_SLACK = Decimal("1.00")
_CENT = Decimal("0.01")


def _row(line: str) -> VatBreakdown | None:
    """One row: a rate and two or three amounts that satisfy its arithmetic."""
    found = [a for a in amounts_in(line) if not a.qualified]
    percents = list(PERCENT.finditer(line))
    spans = [r.span() for r in percents]
    rates = [Decimal(r.group(1).replace(",", ".")) for r in percents]
    if not rates:
        # the rate without its sign, under a heading "USt. %" ("Umsatzsteuer (S)  129,37  7
        # 9,06"): a number that is no money (no cents) and could be a rate
        bare = [a for a in found if _BARE_RATE.fullmatch(a.text) and 0 < a.value < 30]
        rates, spans = [a.value for a in bare], [(a.start, a.end) for a in bare]
    money = [a for a in found if a.has_decimals and (a.start, a.end) not in spans]
    if len(rates) != 1 or not 2 <= len(money) <= 3:
        return None
    rest = line
    for span in sorted(spans + [(a.start, a.end) for a in money])[::-1]:
        rest = rest[: span[0]] + " " + rest[span[1] :]
    words = re.sub(r"[:|()]", " ", rest).split()
    if any(not (_ROW_WORDS.fullmatch(w) or L.VAT_RE.fullmatch(w)) for w in words):
        return None  # a line of the invoice (its description), not a breakdown row
    rate = rates[0]
    values = [a.value for a in money]
    if len(values) == 3 and values[0] + values[1] != values[2]:
        return None
    # a bare number is a rate only when it gives the VAT to the cent (`_SLACK` for one printed
    # with its sign)
    slack = _SLACK if spans and line[spans[0][1] - 1] == "%" else _CENT
    for basis, amount in ((values[0], values[1]), (values[1], values[0])):
        if abs(amount) <= abs(basis) and abs(basis * rate / 100 - amount) <= slack:
            return VatBreakdown(category=None, rate=rate, basis=basis, amount=amount)
    return None


def read_vat_table(lines: list[str]) -> list[VatBreakdown]:
    """The last block of breakdown rows on the page (rates distinct), else an empty list."""
    blocks: list[list[VatBreakdown]] = []
    last = -10
    # counted in lines with text: a renderer may leave empty lines between a table's rows
    printed = [line for line in lines if line.strip()]
    for index, line in enumerate(printed):
        row = _row(line)
        if row is None:
            continue
        if blocks and index - last <= _ROW_GAP:
            blocks[-1].append(row)
        else:
            blocks.append([row])
        last = index
    for block in reversed(blocks):
        if len({row.rate for row in block}) == len(block):
            return block
    return []
