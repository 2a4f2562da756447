"""OASIS UBL 2.1 Invoice / CreditNote from the normalized invoice, for EN 16931, XRechnung and
Peppol BIS Billing 3.0 (the flavour is BT-24, `customization_id`).

Same content and the same checks as the CII writer (cii.py owns the shared parts). A type code
381 (credit note) becomes a UBL CreditNote, whose lines are CreditNoteLine/CreditedQuantity and
whose due date (BT-9) sits on the payment means, because UBL 2.1 CreditNote has no cbc:DueDate.

Peppol BIS (`PEPPOL_BIS_GUIDELINE`) adds to EN 16931 what OpenPEPPOL's rules require: the
business process (BT-23, R001), the seller's and the buyer's electronic address as a Peppol
participant id (`cbc:EndpointID` with its EAS scheme, R020/R010, CL008, the PEPPOL-COMMON
checksums), a buyer or order reference (R003) and, when seller and buyer are both in Germany, the
German rules (DE-R-*, XRechnung's terms). `check_writable` refuses a Peppol invoice that lacks
one, naming the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from lxml import etree

from invoice_pipelines.core.invoice import Address, Invoice, InvoiceLine
from invoice_pipelines.core.money import ZERO
from invoice_pipelines.einvoice.cii import (
    CATEGORIES_WITHOUT_RATE,
    DEFAULT_UNIT_CODE,
    EN16931_GUIDELINE,
    PEPPOL_BILLING_PROCESS,
    PEPPOL_BIS_GUIDELINE,
    XRECHNUNG_GUIDELINE,
    DocumentExtras,
    allowance_reason,
    check_writable,
    checked_extras,
    deliver_to,
    electronic_address,
    element_factory,
    exemption_reason,
    format_amount,
    format_number,
    is_peppol_bis,
    is_xrechnung,
    not_subject_to_vat,
    payment_means_code,
    payment_terms_text,
    seller_identifier,
    vat_total,
)

UBL_INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDITNOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CREDIT_NOTE_TYPE_CODES = frozenset({"381"})

__all__ = ["EN16931_GUIDELINE", "PEPPOL_BIS_GUIDELINE", "XRECHNUNG_GUIDELINE", "write_ubl"]

_el = element_factory({"cac": CAC_NS, "cbc": CBC_NS})


class _Writer:
    """Builds one document; holds the currency every amount element must name."""

    def __init__(self, invoice: Invoice, extras: DocumentExtras) -> None:
        self.invoice = invoice
        self.extras = extras
        self.currency = invoice.currency or ""

    def amount(self, parent: etree._Element, name: str, value: Decimal | None) -> None:
        _el(
            parent,
            name,
            format_amount(value if value is not None else ZERO),
            currencyID=self.currency,
        )

    def tax_category(
        self, parent: etree._Element, name: str, category: str | None, rate: Decimal | None,
        reason: str | None = None, *, breakdown: bool = False,
    ) -> None:  # fmt: skip
        node = _el(parent, name)
        _el(node, "cbc:ID", category)
        # the VAT breakdown always states its rate, 0 for category O (BR-DE-14)
        if category not in CATEGORIES_WITHOUT_RATE or breakdown:
            _el(node, "cbc:Percent", format_number(rate if rate is not None else ZERO))
        if reason:
            _el(node, "cbc:TaxExemptionReason", reason)
        _el(_el(node, "cac:TaxScheme"), "cbc:ID", "VAT")

    def address(
        self, party: etree._Element, address: Address, tag: str = "cac:PostalAddress"
    ) -> None:
        node = _el(party, tag)
        if address.line_one:
            _el(node, "cbc:StreetName", address.line_one)
        if address.city:
            _el(node, "cbc:CityName", address.city)
        if address.postcode:
            _el(node, "cbc:PostalZone", address.postcode)
        _el(_el(node, "cac:Country"), "cbc:IdentificationCode", address.country_code)

    def party(
        self,
        root: etree._Element,
        wrapper: str,
        *,
        name: str | None,
        address: Address,
        vat_id: str | None,
        endpoint: tuple[str, str] | None,
        tax_number: str | None = None,
        contact: tuple[str | None, str | None, str | None] | None = None,
        identifier: str | None = None,
    ) -> None:
        party = _el(_el(root, wrapper), "cac:Party")
        if endpoint is not None:
            scheme, value = endpoint
            _el(party, "cbc:EndpointID", value, schemeID=scheme)
        if identifier:
            _el(_el(party, "cac:PartyIdentification"), "cbc:ID", identifier)
        self.address(party, address)
        if vat_id:
            scheme = _el(party, "cac:PartyTaxScheme")
            _el(scheme, "cbc:CompanyID", vat_id)
            _el(_el(scheme, "cac:TaxScheme"), "cbc:ID", "VAT")
        if tax_number:
            # BT-32: a tax registration other than VAT is a PartyTaxScheme whose scheme is not VAT.
            scheme = _el(party, "cac:PartyTaxScheme")
            _el(scheme, "cbc:CompanyID", tax_number)
            _el(_el(scheme, "cac:TaxScheme"), "cbc:ID", "FC")
        _el(_el(party, "cac:PartyLegalEntity"), "cbc:RegistrationName", name)
        if contact and any(contact):
            node = _el(party, "cac:Contact")
            for tag, value in zip(
                ("cbc:Name", "cbc:Telephone", "cbc:ElectronicMail"), contact, strict=True
            ):
                if value:
                    _el(node, tag, value)

    def line(self, root: etree._Element, line: InvoiceLine, index: int, credit_note: bool) -> None:
        node = _el(root, "cac:CreditNoteLine" if credit_note else "cac:InvoiceLine")
        _el(node, "cbc:ID", line.line_id or str(index))
        unit = line.unit_code or DEFAULT_UNIT_CODE
        quantity_tag = "cbc:CreditedQuantity" if credit_note else "cbc:InvoicedQuantity"
        _el(node, quantity_tag, format_number(line.quantity), unitCode=unit)
        self.amount(node, "cbc:LineExtensionAmount", line.net_amount)
        for amounts, is_charge in ((line.allowances, False), (line.charges, True)):
            for value in amounts:
                ac = _el(node, "cac:AllowanceCharge")
                _el(ac, "cbc:ChargeIndicator", "true" if is_charge else "false")
                # BR-41/BR-42: a reason is required; the model keeps only the amount.
                _el(ac, "cbc:AllowanceChargeReason", "Zuschlag" if is_charge else "Rabatt")
                self.amount(ac, "cbc:Amount", value)
        item = _el(node, "cac:Item")
        if line.item_description:
            _el(item, "cbc:Description", line.item_description)
        _el(item, "cbc:Name", line.description)
        self.tax_category(item, "cac:ClassifiedTaxCategory", line.vat_category, line.vat_rate)
        price = _el(node, "cac:Price")
        _el(price, "cbc:PriceAmount", format_number(line.unit_price), currencyID=self.currency)
        if line.price_base_quantity is not None:
            _el(price, "cbc:BaseQuantity", format_number(line.price_base_quantity), unitCode=unit)

    def write(self, customization_id: str) -> bytes:
        invoice, extras = self.invoice, self.extras
        credit_note = (invoice.type_code or "380") in CREDIT_NOTE_TYPE_CODES
        namespace = UBL_CREDITNOTE_NS if credit_note else UBL_INVOICE_NS
        root = etree.Element(
            f"{{{namespace}}}{'CreditNote' if credit_note else 'Invoice'}",
            nsmap={None: namespace, "cac": CAC_NS, "cbc": CBC_NS},
        )
        _el(root, "cbc:CustomizationID", customization_id)
        peppol = is_peppol_bis(customization_id)
        process = extras.get("business_process") or (
            PEPPOL_BILLING_PROCESS if is_xrechnung(customization_id) or peppol else None
        )
        if process:
            _el(root, "cbc:ProfileID", process)
        _el(root, "cbc:ID", invoice.number)
        _el(root, "cbc:IssueDate", invoice.issue_date.isoformat())
        if invoice.due_date and not credit_note:
            _el(root, "cbc:DueDate", invoice.due_date.isoformat())
        _el(root, "cbc:CreditNoteTypeCode" if credit_note else "cbc:InvoiceTypeCode",
            invoice.type_code or "380")  # fmt: skip
        if extras.get("note"):
            _el(root, "cbc:Note", extras["note"])
        _el(root, "cbc:DocumentCurrencyCode", invoice.currency)
        separate_tax_currency = bool(
            invoice.tax_currency and invoice.tax_currency != invoice.currency
        )
        if separate_tax_currency:
            _el(root, "cbc:TaxCurrencyCode", invoice.tax_currency)
        if extras.get("buyer_reference"):
            _el(root, "cbc:BuyerReference", extras["buyer_reference"])
        if extras.get("order_reference"):
            _el(_el(root, "cac:OrderReference"), "cbc:ID", extras["order_reference"])
        if extras.get("preceding_invoice_number"):
            # BG-3: the schema places BillingReference right after OrderReference
            reference = _el(_el(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
            _el(reference, "cbc:ID", extras["preceding_invoice_number"])
            if extras.get("preceding_invoice_date"):
                _el(reference, "cbc:IssueDate", extras["preceding_invoice_date"].isoformat())

        self.party(
            root,
            "cac:AccountingSupplierParty",
            name=invoice.seller_name,
            address=invoice.seller_address,
            # BR-O-02/BR-O-04: no VAT ids on a supply not subject to VAT
            vat_id=None if not_subject_to_vat(invoice) else invoice.seller_vat_id,
            endpoint=electronic_address(extras, "seller", peppol=peppol),
            tax_number=extras.get("seller_tax_number"),
            identifier=seller_identifier(invoice, extras),
            contact=(
                extras.get("seller_contact_name"),
                extras.get("seller_contact_phone"),
                extras.get("seller_contact_email"),
            ),
        )
        self.party(
            root,
            "cac:AccountingCustomerParty",
            name=invoice.buyer_name,
            address=invoice.buyer_address,
            vat_id=None if not_subject_to_vat(invoice) else invoice.buyer_vat_id,
            endpoint=electronic_address(extras, "buyer", peppol=peppol),
        )
        ship_to = deliver_to(invoice, extras)
        if extras.get("delivery_date") or ship_to is not None:
            delivery = _el(root, "cac:Delivery")
            if extras.get("delivery_date"):
                _el(delivery, "cbc:ActualDeliveryDate", extras["delivery_date"].isoformat())
            if ship_to is not None:
                self.address(_el(delivery, "cac:DeliveryLocation"), ship_to, "cac:Address")

        code = payment_means_code(invoice)
        if code or (credit_note and invoice.due_date):
            means = _el(root, "cac:PaymentMeans")
            _el(means, "cbc:PaymentMeansCode", code or "1")  # 1 = "instrument not defined"
            if credit_note and invoice.due_date:
                _el(means, "cbc:PaymentDueDate", invoice.due_date.isoformat())
            if invoice.iban:
                # BT-83 remittance information: what the buyer's bank transfer should quote.
                _el(means, "cbc:PaymentID", invoice.number)
                account = _el(means, "cac:PayeeFinancialAccount")
                _el(account, "cbc:ID", invoice.iban.replace(" ", ""))
                if extras.get("payee_account_name"):
                    _el(account, "cbc:Name", extras["payee_account_name"])
        payment_terms = payment_terms_text(invoice, extras)
        if payment_terms:
            _el(_el(root, "cac:PaymentTerms"), "cbc:Note", payment_terms)

        for ac in invoice.allowances_charges:
            node = _el(root, "cac:AllowanceCharge")
            _el(node, "cbc:ChargeIndicator", "true" if ac.is_charge else "false")
            _el(node, "cbc:AllowanceChargeReason", allowance_reason(ac))
            if ac.percent is not None:
                _el(node, "cbc:MultiplierFactorNumeric", format_number(ac.percent))
            self.amount(node, "cbc:Amount", ac.amount)
            if ac.base_amount is not None:
                self.amount(node, "cbc:BaseAmount", ac.base_amount)
            self.tax_category(node, "cac:TaxCategory", ac.vat_category, ac.vat_rate)

        tax_total = _el(root, "cac:TaxTotal")
        self.amount(tax_total, "cbc:TaxAmount", vat_total(invoice))
        for vat in invoice.vat_breakdown:
            subtotal = _el(tax_total, "cac:TaxSubtotal")
            self.amount(subtotal, "cbc:TaxableAmount", vat.basis)
            self.amount(subtotal, "cbc:TaxAmount", vat.amount)
            self.tax_category(
                subtotal,
                "cac:TaxCategory",
                vat.category,
                vat.rate,
                exemption_reason(vat.category, vat.exemption_reason),
                breakdown=True,
            )
        if separate_tax_currency:
            # BT-111: a second TaxTotal with only the amount, in the VAT accounting currency.
            _el(
                _el(root, "cac:TaxTotal"),
                "cbc:TaxAmount",
                format_amount(invoice.tax_total_tax_currency),
                currencyID=invoice.tax_currency,
            )

        totals = _el(root, "cac:LegalMonetaryTotal")
        self.amount(totals, "cbc:LineExtensionAmount", invoice.line_total)
        self.amount(totals, "cbc:TaxExclusiveAmount", invoice.net_total)
        self.amount(totals, "cbc:TaxInclusiveAmount", invoice.gross_total)
        for tag, value in (
            ("cbc:AllowanceTotalAmount", invoice.allowance_total),
            ("cbc:ChargeTotalAmount", invoice.charge_total),
            ("cbc:PrepaidAmount", invoice.prepaid),
            ("cbc:PayableRoundingAmount", invoice.rounding),
        ):
            if value is not None:
                self.amount(totals, tag, value)
        self.amount(totals, "cbc:PayableAmount", invoice.amount_due)

        for index, line in enumerate(invoice.lines, start=1):
            self.line(root, line, index, credit_note)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def write_ubl(
    invoice: Invoice,
    *,
    customization_id: str = EN16931_GUIDELINE,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The invoice as a UTF-8 UBL 2.1 Invoice, or CreditNote for type code 381.

    `customization_id` is BT-24 (EN 16931 by default, `XRECHNUNG_GUIDELINE` or
    `PEPPOL_BIS_GUIDELINE`); `extra` takes the same `DocumentExtras` keys as `write_cii` (a
    Peppol BIS document needs `seller_peppol_id` and `buyer_peppol_id`, and a buyer or order
    reference). Raises InvoiceNotWritable when a required term is missing, ValueError for
    unknown extras.
    """
    extras = checked_extras(extra)
    check_writable(
        invoice,
        extras,
        xrechnung=is_xrechnung(customization_id),
        peppol=is_peppol_bis(customization_id),
    )
    return _Writer(invoice, extras).write(customization_id)
