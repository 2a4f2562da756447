"""An incoming invoice as the Bill (or, for a credit note, the VendorCredit) QBO gets, field by
field, or the one sentence that says why it waits. No QBO calls: the vendor, the account and the
term are found before (vendors.py, payables_settings.py, bills.py).

- VendorRef: the supplier's vendor. Its currency must be the invoice's (QBO books a bill in its
  vendor's currency).
- DocNumber: the supplier's invoice number; QBO takes 21 characters, so a longer one keeps its
  last 21 (where numbers differ) and the private note has it whole.
- TxnDate: the issue date (none: the bill waits, QBO would date it today); DueDate: the due date
  when the document states one, else the term's.
- CurrencyRef and ExchangeRate: only when the invoice's currency is not the company's home
  currency, with the organization's rate for the bill's month (payables_settings.py).
- Lines: one AccountBasedExpenseLineDetail per invoice line (its net amount and description)
  when the lines add up to the net total; else one per VAT breakdown entry (its basis); else one
  of the net total. Each on the expense account set for the supplier (or the organization's
  default), with the tax code the connection maps the line's VAT rate to (`tax_codes`, as the
  sales push uses; a connection without any sends none).
- TxnTaxDetail.TotalTax: the invoice's VAT as stated, so QBO's TotalAmt is its gross total.
- SalesTermRef: the supplier's early-payment discount (incoming_discounts) as a QBO Term, "2% 10,
  Net 30": the step worth most (then the shortest), due days from the issue to the due date. A
  step with a base amount or a start day of its own has no Term that says it: none is sent.
- PrivateNote: "invoice-pipelines incoming invoice <id>, <supplier> <number>": how a lost answer's
  bill is recognized.
A credit note (type code 381) is a VendorCredit with the same vendor, lines, tax and note, and no
due date or term.

Lines per bill: Intuit documents no limit (the reference, section 5, and its help pages as we
searched them); ours is MAX_BILL_LINES, a stated choice (docs/quickbooks.md, "Caps"). A document
whose bill would have more waits with a finding (`over_line_cap`), never booked in part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from invoice_pipelines.core.money import CENT, ZERO, plain_string
from invoice_pipelines.quickbooks.domain.payables import (
    BillDraft,
    ExpenseDraft,
    ExpenseLine,
    TermDraft,
    VendorCreditDraft,
)
from invoice_pipelines.quickbooks.domain.payables_settings import PayablesSettings
from invoice_pipelines.quickbooks.domain.sync.bill_queue import Candidate
from invoice_pipelines.quickbooks.domain.sync.common import fingerprint

DOC_NUMBER_MAX = 21
PRIVATE_NOTE_MAX = 4000
DESCRIPTION_MAX = 4000
TERM_NAME_MAX = 31
CREDIT_NOTE = "381"
# lines one bill may have: our choice where Intuit is silent (docs/quickbooks.md, "Caps"). A
# thousand lines are about 300 KB of JSON in one request and more than a person checks on a bill
# in QuickBooks; a longer invoice is a decision for a person (book it summarised by hand, or have
# it split), not a 10,000-line bill whose readable PDF no writer makes
MAX_BILL_LINES = 1000


class Waits(Exception):
    """The document cannot be a bill yet: `code` (bill_queue.WAITING) and one sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BillBody:
    entity: str  # Bill | VendorCredit
    draft: ExpenseDraft
    fingerprint: str


def entity_of(document: dict) -> str:
    return "VendorCredit" if str(document.get("type_code") or "") == CREDIT_NOTE else "Bill"


def marker(document_id: int) -> str:
    """What the private note of a document's bill says first (a lost answer's bill is found by it)."""
    return f"invoice-pipelines incoming invoice {document_id},"


def doc_number(number: str | None) -> str | None:
    text = str(number or "").strip()
    return text[-DOC_NUMBER_MAX:] if text else None


def _rate_key(rate) -> str:
    return format(Decimal(rate).quantize(CENT), "f")


def _money(value) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(CENT)


def term_of(candidate: Candidate) -> TermDraft | None:
    """The supplier's discount as a QBO Term (see the module docstring), or None."""
    document = candidate.document
    steps = [
        d
        for d in candidate.discounts
        if d["base_amount"] is None and d["start_date"] is None and d["days"] > 0
    ]
    if not steps or document.get("issue_date") is None:
        return None
    step = max(steps, key=lambda d: (Decimal(d["percent"]), -d["days"]))
    due = document.get("due_date")
    due_days = (due - document["issue_date"]).days if due else max(d["days"] for d in steps)
    due_days = max(due_days, step["days"])
    percent = Decimal(step["percent"]).normalize()
    name = f"{plain_string(percent)}% {step['days']}, Net {due_days}"
    if len(name) > TERM_NAME_MAX:
        return None
    return TermDraft(
        name=name, due_days=due_days, discount_percent=percent, discount_days=step["days"]
    )


def expense_items(candidate: Candidate) -> list[tuple[Decimal, str, object]]:
    """(amount, description, VAT rate) of each line the bill gets (the module docstring)."""
    document = candidate.document
    net_total = _money(document.get("net_total"))
    if net_total is None:
        raise Waits("validation", "the document has no net total to book")
    supplier = document.get("seller_name") or "supplier"
    items: list[tuple[Decimal, str, object]] = []  # amount, description, VAT rate
    nets = [_money(line["net_amount"]) for line in candidate.lines]
    if candidate.lines and None not in nets and sum(nets, ZERO) == net_total:
        for line, net in zip(candidate.lines, nets, strict=True):
            text = str(line.get("description") or "").strip() or f"line {line['line_no']}"
            items.append((net, text, line["vat_rate"]))
    else:
        bases = [_money(tax["basis"]) for tax in candidate.taxes]
        if candidate.taxes and None not in bases and sum(bases, ZERO) == net_total:
            for tax, basis in zip(candidate.taxes, bases, strict=True):
                rate = tax["vat_rate"]
                label = f"VAT {_rate_key(rate)} %" if rate is not None else "VAT"
                items.append((basis, f"{supplier} {candidate.number}, {label}", rate))
        else:
            rates = {t["vat_rate"] for t in candidate.taxes}
            rate = rates.pop() if len(rates) == 1 else None
            items.append((net_total, f"{supplier} {candidate.number}", rate))
    return items


def over_line_cap(candidate: Candidate, cap: int = MAX_BILL_LINES) -> str | None:
    """Why the document's bill would have more lines than `cap` (what a person does about it),
    or None. A document that cannot be mapped at all is said by `build_bill` instead."""
    try:
        count = len(expense_items(candidate))
    except Waits:
        return None
    if count <= cap:
        return None
    return (
        f"the invoice has {count:,} lines; a QuickBooks bill takes at most {cap:,} here "
        '(docs/quickbooks.md, "Caps"), and it is never booked in part: book it in QuickBooks by '
        "hand, summarised (one line per VAT rate, say) with the original attached, or ask the "
        "supplier for invoices of fewer lines"
    )


def _lines(candidate: Candidate, account_id: str, settings: PayablesSettings) -> list[ExpenseLine]:
    lines = []
    for amount, text, rate in expense_items(candidate):
        code = None
        if settings.tax_codes:
            if rate is None:
                raise Waits(
                    "validation",
                    "the document states no VAT rate for an amount, so no QuickBooks tax code "
                    "can be chosen",
                )
            code = settings.tax_codes.get(_rate_key(rate))
            if code is None:
                raise Waits(
                    "validation",
                    f"no QuickBooks tax code is mapped for VAT {_rate_key(rate)} % (the "
                    "connection's tax_codes)",
                )
        lines.append(
            ExpenseLine(
                amount,
                account_id=account_id,
                description=text[:DESCRIPTION_MAX],
                tax_code_id=code,
            )
        )
    return lines


def build_bill(
    candidate: Candidate,
    vendor: dict,
    settings: PayablesSettings,
    home: str | None,
    term_id: str | None,
) -> BillBody:
    """The body QBO gets for the document (see the module docstring); Waits when it cannot."""
    document = candidate.document
    issue = document.get("issue_date")
    if issue is None:
        raise Waits("validation", "the document has no issue date (QuickBooks would date it today)")
    currency = document.get("currency") or home
    vendor_currency = vendor.get("currency") or home
    if currency and vendor_currency and currency != vendor_currency:
        raise Waits(
            "vendor",
            f"the QuickBooks vendor {vendor['display_name']!r} is in {vendor_currency}, the "
            f"invoice in {currency}: QuickBooks books a bill in its vendor's currency",
        )
    rate = None
    if currency and home and currency != home:
        rate = settings.rate_for(currency, issue)
        if rate is None:
            raise Waits(
                "validation",
                f"no exchange rate {currency} -> {home} for {issue:%Y-%m} (invoice-pipelines "
                f"qbo-payables --exchange-rate {currency}=RATE)",
            )
    account = settings.account_for(
        vendor["qbo_id"], document.get("seller_vat_id"), vendor_name(candidate)
    )
    if account is None:
        raise Waits(
            "account",
            f"no QuickBooks expense account is set for supplier {vendor_name(candidate)!r} and "
            "the organization has no default (invoice-pipelines qbo-payables --expense-account ID)",
        )
    tax = _money(document.get("tax_total")) or ZERO
    note = f"{marker(candidate.document_id)} {vendor_name(candidate)} {candidate.number}"
    common = dict(
        vendor_id=vendor["qbo_id"],
        lines=tuple(_lines(candidate, account, settings)),
        doc_number=doc_number(document.get("invoice_number")),
        txn_date=issue,
        currency=currency if rate is not None else None,
        exchange_rate=rate,
        total_tax=tax,
        private_note=note[:PRIVATE_NOTE_MAX],
    )
    entity = entity_of(document)
    if entity == "VendorCredit":
        draft: ExpenseDraft = VendorCreditDraft(**common)
    else:
        due: date | None = document.get("due_date")
        draft = BillDraft(**common, due_date=due, term_id=term_id)
    return BillBody(entity, draft, fingerprint(draft.to_qbo()))


def vendor_name(candidate: Candidate) -> str:
    return str(candidate.document.get("seller_name") or "").strip()
