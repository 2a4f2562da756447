"""OASIS UBL 2.1 Invoice and CreditNote (EN 16931, XRechnung, Peppol BIS) to the normalized invoice."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from invoice_pipelines.core.bank_accounts import payment_accounts
from invoice_pipelines.core.invoice import (
    Address,
    AllowanceCharge,
    Invoice,
    InvoiceLine,
    PaymentAccount,
    VatBreakdown,
    allowance_and_charge_amounts,
    pick_tax_total,
)
from invoice_pipelines.core.rules import Finding
from invoice_pipelines.core.skonto import read_terms
from invoice_pipelines.einvoice.readers.xmlsafe import ValueReader

UBL_INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDITNOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NAMESPACES = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}

# Document totals (BG-22) by Invoice field: element in LegalMonetaryTotal.
UBL_TOTALS = {
    "line_total": "cbc:LineExtensionAmount",
    "allowance_total": "cbc:AllowanceTotalAmount",
    "charge_total": "cbc:ChargeTotalAmount",
    "net_total": "cbc:TaxExclusiveAmount",
    "gross_total": "cbc:TaxInclusiveAmount",
    "prepaid": "cbc:PrepaidAmount",
    "rounding": "cbc:PayableRoundingAmount",
    "amount_due": "cbc:PayableAmount",
}


def _address(read: ValueReader, party: etree._Element | None) -> Address | None:
    node = read.element(party, "cac:PostalAddress")
    if node is None:
        return None
    return Address(
        line_one=read.text(node, "cbc:StreetName"),
        city=read.text(node, "cbc:CityName"),
        postcode=read.text(node, "cbc:PostalZone"),
        country_code=read.text(node, "cac:Country/cbc:IdentificationCode"),
    )


def _vat_id(read: ValueReader, party: etree._Element | None, vat: bool = True) -> str | None:
    """The party's VAT id (tax scheme VAT, BT-31), or with `vat` False its other tax
    registration, the tax number (BT-32)."""
    for scheme in read.elements(party, "cac:PartyTaxScheme"):
        if (read.text(scheme, "cac:TaxScheme/cbc:ID") == "VAT") is vat:
            return read.text(scheme, "cbc:CompanyID")
    return None


def _party_name(read: ValueReader, party: etree._Element | None) -> str | None:
    # BT-27/BT-44 is the legal registration name; the trading name is only a fallback.
    return read.text(party, "cac:PartyLegalEntity/cbc:RegistrationName") or read.text(
        party, "cac:PartyName/cbc:Name"
    )


def _allowances_charges(
    read: ValueReader, parent: etree._Element | None, where: str
) -> list[AllowanceCharge]:
    result = []
    for node in read.elements(parent, "cac:AllowanceCharge"):
        result.append(
            AllowanceCharge(
                is_charge=(read.text(node, "cbc:ChargeIndicator") or "").lower() == "true",
                amount=read.decimal(node, "cbc:Amount", f"{where} allowance/charge amount"),
                base_amount=read.decimal(node, "cbc:BaseAmount", f"{where} allowance/charge base"),
                percent=read.decimal(
                    node, "cbc:MultiplierFactorNumeric", f"{where} allowance/charge %"
                ),
                vat_category=read.text(node, "cac:TaxCategory/cbc:ID"),
                vat_rate=read.decimal(
                    node, "cac:TaxCategory/cbc:Percent", f"{where} allowance/charge VAT rate"
                ),
                reason=read.text(node, "cbc:AllowanceChargeReason"),
            )
        )
    return result


def _lines(read: ValueReader, root: etree._Element, credit_note: bool) -> tuple[InvoiceLine, ...]:
    line_tag, quantity_tag = (
        ("cac:CreditNoteLine", "cbc:CreditedQuantity")
        if credit_note
        else ("cac:InvoiceLine", "cbc:InvoicedQuantity")
    )
    lines = []
    for index, node in enumerate(read.elements(root, line_tag), start=1):
        line_id = read.text(node, "cbc:ID") or str(index)
        where = f"line {line_id}"
        quantity = read.element(node, quantity_tag)
        # Line allowances/charges are direct children; cac:Price/cac:AllowanceCharge is the
        # gross-to-net price discount (BT-147 amount, BT-148 gross price as its base amount),
        # already inside PriceAmount.
        allowances, charges = allowance_and_charge_amounts(_allowances_charges(read, node, where))
        price_discounts = _allowances_charges(read, read.element(node, "cac:Price"), where)
        gross_prices = [ac.base_amount for ac in price_discounts if ac.base_amount is not None]
        discounts = [ac.amount for ac in price_discounts if ac.amount is not None]
        lines.append(
            InvoiceLine(
                line_id=line_id,
                description=read.text(node, "cac:Item/cbc:Name"),
                item_description=read.text(node, "cac:Item/cbc:Description"),
                quantity=read.decimal_of(quantity, f"{where} quantity (BT-129)"),
                unit_code=None if quantity is None else quantity.get("unitCode"),
                unit_price=read.decimal(node, "cac:Price/cbc:PriceAmount", f"{where} net price"),
                price_base_quantity=read.decimal(
                    node, "cac:Price/cbc:BaseQuantity", f"{where} price base quantity (BT-149)"
                ),
                net_amount=read.decimal(
                    node, "cbc:LineExtensionAmount", f"{where} net amount (BT-131)"
                ),
                vat_category=read.text(node, "cac:Item/cac:ClassifiedTaxCategory/cbc:ID"),
                vat_rate=read.decimal(
                    node, "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", f"{where} VAT rate"
                ),
                allowances=allowances,
                charges=charges,
                gross_price=gross_prices[0] if gross_prices else None,
                price_discount=sum(discounts, Decimal(0)) if discounts else None,
                price_discount_percent=(
                    price_discounts[0].percent if len(price_discounts) == 1 else None
                ),
            )
        )
    return tuple(lines)


def parse_ubl(root: etree._Element) -> tuple[Invoice, list[Finding]]:
    """Map a UBL Invoice or CreditNote root element; findings name values that could not be read."""
    credit_note = etree.QName(root).namespace == UBL_CREDITNOTE_NS
    read = ValueReader(NAMESPACES)
    seller = read.element(root, "cac:AccountingSupplierParty/cac:Party")
    buyer = read.element(root, "cac:AccountingCustomerParty/cac:Party")
    totals = read.element(root, "cac:LegalMonetaryTotal")
    currency = read.text(root, "cbc:DocumentCurrencyCode")
    tax_currency = read.text(root, "cbc:TaxCurrencyCode")

    tax_entries = read.currency_amounts(
        read.elements(root, "cac:TaxTotal/cbc:TaxAmount"), "total VAT (BT-110)"
    )
    tax_total, tax_total_tax_currency = pick_tax_total(tax_entries, currency, tax_currency)

    vat_breakdown = tuple(
        VatBreakdown(
            category=read.text(sub, "cac:TaxCategory/cbc:ID"),
            rate=read.decimal(sub, "cac:TaxCategory/cbc:Percent", "VAT category rate (BT-119)"),
            basis=read.decimal(sub, "cbc:TaxableAmount", "VAT category taxable amount (BT-116)"),
            amount=read.decimal(sub, "cbc:TaxAmount", "VAT category tax amount (BT-117)"),
            exemption_reason=read.text(sub, "cac:TaxCategory/cbc:TaxExemptionReason"),
        )
        for sub in read.elements(root, "cac:TaxTotal/cac:TaxSubtotal")
    )

    means_code = None
    due_date = read.iso_date(root, "cbc:DueDate", "due date (BT-9)")
    for means in read.elements(root, "cac:PaymentMeans"):
        means_code = means_code or read.text(means, "cbc:PaymentMeansCode")
        # CreditNote (and pre-2.1 Invoice) carries BT-9 on the payment means.
        due_date = due_date or read.iso_date(means, "cbc:PaymentDueDate", "due date (BT-9)")

    accounts = _payment_accounts(read, root)
    # BT-20 with its lines kept: XRechnung's #SKONTO# lines are lines (core/skonto.py)
    notes = [
        note.text.strip("\r\n ")
        for note in read.elements(root, "cac:PaymentTerms/cbc:Note")
        if note.text and note.text.strip()
    ]
    payment_terms = "\n".join(notes) or None
    type_code = read.text(root, "cbc:CreditNoteTypeCode" if credit_note else "cbc:InvoiceTypeCode")
    invoice = Invoice(
        number=read.text(root, "cbc:ID"),
        type_code=type_code,
        issue_date=read.iso_date(root, "cbc:IssueDate", "issue date (BT-2)"),
        due_date=due_date,
        service_date=read.optional_date(
            root, "cac:Delivery/cbc:ActualDeliveryDate", "cac:InvoicePeriod/cbc:EndDate"
        ),
        currency=currency,
        tax_currency=tax_currency,
        guideline_id=read.text(root, "cbc:CustomizationID"),
        seller_name=_party_name(read, seller),
        seller_vat_id=_vat_id(read, seller),
        seller_tax_number=_vat_id(read, seller, vat=False),
        seller_email=read.text(seller, "cac:Contact/cbc:ElectronicMail")
        or read.email_address(seller, "cbc:EndpointID"),
        seller_address=_address(read, seller),
        buyer_name=_party_name(read, buyer),
        buyer_vat_id=_vat_id(read, buyer),
        buyer_address=_address(read, buyer),
        iban=accounts[0].iban if accounts else None,
        payment_accounts=accounts,
        payment_means_code=means_code,
        tax_total=tax_total,
        tax_total_tax_currency=tax_total_tax_currency,
        **read.totals(totals, UBL_TOTALS),
        tax_total_entries=tax_entries,
        lines=_lines(read, root, credit_note),
        vat_breakdown=vat_breakdown,
        allowances_charges=tuple(_allowances_charges(read, root, "document")),
        payment_terms=payment_terms,
        discount_terms=tuple(read_terms(payment_terms)),
        origin="xml",
    )
    return invoice, read.findings


def _payment_accounts(read: ValueReader, root: etree._Element) -> tuple[PaymentAccount, ...]:
    """Every payee account of every payment means (BG-17), in document order: BT-84 the account
    id, BT-86 the BIC as the branch's id (UBL 2.1, Peppol BIS 3) or, in UBL 2.0 documents, its
    financial institution's. Whatever the means' code says, a payee account named is one money
    may be sent to, so none is left out."""
    pairs = []
    for means in read.elements(root, "cac:PaymentMeans"):
        for account in read.elements(means, "cac:PayeeFinancialAccount"):
            branch = read.element(account, "cac:FinancialInstitutionBranch")
            bic = read.text(branch, "cbc:ID") or read.text(
                branch, "cac:FinancialInstitution/cbc:ID"
            )
            pairs.append((read.text(account, "cbc:ID"), bic))
    return payment_accounts(pairs)
