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
from decimal import ROUND_HALF_UP, Decimal

from invoice_pipelines.core.invoice import VatBreakdown
from invoice_pipelines.core.rules import KNOWN_RATES
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
_MARKS = re.compile(r"[\W_]+")
_SLACK = Decimal("1.00")
_CENT = Decimal("0.01")


def _row(line: str) -> VatBreakdown | None:
    """One row: a rate and two to four amounts that satisfy its arithmetic."""
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
    if len(rates) > 1 or not 2 <= len(money) <= 4:
        return None
    rest = line
    for span in sorted(spans + [(a.start, a.end) for a in money])[::-1]:
        rest = rest[: span[0]] + " " + rest[span[1] :]
    # a mark alone (a scan's speck read as ".", ";", "'" or a dash) says nothing either way
    words = [
        w.rstrip(".,;") for w in re.sub(r"[:|()]", " ", rest).split() if not _MARKS.fullmatch(w)
    ]
    if any(not (_ROW_WORDS.fullmatch(w) or L.VAT_RE.fullmatch(w)) for w in words if w):
        return None  # a line of the invoice (its description), not a breakdown row
    pairs = _basis_and_amount([a.value for a in money])
    if not rates:
        return _inferred(pairs)
    rate = rates[0]
    # a bare number is a rate only when it gives the VAT to the cent (`_SLACK` for one printed
    # with its sign)
    slack = _SLACK if spans and line[spans[0][1] - 1] == "%" else _CENT
    for basis, amount in pairs:
        if abs(amount) <= abs(basis) and abs(basis * rate / 100 - amount) <= slack:
            return VatBreakdown(category=None, rate=rate, basis=basis, amount=amount)
    return None


def _basis_and_amount(values: list[Decimal]) -> list[tuple[Decimal, Decimal]]:
    """Which of a row's amounts may be its basis and its VAT: of two, either way round; of three
    (basis, VAT, gross), the first two where they add up to the third; of four (goods, allowance
    or charge, basis, VAT: "410,10  -6,55  403,55  76,67"), the last two where the first two add
    up to the third."""
    if len(values) == 2:
        return [(values[0], values[1]), (values[1], values[0])]
    if len(values) == 3 and values[0] + values[1] == values[2]:
        return [(values[0], values[1]), (values[1], values[0])]
    if len(values) == 4 and values[0] + values[1] == values[2]:
        return [(values[2], values[3])]
    return []


def _inferred(pairs: list[tuple[Decimal, Decimal]]) -> VatBreakdown | None:
    """A row whose rate could not be read (a scan's "th" or "¥" where "7" stood): the one rate VAT
    law knows that gives its VAT from its basis to the cent, rounded as EN 16931 rounds. Two
    rates that would, or none, and the row is no row. What it proves is still checked as a
    block against the totals read."""
    found = {
        (rate, basis, amount)
        for basis, amount in pairs
        for rate in KNOWN_RATES
        if rate
        and 0 < abs(amount) < abs(basis)
        and (basis * rate / 100).quantize(_CENT, ROUND_HALF_UP) == amount
    }
    if len(found) != 1:
        return None
    rate, basis, amount = found.pop()
    return VatBreakdown(category=None, rate=rate, basis=basis, amount=amount)


def _same(row: VatBreakdown, other: VatBreakdown) -> bool:
    return (row.rate, row.basis, row.amount) == (other.rate, other.basis, other.amount)


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
            if _same(row, blocks[-1][-1]):
                # the block's sum under its one rate ("41,31  8,68  49,99" under "21 %  41,31
                # 8,68  49,99"), whose rate the arithmetic gave: no second row
                last = index
                continue
            blocks[-1].append(row)
        else:
            blocks.append([row])
        last = index
    for block in reversed(blocks):
        if len({row.rate for row in block}) == len(block):
            return block
    return []
