"""Invoice fields from plain text (a PDF text layer or OCR output), each with a confidence in [0, 1].

Label-driven, not template-driven: German and English labels ("Rechnungsnummer", "Invoice
date", "Netto", "USt.", "Brutto", "Fälligkeitsdatum", ...) pick the value on the same line (or
the next line for number and dates, as OCR often splits label and value). Totals are chosen so
that net + VAT = gross whenever the text allows it, which is also what raises their confidence.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import product
from typing import Any

from invoice_pipelines.core.invoice import Invoice, Origin, VatBreakdown
from invoice_pipelines.core.money import plain_string

MAX_TEXT_CHARS = 500_000
MAX_TOTAL_CANDIDATES = 8

_SPACES = "\u00a0\u202f\u2009 "
_MINUS = "-\u2212\u2013"
_CURRENCY_WORDS = {
    "€": "EUR",
    "EUR": "EUR",
    "EURO": "EUR",
    "$": "USD",
    "USD": "USD",
    "US$": "USD",
    "£": "GBP",
    "GBP": "GBP",
    "CHF": "CHF",
}
_CURRENCY_TOKEN = re.compile(r"(€|\bEURO?\b|US\$|\$|\bUSD\b|£|\bGBP\b|\bCHF\b)")
_STRIP_CURRENCY = re.compile(r"(€|\bEURO?\b|US\$|\$|\bUSD\b|£|\bGBP\b|\bCHF\b)", re.IGNORECASE)


# ---------------------------------------------------------------- numbers


def _valid_grouping(parts: list[str]) -> bool:
    return 1 <= len(parts[0]) <= 3 and all(len(p) == 3 for p in parts[1:])


def parse_amount(text: str, *, decimal_separator: str | None = None) -> Decimal | None:
    """Read "1.234,56", "1,234.56", "1 234,56", "-12,5", "104,00 €", "(3.50)" as Decimal.

    With a single separator followed by exactly three digits ("1,234" / "1.234") the separator
    is read as thousands grouping, because money has two decimals; pass decimal_separator when
    the document's convention is known. Returns None for anything that is not one number.
    """
    s = _STRIP_CURRENCY.sub("", text).strip()
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, s = True, s[1:-1].strip()
    if s and s[0] in _MINUS:
        negative, s = True, s[1:].strip()
    elif s and s[-1] in _MINUS:  # German bookkeeping writes "104,00-"
        negative, s = True, s[:-1].strip()
    elif s.startswith("+"):
        s = s[1:].strip()
    # Spaces and apostrophes only ever group thousands (French "1 234,56", Swiss "1'234.56").
    s = re.sub(rf"(?<=\d)[{_SPACES}'’](?=\d{{3}}(\D|$))", "", s)
    if not re.fullmatch(r"\d[\d.,]*", s) or s[-1] in ".,":
        return None
    dots, commas = s.count("."), s.count(",")
    if dots and commas:
        decimal_sep = "." if s.rfind(".") > s.rfind(",") else ","
    elif dots or commas:
        sep = "." if dots else ","
        tail = s.rsplit(sep, 1)[1]
        if dots + commas > 1:
            decimal_sep = None
        elif decimal_separator is not None:
            decimal_sep = sep if sep == decimal_separator else None
        else:
            decimal_sep = None if len(tail) == 3 else sep
    else:
        decimal_sep = None
    if decimal_sep is None:
        integer, fraction = s, ""
    else:
        integer, _, fraction = s.rpartition(decimal_sep)
        if not fraction.isdigit() or decimal_sep in integer:
            return None
    group_sep = {".": ",", ",": ".", None: None}[decimal_sep]
    if decimal_sep is None:
        group_sep = "." if "." in integer else "," if "," in integer else None
    if group_sep is not None and group_sep in integer:
        parts = integer.split(group_sep)
        if not _valid_grouping(parts):
            return None
        integer = "".join(parts)
    if not integer.isdigit():
        return None
    value = Decimal(f"{integer}.{fraction}" if fraction else integer)
    return -value if negative else value


# Money in running text: optional sign, digits with optional thousands groups, at most two
# decimals, and not part of a longer number or identifier (so 4-decimal unit prices, dates,
# "DE123456789" and "201/113/40209" never match).
_AMOUNT = re.compile(
    rf"(?<![\w.,/])[{_MINUS}]?(?:\d{{1,3}}(?:[.,{_SPACES}'’]\d{{3}})+|\d+)(?:[.,]\d{{1,2}})?"
    r"(?![.,]?\d)"
)
_AMOUNT_AT_END = re.compile(r"^[\s€$£|:*.]*(EUR|USD|GBP|CHF|€|\$|£)?[\s|:*.]*$", re.IGNORECASE)
_PERCENT = re.compile(r"(\d{1,2}(?:[.,]\d{1,2})?)\s*%")


def _last_amount(line: str) -> tuple[Decimal, str] | None:
    """The amount that ends a line (only currency and punctuation may follow it)."""
    matches = list(_AMOUNT.finditer(line))
    if not matches:
        return None
    last = matches[-1]
    rest = line[last.end() :]
    if rest.lstrip().startswith("%") or not _AMOUNT_AT_END.match(rest):
        return None
    value = parse_amount(last.group(0))
    return None if value is None else (value, last.group(0))


# ---------------------------------------------------------------- dates

_MONTHS = {
    "januar": 1, "jan": 1, "january": 1, "jänner": 1,
    "februar": 2, "feb": 2, "february": 2,
    "märz": 3, "maerz": 3, "mär": 3, "mrz": 3, "march": 3, "mar": 3,
    "april": 4, "apr": 4,
    "mai": 5, "may": 5,
    "juni": 6, "jun": 6, "june": 6,
    "juli": 7, "jul": 7, "july": 7,
    "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9,
    "oktober": 10, "okt": 10, "october": 10, "oct": 10,
    "november": 11, "nov": 11,
    "dezember": 12, "dez": 12, "december": 12, "dec": 12,
}  # fmt: skip
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS = (
    # 19.01.2016, 19.1.16, 19/01/2016 (day first: the European order)
    re.compile(r"(?<!\d)(?P<d>\d{1,2})[./](?P<m>\d{1,2})[./](?P<y>\d{4}|\d{2})(?![\d.]\d)"),
    # 2016-01-19
    re.compile(r"(?<!\d)(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?!\d)"),
    # 19. Januar 2016, 19 Jan. 2016
    re.compile(rf"(?<!\d)(?P<d>\d{{1,2}})\.?\s*(?P<mn>{_MONTH_NAMES})\.?\s+(?P<y>\d{{4}})", re.I),
    # January 19, 2016
    re.compile(rf"\b(?P<mn>{_MONTH_NAMES})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})", re.I),
)  # fmt: skip


def _date_from(match: re.Match[str]) -> date | None:
    parts = match.groupdict()
    try:
        month = _MONTHS[parts["mn"].lower()] if parts.get("mn") else int(parts["m"])
        year = int(parts["y"])
        if year < 100:
            year += 2000
        return date(year, month, int(parts["d"]))
    except (ValueError, KeyError):
        return None


def find_dates(text: str) -> list[tuple[int, date]]:
    """Every date in a string with its position, in reading order."""
    found: dict[int, date] = {}
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            value = _date_from(match)
            if value is not None and match.start() not in found:
                found[match.start()] = value
    return sorted(found.items())


def parse_date(text: str) -> date | None:
    """The first date in German (19.01.2016, 19. Januar 2016), ISO or English form, else None."""
    dates = find_dates(text)
    return dates[0][1] if dates else None


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
        source = " ".join(self.source.split())
        return {"value": value, "confidence": round(self.confidence, 2), "source": source}


@dataclass
class ExtractedFields:
    """Fields found in a text; absent fields are simply missing from `fields`."""

    fields: dict[str, TextField] = field(default_factory=dict)

    def value(self, name: str) -> Any:
        found = self.fields.get(name)
        return None if found is None else found.value

    def to_json_dict(self) -> dict[str, Any]:
        return {name: f.to_json_dict() for name, f in sorted(self.fields.items())}

    def to_invoice(self, *, origin: Origin, confidence_scale: float = 1.0) -> Invoice:
        """The normalized invoice; only what text can carry, the rest stays None."""
        net, tax = self.value("net_total"), self.value("tax_total")
        rate = self.value("vat_rate")
        breakdown = ()
        if rate is not None and net is not None and tax is not None:
            breakdown = (VatBreakdown(category=None, rate=rate, basis=net, amount=tax),)
        return Invoice(
            number=self.value("number"),
            type_code=self.value("type_code"),
            issue_date=self.value("issue_date"),
            due_date=self.value("due_date"),
            currency=self.value("currency"),
            seller_name=self.value("seller_name"),
            seller_vat_id=self.value("seller_vat_id"),
            iban=self.value("iban"),
            net_total=net,
            tax_total=tax,
            gross_total=self.value("gross_total"),
            amount_due=self.value("amount_due"),
            vat_breakdown=breakdown,
            origin=origin,
            confidence={
                name: round(f.confidence * confidence_scale, 3) for name, f in self.fields.items()
            },
        )


# ---------------------------------------------------------------- labels

# Every repetition below is bounded and starts at a word boundary: these patterns run on
# untrusted text, and an unbounded \w* in front of a literal is quadratic on one long token.
_NUMBER_LABEL = re.compile(
    r"((?<!\w)\w{0,20}rechnungs?[- ]?(?:\(\d{3}\)\s*)?(?:nummer|nr\.?|no\.?)|beleg[- ]?(?:nummer|nr\.?)|"
    r"invoice\s*(?:number|no\.?|nr\.?|#)|facture\s*n[°o]\.?)\s*[:#.]?\s*",
    re.IGNORECASE,
)
_NUMBER_VALUE = re.compile(r"([A-Za-z0-9][A-Za-z0-9\-/._]{0,40}?\d[A-Za-z0-9\-/._]{0,40})")
_TITLE_NUMBER = re.compile(
    r"^\s*(?:rechnung|invoice|gutschrift|credit note)\s+(?:nr\.?\s*|no\.?\s*)?"
    r"([A-Za-z0-9][A-Za-z0-9\-/._]{0,40}?\d[A-Za-z0-9\-/._]{0,40})\s*$",
    re.IGNORECASE,
)
_ISSUE_LABEL = re.compile(
    r"(rechnungsdatum|belegdatum|ausstellungsdatum|invoice\s+date|date\s+of\s+issue|"
    r"issue\s+date|(?:rechnung|invoice)[^\n]{0,60}?\b(?:vom|dated)|datum|date)\b",
    re.IGNORECASE,
)
_STRONG_ISSUE = re.compile(r"rechnungsdatum|invoice\s+date|date\s+of\s+issue|issue|vom|dated", re.I)
_DUE_LABEL = re.compile(
    r"(f(?:ä|a|ae)lligkeitsdatum|f(?:ä|a|ae)lligkeit|f(?:ä|a|ae)llig\s+(?:am|bis|zum)|"
    r"zahlbar\s+bis(?:\s+zum)?|"
    r"zahlungsziel|due\s+date|payment\s+due|due\s+on|due\s+by)",
    re.IGNORECASE,
)
_NOT_ISSUE = re.compile(r"liefer|leistung|delivery|service|bestell|order|f(ä|a|ae)llig|due", re.I)
_VAT_WORD = re.compile(r"\b(ust|mwst|umsatzsteuer\w*|mehrwertsteuer\w*|vat|tax|steuer\w*)\b", re.I)
# Lines that carry an identifier or a partial sum, never one of the totals we read.
_NOT_A_TOTAL = re.compile(
    r"(nummer|\bnr\b|id[-.]?nr|iban|\bbic\b|\btel\b|\bfax\b|zuschl|abschl|anzahlung|skonto|"
    r"rabatt|discount|prepaid|allowance)",
    re.I,
)
_INCLUDING = re.compile(r"\b(inkl|incl|including|brutto|with)\b", re.I)
_EXCLUDING = re.compile(r"\b(ohne|exkl|excl|excluding|netto|without|before)\b", re.I)
_NET_WORDS = re.compile(r"(netto|zwischensumme|subtotal|sub-total|\bnet\b|\bexkl|\bexcl)", re.I)
_GROSS_WORDS = re.compile(
    r"(brutto|gesamtbetrag|rechnungsbetrag|rechnungssumme|endbetrag|gesamtsumme|grand\s+total|"
    r"\btotal\b|\bsumme\b|\bgesamt\b|\binkl|\bincl)",
    re.I,
)
_DUE_AMOUNT_WORDS = re.compile(
    r"(zahlbetrag|zu\s+zahlen|amount\s+due|balance\s+due|offener\s+betrag|fälliger\s+betrag|"
    r"total\s+due|amount\s+payable)",
    re.I,
)
# The label is case-insensitive, the id itself is not: "DE812871812 info@..." must stop at the id.
_VAT_ID_LABEL = re.compile(
    r"(?i:ust[-.\s]*id(?:ent)?[-.\s]*(?:nr)?\.?|umsatzsteuer[-\s]*id(?:entifikationsnummer)?|"
    r"uid(?:[-\s]*nr)?\.?|vat\s*(?:id|no\.?|number|reg(?:istration)?(?:\s*no\.?)?))\s*[:.]?\s*"
    r"([A-Z]{2}(?:[ ]?[0-9A-Z]){8,12})(?![0-9A-Za-z])"
)
_IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,3})?)\b")
_LEGAL_FORM = re.compile(
    r"(?<![\w&.,'’\-])([A-ZÄÖÜ0-9][\w&.,'’\-]{0,40}(?:\s+[\w&.,'’\-]{1,40}){0,4}?\s+"
    r"(?:GmbH\s*&\s*Co\.?\s*KG(?:aA)?|gGmbH|GmbH|AG|KGaA|KG|OHG|"
    r"UG(?:\s*\(haftungsbeschränkt\))?|e\.\s?K\.|e\.\s?V\.|GbR|mbH|Ltd\.?|Limited|LLC|Inc\.?|"
    r"SARL|SAS|S\.A\.|S\.r\.l\.|B\.V\.|N\.V\.|plc|Corp\.?))(?![\w])"
)
_RETURN_ADDRESS = re.compile(r"[•·|]")
_CREDIT_NOTE = re.compile(
    r"\b(gutschrift|rechnungskorrektur|korrekturrechnung|stornorechnung|credit\s+note)\b", re.I
)
_INVOICE_WORD = re.compile(r"\b(rechnung|invoice|facture)\b", re.I)


def iban_is_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check; masked or mistyped IBANs fail it."""
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def _value_after(label: re.Match[str], line: str, lines: list[str], index: int) -> tuple[str, str]:
    """Text after a label, or the next non-empty line when the label ends its line."""
    rest = line[label.end() :].strip()
    if rest:
        return rest, line.strip()
    for following in lines[index + 1 : index + 3]:
        if following.strip():
            return following.strip(), f"{line.strip()} / {following.strip()}"
    return "", line.strip()


def _extract_number(lines: list[str]) -> TextField | None:
    for index, line in enumerate(lines):
        for label in _NUMBER_LABEL.finditer(line):
            rest, source = _value_after(label, line, lines, index)
            value = _NUMBER_VALUE.match(rest)
            if value:
                return TextField(value.group(1).rstrip("."), 0.9, source)
    for line in lines:
        title = _TITLE_NUMBER.match(line)
        if title:
            return TextField(title.group(1), 0.6, line.strip())
    return None


def _extract_labeled_date(
    lines: list[str], label_re: re.Pattern[str], *, issue: bool
) -> TextField | None:
    best: TextField | None = None
    for index, line in enumerate(lines):
        for label in label_re.finditer(line):
            if issue and _NOT_ISSUE.search(line[: label.end()]):
                continue
            rest, source = _value_after(label, line, lines, index)
            dates = find_dates(rest[:40])
            if not dates:
                continue
            strong = not issue or bool(_STRONG_ISSUE.search(label.group(0)))
            candidate = TextField(dates[0][1], 0.9 if strong else 0.6, source)
            if best is None or candidate.confidence > best.confidence:
                best = candidate
    return best


def _classify_total(line: str) -> str | None:
    if _NOT_A_TOTAL.search(line):
        return None
    if _DUE_AMOUNT_WORDS.search(line):
        return "amount_due"
    if _VAT_WORD.search(line):
        if _INCLUDING.search(line):
            return "gross_total"
        if _EXCLUDING.search(line):
            return "net_total"
        return "tax_total"
    if _NET_WORDS.search(line):
        return "net_total"
    if _GROSS_WORDS.search(line):
        return "gross_total"
    return None


def _extract_totals(lines: list[str]) -> dict[str, TextField]:
    candidates: dict[str, list[tuple[int, Decimal, str]]] = {
        "net_total": [],
        "tax_total": [],
        "gross_total": [],
        "amount_due": [],
    }
    rates: list[Decimal] = []
    for index, line in enumerate(lines):
        kind = _classify_total(line)
        if kind is None:
            continue
        found = _last_amount(line)
        if found is None:
            continue
        candidates[kind].append((index, found[0], line.strip()))
        if kind == "tax_total":
            percent = _PERCENT.search(line)
            # A percentage has no thousands: either mark is the decimal point ("19,00 %").
            rate = Decimal(percent.group(1).replace(",", ".")) if percent else None
            if rate is not None and rate not in rates:
                rates.append(rate)
    # Totals close an invoice; keeping the last few of each kind also keeps the search for a
    # consistent triple small on texts with thousands of labelled lines.
    for kind in candidates:
        candidates[kind] = candidates[kind][-MAX_TOTAL_CANDIDATES:]

    result: dict[str, TextField] = {}
    nets, taxes, grosses = (candidates[k] for k in ("net_total", "tax_total", "gross_total"))
    tax_options: list[tuple[Decimal, str, int]] = [(v, src, i) for i, v, src in taxes]
    distinct_taxes = {(i, v) for i, v, _ in taxes}
    if len(distinct_taxes) > 1:  # several VAT rates: their sum is the VAT total
        total = sum((v for _, v in distinct_taxes), Decimal(0))
        tax_options.append(
            (total, " + ".join(src for _, _, src in taxes), max(i for i, _, _ in taxes))
        )
    consistent = [
        (n, t, g) for n, t, g in product(nets, tax_options, grosses) if n[1] + t[0] == g[1]
    ]
    if consistent:
        # The bottom-most consistent triple: the totals block ends the invoice.
        n, t, g = max(consistent, key=lambda c: (c[2][0], c[0][0], c[1][2]))
        result["net_total"] = TextField(n[1], 0.95, n[2])
        result["tax_total"] = TextField(t[0], 0.95, t[1])
        result["gross_total"] = TextField(g[1], 0.95, g[2])
    else:
        for name, found in (("net_total", nets), ("tax_total", taxes), ("gross_total", grosses)):
            if found:
                index, value, source = found[-1]
                result[name] = TextField(value, 0.5, source)
    if candidates["amount_due"]:
        index, value, source = candidates["amount_due"][-1]
        result["amount_due"] = TextField(value, 0.8, source)
    if len(rates) == 1 and "tax_total" in result:
        result["vat_rate"] = TextField(rates[0], result["tax_total"].confidence, "")
    return result


def _extract_currency(text: str) -> TextField | None:
    counts = Counter(_CURRENCY_WORDS[m.group(1).upper()] for m in _CURRENCY_TOKEN.finditer(text))
    if not counts:
        return None
    (code, count), *others = counts.most_common()
    confidence = 0.9 if not others else 0.9 * count / sum(counts.values())
    return TextField(code, round(confidence, 2), f"{count} x {code}")


def _extract_iban(lines: list[str]) -> TextField | None:
    for line in lines:
        for match in _IBAN.finditer(line.upper()):
            candidate = match.group(1).replace(" ", "")
            if iban_is_valid(candidate):
                return TextField(candidate, 0.9, line.strip())
    return None


def _extract_vat_id(lines: list[str]) -> TextField | None:
    found = []
    for index, line in enumerate(lines):
        for match in _VAT_ID_LABEL.finditer(line):
            found.append((index, match.group(1).replace(" ", ""), line.strip()))
    if not found:
        return None
    if len({v for _, v, _ in found}) == 1:
        return TextField(found[0][1], 0.8, found[0][2])
    # Buyers' VAT ids sit in the address block at the top; the seller's own in the footer.
    index, value, source = found[-1]
    return TextField(value, 0.5, source)


def _extract_seller(lines: list[str]) -> TextField | None:
    scores: Counter[str] = Counter()
    first_seen: dict[str, str] = {}
    for index, line in enumerate(lines):
        stripped = line.strip()
        # The DIN 5008 return-address line ("Firma GmbH • Straße 1 • 12345 Ort") names the sender.
        return_address = _RETURN_ADDRESS.search(stripped) is not None
        for match in _LEGAL_FORM.finditer(line):
            name = " ".join(match.group(1).split()).strip(" ,.-")
            scores[name] += 1
            first_seen.setdefault(name, stripped[:200])
            if return_address and match.start(1) == len(line) - len(line.lstrip()):
                scores[name] += 2
            if index < 8:
                scores[name] += 1
    if scores:
        name, score = scores.most_common(1)[0]
        return TextField(name, 0.8 if score >= 3 else 0.5, first_seen[name])
    for line in lines[:5]:
        if line.strip() and re.search(r"[A-Za-zÄÖÜäöü]{3}", line):
            return TextField(" ".join(line.split())[:120], 0.3, line.strip()[:200])
    return None


def _extract_type(text: str) -> TextField:
    if _CREDIT_NOTE.search(text):
        return TextField("381", 0.6, _CREDIT_NOTE.search(text).group(0))
    if _INVOICE_WORD.search(text):
        return TextField("380", 0.8, _INVOICE_WORD.search(text).group(0))
    return TextField("380", 0.4, "")


def extract_fields(text: str) -> ExtractedFields:
    """Find invoice number, dates, totals, currency, seller, VAT id and IBAN in free text."""
    text = text[:MAX_TEXT_CHARS].replace("\r\n", "\n").replace("\f", "\n")
    lines = text.split("\n")
    fields: dict[str, TextField] = {}
    extracted = {
        "number": _extract_number(lines),
        "issue_date": _extract_labeled_date(lines, _ISSUE_LABEL, issue=True),
        "due_date": _extract_labeled_date(lines, _DUE_LABEL, issue=False),
        "currency": _extract_currency(text),
        "iban": _extract_iban(lines),
        "seller_vat_id": _extract_vat_id(lines),
        "seller_name": _extract_seller(lines),
        "type_code": _extract_type(text),
    }
    fields.update({name: f for name, f in extracted.items() if f is not None})
    fields.update(_extract_totals(lines))
    if "issue_date" not in fields:
        dates = [d for line in lines for _, d in find_dates(line)]
        if dates:
            fields["issue_date"] = TextField(dates[0], 0.3, "first date in the text")
    return ExtractedFields(fields)
