"""Invoice fields from plain text (a PDF text layer or OCR output), each with a confidence.

Template-free: label dictionaries in several languages (labels.py) find where a value is, the
layout says which value belongs to a label (same line, or the line below in the label's column),
and the grammars for amounts, dates and currencies (numbers.py, dates.py, currency.py) read it.
Totals are chosen so that net + VAT = gross whenever the text allows; one missing total is
derived from the other two. A field whose confidence stays below MIN_CONFIDENCE is left out:
an empty field makes the rules ask for it, a guessed one would pass them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from itertools import product
from typing import Any

import invoice_pipelines.intake.domain.formats.text.labels as L
from invoice_pipelines.core.invoice import (
    AllowanceCharge,
    Invoice,
    InvoiceLine,
    Origin,
    VatBreakdown,
)
from invoice_pipelines.core.money import CENT, plain_string
from invoice_pipelines.intake.domain.formats.text.accounts import ReadAccount, read_accounts
from invoice_pipelines.intake.domain.formats.text.currency import (
    CURRENCY_LABEL,
    find_currency,
    labelled_code,
)
from invoice_pipelines.intake.domain.formats.text.dates import (
    MONTHS,
    day_first_evidence,
    find_dates,
)
from invoice_pipelines.intake.domain.formats.text.lines import extract_lines
from invoice_pipelines.intake.domain.formats.text.numbers import Amount, amounts_in, percent_in
from invoice_pipelines.intake.domain.formats.text.ocr import normalize_ocr
from invoice_pipelines.intake.domain.formats.text.parties import (
    LEGAL_FORM,
    VAT_ID_LABEL,
    read_parties,
    same_party,
)
from invoice_pipelines.intake.domain.formats.text.table import read_table
from invoice_pipelines.intake.domain.formats.text.vat_table import read_vat_table

MAX_TEXT_CHARS = 500_000
MAX_TOTAL_CANDIDATES = 8
MIN_CONFIDENCE = 0.5
# How far below a label its value may be (non-empty lines), and how far right of it.
LINES_BELOW = 2
_LEADING_NOISE = re.compile(r"^[\s:#.;,|_=°º*\-–—>»]*")
_NUMBER_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/._]{0,40}")
# one space, then digits with at least one separator inside ("125-205"), then the value's end
_SPLIT_DIGITS = re.compile(r" (\d+[-/.]\d[\d\-/.]*)(?=\s|$)")
_CELL = re.compile(r"\S+(?: \S+)*")
_LETTERS = re.compile(r"[^\W\d_]{2,}")
_CURRENCY_NOISE = re.compile(
    r"(€|£|\$|¥|₹|\b[A-Z]{3}\b|\bzł|\bFt\b|\bKč|\d{1,2}(?:[.,]\d{1,3})?\s?%)", re.UNICODE
)


# ---------------------------------------------------------------- result types


@dataclass(frozen=True, slots=True)
class TextField:
    """One extracted value, how sure we are, and the text line it came from."""

    value: Any
    confidence: float
    source: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, Decimal):
            value = plain_string(value)
        elif isinstance(value, date):
            value = value.isoformat()
        source = " ".join(self.source.split())[:200]
        return {"value": value, "confidence": round(self.confidence, 2), "source": source}


@dataclass
class ExtractedFields:
    """Fields found in a text; absent fields are simply missing from `fields`."""

    fields: dict[str, TextField] = field(default_factory=dict)
    lines: list[InvoiceLine] = field(default_factory=list)
    vat_breakdown: list[VatBreakdown] = field(default_factory=list)
    # why a person must look at what was read, beyond a field's confidence (parties.py)
    doubts: list[str] = field(default_factory=list)
    # every account the page names to be paid to, a failing IBAN among them (accounts.py)
    accounts: list[ReadAccount] = field(default_factory=list)

    def value(self, name: str) -> Any:
        found = self.fields.get(name)
        return None if found is None else found.value

    def to_json_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {name: f.to_json_dict() for name, f in sorted(self.fields.items())}
        if self.lines:
            result["lines"] = [line.to_json_dict() for line in self.lines]
        if self.accounts:
            result["payment_accounts"] = [a.to_json_dict() for a in self.accounts]
        return result

    def _allowances_charges(self) -> tuple[AllowanceCharge, ...]:
        """The document's allowances and charges as the page sums them (one each, its label as
        the reason): the page's items themselves are not read."""
        return tuple(
            AllowanceCharge(is_charge=name == "charge_total", amount=f.value, reason=f.source)
            for name in ("allowance_total", "charge_total")
            if (f := self.fields.get(name)) is not None and f.value
        )

    def to_invoice(self, *, origin: Origin, confidence_scale: float = 1.0) -> Invoice:
        """The normalized invoice; only what text can carry, the rest stays None."""
        net, tax = self.value("net_total"), self.value("tax_total")
        breakdown: tuple[VatBreakdown, ...] = tuple(self.vat_breakdown)
        rate = self.value("vat_rate")
        if not breakdown and rate is not None and net is not None and tax is not None:
            breakdown = (VatBreakdown(category=None, rate=rate, basis=net, amount=tax),)
        return Invoice(
            number=self.value("number"),
            type_code=self.value("type_code"),
            issue_date=self.value("issue_date"),
            due_date=self.value("due_date"),
            currency=self.value("currency"),
            seller_name=self.value("seller_name"),
            seller_vat_id=self.value("seller_vat_id"),
            buyer_name=self.value("buyer_name"),
            buyer_vat_id=self.value("buyer_vat_id"),
            iban=self.value("iban"),
            payment_accounts=tuple(a.account for a in self.accounts),
            allowance_total=self.value("allowance_total"),
            charge_total=self.value("charge_total"),
            allowances_charges=self._allowances_charges(),
            net_total=net,
            tax_total=tax,
            gross_total=self.value("gross_total"),
            amount_due=self.value("amount_due"),
            prepaid=self.value("prepaid"),
            vat_breakdown=breakdown,
            lines=tuple(self.lines),
            origin=origin,
            confidence={
                name: round(f.confidence * confidence_scale, 3) for name, f in self.fields.items()
            },
        )


# ---------------------------------------------------------------- layout


def _labels(pattern: re.Pattern[str], line: str) -> list[re.Match[str]]:
    """Label matches within one column: "Date           Due" across a gap is two labels."""
    found: list[re.Match[str]] = []
    position = 0
    while (match := pattern.search(line, position)) is not None:
        gap = match.group(0).find("   ")
        if gap < 0:
            found.append(match)
            position = max(match.end(), match.start() + 1)
        else:
            position = match.start() + gap + 3
    return found


def _values_near(
    lines: list[str], index: int, start: int, end: int
) -> list[tuple[str, str, float]]:
    """Where a label's value may be: the rest of its line, then the lines below it.

    Below, in layout text (columns kept by runs of spaces), only the cells that overlap the
    label's column count; "Rechnungsnummer" over "471102" in a right-hand block. The factor
    says how much a value found there is worth compared with one on the label's own line.
    """
    line = lines[index]
    rest = line[end:]
    found = [(rest, line.strip(), 1.0)]
    if re.search(r"\d", rest):
        return found
    next_column = min(
        (m.start() for m in re.finditer(r"(?<=\s{3})\S", line) if m.start() >= end),
        default=len(line) + 1000,
    )
    below = 0
    for following in lines[index + 1 : index + 6]:
        if not following.strip():
            continue
        below += 1
        if below > LINES_BELOW:
            break
        if "   " in following or "   " in line:
            # The value's cell ends right of the label's start: under it, or right-aligned in
            # the same block ("Rechnungsnummer" above a right-aligned "471102"); and it starts
            # left of the next column header ("Invoice Date   Due Date" over two dates).
            cells = [
                m
                for m in _CELL.finditer(following)
                if m.end() >= start - 2 and m.start() < next_column
            ]
            # a cell under the label itself is its value, not the text that ends just left of
            # it ("... wurde bereits  03.10.2018" under "Fälligkeit", as a scan lays it out)
            under = [m for m in cells if m.end() > start and m.start() < end]
            text = "   ".join(m.group(0) for m in under or cells)
        else:
            text = following
        if text.strip():
            found.append(
                (text, f"{line.strip()} / {following.strip()}", 0.9 if below == 1 else 0.8)
            )
    return found


# ---------------------------------------------------------------- invoice number


def _number_value(text: str) -> str | None:
    rest = _LEADING_NOISE.sub("", text)
    rest = re.sub(r"^(?:nr\.?|no\.?|n[°º]\.?|#)\s*[:.]?\s*", "", rest, flags=re.I)
    token = _NUMBER_TOKEN.match(rest)
    if token is None:
        return None
    value = token.group(0).rstrip(".-/_")
    split = _SPLIT_DIGITS.match(rest, token.end())
    if split and value.isdigit() and len(value) >= 4:
        # OCR reads a gap into a run of digits ("20261 125-205" for "20261125-205"): a digit
        # group followed by one space and a digit group with separators is one number
        value += split.group(1).rstrip(".-/_")
    if not re.search(r"\d", value) or len(value) < 2:
        return None
    if find_dates(value) and re.fullmatch(r"[\d./\-]+", value):
        return None  # a date, not a number
    return value


_JOINER_START = re.compile(r"\s*(?:(?:vom|von|dated|of|du|van|del|from)(?!\w)\s*:?)?\s*", re.I)
# How many lines from the top a title line may be
TITLE_LINES = 40


def _title_number(line: str) -> tuple[str, int] | None:
    """The number a title line gives its document, and where the number ends: "Rechnungskorrektur
    Nr. RK21012345 vom 16.09.2018" gives ("RK21012345", 35). The title names a kind of document
    in its first or last word and nothing else's (no order, customer or corrected invoice)."""
    match = L.TITLE_LINE.search(line)
    if match is None:
        return None
    title = re.sub(r"\([^()]{0,40}\)", " ", match.group("title")).split()
    if not title or len(title) > 6 or any(re.search(r"\d", word) for word in title):
        return None
    if not (L.DOCUMENT_WORD.search(title[0]) or L.DOCUMENT_WORD.search(title[-1])):
        return None
    if L.OTHER_DOCUMENT.search(" ".join(title)):
        return None
    rest = line[match.end() :]
    value = _number_value(rest)
    if value is None:
        return None
    return value, match.end() + rest.find(value[:1]) + len(value)


def _other_documents(line: str, label: re.Match[str]) -> bool:
    """A number label that names another document's number ("bezogen auf Rechnung Nr.",
    "Ursprungsrechnungsnummer", "Original invoice no.")."""
    before = line[max(0, label.start() - 30) : label.start()]
    before = re.split(r"\s{3,}", before)[-1]
    return bool(L.OTHER_DOCUMENT.search(before) or L.OTHER_DOCUMENT.search(label.group(0)))


def _extract_number(lines: list[str], raw_lines: list[str]) -> TextField | None:
    best: TextField | None = None
    for index, line in enumerate(lines):
        if index < TITLE_LINES:
            title = _title_number(raw_lines[index])
            if title is not None:
                return TextField(title[0], 0.9, line.strip())
        for label in _labels(L.NUMBER_LABEL, line):
            if _other_documents(line, label):
                continue
            for text, source, factor in _values_near(raw_lines, index, label.start(), label.end()):
                value = _number_value(text)
                if value is not None:
                    if best is None or 0.9 * factor > best.confidence:
                        best = TextField(value, 0.9 * factor, source)
                    break
        if best is not None and best.confidence >= 0.9:
            return best
    if best is not None:
        return best
    page = "\n".join(raw_lines)
    headed = _number_under_heading(raw_lines, page)
    if headed is not None:
        return headed
    for index, line in enumerate(raw_lines):
        for title in L.TITLE_NUMBER.finditer(line):
            value = _number_value(title.group("value"))
            if value is not None:
                return TextField(
                    value, _title_confidence(line, title, value, index, page), line.strip()
                )
    return None


# the document's own word as a column heading: "Klant   Order   Factuurdatum   Factuur"
_DOCUMENT_HEADING = re.compile(
    r"factuur|invoice|rechnung|facture|factura|fattura|faktura|számla", re.IGNORECASE
)


def _number_under_heading(raw_lines: list[str], page: str) -> TextField | None:
    """The number in a row of values under a row of headings, one of which is the document's own
    word alone ("Klant / Order / Factuur datum / Factuur" over "SCONL... / SCONL... / 8-9-2022 /
    VF1005193039"): the value whose cell overlaps that heading's on the next line with text; or,
    under a title that stands alone or beside one other cell ("INVOICE" over "# 1043"), the value
    a number sign marks. As sure as a title's number when printed once on the page (0.85), else a
    guess (0.7)."""
    for index, line in enumerate(raw_lines[:HEAD_NUMBER_LINES]):
        cells = list(re.finditer(r"\S+(?: \S+)*", line))
        if len(cells) >= 3 and re.search(r"\d", line):
            continue  # a row of values, not of headings
        heading = [c for c in cells if _DOCUMENT_HEADING.fullmatch(c.group(0))]
        if len(heading) != 1:
            continue
        below = next((row for row in raw_lines[index + 1 : index + 3] if row.strip()), "")
        column = heading[0]
        if len(cells) < 3:
            # the title with its number set under it, after a number sign ("INVOICE" over
            # "# 1043"); a bare value there is left (a date, an address)
            cell = _cell_under(below, column, r"\S+(?: \S+)*")
            signed = _SIGNED_NUMBER.fullmatch(cell) if cell else None
            value = _number_value(signed.group("value")) if signed else None
        else:
            cell = _cell_under(below, column, r"\S+")
            value = _number_value(cell) if cell else None
        if value is not None:
            return TextField(value, _headed_confidence(value, page), below.strip())
    return None


def _cell_under(below: str, column: re.Match[str], cell: str) -> str | None:
    """The first cell (`cell`, a pattern) of the line `below` that overlaps `column`."""
    for found in re.finditer(cell, below):
        if found.start() < column.end() + 2 and found.end() > column.start() - 2:
            return found.group(0)
    return None


def _headed_confidence(value: str, page: str) -> float:
    once = len(re.findall(rf"(?<![\w-]){re.escape(value)}(?![\w-])", page)) == 1
    return 0.85 if once else 0.7


_SIGNED_NUMBER = re.compile(r"(?:#|no\.?|nr\.?|n[°º]\.?)\s*(?P<value>\S+)", re.IGNORECASE)


# how far down the page a heading row of the document's number is looked for
HEAD_NUMBER_LINES = 40


def _title_confidence(line: str, title: re.Match[str], value: str, index: int, page: str) -> float:
    """A number after a title word ("Facture FA-2017-0010") stands beside its label, and is
    as sure as a labelled one, when the title opens its line near the top of the page, nothing
    follows the number on that line, and the number is printed nowhere else on the page (a
    reference repeated in the table or the footer would be a doubt); otherwise it is a guess."""
    alone = not line[: title.start()].strip() and not line[title.end() :].strip()
    once = len(re.findall(rf"(?<![\w-]){re.escape(value)}(?![\w-])", page)) == 1
    # a month or a year after the title ("Rechnung 03/2026", "Invoice 2026") is not a number
    period = re.fullmatch(r"(?:\d{1,2}[./-])?(?:19|20)\d{2}", value)
    if index < TITLE_LINES and alone and once and len(value) >= 3 and not period:
        return 0.85
    return 0.7


# ---------------------------------------------------------------- dates


_DAY_FIRST_LANGUAGE = re.compile(
    r"(?<![^\W\d_])(?:rechnung|rechnungsdatum|facture|factuur|factuurdatum|factura|fattura|"
    r"datum|fecha|échéance|echeance|vervaldatum)(?![^\W\d_])|\b\d{1,2}\.\d{1,2}\.\d{2,4}\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _DateOrder:
    """Whether numeric dates put the day first, and whether the document itself proved it."""

    day_first: bool
    proven: bool


# "Columbus, OH 43219": a US address (state code and ZIP code).
_US_ADDRESS = re.compile(
    r"[^\W\d_]{2,},? (?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|"
    r"MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY) "
    r"\d{5}(?:-\d{4})?(?!\d)"
)


def _date_order(text: str, currency: str | None) -> _DateOrder:
    evidence = day_first_evidence(text)
    if evidence is not None:
        return _DateOrder(evidence, True)
    # An invoice in US dollars with a US address writes its dates month first.
    if currency == "USD" and _US_ADDRESS.search(text):
        return _DateOrder(False, True)
    # Only English is written both ways; a document in a day-first language (German, French,
    # Dutch, Spanish, Italian) is day first. English ones without an unambiguous date: US
    # dollars month first, others day first, and an ambiguous date stays unread.
    if _DAY_FIRST_LANGUAGE.search(text):
        return _DateOrder(True, True)
    return _DateOrder(currency != "USD", False)


def _first_date(text: str, order: _DateOrder, *, within: int = 40) -> tuple[date, float] | None:
    dates = find_dates(text[:within], day_first=order.day_first)
    if not dates:
        return None
    _, value, ambiguous = dates[0]
    # "03/05/2024" with nothing in the document to say which order it uses is a guess: it
    # comes out below MIN_CONFIDENCE, so the field stays empty and the rules ask a human.
    return value, 0.5 if ambiguous and not order.proven else 1.0


# "Erfurt, 3. März 2025", "Bordeaux, le 15/05/2025": place and date, the letter's date line.
_PLACE_DATE = re.compile(
    r"(?:^|\s{3,})[^\W\d_]{2,}(?:[ -][^\W\d_]{2,}){0,2},\s?(?:(?:den|le|am|il|el|on|dnia)\s)?"
    r"(?=\d)(?P<date>[^\n]{6,25}?)\s*$"
)


def _extract_issue_date(
    lines: list[str], order: _DateOrder, number: str | None = None
) -> TextField | None:
    candidates: list[tuple[float, int, TextField]] = []
    for index, line in enumerate(lines):
        place = _PLACE_DATE.search(line)
        if place:
            found = _first_date(place.group("date"), order, within=25)
            if found and find_dates(place.group("date"))[0][0] == 0:
                conf = 0.75 * found[1]
                candidates.append((conf, index, TextField(found[0], conf, line.strip())))
        for label in _labels(L.ISSUE_LABEL, line):
            for text, source, factor in _values_near(lines, index, label.start(), label.end()):
                found = _first_date(text, order)
                if found:
                    conf = 0.9 * factor * found[1]
                    candidates.append((conf, index, TextField(found[0], conf, source)))
                    break
        title = _title_number(line) if index < TITLE_LINES else None
        if title is not None and title[0] == number:
            joined = re.match(
                r"\s*(?:vom|von|dated|of|du|van|del|from|,)?\s*:?\s*", line[title[1] :]
            )
            after = line[title[1] + joined.end() :]
            if not after.strip():
                # the date wrapped onto the next line: "... Nr. 471102 vom" / "05.03.2018", or
                # "... Nr. 471102" / "vom 05.03.2018"
                following = next((f for f in lines[index + 1 : index + 3] if f.strip()), "")
                lead = _JOINER_START.match(following)
                if joined.group(0).strip() or (lead and lead.group(0).strip()):
                    after = following[lead.end() :] if lead else following
            found = _first_date(after, order, within=25)
            if found:
                conf = 0.85 * found[1]
                candidates.append((conf, index, TextField(found[0], conf, line.strip())))
        # "Rechnung Nr. 471102 vom 05.03.2018", "Invoice # 17 issued at ...", "Facture n° 5 du ..."
        for label in _labels(L.NUMBER_LABEL, line):
            joiner = L.NUMBER_DATE_JOINER.search(line, label.end(), label.end() + 60)
            # Only this document's own number: "Sur facture n° 118 du ..." in a credit note
            # dates the invoice it corrects.
            if joiner and number is not None:
                stated = _number_value(line[label.end() : joiner.start()])
                if stated is not None and stated != number:
                    joiner = None
            if joiner:
                found = _first_date(line[joiner.end() :], order, within=25)
                if found:
                    conf = 0.85 * found[1]
                    candidates.append((conf, index, TextField(found[0], conf, line.strip())))
        for label in _labels(L.GENERIC_DATE_LABEL, line):
            before = line[max(0, label.start() - 30) : label.end()]
            if L.NOT_ISSUE.search(before):
                continue
            for text, source, factor in _values_near(lines, index, label.start(), label.end()):
                if L.NOT_ISSUE.search(text[:20]):
                    break
                found = _first_date(_LEADING_NOISE.sub("", text), order, within=25)
                if found:
                    conf = 0.7 * factor * found[1]
                    candidates.append((conf, index, TextField(found[0], conf, source)))
                    break
    if not candidates:
        lone = _lone_head_date(lines, order)
        if lone is not None:
            candidates.append((lone.confidence, 0, lone))
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c[0], -c[1]))[2]


def _lone_head_date(lines: list[str], order: _DateOrder) -> TextField | None:
    """A letter's date with no label: one date alone in its column in the head of the page
    ("Beitragsrechnung          24. Januar 2014"). Only when it is the only such date, and never
    sure enough to be booked unseen (the caller uses it only when nothing labelled is found)."""
    found: dict[date, str] = {}
    for line in lines[:TITLE_LINES]:
        if L.NOT_ISSUE.search(line):
            continue
        cells = re.split(r"\s{3,}", line.strip())
        cell = cells[-1] if cells else ""
        dates = find_dates(cell, day_first=order.day_first)
        words = [w for w in re.findall(r"[^\W\d_]+", cell) if w.lower() not in MONTHS]
        if len(dates) == 1 and dates[0][0] == 0 and len(cell) <= 20 and not words:
            found[dates[0][1]] = line.strip()
    if len(found) != 1:
        return None
    value, source = found.popitem()
    return TextField(value, 0.6, source)


def _extract_due_date(lines: list[str], order: _DateOrder) -> TextField | None:
    candidates: list[tuple[float, int, TextField]] = []
    for index, line in enumerate(lines):
        for label in _labels(L.DUE_LABEL, line):
            for text, source, factor in _values_near(lines, index, label.start(), label.end()):
                found = _first_date(_LEADING_NOISE.sub("", text), order)
                if found:
                    conf = 0.9 * factor * found[1]
                    candidates.append((conf, index, TextField(found[0], conf, source)))
                    break
        for sentence in L.DUE_SENTENCE_RE.finditer(line):
            if L.EARLY_PAYMENT_RE.search(sentence.group(0)):
                continue
            found = _first_date(line[sentence.end() :], order, within=20)
            if found:
                conf = 0.8 * found[1]
                candidates.append((conf, index, TextField(found[0], conf, line.strip())))
        debit = _DEBIT_ON.search(line)
        if (
            debit
            and _DEBIT_AMOUNT.search(line[: debit.start()])
            and _DEBITED.search(" ".join(lines[index : index + 2]))
        ):
            # "Der Betrag ... wird am 20.03.2014 von Ihrem Konto ... per SEPA-Lastschrift
            # eingezogen": the day the direct debit takes it is the day it is due
            found = _first_date(line[debit.end() :], order, within=14)
            if found:
                conf = 0.8 * found[1]
                candidates.append((conf, index, TextField(found[0], conf, line.strip())))
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c[0], -c[1]))[2]


# a direct debit's day: "wird am 20.03.2014 ... eingezogen", "will be debited on 2014-03-20"
_DEBIT_ON = re.compile(r"\b(?:wird|werden)\s+am|\bwill\s+be\s+(?:debited|collected)\s+on", re.I)
# what is debited: "Der (Rechnungs)betrag ... wird am", "The amount ... will be debited on"
_DEBIT_AMOUNT = re.compile(r"betrag|summe|amount|total", re.I)
_DEBITED = re.compile(
    r"eingezogen|abgebucht|lastschrift|direct\s+debit|debited|collected|pr[ée]lev", re.I
)


def _relative_due_date(lines: list[str], issue: TextField | None) -> TextField | None:
    """The due date from payment terms counted in days from the invoice date ("payable within
    30 days", "zahlbar binnen 14 Tagen netto", "Net 30"), when the issue date is known.

    Early-payment clauses ("8 Tage 2 % Skonto") are not the due date; terms counted from
    delivery, receipt or the end of the month cannot be computed; differing terms leave it open.
    """
    if issue is None or issue.confidence < 0.6:
        return None
    days: set[int] = set()
    source = ""
    for line in lines:
        if not L.RELATIVE_CONTEXT_RE.search(line):
            continue
        for clause in re.split(r"[,;(]|\.\s|\s-\s|\s{3,}", line):
            if L.EARLY_PAYMENT_RE.search(clause):
                continue
            for term in L.RELATIVE_TERMS_RE.finditer(clause):
                if L.RELATIVE_OTHER_START_RE.search(clause[term.start() :]):
                    continue
                count = next(int(n) for n in term.groups() if n is not None)
                if 0 < count <= 180:
                    days.add(count)
                    source = line.strip()
    if len(days) != 1 or issue.value > date.max - timedelta(days=180):
        return None  # (a page dated 9999-12-31 has no due date a calendar can hold)
    conf = min(0.7, issue.confidence)
    return TextField(issue.value + timedelta(days=days.pop()), conf, source)


# as sure as a date beside its own label
PROVEN_DATE = 0.8


def _issue_proven_by_terms(
    lines: list[str], issue: TextField | None, due: TextField
) -> TextField | None:
    """An issue date read under a generic label ("Date :", 0.7) is proven when the due date
    printed beside its own label is the issue date plus the days the payment terms state
    ("Échéance : 2 juillet 2025", "30 jours date de facture", issued 2 juin 2025): two values
    read apart and the terms agree."""
    if issue is None or issue.confidence >= PROVEN_DATE or due.confidence < PROVEN_DATE:
        return issue
    counted = _relative_due_date(lines, issue)
    if counted is None or counted.value != due.value:
        return issue
    return TextField(issue.value, PROVEN_DATE, f"{issue.source} (due {due.value} = + terms)")


# ---------------------------------------------------------------- currency


def _extract_currency(lines: list[str], text: str) -> TextField | None:
    """A labelled code ("Währung: EUR", "Currency: USD", below its label too) wins; otherwise
    the currency marks that stand next to amounts are counted."""
    for index, line in enumerate(lines):
        for label in _labels(CURRENCY_LABEL, line):
            for value_text, source, factor in _values_near(
                lines, index, label.start(), label.end()
            ):
                code = labelled_code(value_text)
                if code is not None:
                    return TextField(code, 0.95 * factor, source)
    found = find_currency(text)
    return None if found is None else TextField(*found)


# ---------------------------------------------------------------- totals


@dataclass(frozen=True)
class _Total:
    kind: str
    value: Decimal
    index: int
    source: str
    strong: bool
    rate: Decimal | None
    basis: Decimal | None
    decimals: bool = True


def _column_header(line: str) -> bool:
    """A table header naming several totals ("Netto EUR   USt EUR   Brutto EUR"), not a label."""
    kinds = {L.classify_total(cell) for cell in re.split(r"\s{3,}", line.strip())}
    return len(kinds - {None}) > 1


def _label_groups(line: str) -> list[tuple[str, list[Amount]]]:
    """A line cut into (label, amounts) groups: a new group starts where words come between
    two numbers, so "TVA 20 % 81,90 € 16,38 €   Total taxes 46,25 €" gives two groups."""
    groups: list[tuple[str, list[Amount]]] = []
    position = 0
    for amount in amounts_in(line):
        between = line[position : amount.start]
        if not groups or _LETTERS.search(_CURRENCY_NOISE.sub(" ", between)):
            groups.append((between, [amount]))
        else:
            groups[-1][1].append(amount)
        position = amount.end
    return groups


def _total_candidates(lines: list[str]) -> list[_Total]:
    found: list[_Total] = []
    pending: tuple[str, int] | None = None  # a totals label whose amount is on the next line
    for index, line in enumerate(lines):
        groups = _label_groups(line)
        if (
            pending is not None
            and groups
            and len(groups[0][1]) == 1
            and not _LETTERS.search(_CURRENCY_NOISE.sub(" ", groups[0][0]))
        ):
            label, label_index = pending
            groups[0] = (label, groups[0][1])
        if not groups and line.strip():
            kind = L.classify_total(line)
            pending = (
                (line, index)
                if kind is not None and len(line.strip()) < 60 and not _column_header(line)
                else None
            )
            continue
        if line.strip():
            pending = None
        for label, amounts in groups:
            money = [a for a in amounts if not a.qualified]
            if not money or (money[-1] is not amounts[-1]):
                continue
            kind = L.classify_total(label)
            if kind is None:
                continue
            if kind == "gross_total" and len(money) >= 3:
                # A summary row "Summe   338,90   27,31   366,21": net, VAT and gross side by side.
                net, tax, gross = (a.value for a in money[-3:])
                if net + tax == gross and tax != 0 and abs(tax) < abs(net):
                    source = f"{label.strip()} {' '.join(a.text for a in money[-3:])}".strip()
                    for row_kind, value in (
                        ("net_total", net),
                        ("tax_total", tax),
                        ("gross_total", gross),
                    ):
                        found.append(_Total(row_kind, value, index, source, True, None, None))
                    continue
            value = money[-1].value
            basis = money[-2].value if kind == "tax_total" and len(money) >= 2 else None
            found.append(
                _Total(
                    kind,
                    value,
                    index,
                    f"{label.strip()} {money[-1].text}".strip(),
                    bool(L.STRONG_GROSS_RE.search(label)),
                    percent_in(label) if kind == "tax_total" else None,
                    basis,
                    money[-1].has_decimals,
                )
            )
    return found


def _tax_name(source: str) -> str:
    """Which tax a VAT line names: "cgst" and "sgst" are two taxes at the same rate."""
    match = L.VAT_RE.search(source)
    return "" if match is None else match.group(0).lower()


# Lines between a subtotal and the grand total that change the sum: charges add, allowances
# take off ("Shipping & Handling", "Discount (5%)", "Versandkosten", "Remise").
_CHARGE_LINE = re.compile(
    r"shipping|freight|handling|delivery|postage|carriage|versand|fracht|porto|verpackung|"
    r"frais\s+de\s+(?:port|livraison|transport)|verzend|bezorg|env[íi]o|spedizione|trasporto",
    re.IGNORECASE,
)
_ALLOWANCE_LINE = re.compile(
    r"discount|rabatt|nachlass|remise|korting|descuento|sconto", re.IGNORECASE
)


def _adjusted_net(lines: list[str], net: _Total, gross: _Total, skip: set[int]) -> Decimal | None:
    """The subtotal plus the charges and less the allowances printed between it and the grand
    total, or None when a line with an amount in between is neither (or nothing is there)."""
    adjustment = Decimal(0)
    seen = False
    for index in range(net.index + 1, gross.index):
        if index in skip:
            continue
        money = [a for a in amounts_in(lines[index]) if not a.qualified]
        if not money:
            continue
        label = lines[index][: money[-1].start]
        value = abs(money[-1].value)
        if _ALLOWANCE_LINE.search(label):
            adjustment -= value
        elif _CHARGE_LINE.search(label):
            adjustment += value
        else:
            return None
        seen = True
    return net.value + adjustment if seen else None


def _tax_options(taxes: list[_Total]) -> list[tuple[Decimal, str, int, list[_Total]]]:
    """Single VAT amounts, plus the sum of per-rate lines when several rates are printed."""
    options = [(t.value, t.source, t.index, [t]) for t in taxes]
    # Consecutive VAT lines (a per-rate block) and lines with distinct printed rates.
    runs: list[list[_Total]] = []
    for tax in taxes:
        if (
            runs
            and tax.index - runs[-1][-1].index <= 3
            and (
                tax.rate != runs[-1][-1].rate
                or _tax_name(tax.source) != _tax_name(runs[-1][-1].source)
            )
        ):
            runs[-1].append(tax)
        else:
            runs.append([tax])
    by_rate: dict[Decimal, _Total] = {t.rate: t for t in taxes if t.rate is not None}
    groups = [run for run in runs if len(run) > 1]
    if len(by_rate) > 1:
        groups.append(list(by_rate.values()))
    for group in groups:
        total = sum((t.value for t in group), Decimal(0))
        options.append((total, " + ".join(t.source for t in group), group[-1].index, group))
    return options


# a gross total the page contradicts: below every review threshold (intake/domain/plausibility.py)
CONTRADICTED = 0.5


def _gross_field(gross: _Total, from_due: bool, grosses: list[_Total]) -> TextField:
    """The gross total of a triple that adds up. Taken from the amount due (`from_due`) while the
    page prints a grand total under a plain label that says another amount, it is in doubt: net
    plus VAT is not what the page calls its total (a wrong total, or a deduction the reading did
    not see), so a person looks (IP-REV-02) instead of the amount due being booked as the total."""
    if not from_due:
        return TextField(gross.value, 0.95, gross.source)
    printed = [g for g in grosses if g.strong and g.value != gross.value]
    if printed:
        source = f"{gross.source} (the page's {printed[-1].source.strip()} says otherwise)"
        return TextField(gross.value, CONTRADICTED, source)
    return TextField(gross.value, 0.9, gross.source)


def _extract_totals(lines: list[str]) -> tuple[dict[str, TextField], list[VatBreakdown]]:
    candidates = _total_candidates(lines)
    if any(c.decimals for c in candidates):
        # Where totals print cents, a total without them is an identifier or a count
        # ("USt-IdNr DE 312 456 789", "Summe 1" in a column header).
        candidates = [c for c in candidates if c.decimals]
    by_kind: dict[str, list[_Total]] = {
        k: [c for c in candidates if c.kind == k][-MAX_TOTAL_CANDIDATES:]
        for k in ("net_total", "tax_total", "gross_total", "amount_due", "line_total")
    }
    nets = by_kind["net_total"] + by_kind["line_total"]
    taxes, grosses, dues = by_kind["tax_total"], by_kind["gross_total"], by_kind["amount_due"]
    result: dict[str, TextField] = {}
    breakdown: list[VatBreakdown] = []
    tax_options = _tax_options(taxes)
    # The gross total may only be printed as the amount due ("Due payable", "Zahlbetrag").
    gross_options = [(g, 0) for g in grosses] + [(d, 1) for d in dues]
    consistent = [
        (n, t, g)
        for n, t, g in product(nets, tax_options, gross_options)
        if n.value + t[0] == g[0].value
    ]
    if consistent:
        # Prefer a real gross label and a real net label; then the bottom-most, largest triple.
        n, t, (g, from_due) = max(
            consistent,
            key=lambda c: (
                -c[2][1],
                c[0].kind == "net_total",
                c[2][0].index,
                c[2][0].value,
                c[0].index,
                c[1][2],
            ),
        )
        result["net_total"] = TextField(n.value, 0.95, n.source)
        result["tax_total"] = TextField(t[0], 0.95, t[1])
        result["gross_total"] = _gross_field(g, from_due, grosses)
        if len(t[3]) > 1 or t[3][0].rate is not None:
            breakdown = [
                VatBreakdown(category=None, rate=x.rate, basis=x.basis, amount=x.value)
                for x in t[3]
                if x.rate is not None
            ]
            if len(breakdown) != len(t[3]):
                breakdown = []
            # (entries without a basis stay: the lines may give them, see _bases_from_lines)
    elif adjusted := _adjusted_totals(lines, by_kind["net_total"], tax_options, grosses):
        result.update(adjusted)
    else:
        net = by_kind["net_total"][-1] if by_kind["net_total"] else None
        tax = _single_tax(taxes, tax_options)
        gross = _best_gross(grosses)
        if net and tax and gross:
            # All three printed but they do not add up: at least one of them is misread, so
            # only a plainly labelled grand total is kept, and low.
            if gross.strong:
                result["gross_total"] = TextField(gross.value, 0.55, gross.source)
        elif gross and tax and not net:
            result["gross_total"] = TextField(gross.value, 0.85, gross.source)
            result["tax_total"] = TextField(tax.value, 0.85, tax.source)
            result["net_total"] = TextField(gross.value - tax.value, 0.8, "gross - VAT")
        elif net and tax and not gross:
            result["net_total"] = TextField(net.value, 0.85, net.source)
            result["tax_total"] = TextField(tax.value, 0.85, tax.source)
            result["gross_total"] = TextField(net.value + tax.value, 0.75, "net + VAT")
        elif net and gross and not taxes and gross.value >= net.value:
            result["net_total"] = TextField(net.value, 0.85, net.source)
            result["gross_total"] = TextField(gross.value, 0.85, gross.source)
            result["tax_total"] = TextField(gross.value - net.value, 0.8, "gross - net")
        else:
            if gross:
                result["gross_total"] = TextField(
                    gross.value, 0.7 if gross.strong else 0.6, gross.source
                )
            if net:
                result["net_total"] = TextField(net.value, 0.6, net.source)
            if tax:
                result["tax_total"] = TextField(tax.value, 0.6, tax.source)
    if dues:
        result["amount_due"] = TextField(dues[-1].value, 0.8, dues[-1].source)
    rates = {t.rate for t in taxes if t.rate is not None}
    if len(rates) == 1 and "tax_total" in result:
        result["vat_rate"] = TextField(rates.pop(), result["tax_total"].confidence, "")
    return result, breakdown


def _single_tax(
    taxes: list[_Total], options: list[tuple[Decimal, str, int, list[_Total]]]
) -> _Total | None:
    """The VAT amount when the text leaves no doubt about it: one amount (perhaps repeated), or
    the sum of a per-rate block that holds every VAT line. Otherwise None."""
    if not taxes:
        return None
    if len({t.value for t in taxes}) == 1:
        return taxes[-1]
    for total, source, index, group in options:
        if len(group) == len(taxes):
            last = group[-1]
            return _Total("tax_total", total, index, source, False, None, None, last.decimals)
    return None


def _adjusted_totals(
    lines: list[str],
    nets: list[_Total],
    tax_options: list[tuple[Decimal, str, int, list[_Total]]],
    grosses: list[_Total],
) -> dict[str, TextField]:
    """Subtotal, charges/allowances, VAT, total ("Subtotal 2,340.00 / Shipping 60.00 / Sales
    tax 180.00 / Total 2,580.00"): the net total is the subtotal after the adjustments."""
    for gross in reversed(grosses):
        for net in reversed([n for n in nets if n.index < gross.index]):
            options = [o for o in tax_options if net.index < o[2] < gross.index]
            for total, source, _, group in options:
                skip = {t.index for t in group}
                adjusted = _adjusted_net(lines, net, gross, skip)
                if adjusted is not None and adjusted + total == gross.value:
                    return {
                        "net_total": TextField(adjusted, 0.85, "subtotal + charges - allowances"),
                        "tax_total": TextField(total, 0.9, source),
                        "gross_total": TextField(gross.value, 0.9, gross.source),
                    }
            if not tax_options and not L.INCLUDING_RE.search(gross.source):
                adjusted = _adjusted_net(lines, net, gross, set())
                if adjusted is not None and adjusted == gross.value:
                    # No VAT line at all: the total after the discount is the net total.
                    return {
                        "net_total": TextField(adjusted, 0.7, "subtotal + charges - allowances"),
                        "gross_total": TextField(gross.value, 0.85, gross.source),
                    }
    return {}


def _best_gross(grosses: list[_Total]) -> _Total | None:
    """The last strong grand-total label, else the last (and largest on a tie) total."""
    if not grosses:
        return None
    strong = [g for g in grosses if g.strong]
    pool = strong or grosses
    last_index = pool[-1].index
    return max((g for g in pool if g.index >= last_index - 2), key=lambda g: (g.value, g.index))


# ---------------------------------------------------------------- parties, bank, type

_CREDIT_NOTE = re.compile(
    r"\b(gutschrift|rechnungskorrektur|korrekturrechnung|stornorechnung|credit\s+note|avoir|"
    r"creditnota|factura\s+rectificativa|nota\s+di\s+credito)\b",
    re.I,
)
_INVOICE_WORD = re.compile(r"\b(rechnung|invoice|facture|factuur|factura|fattura)\b", re.I)


def _extract_iban(accounts: list[ReadAccount]) -> TextField | None:
    """BT-84 as the page's first account (Invoice.iban is the first of payment_accounts)."""
    if not accounts:
        return None
    first = accounts[0]
    return TextField(first.account.iban, first.confidence, first.source)


def _extract_vat_ids(
    lines: list[str], buyer_lines: frozenset[int]
) -> tuple[TextField | None, TextField | None]:
    """The seller's and the buyer's VAT id: an id in the address block, or after a customer
    word ("Kunden-USt-IdNr.", "N° TVA client"), is the buyer's; the others are the seller's."""
    sellers: list[tuple[str, str]] = []
    buyers: list[tuple[str, str]] = []
    for index, line in enumerate(lines):
        for match in VAT_ID_LABEL.finditer(line):
            before = line[max(0, match.start() - 25) : match.start() + 12].lower()
            value = (match.group(1).replace(" ", ""), line.strip())
            buyer_word = any(
                w in before for w in ("kunde", "customer", "client", "klant", "käufer")
            )
            (buyers if buyer_word or index in buyer_lines else sellers).append(value)
    buyer = TextField(buyers[0][0], 0.7, buyers[0][1]) if buyers else None
    if not sellers:
        return None, buyer
    if len({v for v, _ in sellers}) == 1:
        return TextField(sellers[0][0], 0.8, sellers[0][1]), buyer
    # Buyers' VAT ids sit in the address block at the top; the seller's own in the footer.
    value, source = sellers[-1]
    return TextField(value, 0.5, source), buyer


def _extract_parties(lines: list[str], first_page: int) -> tuple[dict[str, TextField], list[str]]:
    """Seller and buyer (name, VAT id) as the layout tells them apart (parties.py), and why a
    person must look when it cannot."""
    parties = read_parties(lines, first_page)
    found: dict[str, TextField | None] = {}
    seller, buyer = parties.seller, parties.buyer
    if seller is not None:
        found["seller_name"] = TextField(seller.name, parties.seller_confidence, seller.source)
    elif parties.doubt is None:
        found["seller_name"] = _scored_seller(lines, None if buyer is None else buyer.name)
    if buyer is not None:
        confidence = 0.85 if buyer.evidence == "label" else 0.75
        found["buyer_name"] = TextField(buyer.name, confidence, buyer.source)
    found["seller_vat_id"], found["buyer_vat_id"] = _extract_vat_ids(lines, parties.buyer_lines)
    fields = {name: f for name, f in found.items() if f is not None}
    return fields, [] if parties.doubt is None else [parties.doubt]


def _scored_seller(lines: list[str], buyer: str | None) -> TextField | None:
    """When the layout shows no letterhead, sender line or footer: the company named most often
    and earliest (never the buyer), and never with the confidence of a layout reading."""
    scores: Counter[str] = Counter()
    first_seen: dict[str, str] = {}
    for index, line in enumerate(lines):
        stripped = line.strip()
        for match in LEGAL_FORM.finditer(line):
            name = " ".join(match.group(1).split()).strip(" ,.-")
            if buyer is not None and same_party(name, buyer):
                continue
            scores[name] += 2 if index < 8 else 1
            first_seen.setdefault(name, stripped[:200])
    if scores:
        name, _ = scores.most_common(1)[0]
        return TextField(name, 0.5, first_seen[name])
    return None


# A document type code printed beside the title: "Handelsrechnung (380) Nr. ...".
_TYPE_CODE_PRINTED = re.compile(
    r"(?:rechnung|gutschrift|invoice|credit\s+note|facture|avoir|factuur|factura|fattura)"
    r"[^\n()]{0,40}\((?P<code>\d{3})\)",
    re.I,
)
# Title words of document types other than the commercial invoice, most specific first (UNTDID
# 1001). A German "Gutschrift" is a credit note (381) unless it says it is the self-billed invoice
# of §14 (2) UStG (389: "im Gutschriftsverfahren", "selbst ausgestellte Rechnung"); alone it is
# ambiguous, and the reading says so with a low confidence (see _extract_type).
_TITLE_TYPES = (
    ("751", re.compile(r"buchungshilfe|keine\s+rechnung|not\s+an\s+invoice|"
                       r"invoice\s+information\s+for\s+accounting", re.I)),
    ("389", re.compile(r"gutschriftsverfahren|selbst\s*ausgestellte\s+rechnung|self[- ]billed|"
                       r"self[- ]billing|autofacturation|selbstfakturierung", re.I)),
    ("384", re.compile(r"rechnungskorrektur|korrekturrechnung|korrigierte\s+rechnung|"
                       r"corrected\s+invoice|corrective\s+invoice|facture\s+rectificative|"
                       r"factura\s+rectificativa", re.I)),
    ("381", re.compile(r"storno(?:rechnung)?\b|credit\s*note|\bavoir\b|creditnota|"
                       r"nota\s+di\s+credito|nota\s+de\s+cr[eé]dito", re.I)),
    ("877", re.compile(r"schlussrechnung\s+(?:f[üu]r\s+)?bau\w*|bauschlussrechnung|"
                       r"final\s+construction\s+invoice", re.I)),
    ("326", re.compile(r"abschlagsrechnung|teilrechnung|partial\s+invoice|"
                       r"facture\s+d['’]acompte", re.I)),
    ("386", re.compile(r"vorauszahlungsrechnung|anzahlungsrechnung|prepayment\s+invoice", re.I)),
    ("575", re.compile(r"beitragsrechnung|pr[äa]mienrechnung|versicherungsrechnung|"
                       r"rechnung\s+des\s+versicherers|insurance\s+(?:invoice|premium)|"
                       r"insurer['’]s\s+invoice", re.I)),
    ("387", re.compile(r"mietrechnung|rent\s+invoice|hire\s+invoice|rental\s+invoice", re.I)),
)  # fmt: skip
# words of an amount paid before (BT-113): then the amount due is not the total
_PREPAID = re.compile(
    r"bereits\s+(?:gezahlt|bezahlt|erhalten)|anzahlung|vorauszahlung|abschlag|geleistete|"
    r"bereits\s+beglichen|geleistete\s+zahlung|abzgl\.?\s+zahlung|"
    r"prepaid|already\s+paid|paid\s+amount|amount\s+paid|deposit|\bpaid\b|acompte|"
    r"d[ée]j[àa]\s+(?:pay[ée]|r[ée]gl[ée]|vers[ée]|factur[ée])|avance\s+(?:re[çc]ue|vers[ée]e)|"
    r"vooruitbetaald|reeds\s+betaald",
    re.I,
)
# words of a payment already received that a page lists with its day ("Règlement / Virement
# 05/11/2017 201,00 €", "Zahlungseingang"): with the prepaid words, the rows that may hold BT-113
_PAYMENT_ROW = re.compile(
    r"r[èe]glement|virement|paiement\s+re[çc]u|zahlungseingang|zahlung\s+erhalten|"
    r"\bpayments?\b|wire\s+transfer|[üu]berweisung\s+(?:vom|erhalten)",
    re.I,
)
# a heading of a payments table governs this many rows below it
_PAYMENT_ROWS_BELOW = 3
_GUTSCHRIFT = re.compile(r"\bgutschrift\b", re.I)
# German compounds end in -rechnung ("Handelsrechnung", "Schlussrechnung")
_INVOICE_TITLE = re.compile(
    r"\b\w*rechnung\b|\binvoice\b|\bfacture\b|\bfactuur\b|\bfactura\b|\bfattura\b", re.I
)


# Titles of the commercial invoice (380): the word itself, and German compounds that name no
# other kind of document (goods, services, fees, construction work, a month's or a collective
# invoice, the final one); a partial or final construction invoice says so ("Abschlags-",
# "Schlussrechnung", read by the title types first)
_COMMERCIAL_INVOICE = re.compile(
    r"(?:handels|waren|dienstleistungs|leistungs|liefer|bau|schluss|end|gesamt|sammel|monats|"
    r"jahres|quartals|honorar|beispiel|muster|ausgangs|eingangs)?rechnung|invoice|facture|"
    r"factuur|factura|fattura",
    re.I,
)


def _extract_type(text: str) -> TextField:
    """The document type (UNTDID 1001) from the title area: a code printed beside the title,
    else the words of the title (credit note, correction, self-billing, partial, prepayment,
    insurance, rent), else an invoice."""
    head = "\n".join(text.splitlines()[:30])
    printed = _TYPE_CODE_PRINTED.search(head)
    if printed:
        return TextField(printed.group("code"), 0.9, printed.group(0))
    # a title the text layer split inside a word ("Rechnungskor rektur") is read joined too
    for title in (head, L.SPLIT_WORD.sub("", head)):
        for code, words in _TITLE_TYPES:
            found = words.search(title)
            if found:
                return TextField(code, 0.75, found.group(0))
    gutschrift = _GUTSCHRIFT.search(head)
    if gutschrift:
        # a credit note, or the self-billed invoice that does not say so: a person decides
        return TextField("381", 0.55, gutschrift.group(0))
    titles = list(_INVOICE_TITLE.finditer(head)) or list(_INVOICE_TITLE.finditer(text))[:1]
    if titles:
        if _COMMERCIAL_INVOICE.fullmatch(titles[0].group(0)):
            return TextField("380", 0.8, titles[0].group(0))
        # a kind of invoice we do not know ("Baurechnung", "Zwischenrechnung"): most likely an
        # invoice, but its type is for a person to confirm
        return TextField("380", 0.55, titles[0].group(0))
    credit = _CREDIT_NOTE.search(text)
    if credit:
        return TextField("381", 0.6, credit.group(0))
    return TextField("380", 0.5, "")


def _extract_prepaid(
    lines: list[str], gross: TextField | None, due: TextField | None
) -> TextField | None:
    """The amount paid before (BT-113) when the page prints an amount due below its total: an
    amount in a row that names a prepayment or a payment received (or in the rows under such a
    heading) that makes total - prepaid = amount due. Only an amount that closes that sum is
    read, so what is read is what the invoice's own arithmetic proves (BR-CO-16)."""
    if gross is None or due is None or gross.value == due.value:
        return None
    heading_until = -1
    found: list[TextField] = []
    for index, line in enumerate(lines):
        named = _PREPAID.search(line) or _PAYMENT_ROW.search(line)
        if not (named or index <= heading_until):
            continue
        amounts = [a for a in amounts_in(line) if a.has_decimals]
        if named:
            # a heading, or a heading that shares its line with a total of the column beside
            # ("Règlement  Date  Montant ...  Total TTC 530,75 €")
            heading_until = index + _PAYMENT_ROWS_BELOW
            if not amounts:
                continue
        for amount in amounts:
            if abs(gross.value - abs(amount.value) - due.value) <= CENT:
                found.append(TextField(abs(amount.value), 0.9, line.strip()))
    values = {f.value for f in found}
    # two different payments that each close the sum cannot both be the one: none is read
    return found[-1] if len(values) == 1 else None


# ---------------------------------------------------------------- entry point


def extract_fields(text: str) -> ExtractedFields:
    """Number, dates, totals, currency, seller, VAT id, IBAN and lines from free text."""
    text = text[:MAX_TEXT_CHARS].replace("\r\n", "\n")
    first_page = text.split("\f", 1)[0].count("\n") + 1
    text = text.replace("\f", "\n")
    raw_lines = text.split("\n")
    # OCR look-alikes ("1.2O4,OO", "Tota1") put right, same positions as the original lines.
    lines = [normalize_ocr(line) for line in raw_lines]
    normalized = "\n".join(lines)
    currency = _extract_currency(lines, normalized)
    order = _date_order(normalized, None if currency is None else currency.value)
    fields: dict[str, TextField] = {}
    accounts = read_accounts(raw_lines)
    number = _extract_number(lines, raw_lines)
    issue = _extract_issue_date(lines, order, None if number is None else number.value)
    due = _extract_due_date(lines, order)
    if due is None or due.confidence < MIN_CONFIDENCE:
        due = _relative_due_date(lines, issue) or due
    else:
        issue = _issue_proven_by_terms(lines, issue, due)
    extracted = {
        "number": number,
        "issue_date": issue,
        "due_date": due,
        "currency": currency,
        "iban": _extract_iban(accounts),
        "type_code": _extract_type(text),
    }
    fields.update({name: f for name, f in extracted.items() if f is not None})
    parties, doubts = _extract_parties(raw_lines, first_page)
    fields.update(parties)
    totals, breakdown = _extract_totals(lines)
    fields.update(totals)
    breakdown = _breakdown_table(lines, breakdown, fields)
    gross = fields.get("gross_total")
    if "amount_due" not in fields and gross is not None and not _PREPAID.search(normalized):
        # nothing paid before and no amount due printed: the whole total is due (BT-115 = BT-112)
        fields["amount_due"] = TextField(gross.value, gross.confidence, "total, nothing prepaid")
    prepaid = _extract_prepaid(lines, fields.get("gross_total"), fields.get("amount_due"))
    if prepaid is not None:
        fields["prepaid"] = prepaid
    sure = {name: f for name, f in fields.items() if f.confidence >= MIN_CONFIDENCE}
    try:
        invoice_lines = extract_lines(raw_lines)
    except (ArithmeticError, ValueError):
        invoice_lines = []
    net = sure.get("net_total")
    if net is not None and not _adds_up(invoice_lines, net.value):
        # the rows' own arithmetic did not give the net: the table read by column may (only its
        # lines that add up to the net are taken, so a misread column proves nothing)
        try:
            by_column = read_table(lines)
        except (ArithmeticError, ValueError):
            by_column = []
        if _adds_up(by_column, net.value):
            invoice_lines = by_column
        else:
            # lines that add up to the net less the document's allowances plus its charges
            # (BR-CO-13), when the page prints those sums
            for candidate in (invoice_lines, by_column):
                adjustments = _allowances_and_charges(lines, candidate, net.value)
                if adjustments:
                    invoice_lines = candidate
                    sure.update(adjustments)
                    break
    if net is None:
        sure.update(_no_vat_on_the_page(sure, invoice_lines, lines))
    breakdown = _bases_from_lines(breakdown, invoice_lines, None if net is None else net.value)
    if fields["type_code"].value == "381":
        _credit_note_positive(sure, invoice_lines, breakdown)
    return ExtractedFields(sure, invoice_lines, breakdown, doubts, accounts)


# a VAT word with a rate or an amount on its line ("MwSt. 19 %", "VAT 12.40"), or a sentence
# that says the prices include it ("inkl. MwSt.", "inclusive of ... Goods & Services Tax")
_VAT_FIGURE = re.compile(
    rf"(?:{L.VAT_WORDS}).*?(?:\d\s?%|\d[.,]\d\d(?!\d))|(?:\d\s?%|\d[.,]\d\d(?!\d)).*?(?:{L.VAT_WORDS})",
    re.IGNORECASE,
)
_INCLUDES_VAT = re.compile(rf"(?:{L.INCLUDING_WORDS}).{{0,60}}(?:{L.VAT_WORDS})", re.IGNORECASE)


def _no_vat_on_the_page(
    sure: dict[str, TextField], invoice_lines: list[InvoiceLine], lines: list[str]
) -> dict[str, TextField]:
    """A page that charges no VAT at all (an export, a small business): its lines add up to the
    total to the cent and no line names a VAT rate or amount, nor says the prices include VAT.
    Then the lines' sum is the net, and the total is that net with a VAT of 0 (BR-CO-10 and
    BR-CO-15 prove the amounts). Why no VAT is charged (the category, the exemption) is not on
    such a page, so both are held below the confidence threshold: the amounts are read, and a
    person still says whether no VAT was right."""
    gross = sure.get("gross_total")
    if gross is None or "tax_total" in sure or not _adds_up(invoice_lines, gross.value):
        return {}
    if any(_VAT_FIGURE.search(line) or _INCLUDES_VAT.search(line) for line in lines):
        return {}
    held = min(gross.confidence, NO_VAT_CONFIDENCE)
    return {
        "net_total": TextField(gross.value, held, "the lines' sum, which is the total"),
        "tax_total": TextField(Decimal("0.00"), held, "no VAT on the page, and no reason why"),
    }


# below the review's thresholds (plausibility.CONFIDENT, 0.75 text and 0.7 OCR): a page without VAT
# never goes straight through on its amounts alone
NO_VAT_CONFIDENCE = 0.65


def _breakdown_table(
    lines: list[str], breakdown: list[VatBreakdown], fields: dict[str, TextField]
) -> list[VatBreakdown]:
    """A VAT breakdown printed as a table of its own (vat_table.py) where the totals' VAT line
    gave no rate and basis: taken when its VAT adds up to the VAT total read and its bases to
    the net, and it names the rates the VAT lines name (if they name any)."""
    if breakdown and all(entry.basis is not None for entry in breakdown):
        return breakdown
    tax, net = fields.get("tax_total"), fields.get("net_total")
    table = read_vat_table(lines)
    if tax is None:
        return _totals_from_table(table, fields) or breakdown
    if not table or sum((row.amount for row in table), Decimal(0)) != tax.value:
        return breakdown
    if net is not None and sum((row.basis for row in table), Decimal(0)) != net.value:
        return breakdown
    if breakdown and {entry.rate for entry in breakdown} != {row.rate for row in table}:
        return breakdown
    return table


def _totals_from_table(
    table: list[VatBreakdown], fields: dict[str, TextField]
) -> list[VatBreakdown]:
    """A page that prints its total and the breakdown table but no VAT line ("Prijzen zijn
    inclusief BTW ... totaal 49,99" over "21 %  41,31  8,68  49,99"): the table's bases are the
    net and its VAT the VAT when together they make the total read (BR-CO-15)."""
    gross, net = fields.get("gross_total"), fields.get("net_total")
    if not table or gross is None:
        return []
    bases = sum((row.basis for row in table), Decimal(0))
    taxes = sum((row.amount for row in table), Decimal(0))
    if bases + taxes != gross.value or (net is not None and net.value != bases):
        return []
    fields["net_total"] = TextField(bases, 0.9, "the VAT table's bases")
    fields["tax_total"] = TextField(taxes, 0.9, "the VAT table's VAT")
    return table


# the sums of a document's allowances (BT-107) and charges (BT-108) as a page labels them
_SUM_WORDS = r"(?:gesamt(?:betrag)?|summe|total|sum|montant\s+total)"
_ALLOWANCE_WORDS = r"(?:abschl[äa]ge|nachl[äa]sse|rabatte|allowances|discounts|remises)"
_CHARGE_WORDS = r"(?:zuschl[äa]ge|charges|surcharges|frais)"
_ALLOWANCE_TOTAL = re.compile(
    rf"{_SUM_WORDS}\b(?:\s+\w+){{0,2}}\s+{_ALLOWANCE_WORDS}\b|{_ALLOWANCE_WORDS}\s+{_SUM_WORDS}\b",
    re.I,
)
_CHARGE_TOTAL = re.compile(
    rf"{_SUM_WORDS}\b(?:\s+\w+){{0,2}}\s+{_CHARGE_WORDS}\b|{_CHARGE_WORDS}\s+{_SUM_WORDS}\b",
    re.I,
)


def _allowances_and_charges(
    lines: list[str], invoice_lines: list[InvoiceLine], net: Decimal
) -> dict[str, TextField]:
    """The sums of the document's allowances and charges a page prints ("Gesamtbetrag der
    Abschläge -14,73", "Gesamtbetrag der Zuschläge 5,80") when the lines read, less the one plus
    the other, make the net (BR-CO-13) in exactly one way; else nothing. As for the prepaid
    amount, only what closes the invoice's own sum is read."""
    amounts = [line.net_amount for line in invoice_lines if line.net_amount is not None]
    if not amounts:
        return {}
    total = sum(amounts, Decimal(0))
    printed: dict[str, list[tuple[Decimal, str]]] = {"allowance_total": [], "charge_total": []}
    for line in lines:
        for name, pattern in (
            ("allowance_total", _ALLOWANCE_TOTAL),
            ("charge_total", _CHARGE_TOTAL),
        ):
            label = pattern.search(line)
            found = [
                a
                for a in amounts_in(line)
                if a.has_decimals and a.start > (label.end() if label else 0)
            ]
            if label is not None and found:
                printed[name].append((abs(found[-1].value), line.strip()))
    if not any(printed.values()):
        return {}

    def choices(name: str) -> list[tuple[Decimal, str]]:
        signed = [(sign * value, source) for value, source in printed[name] for sign in (1, -1)]
        return [(Decimal(0), ""), *signed]

    closing = {
        (allowance, charge): (a_source, c_source)
        for (allowance, a_source), (charge, c_source) in product(
            choices("allowance_total"), choices("charge_total")
        )
        if (allowance or charge) and abs(total - allowance + charge - net) <= CENT
    }
    if len(closing) != 1:
        return {}
    (((allowance, charge), (a_source, c_source)),) = closing.items()
    read = {}
    if a_source:
        read["allowance_total"] = TextField(allowance, 0.9, a_source)
    if c_source:
        read["charge_total"] = TextField(charge, 0.9, c_source)
    return read


def _adds_up(lines: list[InvoiceLine], net: Decimal) -> bool:
    amounts = [line.net_amount for line in lines if line.net_amount is not None]
    return bool(amounts) and abs(sum(amounts, Decimal(0)) - net) <= CENT


_SIGNED = ("net_total", "tax_total", "gross_total", "amount_due")


def _credit_note_positive(
    fields: dict[str, TextField], lines: list[InvoiceLine], breakdown: list[VatBreakdown]
) -> None:
    """A credit note states its amounts as positive numbers (EN 16931: its type code gives the
    sign); a page that prints them negative (-233,47) is read with the signs turned, when every
    total it prints is negative or zero."""
    values = [fields[name].value for name in _SIGNED if name in fields]
    if not values or not any(v < 0 for v in values) or any(v > 0 for v in values):
        return
    for name in _SIGNED:
        if name in fields:
            found = fields[name]
            fields[name] = TextField(-found.value, found.confidence, found.source)
    for index, line in enumerate(lines):
        if line.net_amount is not None and line.net_amount < 0 and line.quantity is not None:
            lines[index] = replace(line, quantity=-line.quantity, net_amount=-line.net_amount)
    for index, entry in enumerate(breakdown):
        breakdown[index] = replace(
            entry,
            basis=None if entry.basis is None else -entry.basis,
            amount=None if entry.amount is None else -entry.amount,
        )


# EN 16931's slack for a rate's VAT against basis x rate (one currency unit)
_VAT_SLACK = Decimal("1.00")


def _bases_from_lines(
    breakdown: list[VatBreakdown], lines: list[InvoiceLine], net: Decimal | None
) -> list[VatBreakdown]:
    """A per-rate VAT block that prints each rate's VAT but not its basis ("USt. 7 % 2,44",
    "USt. 19 % 73,43"): each basis is the sum of the lines at that rate, when the lines cover
    exactly the rates printed, their sum is the net total and each rate's VAT is its basis
    times its rate; otherwise no breakdown (a person adds it in review)."""
    if not breakdown or all(b.basis is not None for b in breakdown):
        return breakdown
    if net is None or not lines or any(line.net_amount is None for line in lines):
        return []
    by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        if line.vat_rate is None:
            return []
        by_rate[line.vat_rate] = by_rate.get(line.vat_rate, Decimal(0)) + line.net_amount
    if set(by_rate) != {b.rate for b in breakdown} or sum(by_rate.values()) != net:
        return []
    filled = []
    for entry in breakdown:
        basis = by_rate[entry.rate]
        if abs(basis * entry.rate / 100 - entry.amount) > _VAT_SLACK:
            return []
        filled.append(
            VatBreakdown(category=None, rate=entry.rate, basis=basis, amount=entry.amount)
        )
    return filled
