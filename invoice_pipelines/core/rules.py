"""Our own EN 16931 business rules over the normalized invoice: the same checks for XML, text and OCR.

Rule ids BR-* follow EN 16931 (the semantics are the standard's, the code is ours); IP-* are
checks of our own that the standard does not make. Each check returns plain findings; nothing
here raises on bad data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.money import ZERO, percent_of, plain_string, round_cents

Severity = Literal["error", "warning"]

# Line net amounts are rounded to cents; a cent either way is rounding noise.
LINE_TOLERANCE = Decimal("0.01")
# EN 16931 (since validation 1.3.x) accepts a VAT amount per category that deviates up to one
# currency unit from basis x rate, because sellers may sum VAT per line; the CEN unit tests
# (test/cii/BR-CO-17.xml) pin exactly this boundary: +-1.00 passes, +-1.01 fails.
VAT_CATEGORY_TOLERANCE = Decimal("1.00")
# An invoice dated tomorrow is plausible across time zones; later than that it is a typo or fraud.
FUTURE_ISSUE_DAYS = 1


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
        checks += [
            ("BR-13", "invoice total without VAT (BT-109)", invoice.net_total is not None),
        ]
    checks.append(("BR-14", "invoice total with VAT (BT-112)", invoice.gross_total is not None))
    if structured:
        checks.append(("BR-15", "amount due for payment (BT-115)", invoice.amount_due is not None))
        if invoice.has_lines_by_profile:
            checks.append(("BR-16", "at least one invoice line (BG-25)", bool(invoice.lines)))
    return [
        Finding(rule, f"the invoice has no {what}") for rule, what, present in checks if not present
    ]


def _line_sum(invoice: Invoice) -> list[Finding]:
    """BR-CO-10: BT-106 = sum of line net amounts (BT-131)."""
    if not invoice.has_lines_by_profile or invoice.line_total is None:
        return []
    amounts = [line.net_amount for line in invoice.lines if line.net_amount is not None]
    total = round_cents(sum(amounts, ZERO))
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
    """BR-CO-11 / BR-CO-12: BT-107 and BT-108 equal the sums of document allowances / charges."""
    findings = []
    for rule, label, items, stated in (
        ("BR-CO-11", "allowances (BT-107)", invoice.allowances, invoice.allowance_total),
        ("BR-CO-12", "charges (BT-108)", invoice.charges, invoice.charge_total),
    ):
        amounts = [item.amount for item in items if item.amount is not None]
        if stated is None and not amounts:
            continue
        total = round_cents(sum(amounts, ZERO))
        if stated is None or round_cents(stated) != total:
            findings.append(
                Finding(
                    rule,
                    f"sum of document-level {label} is {_m(stated)} but the "
                    f"{len(amounts)} listed add up to {plain_string(total)}",
                )
            )
    return findings


def _net_total(invoice: Invoice) -> list[Finding]:
    """BR-CO-13: BT-109 = BT-106 - BT-107 + BT-108."""
    if invoice.net_total is None or invoice.line_total is None:
        return []
    expected = (
        invoice.line_total - (invoice.allowance_total or ZERO) + (invoice.charge_total or ZERO)
    )
    if round_cents(expected) != round_cents(invoice.net_total):
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
    """BR-CO-14: BT-110 = sum of VAT category amounts (BT-117)."""
    amounts = [vat.amount for vat in invoice.vat_breakdown if vat.amount is not None]
    if invoice.tax_total is None or not amounts:
        return []
    total = round_cents(sum(amounts, ZERO))
    if round_cents(invoice.tax_total) != total:
        return [
            Finding(
                "BR-CO-14",
                f"total VAT (BT-110) is {_m(invoice.tax_total)} but the VAT breakdown adds up "
                f"to {plain_string(total)}",
            )
        ]
    return []


def _gross_total(invoice: Invoice) -> list[Finding]:
    """BR-CO-15: BT-112 = BT-109 + BT-110, with exactly one BT-110 in the invoice currency."""
    in_invoice_currency = [
        e for e in invoice.tax_total_entries if e.currency is None or e.currency == invoice.currency
    ]
    if len(in_invoice_currency) > 1:
        stated = ", ".join(plain_string(e.amount) for e in in_invoice_currency)
        return [
            Finding(
                "BR-CO-15",
                f"total VAT (BT-110) is stated {len(in_invoice_currency)} times in the invoice "
                f"currency {invoice.currency}: {stated}",
            )
        ]
    if invoice.net_total is None or invoice.gross_total is None:
        return []
    # A VAT total stated only in another currency is BT-111, not BT-110: it does not count here.
    tax = invoice.tax_total or ZERO
    expected = invoice.net_total + tax
    if round_cents(expected) != round_cents(invoice.gross_total):
        return [
            Finding(
                "BR-CO-15",
                f"total with VAT (BT-112) is {_m(invoice.gross_total)} but total without VAT "
                f"{_m(invoice.net_total)} + VAT {plain_string(tax)} = {plain_string(expected)}",
            )
        ]
    return []


def _amount_due(invoice: Invoice) -> list[Finding]:
    """BR-CO-16: BT-115 = BT-112 - BT-113 + BT-114."""
    if invoice.amount_due is None or invoice.gross_total is None:
        return []
    expected = invoice.gross_total - (invoice.prepaid or ZERO) + (invoice.rounding or ZERO)
    if round_cents(expected) != round_cents(invoice.amount_due):
        return [
            Finding(
                "BR-CO-16",
                f"amount due (BT-115) is {_m(invoice.amount_due)} but total with VAT "
                f"{_m(invoice.gross_total)} - prepaid {_m(invoice.prepaid or ZERO)} "
                f"+ rounding {_m(invoice.rounding or ZERO)} = {plain_string(expected)}",
            )
        ]
    return []


def _vat_per_category(invoice: Invoice) -> list[Finding]:
    """BR-CO-17: VAT amount per category = basis x rate / 100, rounded half-up to cents."""
    findings = []
    for vat in invoice.vat_breakdown:
        if vat.basis is None or vat.rate is None or vat.amount is None:
            continue
        expected = percent_of(vat.basis, vat.rate)
        if abs(vat.amount - expected) > VAT_CATEGORY_TOLERANCE:
            findings.append(
                Finding(
                    "BR-CO-17",
                    f"VAT for category {vat.category or '?'} at {plain_string(vat.rate)} % is "
                    f"{plain_string(vat.amount)} but {plain_string(vat.basis)} x "
                    f"{plain_string(vat.rate)} % = {plain_string(expected)}",
                )
            )
    return findings


def _price_rounding_allowance(line_price: Decimal, quantity: Decimal, base: Decimal) -> Decimal:
    """How far price x quantity may drift because the stated price itself was rounded.

    A net price derived from a gross price and a percentage discount (4.55 - 10 % = 4.095) is
    often printed as 4.10 while the seller computed the line with 4.095; half a unit of the last
    stated price digit (at least of the cent), times the quantity, is the honest bound.
    """
    exponent = line_price.as_tuple().exponent
    if not isinstance(exponent, int):  # NaN/Infinity never come out of our parsers
        return ZERO
    half_unit = Decimal(5).scaleb(min(exponent, -2) - 1)
    return half_unit * abs(quantity / base)


def _line_arithmetic(invoice: Invoice) -> list[Finding]:
    """IP-LINE-01: line net = price x quantity / base quantity - line allowances + line charges.

    EN 16931 defines the formula but its schematron does not check it (the corpus file
    noNetPriceValidation.xml passes CEN with 0.10 x 400 stated as 316.00).
    """
    findings = []
    for index, line in enumerate(invoice.lines, start=1):
        if line.quantity is None or line.unit_price is None or line.net_amount is None:
            continue
        base = line.price_base_quantity or Decimal(1)
        if base == 0:
            findings.append(
                Finding("IP-LINE-01", f"line {line.line_id or index}: price base quantity is 0")
            )
            continue
        expected = line.unit_price * line.quantity / base - sum(line.allowances, ZERO)
        expected += sum(line.charges, ZERO)
        tolerance = LINE_TOLERANCE + _price_rounding_allowance(line.unit_price, line.quantity, base)
        if abs(expected - line.net_amount) > tolerance:
            per = "" if base == 1 else f" / {plain_string(base)}"
            adjustments = ""
            if line.allowances or line.charges:
                adjustments = (
                    f" - allowances {plain_string(sum(line.allowances, ZERO))}"
                    f" + charges {plain_string(sum(line.charges, ZERO))}"
                )
            findings.append(
                Finding(
                    "IP-LINE-01",
                    f"line {line.line_id or index}: net amount is {plain_string(line.net_amount)} "
                    f"but price {plain_string(line.unit_price)} x quantity "
                    f"{plain_string(line.quantity)}{per}{adjustments} gives "
                    f"{plain_string(round_cents(expected))}",
                )
            )
    return findings


def _dates(invoice: Invoice, today: date) -> list[Finding]:
    """IP-DATE-01: issue date not in the future (error); IP-DATE-02: due before issue (warning)."""
    findings = []
    if invoice.issue_date and invoice.issue_date > today + timedelta(days=FUTURE_ISSUE_DAYS):
        findings.append(
            Finding(
                "IP-DATE-01",
                f"issue date {invoice.issue_date.isoformat()} is in the future (today is "
                f"{today.isoformat()})",
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
    _line_arithmetic,
)


def check_invoice(invoice: Invoice, *, today: date | None = None) -> list[Finding]:
    """Run every rule over one invoice; an empty list means the invoice passed."""
    findings = _mandatory(invoice)
    for check in _ARITHMETIC:
        findings.extend(check(invoice))
    findings.extend(_dates(invoice, today or date.today()))
    return findings


def _normalized_number(number: str) -> str:
    return "".join(number.split()).casefold()


def duplicate_number_finding(
    number: str | None, seller: str | None, existing_numbers: Iterable[str]
) -> Finding | None:
    """IP-DUP-01: the seller already sent an invoice with this number.

    `existing_numbers` are the invoice numbers already recorded for the same seller (the caller
    selects them in SQL). Numbers compare without whitespace and case, because suppliers re-send
    the same invoice typed slightly differently.
    """
    if not number:
        return None
    wanted = _normalized_number(number)
    for existing in existing_numbers:
        if existing and _normalized_number(existing) == wanted:
            return Finding(
                "IP-DUP-01",
                f"invoice number {number} from {seller or 'this seller'} was already received",
            )
    return None
