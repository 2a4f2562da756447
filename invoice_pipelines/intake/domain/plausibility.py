"""Whether the values read from a text PDF or a scan may be booked without a person looking.

A reading without XML is a guess about a page. It is booked unseen only when every key value was
read with confidence and the values agree with each other and with the page: net + VAT = gross,
the VAT breakdown adds up and each rate's VAT is its basis times its rate (at a rate VAT law
knows), the amounts appear on the page, the dates are plausible, and the number is not a date,
an amount, a phone number, an IBAN or a piece of a longer token. Every doubt is a finding of its
own (stage "review", rule IP-REV-xx) and sends the document to NEEDS_REVIEW, where a person
confirms or corrects it (intake/domain/review.py). When unsure, review: a wrong invoice booked costs
more than a look.

The payment accounts of every read document, XML or page, are checked here too
(`payment_account_doubts`, run by the intake on each outcome before the supplier register's
comparison): an IBAN that fails ISO 13616 (IP-PAY-01) and a BIC that fails ISO 9362 (IP-PAY-02)
hold the document for a person, whatever its e-invoice class (KoSIT's BR-DE-19 only warns).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from invoice_pipelines.core.bank_accounts import bic_problem, iban_problem, looks_like_iban
from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.money import ZERO
from invoice_pipelines.core.rules import EARLIEST_DATE, KNOWN_RATES, LATEST_DUE, Finding
from invoice_pipelines.intake.domain.formats.text.labels import DUE_LABEL

if TYPE_CHECKING:
    # the reader (PDF, XML, the official rules) only as a type: a review, which checks what a
    # person typed, imports no reader of documents
    from invoice_pipelines.einvoice.read import ParseOutcome

# Below this a value read from a page is a guess (the extractor's own floor is 0.5). Codes
# (currency, document type) come from words rather than labelled values, and the extractor gives
# them at most 0.8: their floor is lower.
CONFIDENT = {"text": 0.75, "ocr": 0.7}
CONFIDENT_CODES = {"text": 0.6, "ocr": 0.55}
CODES = frozenset({"currency", "type_code"})
KEY_FIELDS = {
    "number": "the invoice number",
    "issue_date": "the issue date",
    "gross_total": "the total with VAT",
    "net_total": "the net total",
    "tax_total": "the VAT",
    "currency": "the currency",
}
CONFIDENCE_FIELDS = (*KEY_FIELDS, "type_code", "amount_due")
# EN 16931 lets a rate's VAT deviate one currency unit from basis x rate (per-line rounding)
VAT_SLACK = Decimal("1.00")
TOTAL_SLACK = Decimal("0.01")
OLDEST = date(2000, 1, 1)
LONGEST_TERM = timedelta(days=366)
# What no reading and no person's confirmation books (the doubts above send a reading to a person;
# these bounds hold for the person too): a date outside them is a typo or a hostile document, and
# a later step (a discount's last day, an export month) must never compute with it.
LATEST_ISSUE = timedelta(days=366)  # after today
# one breakdown row per VAT category and rate; more rows than this is not an invoice's breakdown
MAX_BREAKDOWN_ROWS = 50
# BT-3: the document types of UNTDID 1001 EN 16931 allows (the code list of its rule BR-CL-01);
# the readers give 380, 381, 384, 389, 326, 386, 387, 575, 751 and 877, an XML what it states
DOCUMENT_TYPES = frozenset(
    (
        "71 80 81 82 83 84 102 130 202 203 204 211 218 219 261 262 295 296 308 325 326 331 380 "
        "381 382 383 384 385 386 387 388 389 390 393 394 395 396 420 456 457 458 471 472 473 500 "
        "501 502 503 527 532 553 575 623 633 751 780 817 870 875 876 877 935"
    ).split()
)
# the credit notes among them: their amounts are stated positive, the type gives the sign
CREDIT_NOTE_TYPES = frozenset(
    {"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"}
)
# BT-5: ISO 4217 codes of money. Not the codes ISO 4217 gives to what is no currency (XXX, the
# testing code XTS, gold, silver, platinum and palladium, the bond market units XBA..XBD, the SDR,
# SUCRE, the ADB unit, the Arab accounting dinar) nor its fund codes (BOV, CHE, CHW, CLF, COU, MXV,
# USN, UYI, UYW): nobody pays an invoice in them. Kept: currencies withdrawn since the euro
# replaced them in Croatia (HRK, 2023) and Bulgaria (BGN, 2026), whose invoices still arrive.
CURRENCIES = frozenset(
    (
        "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP "
        "BYN BZD CAD CDF CHF CLP CNH CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD "
        "FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD "
        "JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT "
        "MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG "
        "QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STD STN SVC SYP SZL THB "
        "TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF "
        "XPF YER ZAR ZMW ZWG"
    ).split()
)

_TITLE_WORDS = (
    # (type code, words a title of that kind uses), checked in the first lines of the page
    (
        "381",
        r"gutschrift|credit\s*note|avoir|nota\s+de\s+cr[eé]dito|creditnota|nota\s+di\s+credito",
    ),
    ("384", r"rechnungskorrektur|korrekturrechnung|corrected\s+invoice|facture\s+rectificative"),
    ("389", r"gutschriftsverfahren|self[- ]billing|selbstfakturierung|autofacturation"),
    ("326", r"abschlagsrechnung|teilrechnung|partial\s+invoice|facture\s+d['’]acompte"),
    ("386", r"vorauszahlungsrechnung|anzahlungsrechnung|prepayment\s+invoice"),
    ("575", r"versicherungsrechnung|insurance\s+invoice|beitragsrechnung"),
    ("387", r"mietrechnung|rent\s+invoice|hire\s+invoice"),
)
_STORNO = re.compile(r"\bstorno(?:rechnung)?\b", re.IGNORECASE)


def _finding(rule: str, message: str) -> Finding:
    return Finding(rule, message, severity="warning", stage="review")


def _amount_texts(value: Decimal) -> set[str]:
    """How a page may print an amount: 1234.5 as 1.234,50 / 1,234.50 / 1234,50 / 1234.50 /
    1 234,50 (the sign dropped: pages print credits in many ways)."""
    value = abs(value).quantize(Decimal("0.01"))
    whole, cents = f"{value:.2f}".split(".")
    groups = []
    rest = whole
    while len(rest) > 3:
        groups.insert(0, rest[-3:])
        rest = rest[:-3]
    groups.insert(0, rest)
    forms = {f"{whole},{cents}", f"{whole}.{cents}"}
    for separator in (".", ",", " ", "\u202f", "'", "\u00a0"):
        grouped = separator.join(groups)
        forms.add(f"{grouped},{cents}" if separator != "," else f"{grouped}.{cents}")
        if separator != ".":
            forms.add(f"{grouped}.{cents}")
    return forms


def on_page(value: Decimal, page: str) -> bool:
    """Whether an amount is printed on the page (not as a part of a longer number)."""
    for form in _amount_texts(value):
        for found in re.finditer(re.escape(form), page):
            start, end = found.start(), found.end()
            before = page[start - 1] if start else " "
            after = page[end] if end < len(page) else " "
            if before.isdigit() or after.isdigit():
                continue
            # "234,50" inside "1.234,50": a grouping mark with a digit before it
            if before in ".,'\u202f\u00a0" and start >= 2 and page[start - 2].isdigit():
                continue
            return True
    return False


def _number_doubts(number: str, page: str) -> str | None:
    compact = number.strip()
    bare = re.sub(r"[\s./-]", "", compact)
    if re.fullmatch(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{2}-\d{2}", compact):
        return "looks like a date"
    if re.fullmatch(r"[-+]?\d{1,3}([.,\s]\d{3})*[.,]\d{2}", compact):
        return "looks like an amount"
    if re.fullmatch(r"(\+|00)\d[\d\s/()-]{6,}", compact) or re.fullmatch(
        r"0\d{2,5}[\s/-]\d{3,}([\s-]\d+)*", compact
    ):
        return "looks like a phone number"
    if re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", bare):
        return "looks like an IBAN"
    if re.fullmatch(r"\d{5}", compact) and re.search(
        rf"\b{re.escape(compact)}\s+[A-ZÄÖÜ][a-zäöüß]", page
    ):
        return "looks like a postcode"
    occurrences = [m for m in re.finditer(re.escape(compact), page)]
    if occurrences and all(_continued(page, m) for m in occurrences):
        return "is only the start of a longer token on the page"
    return None


def _continued(page: str, found: re.Match) -> bool:
    """The number runs on: a digit or letter right after it, or one space and more digits (OCR
    splits "20261125-205" into "20261 125-205")."""
    after = page[found.end() : found.end() + 12]
    return bool(re.match(r"[0-9A-Za-z]|[ ]\d[\d./-]*\d(?!\s*[%€$£])", after))


def adjusted_lines_total(invoice: Invoice) -> Decimal:
    """The lines' sum less the document's allowances plus its charges where the page sums them
    (BR-CO-13's net)."""
    lines = sum((line.net_amount for line in invoice.lines if line.net_amount is not None), ZERO)
    return lines - (invoice.allowance_total or ZERO) + (invoice.charge_total or ZERO)


_DATE_LIKE = re.compile(r"(?<!\d)\d{1,4}[./-]\d{1,2}[./-]\d{2,4}(?!\d)")


def due_date_printed(text: str) -> str | None:
    """The words of a due-date label with a date-like value after it on its line or the next two
    ("Fälligkeit ... 03.10.2018"), or None: a page that names a due date it states."""
    for label in DUE_LABEL.finditer(text):
        after = "\n".join(text[label.end() :].split("\n")[:3])
        if _DATE_LIKE.search(after):
            return label.group(0)
    return None


def review_findings(
    invoice: Invoice,
    text: str,
    *,
    origin: Literal["text", "ocr"],
    today: date | None = None,
    corrected: str | None = None,
    proven: dict[str, float] | None = None,
) -> list[Finding]:
    """Every reason to have a person look at values read from a page before they are booked.
    `corrected` is a scan's text with OCR's look-alikes put right ("7O6,5O" as 706,50), as the
    reader read it: an amount printed there is on the page too. `proven`: the amounts the
    invoice's own sums prove (proofs.py), each with the reader's own confidence in it. Those
    are judged by that alone, not scaled by a scan's page-wide confidence (which specks read as
    words drag down below the floor for every value on the page); a reader that doubted its own
    choice (a total it took because the printed one does not add up) still holds it, and every
    value the sums do not cover is judged as read."""
    findings: list[Finding] = []
    source = "the page's text" if origin == "text" else "the scan"
    for name, label in KEY_FIELDS.items():
        if getattr(invoice, name) is None:
            findings.append(_finding("IP-REV-01", f"{label} could not be read from {source}"))
    if invoice.due_date is None and (printed := due_date_printed(corrected or text)):
        # an invoice may name no due date; one that prints a date beside its label and was
        # booked without it would be paid late or early
        findings.append(
            _finding(
                "IP-REV-01",
                f"the due date could not be read from {source}, though the page prints one "
                f"beside its label ({printed!r})",
            )
        )
    for name in CONFIDENCE_FIELDS:
        confidence = (proven or {}).get(name, invoice.confidence.get(name))
        if getattr(invoice, name, None) is not None and confidence is not None:
            floor = CONFIDENT_CODES[origin] if name in CODES else CONFIDENT[origin]
            if confidence < floor:
                label = KEY_FIELDS.get(name, name.replace("_", " "))
                findings.append(
                    _finding(
                        "IP-REV-02",
                        f"{label} was read from {source} with confidence {confidence:.3f} "
                        f"(below {floor})",
                    )
                )

    net, tax, gross = invoice.net_total, invoice.tax_total, invoice.gross_total
    if None not in (net, tax, gross) and abs(net + tax - gross) > TOTAL_SLACK:
        findings.append(_finding("IP-REV-03", f"net {net} + VAT {tax} is not the total {gross}"))
    findings += _breakdown_doubts(invoice)
    per_rate = [e.amount for e in invoice.vat_breakdown if e.amount is not None]

    def printed(amount: Decimal) -> bool:
        return on_page(amount, text) or (corrected is not None and on_page(amount, corrected))

    for name, value in (("total with VAT", gross), ("net total", net), ("VAT", tax)):
        if (
            name == "VAT"
            and len(per_rate) > 1
            and sum(per_rate, ZERO) == value
            and all(printed(amount) for amount in per_rate)
        ):
            continue  # the VAT total is the sum of the per-rate amounts the page prints
        if value is None or value == ZERO:
            continue
        if not printed(value):
            findings.append(
                _finding("IP-REV-05", f"the {name} {value} does not appear on the page as read")
            )
    findings += _date_doubts(invoice, today or date.today())
    if invoice.number:
        why = _number_doubts(invoice.number, text)
        if why:
            findings.append(_finding("IP-REV-07", f"the invoice number {invoice.number!r} {why}"))
    findings += _line_doubts(invoice)
    findings += _type_doubts(invoice, text)
    return findings


def _breakdown_doubts(invoice: Invoice) -> list[Finding]:
    entries = [
        (e.rate, e.basis, e.amount)
        for e in invoice.vat_breakdown
        if e.basis is not None and e.amount is not None
    ]
    rows = [(e.category, e.rate) for e in invoice.vat_breakdown]
    if len(rows) > 1 and breakdown_row_problems(rows):
        return [_finding("IP-REV-04", problem) for problem in breakdown_row_problems(rows)]
    if not entries:
        if invoice.tax_total not in (None, ZERO):
            return [
                _finding(
                    "IP-REV-04", f"VAT {invoice.tax_total} is stated but no rate was read with it"
                )
            ]
        return []
    return [
        _finding("IP-REV-04", problem)
        for problem in breakdown_problems(invoice.net_total, invoice.tax_total, entries)
    ]


def breakdown_problems(
    net: Decimal | None,
    tax: Decimal | None,
    entries: list[tuple[Decimal | None, Decimal, Decimal]],
) -> list[str]:
    """What keeps a VAT breakdown (rate, basis, VAT per entry) from agreeing with the net and VAT
    totals and with VAT law's rates, in plain words: the bases add up to the net, the amounts to
    the VAT, each amount is its basis times a known rate. The reading (IP-REV-04) and a person's
    correction in review are held to the same."""
    problems = []
    basis = sum((b for _, b, _ in entries), ZERO)
    vat = sum((v for _, _, v in entries), ZERO)
    if net is not None and abs(basis - net) > TOTAL_SLACK:
        problems.append(f"the VAT breakdown's bases add up to {basis}, not the net {net}")
    if tax is not None and abs(vat - tax) > TOTAL_SLACK:
        problems.append(f"the VAT breakdown adds up to {vat}, not the VAT {tax}")
    for rate, b, v in entries:
        if rate is None:
            problems.append(f"the VAT {v} has no rate")
            continue
        if rate not in KNOWN_RATES:
            problems.append(f"a VAT rate of {rate} % is not a VAT rate")
        expected = (b * rate / 100).quantize(Decimal("0.01"))
        if abs(expected - v) > VAT_SLACK:
            problems.append(f"{rate} % of {b} is {expected}, not the {v} read")
    return problems


def breakdown_row_problems(rows: list[tuple[str | None, Decimal | None]]) -> list[str]:
    """What keeps a VAT breakdown's rows (category, rate) from being one row per VAT category and
    rate, at most MAX_BREAKDOWN_ROWS of them, in plain words."""
    if len(rows) > MAX_BREAKDOWN_ROWS:
        return [
            f"the VAT breakdown has {len(rows)} rows; an invoice has at most "
            f"{MAX_BREAKDOWN_ROWS}, one per VAT category and rate"
        ]
    seen: set[tuple[str | None, Decimal | None]] = set()
    problems = []
    for category, rate in rows:
        key = (category or None, None if rate is None else rate.normalize())
        if key in seen:
            what = f"the rate {rate} %" + (f" in category {category}" if category else "")
            problems.append(
                f"the VAT breakdown names {what} twice; one row per VAT category and rate "
                "(add the rows up)"
            )
        seen.add(key)
    return problems


def code_problems(type_code: str | None, currency: str | None) -> list[str]:
    """A document type (BT-3) EN 16931 does not allow, a currency (BT-5) that is no money."""
    problems = []
    if type_code is not None and type_code not in DOCUMENT_TYPES:
        problems.append(
            f"the document type (type_code) {type_code!r} is not one EN 16931 allows "
            "(UNTDID 1001: 380 invoice, 381 credit note, 384 corrected invoice, 389 self-billed "
            "invoice, 326 partial invoice, 386 prepayment invoice, 751 ...)"
        )
    if currency is not None and currency not in CURRENCIES:
        problems.append(
            f"the currency {currency!r} is not an ISO 4217 currency (EUR, USD, CHF, ...)"
        )
    return problems


def sign_problems(type_code: str | None, net: Decimal | None, gross: Decimal | None) -> list[str]:
    """Totals whose sign contradicts the document type: EN 16931 states a credit note's amounts
    positive (its type gives the sign; an export books a negative one as an invoice), and a
    negative invoice is a credit typed wrong more often than anything else."""
    negative = [
        label
        for label, value in (("net total", net), ("total with VAT", gross))
        if value is not None and value < ZERO
    ]
    if not negative:
        return []
    what = " and the ".join(negative)
    verb = "is" if len(negative) == 1 else "are"
    if type_code in CREDIT_NOTE_TYPES:
        return [
            f"the {what} {verb} negative on a credit note ({type_code}): a credit note states "
            "its amounts positive, its type gives the sign"
        ]
    return [
        f"the {what} {verb} negative on a document of type {type_code or '(none)'}: a credit is "
        "type 381 with positive amounts (type_code=381 and the amounts without their sign)"
    ]


def issue_date_bounds(today: date) -> tuple[date, date]:
    """The earliest and the latest issue date anything may book."""
    return EARLIEST_DATE, today + LATEST_ISSUE


def due_date_bounds(issue: date | None, today: date) -> tuple[date, date]:
    """The earliest and the latest due date anything may book (after an issue date, if known)."""
    return (issue or EARLIEST_DATE), max(issue or today, EARLIEST_DATE) + LATEST_DUE


def date_problems(issue: date | None, due: date | None, today: date) -> list[str]:
    """Dates nothing may book, in plain words: an issue date outside EARLIEST_DATE .. a year from
    today, a due date before the issue date or more than ten years after it."""
    problems = []
    first, last = issue_date_bounds(today)
    if issue is not None and not first <= issue <= last:
        problems.append(f"the issue date {issue} is not a plausible date ({first} to {last})")
        issue = None  # the due date is not judged by an impossible issue date
    if due is not None:
        first, last = due_date_bounds(issue, today)
        if issue is not None and due < issue:
            problems.append(
                f"the due date {due} is before the issue date {issue} (payable at once: the "
                "issue date)"
            )
        elif not first <= due <= last:
            problems.append(f"the due date {due} is not a plausible date ({first} to {last})")
    return problems


def _date_doubts(invoice: Invoice, today: date) -> list[Finding]:
    issue, due = invoice.issue_date, invoice.due_date
    doubts = [_finding("IP-REV-06", problem) for problem in date_problems(issue, due, today)]
    if doubts:
        return doubts
    if issue is not None and not OLDEST <= issue <= today + timedelta(days=1):
        doubts.append(_finding("IP-REV-06", f"the issue date {issue} is not a plausible date"))
    if issue is not None and due is not None and due - issue > LONGEST_TERM:
        doubts.append(_finding("IP-REV-06", f"the due date {due} is more than a year after it"))
    return doubts


def _line_doubts(invoice: Invoice) -> list[Finding]:
    lines = [line for line in invoice.lines if line.net_amount is not None]
    if not lines:
        # an invoice has at least one line (EN 16931 BR-16): none read is a table not understood
        return [_finding("IP-REV-08", "no invoice line could be read from the page")]
    if invoice.net_total is None:
        return []
    total = adjusted_lines_total(invoice)
    if abs(total - invoice.net_total) > TOTAL_SLACK:
        return [
            _finding(
                "IP-REV-08",
                f"the {len(lines)} lines read add up to {total}, not the net {invoice.net_total}: "
                "a line may be missing or counted twice",
            )
        ]
    return []


def _type_doubts(invoice: Invoice, text: str) -> list[Finding]:
    head = "\n".join(text.splitlines()[:25]).lower()
    doubts = []
    for code, words in _TITLE_WORDS:
        if re.search(words, head) and invoice.type_code != code:
            if code == "381" and invoice.type_code in ("384", "389"):
                continue  # a correction or self-billing names "Gutschrift" too
            doubts.append(
                _finding(
                    "IP-REV-09",
                    f"the page reads like document type {code} but was read as "
                    f"{invoice.type_code or 'no type'}: a credit or a correction changes the sign",
                )
            )
            break
    if _STORNO.search(head) and invoice.type_code == "380":
        doubts.append(_finding("IP-REV-09", "the page reads like a cancellation (Storno)"))
    problems = sign_problems(invoice.type_code, invoice.net_total, invoice.gross_total)
    doubts += [_finding("IP-REV-09", problem) for problem in problems]
    doubts += [
        _finding("IP-REV-10", problem)
        for problem in code_problems(invoice.type_code, invoice.currency)
    ]
    return doubts


BAD_IBAN = "IP-PAY-01"
BAD_BIC = "IP-PAY-02"
# UNTDID 4461 codes of SEPA payments: their account (BT-84) must be an IBAN. Under another code a
# payee account not written as an IBAN (no country and check digits first) may be a national
# account number, which EN 16931 allows; one written as an IBAN is held to it under any code.
SEPA_MEANS = frozenset({"58", "59"})
_PAGE_ORIGINS = {"text": "the page's text", "ocr": "the scan"}


def payment_account_problems(invoice: Invoice) -> list[Finding]:
    """IP-PAY-01 for each payment account that is no valid IBAN, IP-PAY-02 for each BIC that is
    no BIC; read from a page, the sentence says so (the reading may be what is wrong)."""
    found = []
    read_from = _PAGE_ORIGINS.get(invoice.origin)
    after = f" (as read from {read_from}: compare it with the document)" if read_from else ""
    sepa = invoice.payment_means_code in SEPA_MEANS
    for account in invoice.payment_accounts:
        problem = None
        if sepa or looks_like_iban(account.iban) or read_from:
            problem = iban_problem(account.iban)
        if problem:
            found.append(_finding(BAD_IBAN, f"{problem}; nothing is paid to it unchecked{after}"))
        problem = bic_problem(account.bic) if account.bic else None
        if problem:
            found.append(_finding(BAD_BIC, f"{problem}{after}"))
    return found


def payment_account_doubts(outcomes: dict[int, ParseOutcome]) -> dict[int, ParseOutcome]:
    """Each read document's outcome with its IP-PAY findings among its review findings (a
    VALIDATED outcome becomes NEEDS_REVIEW); the others as they are."""
    checked = dict(outcomes)
    for doc_id, outcome in outcomes.items():
        if outcome.invoice is None:
            continue
        found = payment_account_problems(outcome.invoice)
        if found:
            status = "NEEDS_REVIEW" if outcome.status == "VALIDATED" else outcome.status
            checked[doc_id] = replace(outcome, review=[*outcome.review, *found], status=status)
    return checked
