"""Our own EN 16931 business rules over the normalized invoice: the same checks for XML, text and OCR.

Rule ids BR-* follow EN 16931 (the semantics are the standard's, the code is ours); IP-* are
checks of our own that the standard does not make. Each check returns plain findings; nothing
here raises on bad data.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from functools import cache, lru_cache
from typing import Any, Literal

from invoice_pipelines.core.invoice import Invoice, InvoiceLine
from invoice_pipelines.core.money import ZERO, plain_string

Severity = Literal["error", "warning"]

# BT-131 against quantity x price: the slack of PEPPOL-EN16931-R120, the one published check.
LINE_TOLERANCE = Decimal("0.02")
# EN 16931 (since validation 1.3.x) accepts a VAT amount per category that deviates up to one
# currency unit from basis x rate, because sellers may sum VAT per line; the CEN unit tests
# (test/cii/BR-CO-17.xml) pin exactly this boundary: +-1.00 passes, +-1.01 fails.
VAT_CATEGORY_TOLERANCE = Decimal("1.00")
# An invoice dated tomorrow is plausible across time zones; later than that it is a typo or fraud.
FUTURE_ISSUE_DAYS = 1
# What no reading and no person's confirmation books: an issue date before this, a due date more
# than ten years of terms after the issue date (a typo or a hostile document: 9999-12-31 leaves
# no calendar for a discount's or a reminder's days).
EARLIEST_DATE = date(1990, 1, 1)
LATEST_DUE = timedelta(days=3660)
# VAT rates in force in the EU and its neighbours (standard, reduced, super-reduced); a rate read
# from a page (or inferred from a row's arithmetic) outside these is a misreading more likely than a rate.
KNOWN_RATES = frozenset(
    Decimal(r)
    for r in (
        "0 2.1 2.5 3 3.7 3.8 4 5 5.5 6 7 7.7 8 8.1 9 10 12 13 13.5 14 15 16 17 18 19 20 "
        "21 22 23 24 25 25.5 26 27"
    ).split()
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a document: which rule, what is wrong, how bad, at which stage."""

    rule: str | None
    message: str
    severity: Severity = "error"
    stage: str = "rules"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
        }


def _m(value: Decimal | None) -> str:
    return "missing" if value is None else plain_string(value)


def _mandatory(invoice: Invoice) -> list[Finding]:
    """BR-01..BR-16: business terms an invoice must carry, limited to what its source can carry."""
    checks: list[tuple[str, str, bool]] = []
    structured = invoice.origin == "xml"
    profile = invoice.profile
    if structured:
        checks.append(("BR-01", "specification identifier (BT-24)", bool(invoice.guideline_id)))
    checks += [
        ("BR-02", "invoice number (BT-1)", bool(invoice.number)),
        ("BR-03", "issue date (BT-2)", invoice.issue_date is not None),
    ]
    if structured:
        checks.append(("BR-04", "invoice type code (BT-3)", bool(invoice.type_code)))
    checks += [
        ("BR-05", "invoice currency code (BT-5)", bool(invoice.currency)),
        ("BR-06", "seller name (BT-27)", bool(invoice.seller_name)),
    ]
    if structured:
        seller_address = invoice.seller_address
        buyer_address = invoice.buyer_address
        checks += [
            ("BR-07", "buyer name (BT-44)", bool(invoice.buyer_name)),
            ("BR-08", "seller postal address (BG-5)", seller_address is not None),
            (
                "BR-09",
                "seller country code (BT-40)",
                bool(seller_address and seller_address.country_code),
            ),
        ]
        # Factur-X MINIMUM has no buyer address and no BT-106.
        if profile != "minimum":
            checks += [
                ("BR-10", "buyer postal address (BG-8)", buyer_address is not None),
                (
                    "BR-11",
                    "buyer country code (BT-55)",
                    bool(buyer_address and buyer_address.country_code),
                ),
                (
                    "BR-12",
                    "sum of invoice line net amounts (BT-106)",
                    invoice.line_total is not None,
                ),
            ]
    # A text layer or a scan carries the net total as printed (or derived as gross - VAT by the
    # extractor); a document whose net total was not found is never validated on a guess.
    checks += [
        ("BR-13", "invoice total without VAT (BT-109)", invoice.net_total is not None),
        ("BR-14", "invoice total with VAT (BT-112)", invoice.gross_total is not None),
    ]
    if structured:
        checks.append(("BR-15", "amount due for payment (BT-115)", invoice.amount_due is not None))
        if invoice.has_lines_by_profile:
            checks.append(("BR-16", "at least one invoice line (BG-25)", bool(invoice.lines)))
    return [
        Finding(rule, f"the invoice has no {what}") for rule, what, present in checks if not present
    ]


def cen_round(value: Decimal) -> Decimal:
    """`round(value * 100) div 100`, the rounding of the CEN EN 16931 schematron, to cents.

    XPath's round() takes a half towards positive infinity: 0.125 -> 0.13 but -0.125 -> -0.12.
    Only the computed side of a rule is rounded; the stated amount is compared as it is.
    """
    return (value * 100 + Decimal("0.5")).to_integral_value(rounding=ROUND_FLOOR).scaleb(-2)


def _line_sum(invoice: Invoice) -> list[Finding]:
    """BR-CO-10: BT-106 = round(sum of line net amounts BT-131)."""
    if not invoice.has_lines_by_profile or invoice.line_total is None:
        return []
    amounts = [line.net_amount for line in invoice.lines if line.net_amount is not None]
    total = cen_round(sum(amounts, ZERO))
    if total != invoice.line_total:
        return [
            Finding(
                "BR-CO-10",
                f"sum of line net amounts (BT-106) is {_m(invoice.line_total)} but the "
                f"{len(amounts)} lines add up to {plain_string(total)}",
            )
        ]
    return []


def _allowance_charge_sums(invoice: Invoice) -> list[Finding]:
    """BR-CO-11 / BR-CO-12: BT-107 and BT-108 equal the rounded sums of document allowances / charges."""
    findings = []
    for rule, label, items, stated in (
        ("BR-CO-11", "allowances (BT-107)", invoice.allowances, invoice.allowance_total),
        ("BR-CO-12", "charges (BT-108)", invoice.charges, invoice.charge_total),
    ):
        amounts = [item.amount for item in items if item.amount is not None]
        if stated is None and not amounts:
            continue
        total = cen_round(sum(amounts, ZERO))
        if stated is None or stated != total:
            findings.append(
                Finding(
                    rule,
                    f"sum of document-level {label} is {_m(stated)} but the "
                    f"{len(amounts)} listed add up to {plain_string(total)}",
                )
            )
    return findings


def _net_total(invoice: Invoice) -> list[Finding]:
    """BR-CO-13: BT-109 = round(BT-106 - BT-107 + BT-108)."""
    if invoice.net_total is None or invoice.line_total is None:
        return []
    expected = cen_round(
        invoice.line_total - (invoice.allowance_total or ZERO) + (invoice.charge_total or ZERO)
    )
    if expected != invoice.net_total:
        return [
            Finding(
                "BR-CO-13",
                f"total without VAT (BT-109) is {_m(invoice.net_total)} but line total "
                f"{_m(invoice.line_total)} - allowances {_m(invoice.allowance_total or ZERO)} "
                f"+ charges {_m(invoice.charge_total or ZERO)} = {plain_string(expected)}",
            )
        ]
    return []


def _vat_total(invoice: Invoice) -> list[Finding]:
    """BR-CO-14: BT-110 = round(sum of VAT category amounts BT-117)."""
    amounts = [vat.amount for vat in invoice.vat_breakdown if vat.amount is not None]
    if invoice.tax_total is None or not amounts:
        return []
    total = cen_round(sum(amounts, ZERO))
    if invoice.tax_total != total:
        return [
            Finding(
                "BR-CO-14",
                f"total VAT (BT-110) is {_m(invoice.tax_total)} but the VAT breakdown adds up "
                f"to {plain_string(total)}",
            )
        ]
    return []


def _gross_total(invoice: Invoice) -> list[Finding]:
    """BR-CO-15: BT-112 = round(BT-109 + BT-110), BT-110 stated exactly once in the invoice currency.

    As in the CEN CII rule, an invoice whose BT-112 equals BT-109 passes whatever VAT it states.
    Text and OCR carry no currency per amount: there the one VAT total read counts.
    """
    if invoice.net_total is None or invoice.gross_total is None:
        return []
    if invoice.origin == "xml":
        stated = [e.amount for e in invoice.tax_total_entries if e.currency == invoice.currency]
    else:
        stated = [] if invoice.tax_total is None else [invoice.tax_total]
    if len(stated) == 1:
        expected = cen_round(invoice.net_total + stated[0])
        if expected == invoice.gross_total or invoice.gross_total == invoice.net_total:
            return []
        return [
            Finding(
                "BR-CO-15",
                f"total with VAT (BT-112) is {_m(invoice.gross_total)} but total without VAT "
                f"{_m(invoice.net_total)} + VAT {plain_string(stated[0])} = "
                f"{plain_string(expected)}",
            )
        ]
    if invoice.gross_total == invoice.net_total:
        return []
    amounts = ", ".join(plain_string(a) for a in stated)
    return [
        Finding(
            "BR-CO-15",
            f"total VAT (BT-110) must be stated once in the invoice currency "
            f"{invoice.currency or '(none)'}, it is stated {len(stated)} times"
            + (f": {amounts}" if stated else ""),
        )
    ]


def _amount_due(invoice: Invoice) -> list[Finding]:
    """BR-CO-16: BT-115 = BT-112 - BT-113 + BT-114, rounded as the CEN UBL rule rounds it.

    With a rounding amount: round(BT-115 - BT-114) = round(BT-112 - BT-113); without one:
    BT-115 = round(BT-112 - BT-113). For amounts with two decimals this is the CII rule too.
    """
    if invoice.amount_due is None or invoice.gross_total is None:
        return []
    prepaid = invoice.prepaid or ZERO
    rounding = invoice.rounding or ZERO
    expected = cen_round(invoice.gross_total - prepaid)
    stated = (
        invoice.amount_due if invoice.rounding is None else cen_round(invoice.amount_due - rounding)
    )
    if stated != expected:
        return [
            Finding(
                "BR-CO-16",
                f"amount due (BT-115) is {_m(invoice.amount_due)} but total with VAT "
                f"{_m(invoice.gross_total)} - prepaid {plain_string(prepaid)} "
                f"+ rounding {plain_string(rounding)} = {plain_string(expected + rounding)}",
            )
        ]
    return []


def _integer_round(value: Decimal) -> Decimal:
    """XPath round() to an integer: a half goes towards positive infinity."""
    return (value + Decimal("0.5")).to_integral_value(rounding=ROUND_FLOOR)


def _vat_per_category(invoice: Invoice) -> list[Finding]:
    """BR-CO-17: VAT per category = basis x rate / 100, within one currency unit (CEN 1.3.x).

    As CEN states it: absolute values are compared, |BT-117| - 1 <= round(|BT-116| x BT-119 / 100)
    <= |BT-117| + 1 (the CII rule's bounds; the UBL rule excludes them, and the CEN UBL schematron
    runs on UBL anyway). A rate that rounds to 0, or no rate, needs a VAT amount that rounds to 0.
    """
    findings = []
    for vat in invoice.vat_breakdown:
        if vat.amount is None or (vat.rate is not None and vat.basis is None):
            continue
        label = f"VAT for category {vat.category or '?'}"
        if vat.rate is None or _integer_round(vat.rate) == 0:
            if _integer_round(vat.amount) != 0:
                rate = "no rate" if vat.rate is None else f"rate {plain_string(vat.rate)} %"
                findings.append(
                    Finding("BR-CO-17", f"{label} is {plain_string(vat.amount)} with {rate}")
                )
            continue
        assert vat.basis is not None
        expected = cen_round(abs(vat.basis) * vat.rate / 100)
        if (
            not abs(vat.amount) - VAT_CATEGORY_TOLERANCE
            <= expected
            <= abs(vat.amount) + (VAT_CATEGORY_TOLERANCE)
        ):
            findings.append(
                Finding(
                    "BR-CO-17",
                    f"{label} at {plain_string(vat.rate)} % is "
                    f"{plain_string(vat.amount)} but {plain_string(vat.basis)} x "
                    f"{plain_string(vat.rate)} % = {plain_string(expected)}",
                )
            )
    return findings


# The highest VAT rate there is, and the decimals a rate is stored with (db.types.Rate).
MAX_VAT_RATE = Decimal(100)
RATE_QUANTUM = Decimal("0.01")
# EN 16931's VAT category codes (UNCL5305 subset) -> the prefix of their rules (BR-S-01, BR-S-08,
# ...): K is intra-community supply (BR-IC-*), L the Canary Islands' IGIC (BR-AF-*), M Ceuta and
# Melilla's IPSI (BR-AG-*).
VAT_CATEGORY_RULES = {
    "S": "BR-S",
    "Z": "BR-Z",
    "E": "BR-E",
    "AE": "BR-AE",
    "K": "BR-IC",
    "G": "BR-G",
    "O": "BR-O",
    "L": "BR-AF",
    "M": "BR-AG",
}
# Categories whose taxable amount the standard sums per rate (BR-S-08, BR-AF-08, BR-AG-08); the
# others have one rate (0, or none for O) and are summed per category.
PER_RATE_CATEGORIES = frozenset({"S", "L", "M"})
# BR-*-08 as the CEN UBL rules state it: the taxable amount lies strictly within one currency unit
# of the sum (the CII rules compare the rounded sums exactly, which always lies within it).
BASIS_TOLERANCE = Decimal(1)


def _rate_problem(rate: Decimal) -> str | None:
    if not rate.is_finite() or not ZERO <= rate <= MAX_VAT_RATE:
        return "is not between 0 and 100"
    if rate != rate.quantize(RATE_QUANTUM):
        return "has more than two decimals"
    return None


def _taxed_items(invoice: Invoice) -> list[tuple[str, str | None, Decimal | None, Decimal]]:
    """(where, category, rate, signed net amount) of every line and document allowance/charge."""
    items = [
        (f"line {line.line_id or index}", line.vat_category, line.vat_rate, line.net_amount)
        for index, line in enumerate(invoice.lines, start=1)
        if line.net_amount is not None
    ]
    for label, entries, sign in (
        ("document allowance", invoice.allowances, -1),
        ("document charge", invoice.charges, 1),
    ):
        items += [
            (label, ac.vat_category, ac.vat_rate, sign * ac.amount)
            for ac in entries
            if ac.amount is not None
        ]
    return items


def _vat_rates(invoice: Invoice) -> list[Finding]:
    """IP-VAT-02: every VAT rate (BT-119, BT-152, BT-96, BT-103) is a percentage there can be:
    0 to 100, with at most the two decimals a rate is stored with."""
    rates = [(f"VAT breakdown {vat.category or '?'}", vat.rate) for vat in invoice.vat_breakdown]
    rates += [(where, rate) for where, _, rate, _ in _taxed_items(invoice)]
    findings = []
    for where, rate in rates:
        if rate is not None and (problem := _rate_problem(rate)) is not None:
            findings.append(
                Finding("IP-VAT-02", f"{where}: VAT rate {plain_string(rate)} % {problem}")
            )
    return findings


def _same_rate(one: Decimal | None, other: Decimal | None) -> bool:
    """Rates as the breakdown matches them: no rate is rate 0 (category O states none)."""
    return (one or ZERO) == (other or ZERO)


def _rates_in_breakdown(invoice: Invoice) -> list[Finding]:
    """BR-S-01 (BR-Z-01, BR-E-01, ... per category) and IP-VAT-01: the category and rate of every
    line and document allowance or charge has its row in the VAT breakdown (BG-23), which EN 16931
    defines per category and rate; its rules ask for the category (BR-*-01) and check each row's
    taxable amount (BR-*-08), but a rate no row names is ours to find (a 25 % line beside a 19 %
    breakdown)."""
    if invoice.origin != "xml" or not invoice.vat_breakdown:
        return []
    rows = [(vat.category, vat.rate) for vat in invoice.vat_breakdown]
    findings: dict[str, Finding] = {}
    for where, category, rate, _ in _taxed_items(invoice):
        if category is None or any(c == category and _same_rate(r, rate) for c, r in rows):
            continue
        rate_text = "without a rate" if rate is None else f"at {plain_string(rate)} %"
        if all(c != category for c, _ in rows) and category in VAT_CATEGORY_RULES:
            rule = f"{VAT_CATEGORY_RULES[category]}-01"
            message = f"{where}: VAT category {category} is not in the VAT breakdown (BG-23)"
        else:
            rule = "IP-VAT-01"
            message = (
                f"{where}: VAT category {category} {rate_text} has no row in the VAT "
                "breakdown (BG-23)"
            )
        findings.setdefault(message, Finding(rule, message))
    return list(findings.values())


def _basis_per_rate(invoice: Invoice) -> list[Finding]:
    """BR-S-08 (and BR-Z-08, BR-E-08, BR-AE-08, BR-IC-08, BR-G-08, BR-O-08, BR-AF-08, BR-AG-08):
    each breakdown row's taxable amount (BT-116) is the sum of the line net amounts (BT-131) plus
    the document charges (BT-99) minus the document allowances (BT-92) of its category, and for
    S, L and M of its rate, each sum rounded to cents as CEN rounds it."""
    if invoice.origin != "xml" or not invoice.has_lines_by_profile or not invoice.lines:
        return []
    items = _taxed_items(invoice)
    findings = []
    for vat in invoice.vat_breakdown:
        prefix = VAT_CATEGORY_RULES.get(vat.category or "")
        if prefix is None or vat.basis is None:
            continue
        per_rate = vat.category in PER_RATE_CATEGORIES
        lines: list[Decimal] = []
        others: list[Decimal] = []
        for where, category, rate, amount in items:
            if category == vat.category and (not per_rate or _same_rate(rate, vat.rate)):
                (lines if where.startswith("line") else others).append(amount)
        expected = cen_round(sum(lines, ZERO)) + cen_round(sum(others, ZERO))
        if abs(vat.basis - expected) < BASIS_TOLERANCE:
            continue
        at = f" at {plain_string(vat.rate)} %" if per_rate and vat.rate is not None else ""
        findings.append(
            Finding(
                f"{prefix}-08",
                f"taxable amount of VAT category {vat.category}{at} (BT-116) is "
                f"{plain_string(vat.basis)} but its {len(lines)} lines and {len(others)} "
                f"document allowances and charges add up to {plain_string(expected)}",
            )
        )
    return findings


def _half_unit_of_last_digit(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # NaN/Infinity never come out of our parsers
        return ZERO
    return Decimal(5).scaleb(exponent - 1)


def _derived_net_prices(line: InvoiceLine) -> list[Decimal]:
    """BT-148 - BT-147 per unit of the net price's base quantity, when the line states a gross
    price: with the discount amount as stated and, when a single discount states its percentage,
    unrounded (4.55 - 10 % = 4.095, where BT-147 says 0.45 and BT-146 says 4.10)."""
    if line.gross_price is None:
        return []
    gross_base = line.gross_price_base_quantity or line.price_base_quantity or Decimal(1)
    net_base = line.price_base_quantity or Decimal(1)
    if gross_base <= 0 or net_base <= 0:
        return []
    per_net_base = net_base / gross_base
    prices = [(line.gross_price - (line.price_discount or ZERO)) * per_net_base]
    if line.price_discount_percent is not None:
        unrounded = line.gross_price * (100 - line.price_discount_percent) / 100 * per_net_base
        prices.append(unrounded)
    return prices


def _line_arithmetic(invoice: Invoice) -> list[Finding]:
    """IP-LINE-01 / IP-LINE-02: line amounts as EN 16931 defines them, reported as warnings.

    BT-131 = BT-129 x BT-146 / BT-149 + sum(BT-141) - sum(BT-136), and BT-146 = BT-148 - BT-147.
    The standard defines both terms this way, but no official EN 16931 rule makes either fatal:
    the CEN schematron has no such assert (noNetPriceValidation.xml passes CEN with 0.10 x 400
    stated as 316.00), and the only published check, Peppol's PEPPOL-EN16931-R120, allows 0.02
    either way (KoSIT's XRechnung validator reports it as a warning). So these are warnings with
    that tolerance: the invoice stays VALIDATED and a person sees the finding.

    A net price printed rounded (4.10) from a gross price minus discount (4.55 - 0.455 = 4.095) is
    the same price: the line is computed with the unrounded one the document states.
    """
    findings = []
    for index, line in enumerate(invoice.lines, start=1):
        where = f"line {line.line_id or index}"
        base = line.price_base_quantity
        if base is not None and base <= 0:
            findings.append(
                Finding(
                    "IP-LINE-01",
                    f"{where}: price base quantity (BT-149) is {plain_string(base)}; "
                    "it must be above 0",
                    severity="warning",
                )
            )
            continue
        derived = _derived_net_prices(line)
        if derived and line.unit_price is not None:
            # a net price printed rounded from the derived one is the same price
            rounding = _half_unit_of_last_digit(line.unit_price)
            if all(abs(price - line.unit_price) > rounding for price in derived):
                findings.append(
                    Finding(
                        "IP-LINE-02",
                        f"{where}: net price (BT-146) is {plain_string(line.unit_price)} but "
                        f"gross price {plain_string(line.gross_price)} - discount "
                        f"{plain_string(line.price_discount or ZERO)} = "
                        f"{plain_string(derived[0])}",
                        severity="warning",
                    )
                )
        if line.quantity is None or line.unit_price is None or line.net_amount is None:
            continue
        adjustments = sum(line.charges, ZERO) - sum(line.allowances, ZERO)
        per = base or Decimal(1)
        prices = [line.unit_price, *derived]
        computed = [line.quantity * price / per + adjustments for price in prices]
        if any(abs(line.net_amount - c) <= LINE_TOLERANCE for c in computed):
            continue
        text = f" / {plain_string(per)}" if per != 1 else ""
        if line.allowances or line.charges:
            text += (
                f" - allowances {plain_string(sum(line.allowances, ZERO))}"
                f" + charges {plain_string(sum(line.charges, ZERO))}"
            )
        findings.append(
            Finding(
                "IP-LINE-01",
                f"{where}: net amount is {plain_string(line.net_amount)} but price "
                f"{plain_string(line.unit_price)} x quantity {plain_string(line.quantity)}{text} "
                f"gives {plain_string(cen_round(computed[0]))}",
                severity="warning",
            )
        )
    return findings


def _dates(invoice: Invoice, today: date) -> list[Finding]:
    """IP-DATE-01: issue date not in the future (error); IP-DATE-02: due before issue (warning);
    IP-DATE-03 / IP-DATE-04: issue date before EARLIEST_DATE, due date outside EARLIEST_DATE ..
    ten years after the issue date (errors)."""
    findings = []
    if invoice.issue_date and invoice.issue_date > today + timedelta(days=FUTURE_ISSUE_DAYS):
        findings.append(
            Finding(
                "IP-DATE-01",
                f"issue date {invoice.issue_date.isoformat()} is in the future (today is "
                f"{today.isoformat()})",
            )
        )
    if invoice.issue_date and invoice.issue_date < EARLIEST_DATE:
        findings.append(
            Finding(
                "IP-DATE-03",
                f"issue date {invoice.issue_date.isoformat()} is before "
                f"{EARLIEST_DATE.isoformat()}: not a date an invoice we book has",
            )
        )
    start = max(invoice.issue_date or today, EARLIEST_DATE)
    latest_due = start + LATEST_DUE if start <= date.max - LATEST_DUE else date.max
    if invoice.due_date and (invoice.due_date > latest_due or invoice.due_date < EARLIEST_DATE):
        findings.append(
            Finding(
                "IP-DATE-04",
                f"due date {invoice.due_date.isoformat()} is not a plausible date (from "
                f"{EARLIEST_DATE.isoformat()} to ten years after the issue date)",
            )
        )
    if invoice.issue_date and invoice.due_date and invoice.due_date < invoice.issue_date:
        # A warning, not an error: EN 16931 allows it (CEN's own CII_business_example_02 has
        # it) and it only means "payable at once"; a human should still look.
        findings.append(
            Finding(
                "IP-DATE-02",
                f"due date {invoice.due_date.isoformat()} is before the issue date "
                f"{invoice.issue_date.isoformat()}",
                severity="warning",
            )
        )
    return findings


_ARITHMETIC: tuple[Callable[[Invoice], list[Finding]], ...] = (
    _line_sum,
    _allowance_charge_sums,
    _net_total,
    _vat_total,
    _gross_total,
    _amount_due,
    _vat_per_category,
    _vat_rates,
    _rates_in_breakdown,
    _basis_per_rate,
    _line_arithmetic,
)


def check_invoice(invoice: Invoice, *, today: date | None = None) -> list[Finding]:
    """Run every rule over one invoice; an empty list means the invoice passed."""
    findings = _mandatory(invoice)
    for check in _ARITHMETIC:
        findings.extend(check(invoice))
    findings.extend(_dates(invoice, today or date.today()))
    return findings


# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt) beyond the categories Cf
# and Cc: characters a renderer shows as nothing although they are letters or marks (combining
# grapheme joiner, Hangul fillers, Khmer inherent vowels, variation selectors, ...).
_IGNORABLE = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def _invisible(char: str) -> bool:
    if char.isspace() or unicodedata.category(char) in ("Cf", "Cc"):
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _IGNORABLE)


class _Decided(dict):
    """A `str.translate` table that decides each code point once, when it is first met, by
    `decide` (a character -> what it becomes: itself, another text, or None to drop it), and
    keeps the answer: the keys' per-character tests cost a dict lookup once a character was met
    (issue 59: a million Python calls in a 600-document intake run, 77 ms of its CPU; 3 ms so).
    The answers are those of `decide`, so a key is the same as computed character by
    character."""

    def __init__(self, decide: Callable[[str], str | None]) -> None:
        super().__init__()
        self.decide = decide

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        value = self.decide(char)
        self[code] = value
        return value


# invisible characters dropped, every other kept as it is
_VISIBLE = _Decided(lambda c: None if _invisible(c) else c)


def _visible_text(value: str) -> str:
    """`value` in Unicode compatibility forms (NFKC), without invisible characters, case kept."""
    return unicodedata.normalize("NFKC", value).translate(_VISIBLE)


def comparison_text(value: str | None) -> str:
    """A value as the duplicate check compares it: Unicode compatibility forms folded (NFKC:
    full-width digits, ligatures), every invisible or format character (zero-width space, soft
    hyphen, byte order mark, bidi marks: categories Cf, Cc; and the rest of Unicode's default
    ignorable code points: variation selectors, the combining grapheme joiner, fillers) and all
    whitespace removed, case-folded."""
    if not value:
        return ""
    folded = unicodedata.normalize("NFKC", value).casefold()
    return _visible_text(folded)


# the classes {0, O, o} and {1, I, l, i} as the key writes them (`lookalike_text`)
_DIGIT_CLASSES = str.maketrans({"o": "0", "l": "1", "i": "1"})
# The marker the confusables data puts around right-to-left characters so that they print in
# order; it is not part of the character.
_LRM = "\u200e"


@cache
def _prototypes() -> dict[str, str]:
    """Each confusable character -> the prototype it looks like (UTS #39 confusables.txt, from
    the confusable-homoglyphs package, pinned in pyproject.toml: a new table changes the stored
    keys, so an upgrade comes with a migration that recomputes them).

    The package keeps each line of confusables.txt in both directions. In that file a source is
    one character and never a prototype itself, so a character linked to exactly one other is a
    source and the other its prototype; where two characters only know each other either could
    be the prototype, and taking one (ASCII first, then the lower code point) keeps them one
    class, which is all a key needs."""
    from confusable_homoglyphs.confusables import confusables_data

    links: dict[str, set[str]] = {}
    for key, entries in confusables_data.items():
        others = {entry["c"].replace(_LRM, "") for entry in entries}
        links.setdefault(key.replace(_LRM, ""), set()).update(others)
    table: dict[str, str] = {}
    for source, others in links.items():
        if len(source) != 1 or len(others) != 1:
            continue
        (prototype,) = others
        if prototype == source:
            continue
        if len(prototype) == 1 and links.get(prototype) == {source}:
            if min(source, prototype, key=lambda c: (not c.isascii(), ord(c))) == source:
                continue
        table[source] = prototype
    return table


# each character -> its prototype (`_skeleton`); each letter -> its prototype, any other
# character itself (`_letters_as_seen`)
_PROTOTYPE = _Decided(lambda c: _prototypes().get(c, c))
_LETTER_PROTOTYPE = _Decided(
    lambda c: _prototypes().get(c, c) if unicodedata.category(c)[0] == "L" else c
)


def _skeleton(text: str) -> str:
    """UTS #39's skeleton: NFD, each character replaced by its prototype, NFD again."""
    mapped = unicodedata.normalize("NFD", text).translate(_PROTOTYPE)
    return unicodedata.normalize("NFD", mapped)


def _letters_as_seen(text: str) -> str:
    """Each letter as written replaced by the one it looks like, before NFKC folds compatibility
    forms: NFKC makes the lunate sigma (U+03F9), a look-alike of C, a plain sigma. Only letters: a
    full-width hyphen is a separator to NFKC, not the Katakana letter UTS #39 maps it to."""
    return text.translate(_LETTER_PROTOTYPE)


def lookalike_text(value: str | None) -> str:
    """`comparison_text` by what a person sees: every character replaced by the one it looks
    like (UTS #39 skeleton), first as written (Cyrillic `М` is Latin `M`, though `м` is not `m`),
    then case-folded and again until nothing changes (`0` -> `O` -> `o`). UTS #39 makes `I`, `l`
    and `1` one character and case folding makes `I` and `i` one, so `i` joins them: the key is
    case-blind and look-alike-blind at once. Those two classes are written as their digits
    (`RE-2O24-l7` is `re202417`), which reads best in the numbers they mostly occur in."""
    if not value:
        return ""
    text = _skeleton(_visible_text(_letters_as_seen(value)))
    for _ in range(4):
        folded = _visible_text(_skeleton(unicodedata.normalize("NFKC", text.casefold())))
        if folded == text:
            break
        text = folded
    return text.translate(_DIGIT_CLASSES)


def _is_separator(char: str) -> bool:
    """Neither letter, digit nor mark: dashes of every kind, slashes, dots, underscores, spaces,
    other punctuation and symbols."""
    return unicodedata.category(char)[0] not in "LNM"


# separators dropped, every other character kept
_NOT_SEPARATOR = _Decided(lambda c: None if _is_separator(c) else c)


def _without_separators(text: str) -> str:
    return text.translate(_NOT_SEPARATOR)


@lru_cache(maxsize=65536)
def lookalike_key(value: str | None) -> str:
    """`lookalike_text` without separators ("RE-2026/17", "RE_2026_17", "RE202617" are one).
    They go before the look-alikes are replaced too: an em dash looks like a letter (the
    Katakana prolonged sound mark) to UTS #39, but a person reads it as a dash. A value of
    separators only keeps them (it is still something to compare). Cached: a batch names the
    same sellers again and again, and the intake takes each number's key twice (its row, the
    duplicate check)."""
    key = _without_separators(lookalike_text(_without_separators(value or "")))
    return key or lookalike_text(value)


def invoice_number_key(number: str | None) -> str | None:
    """IP-DUP-01's comparison key of an invoice number: what a person sees (`lookalike_key`).

    Suppliers re-send the same invoice typed slightly differently ("RE 2024-17", "re2024/17",
    "RE202417"), sometimes with characters nobody sees (a zero-width space, a soft hyphen),
    full-width digits, other dashes (U+2010, U+2011, U+2013, U+2212) or letters of another script
    that look the same (Cyrillic `Р`, `А`, `О`, `Е`). All of these are one key. The price: numbers
    that differ only in their separators ("1-23" and "12-3") or in look-alike characters ("10"
    and "1O") are one key too, so from the same seller the later one is taken for the earlier;
    docs/intake.md says why that is the better mistake. The intake stores this key beside the
    number and the duplicate check selects by it in SQL, so this function is the one definition
    of "the same number" (migration 0028 recomputed the stored keys with a frozen copy).
    """
    if number is None:
        return None
    return lookalike_key(number) or None


def seller_key(vat_id: str | None, name: str | None) -> str:
    """IP-DUP-01's seller of a number: its VAT id, else its name, each as `lookalike_key` gives
    it (invisible characters, compatibility forms, look-alike letters and separators do not make
    another seller). A seller known by VAT id in one document and by name only in another is not
    taken for the same one."""
    vat = lookalike_key(vat_id)
    return f"vat:{vat}" if vat else f"name:{lookalike_key(name)}"


def duplicate_number_finding(number: str, seller: str | None, earlier_document: int) -> Finding:
    """IP-DUP-01: the seller already sent an invoice with this number (document `earlier_document`)."""
    return Finding(
        "IP-DUP-01",
        f"invoice number {number} from {seller or 'this seller'} was already received "
        f"(document {earlier_document})",
    )
