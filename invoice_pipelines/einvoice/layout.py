"""The human-readable text of an invoice (DIN 5008-like letter layout), for text PDFs and scans.

Lines use the tab-cell convention of textpdf.py: the first cell at the left margin, further cells
right-aligned in columns. Labels are the ones German invoices use ("Rechnungsnummer",
"Nettobetrag", "USt. 19 %", "Bruttobetrag"), so what we print is what our own text extraction
(intake/domain/formats/text/) and an accountant expect to read.
"""

from __future__ import annotations

import textwrap
from datetime import date
from decimal import Decimal
from typing import Literal

from invoice_pipelines.core.invoice import Address, Invoice
from invoice_pipelines.core.money import CENT, ZERO, round_cents
from invoice_pipelines.core.skonto import written_date

Language = Literal["de", "en"]

# Longest item text in the line table before it wraps: the numeric columns start about half way
# across the page and Helvetica 10 pt averages about 5 pt per character.
DESCRIPTION_WIDTH = 44
# characters of a full-width text line (payment terms); the page holds about 95 at our font size
TEXT_WIDTH = 80

_LABELS: dict[str, dict[str, str]] = {
    "de": {
        "invoice": "Rechnung",
        # a seller's correction is a "Rechnungskorrektur": in § 14(2) UStG a "Gutschrift" is an
        # invoice the buyer issues (self-billing), which a tax advisor would not accept here
        "credit_note": "Rechnungskorrektur",
        "credit_number": "Belegnummer",
        "credit_date": "Belegdatum",
        "number": "Rechnungsnummer",
        "issue_date": "Rechnungsdatum",
        "due_date": "Fällig am",
        "service_date": "Leistungsdatum",
        "customer_vat": "Ihre USt-IdNr.",
        "position": "Pos.",
        "description": "Bezeichnung",
        "quantity": "Menge",
        "unit_price": "Einzelpreis",
        "vat": "USt.",
        "amount": "Betrag",
        "net": "Nettobetrag",
        "vat_line": "USt.",
        "gross": "Bruttobetrag",
        "prepaid": "Bereits gezahlt",
        "due_amount": "Zahlbetrag",
        "payment": "Bitte überweisen Sie den Betrag unter Angabe der Rechnungsnummer auf:",
        "pay_by": "Zahlbar bis",
        "vat_id": "USt-IdNr.",
        "allowance": "Nachlass",
        "charge": "Zuschlag",
    },
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "credit_number": "Credit note number",
        "credit_date": "Credit note date",
        "number": "Invoice number",
        "issue_date": "Invoice date",
        "due_date": "Due date",
        "service_date": "Delivery date",
        "customer_vat": "Your VAT ID",
        "position": "No.",
        "description": "Description",
        "quantity": "Qty",
        "unit_price": "Unit price",
        "vat": "VAT",
        "amount": "Amount",
        "net": "Net amount",
        "vat_line": "VAT",
        "gross": "Total amount",
        "prepaid": "Already paid",
        "due_amount": "Amount due",
        "payment": "Please transfer the amount quoting the invoice number to:",
        "pay_by": "Payable by",
        "vat_id": "VAT ID",
        "allowance": "Allowance",
        "charge": "Charge",
    },
}

# UN/ECE Rec 20/21 unit codes as an invoice prints them.
_UNITS: dict[str, dict[str, str]] = {
    "de": {
        "C62": "Stk",
        "H87": "Stk",
        "XPP": "Stk",
        "HUR": "Std",
        "DAY": "Tag",
        "MON": "Monat",
        "ANN": "Jahr",
        "KGM": "kg",
        "TNE": "t",
        "MTR": "m",
        "KMT": "km",
        "LTR": "l",
        "LS": "pausch.",
        "XPK": "Pck",
        "XPX": "Pal",
        "E48": "Leist.",
    },
    "en": {
        "C62": "pc",
        "H87": "pc",
        "XPP": "pc",
        "HUR": "h",
        "DAY": "day",
        "MON": "month",
        "ANN": "year",
        "KGM": "kg",
        "TNE": "t",
        "MTR": "m",
        "KMT": "km",
        "LTR": "l",
        "LS": "lump sum",
        "XPK": "pack",
        "XPX": "pallet",
        "E48": "service",
    },
}


def format_money(value: Decimal, language: Language = "de") -> str:
    """1234.5 -> "1.234,50" (de) or "1,234.50" (en); rounded half-up to cents for display only."""
    english = format(round_cents(value), ",.2f")
    if language == "en":
        return english
    return english.replace(",", "_").replace(".", ",").replace("_", ".")


def format_quantity(value: Decimal, language: Language = "de") -> str:
    """Quantities and rates without needless zeros: 10.000 -> "10", 2.50 -> "2,5" (de)."""
    whole = value == value.to_integral_value()
    text = format(value.quantize(Decimal(1)) if whole else value.normalize(), "f")
    return text.replace(".", ",") if language == "de" else text


def format_rate(value: Decimal | None, language: Language = "de") -> str:
    if value is None:
        return ""
    return f"{format_quantity(value, language)} %"


def format_date(value: date, language: Language = "de") -> str:
    """A date as a document in `language` writes it, the seller's country aside
    (core/skonto.written_date: 23.11.2026 in German, ISO otherwise)."""
    return written_date(value, language)


def format_iban(iban: str) -> str:
    """Groups of four, the way IBANs are printed."""
    compact = iban.replace(" ", "")
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _address_lines(name: str | None, address: Address | None) -> list[str]:
    lines = [name or ""]
    if address:
        if address.line_one:
            lines.append(address.line_one)
        place = " ".join(p for p in (address.postcode, address.city) if p)
        if address.country_code and address.country_code != "DE":
            place = f"{address.country_code}-{place}" if place else address.country_code
        if place:
            lines.append(place)
    return lines


def render_invoice_text(
    invoice: Invoice,
    *,
    language: Language = "de",
    payment_terms: str | None = None,
    service_date: date | None = None,
) -> list[str]:
    """The printed invoice: sender line, addresses, header data, line table, totals, payment.

    Amounts come from the invoice as stated (line net, VAT breakdown, totals); nothing is
    recomputed, so the print shows exactly what the structured data says.
    """
    return _letter(
        invoice,
        language=language,
        payment_terms=payment_terms,
        service_date=service_date,
        plain=False,
        country=None,
        seller_tax_number=None,
    )


def _letter(
    invoice: Invoice,
    *,
    language: Language,
    payment_terms: str | None,
    service_date: date | None,
    plain: bool,
    country: str | None,
    seller_tax_number: str | None,
) -> list[str]:
    """The letter both kinds of invoice print; `plain` names the tax and writes dates and
    addresses the way the seller's `country` does, and leaves out what only an e-invoice says."""
    if language not in _LABELS:
        raise ValueError(f"language must be one of {sorted(_LABELS)}, not {language!r}")
    label, words, units = _LABELS[language], _PLAIN_LABELS[language], _UNITS[language]
    currency = invoice.currency or "EUR"
    tax_name = _TAX_NAMES.get(country or "", label["vat_line"]) if plain else label["vat_line"]

    def money(value: Decimal | None) -> str:
        return f"{format_money(value if value is not None else ZERO, language)} {currency}"

    # dates as the seller writes them (11/23/2026 for a US seller), on either kind of invoice: the
    # discount sentence in the payment terms writes its last day by the seller's country as well
    seller_country = country if plain else invoice.seller_country

    def day(value: date) -> str:
        return plain_date(value, language, seller_country)

    def address(name: str | None, where: Address | None) -> list[str]:
        return _plain_address_lines(name, where, country) if plain else _address_lines(name, where)

    seller = address(invoice.seller_name, invoice.seller_address)
    # DIN 5008 return-address line above the recipient: it names the sender of the letter.
    lines = [" · ".join(part for part in seller if part), ""]
    lines += address(invoice.buyer_name, invoice.buyer_address)
    # The buyer's VAT id must be printed for reverse charge and intra-EU supplies; on ordinary
    # invoices a second VAT id only makes it harder to tell which one is the seller's.
    if (
        not plain
        and invoice.buyer_vat_id
        and any(v.category not in (None, "S") for v in invoice.vat_breakdown)
    ):
        lines.append(f"{label['customer_vat']}: {invoice.buyer_vat_id}")
    credit = invoice.type_code == "381"
    lines += ["", "", label["credit_note" if credit else "invoice"], ""]
    lines.append(f"{label['credit_number' if credit else 'number']}: {invoice.number or ''}")
    if invoice.issue_date:
        lines.append(
            f"{label['credit_date' if credit else 'issue_date']}: {day(invoice.issue_date)}"
        )
    if service_date:
        lines.append(f"{label['service_date']}: {day(service_date)}")
    # a credit note asks for no payment: no date to pay by
    if invoice.due_date and not credit:
        lines.append(f"{label['due_date']}: {day(invoice.due_date)}")
    lines += ["", ""]

    tax_column = words["tax"] if tax_name != label["vat_line"] else label["vat"]
    lines.append(
        f"{label['position']}  {label['description']}\t{label['quantity']}\t"
        f"{label['unit_price']}\t{tax_column}\t{label['amount']}"
    )
    for index, line in enumerate(invoice.lines, start=1):
        text = " ".join(p for p in (line.description, line.item_description) if p) or "-"
        wrapped = textwrap.wrap(text, DESCRIPTION_WIDTH) or ["-"]
        quantity = ""
        if line.quantity is not None:
            unit = units.get(line.unit_code or "", line.unit_code or "")
            quantity = f"{format_quantity(line.quantity, language)} {unit}".strip()
        price = "" if line.unit_price is None else format_money(line.unit_price, language)
        if line.unit_price is not None and line.unit_price != line.unit_price.quantize(CENT):
            price = format_quantity(line.unit_price, language)  # 4-decimal prices stay exact
        net = "" if line.net_amount is None else format_money(line.net_amount, language)
        position = f"{line.line_id or index}"
        lines.append(
            f"{position:<4} {wrapped[0]}\t{quantity}\t{price}\t"
            f"{format_rate(line.vat_rate, language)}\t{net}"
        )
        lines += [f"     {more}" for more in wrapped[1:]]
    lines.append("")

    for ac in invoice.allowances_charges:
        name = ac.reason or label["charge" if ac.is_charge else "allowance"]
        sign = "" if ac.is_charge else "-"
        amount = ac.amount if ac.amount is not None else ZERO
        lines.append(f"\t{name}\t{sign}{money(amount)}")
    lines.append(f"\t{words['net'] if plain else label['net']}\t{money(invoice.net_total)}")
    for vat in invoice.vat_breakdown:
        # a plain invoice's non-taxable line is not a "Sales tax 0 %" total
        if plain and not vat.rate and not vat.amount:
            continue
        lines.append(f"\t{tax_name} {format_rate(vat.rate, language)}\t{money(vat.amount)}")
    lines.append(f"\t{label['gross']}\t{money(invoice.gross_total)}")
    if invoice.prepaid:
        lines.append(f"\t{label['prepaid']}\t{money(invoice.prepaid)}")
    if invoice.amount_due is not None and invoice.amount_due != invoice.gross_total:
        lines.append(f"\t{label['due_amount']}\t{money(invoice.amount_due)}")
    lines.append("")
    # why a rate is 0 % (reverse charge, intra-EU supply, export, exemption) must be on the print
    for reason in dict.fromkeys(
        v.exemption_reason for v in invoice.vat_breakdown if v.exemption_reason
    ):
        lines.append(reason)
    if payment_terms:
        # the terms may carry the § 286(3) BGB sentence: wrapped like a paragraph of the letter
        lines += textwrap.wrap(payment_terms, TEXT_WIDTH)

    # a credit note is not paid by the customer: no request to transfer, no date to pay by
    if invoice.iban and invoice.type_code != "381":
        lines += ["", label["payment"], f"IBAN: {format_iban(invoice.iban)}"]
        if invoice.due_date:
            lines.append(f"{label['pay_by']} {day(invoice.due_date)}")
    footer = [invoice.seller_name or ""]
    if invoice.seller_address:
        footer += address(None, invoice.seller_address)[1:]
    if invoice.seller_vat_id:
        footer.append(f"{label['vat_id']}: {invoice.seller_vat_id}")
    if seller_tax_number:
        footer.append(f"{words['tax_number']}: {seller_tax_number}")
    lines += ["", "", " · ".join(part for part in footer if part)]
    return lines


# --- the plain PDF invoice (no e-invoice inside: documents/domain/formats.py decides when) ---------------

# What the tax is called where the seller is; everywhere else the VAT labels above. The rate and
# amount are the invoice's own (US sales tax is stored as a standard-rated line tax).
_TAX_NAMES: dict[str, str] = {"US": "Sales tax"}


def taxed_without_vat(country: str | None) -> bool:
    """Whether a seller in `country` charges a tax of its own instead of VAT (US sales tax): its
    invoice is printed in that tax's words (`render_plain_text`), not as a VAT invoice."""
    return (country or "").upper() in _TAX_NAMES


_PLAIN_LABELS: dict[str, dict[str, str]] = {
    "de": {"net": "Zwischensumme", "tax_number": "Steuernummer", "tax": "Steuer"},
    "en": {"net": "Subtotal", "tax_number": "Tax number", "tax": "Tax"},
}


def plain_date(value: date, language: Language, country: str | None) -> str:
    """Dates as the seller's country writes them: 11/23/2026 (US), 23.11.2026 (de), ISO else
    (core/skonto.written_date: the discount sentence on the same page writes its day alike)."""
    return written_date(value, language, country)


def _plain_address_lines(name: str | None, address: Address | None, home: str | None) -> list[str]:
    """Street, then "postcode city" (or "city, postcode" in the US); the country code only when
    it is not the seller's own."""
    lines = [name or ""]
    if address:
        if address.line_one:
            lines.append(address.line_one)
        if address.country_code == "US":
            place = ", ".join(p for p in (address.city, address.postcode) if p)
        else:
            place = " ".join(p for p in (address.postcode, address.city) if p)
        if place:
            lines.append(place)
        if address.country_code and address.country_code != (home or "DE"):
            lines.append(address.country_code)
    return lines


def render_plain_text(
    invoice: Invoice,
    *,
    language: Language = "en",
    seller_country: str | None = None,
    seller_tax_number: str | None = None,
    payment_terms: str | None = None,
    service_date: date | None = None,
) -> list[str]:
    """The printed plain invoice: the same letter as `render_invoice_text`, in the seller's
    tax vocabulary ("Sales tax 8.88 %" for a US seller, USt./VAT otherwise) and date style.

    Amounts are the invoice's as stated, nothing is recomputed; a tax of 0 % with no amount is
    shown on its lines only (a non-taxable delivery charge is not a "Sales tax 0 %" total).
    """
    return _letter(
        invoice,
        language=language,
        payment_terms=payment_terms,
        service_date=service_date,
        plain=True,
        country=(seller_country or "").upper() or None,
        seller_tax_number=seller_tax_number,
    )
