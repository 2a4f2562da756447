"""UN/CEFACT CII (CrossIndustryInvoice D16B) from the normalized invoice, for EN 16931 and XRechnung.

This module also owns what the CII and the UBL writer (ubl.py) share: the business terms that the
normalized model does not carry (`DocumentExtras`), the check that an invoice has every term
EN 16931 requires, and how amounts are written.

The writers write what the model states; they do not compute totals. An invoice that lacks a
mandatory term is refused with `InvoiceNotWritable` naming every missing term, because a document
that fails validation at the receiver is worse than no document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, TypedDict

from lxml import etree

from invoice_pipelines.core.invoice import Address, AllowanceCharge, Invoice, InvoiceLine
from invoice_pipelines.core.money import CENT, ZERO, plain_string
from invoice_pipelines.core.skonto import xrechnung_terms_text
from invoice_pipelines.einvoice.peppol_ids import ParticipantIdError, parse_participant

EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"
XRECHNUNG_GUIDELINE = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
# Peppol BIS Billing 3.0 (PEPPOL-EN16931-R004); UBL only (ubl.py)
PEPPOL_BIS_GUIDELINE = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
# BT-23; XRechnung recommends the Peppol billing process, EN 16931 leaves it optional, Peppol BIS
# requires it (PEPPOL-EN16931-R001).
PEPPOL_BILLING_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
# Electronic addresses (BT-34/BT-49) are written as e-mail addresses, EAS scheme "EM"; in UBL the
# party's Peppol participant id wins when given (its EAS scheme and value; einvoice/peppol_ids.py).
EMAIL_SCHEME = "EM"
SEPA_CREDIT_TRANSFER = "58"
# UN/ECE Rec 20 "one" (a unit): used when a line states no unit of measure.
DEFAULT_UNIT_CODE = "C62"
# Payment means codes that need the payee's IBAN (BR-61).
CREDIT_TRANSFER_CODES = frozenset({"30", "58"})

CII_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM_NS = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
QDT_NS = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UDT_NS = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
_NSMAP = {"rsm": CII_NS, "qdt": QDT_NS, "ram": RAM_NS, "udt": UDT_NS}

# EN 16931 requires an exemption reason (BT-120) for these VAT categories (BR-E-10, BR-AE-10,
# BR-IC-10, BR-G-10, BR-O-10); these German texts are used when the invoice states none.
DEFAULT_EXEMPTION_REASONS = {
    "E": "Steuerfrei",
    "AE": "Steuerschuldnerschaft des Leistungsempfängers",
    "K": "Steuerfreie innergemeinschaftliche Lieferung",
    "G": "Steuerfreie Ausfuhrlieferung",
    "O": "Nicht im Inland steuerbar",
}
# Category O ("not subject to VAT") has no rate on lines and allowances (BR-O-05..07); its VAT
# breakdown states 0 %, which XRechnung requires (BR-DE-14) and EN 16931 allows.
CATEGORIES_WITHOUT_RATE = frozenset({"O"})


class DocumentExtras(TypedDict, total=False):
    """Business terms the normalized `Invoice` does not carry; XRechnung needs several of them."""

    buyer_reference: str  # BT-10, e.g. the Leitweg-ID of a public buyer
    order_reference: str  # BT-13 purchase order reference
    note: str  # BT-22 invoice note
    payment_terms: str  # BT-20 payment terms as text
    delivery_date: date  # BT-72 actual delivery date
    delivery_country: str  # BT-80 deliver-to country (intra-EU supplies need it, BR-IC-12)
    delivery_address: Address  # BG-15 deliver-to address, when it is not the buyer's
    business_process: str  # BT-23 (XRechnung: the Peppol billing process by default)
    seller_tax_number: str  # BT-32 German Steuernummer
    seller_electronic_address: str  # BT-34, an e-mail address
    buyer_electronic_address: str  # BT-49, an e-mail address
    seller_peppol_id: (
        str  # BT-34 as a Peppol participant id "<eas>:<value>" (UBL; wins over e-mail)
    )
    buyer_peppol_id: str  # BT-49 as a Peppol participant id "<eas>:<value>" (UBL; wins over e-mail)
    seller_contact_name: str  # BT-41
    seller_contact_phone: str  # BT-42
    seller_contact_email: str  # BT-43
    payee_account_name: str  # BT-85
    preceding_invoice_number: str  # BT-25, the invoice a credit note corrects
    preceding_invoice_date: date  # BT-26, that invoice's issue date


EXTRA_KEYS = frozenset(DocumentExtras.__annotations__)
# XRechnung 3.0 makes these optional EN 16931 terms mandatory (BR-DE-2, -5, -6, -7, -15 and the
# electronic addresses of seller and buyer).
XRECHNUNG_REQUIRED_EXTRAS = {
    "buyer_reference": "buyer reference (BT-10)",
    "seller_contact_name": "seller contact point (BT-41)",
    "seller_contact_phone": "seller contact telephone (BT-42)",
    "seller_contact_email": "seller contact e-mail (BT-43)",
    "seller_electronic_address": "seller electronic address (BT-34)",
    "buyer_electronic_address": "buyer electronic address (BT-49)",
}


# characters XML 1.0 cannot carry, not even escaped: C0 controls but tab, LF and CR; U+FFFE/FFFF;
# lone surrogates (which UTF-8 cannot encode either)
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class InvoiceNotWritable(ValueError):
    """The invoice lacks terms the requested document must carry; the message names all of them."""


def is_xrechnung(guideline_id: str) -> bool:
    return "xeinkauf.de:kosit:xrechnung" in guideline_id


def is_peppol_bis(guideline_id: str | None) -> bool:
    """BT-24 names Peppol BIS Billing 3.0 (the rules accept what starts with it, R004)."""
    return bool(guideline_id) and guideline_id.strip().startswith(PEPPOL_BIS_GUIDELINE)


def electronic_address(
    extras: DocumentExtras, party: str, *, peppol: bool = False
) -> tuple[str, str] | None:
    """BT-34 (`party` "seller") or BT-49 ("buyer") of a UBL document as (EAS scheme, value): the
    Peppol participant id when given, else the e-mail address (scheme EM; not for a Peppol
    document, `peppol`: Peppol's EAS list has no EM), else None. A participant id the Peppol
    rules refuse raises InvoiceNotWritable naming the rule."""
    stated = extras.get(f"{party}_peppol_id")
    if stated:
        try:
            participant = parse_participant(stated)
        except ParticipantIdError as exc:
            raise InvoiceNotWritable(f"{party} Peppol participant id: {exc}") from exc
        return participant.scheme, participant.value
    email = None if peppol else extras.get(f"{party}_electronic_address")
    return (EMAIL_SCHEME, email) if email else None


def checked_extras(extra: Mapping[str, Any] | None) -> DocumentExtras:
    """The extras as a DocumentExtras; unknown keys are refused so a typo cannot drop a term."""
    values = dict(extra or {})
    unknown = sorted(set(values) - EXTRA_KEYS)
    if unknown:
        raise ValueError(f"unknown document extras {unknown}; known keys: {sorted(EXTRA_KEYS)}")
    return DocumentExtras(**{k: v for k, v in values.items() if v not in (None, "")})  # type: ignore[typeddict-item]


def not_subject_to_vat(invoice: Invoice) -> bool:
    """Category O ("not subject to VAT") anywhere: then no VAT breakdown of another category may
    exist (BR-O-11..14), and no seller, tax representative or buyer VAT id may be written
    (BR-O-02..04): the supply is outside the VAT system, whoever the parties are."""
    return any(v.category == "O" for v in invoice.vat_breakdown) or any(
        line.vat_category == "O" for line in invoice.lines
    )


def seller_identifier(invoice: Invoice, extras: DocumentExtras) -> str | None:
    """BT-29 Seller identifier, written when no seller VAT id (BT-31) is: a buyer must be able
    to identify the supplier by BT-29, BT-30 or BT-31 (BR-CO-26). The tax number (Steuernummer)
    when known, else the VAT id the invoice may not state as such (category O, BR-O-02)."""
    if invoice.seller_vat_id and not not_subject_to_vat(invoice):
        return None
    return extras.get("seller_tax_number") or invoice.seller_vat_id


def deliver_to(invoice: Invoice, extras: DocumentExtras) -> Address | None:
    """The deliver-to address (BG-15) to write, or None.

    An explicit `delivery_address` wins. Otherwise a deliver-to country (given, or required for
    an intra-EU supply, category K, BR-IC-12) is the buyer's own address when it is in that
    country: goods go to the buyer unless told otherwise, and XRechnung demands a city and a
    post code in every deliver-to address (BR-DE-10/11), never a country alone.
    """
    if extras.get("delivery_address"):
        return extras["delivery_address"]
    buyer = invoice.buyer_address
    country = extras.get("delivery_country")
    if country is None and any(v.category == "K" for v in invoice.vat_breakdown):
        country = buyer.country_code if buyer else None
    if not country:
        return None
    if buyer is not None and buyer.country_code == country:
        return buyer
    return Address(country_code=country)


def both_in_germany(invoice: Invoice) -> bool:
    """Seller and buyer in Germany: Peppol BIS then applies the German rules (DE-R-*), which are
    XRechnung's (BR-DE-*) under other ids."""
    return all(
        address is not None and (address.country_code or "").upper() == "DE"
        for address in (invoice.seller_address, invoice.buyer_address)
    )


def _peppol_missing(invoice: Invoice, extras: DocumentExtras) -> list[str]:
    """What Peppol BIS Billing 3.0 requires beyond EN 16931 and this invoice lacks."""
    missing = []
    if not (extras.get("buyer_reference") or extras.get("order_reference")):
        missing.append(
            "buyer reference (BT-10) or purchase order reference (BT-13), extra "
            "'buyer_reference' or 'order_reference' (PEPPOL-EN16931-R003)"
        )
    for party, term, rule in (("seller", "BT-34", "R020"), ("buyer", "BT-49", "R010")):
        try:
            address = electronic_address(extras, party, peppol=True)
        except InvoiceNotWritable as exc:
            missing.append(str(exc))
            continue
        if address is None:
            missing.append(
                f"{party} electronic address ({term}), extra '{party}_peppol_id' "
                f"(PEPPOL-EN16931-{rule})"
            )
    if invoice.payment_means_code == "59":
        missing.append("the direct debit's mandate reference (BT-89) (PEPPOL-EN16931-R061)")
    for ac in invoice.allowances_charges:
        if (ac.percent is None) != (ac.base_amount is None):
            missing.append(
                "an allowance or charge with a percentage states its base amount, and one with a "
                "base amount its percentage (PEPPOL-EN16931-R041/R042)"
            )
            break
    return missing


def check_writable(
    invoice: Invoice, extras: DocumentExtras, *, xrechnung: bool, peppol: bool = False
) -> None:
    """Raise InvoiceNotWritable listing every term EN 16931 (and XRechnung, or Peppol BIS)
    requires but lacks."""
    missing: list[str] = _peppol_missing(invoice, extras) if peppol else []

    def need(ok: object, what: str) -> None:
        if not ok:
            missing.append(what)

    need(invoice.number, "invoice number (BT-1)")
    need(invoice.issue_date, "issue date (BT-2)")
    need(invoice.currency, "currency (BT-5)")
    need(invoice.seller_name, "seller name (BT-27)")
    need(
        invoice.seller_vat_id or seller_identifier(invoice, extras),
        "seller VAT id (BT-31) or tax number, extra 'seller_tax_number' (BR-CO-26)",
    )
    need(invoice.seller_address and invoice.seller_address.country_code, "seller country (BT-40)")
    need(invoice.buyer_name, "buyer name (BT-44)")
    need(invoice.buyer_address and invoice.buyer_address.country_code, "buyer country (BT-55)")
    need(invoice.lines, "invoice lines (BG-25)")
    need(invoice.vat_breakdown, "VAT breakdown (BG-23)")
    for name, value in (
        ("sum of line net amounts (BT-106)", invoice.line_total),
        ("total without VAT (BT-109)", invoice.net_total),
        ("total with VAT (BT-112)", invoice.gross_total),
        ("amount due (BT-115)", invoice.amount_due),
    ):
        need(value is not None, name)
    for index, line in enumerate(invoice.lines, start=1):
        where = f"line {line.line_id or index}"
        need(line.description, f"{where}: item name (BT-153)")
        need(line.quantity is not None, f"{where}: quantity (BT-129)")
        need(line.unit_price is not None, f"{where}: net price (BT-146)")
        need(line.net_amount is not None, f"{where}: net amount (BT-131)")
        need(line.vat_category, f"{where}: VAT category (BT-151)")
    for vat in invoice.vat_breakdown:
        need(vat.category and vat.basis is not None and vat.amount is not None, "VAT breakdown row")
    if (
        invoice.due_date is None
        and not payment_terms_text(invoice, extras)
        and invoice.amount_due is not None
        and invoice.amount_due > ZERO
    ):
        missing.append("due date (BT-9) or payment terms (BT-20) (BR-CO-25)")
    if invoice.payment_means_code in CREDIT_TRANSFER_CODES and not invoice.iban:
        missing.append("payee IBAN (BT-84) for a credit transfer (BR-61)")
    if invoice.tax_currency and invoice.tax_currency != invoice.currency:
        need(invoice.tax_total_tax_currency is not None, "VAT total in tax currency (BT-111)")
    delivery = deliver_to(invoice, extras)
    if any(v.category == "K" for v in invoice.vat_breakdown):
        need(
            extras.get("delivery_date"),
            "actual delivery date (BT-72) of an intra-EU supply (BR-IC-11), extra 'delivery_date'",
        )
        need(delivery and delivery.country_code, "deliver-to country (BT-80) (BR-IC-12)")
    if xrechnung or (peppol and both_in_germany(invoice)):
        for key, what in XRECHNUNG_REQUIRED_EXTRAS.items():
            if peppol and key.endswith("_electronic_address"):
                continue  # the participant ids (above)
            need(extras.get(key), f"{what}, extra '{key}'")
        need(invoice.iban or invoice.payment_means_code, "payment instructions (BG-16, BR-DE-1)")
        if not not_subject_to_vat(invoice):
            need(
                invoice.seller_vat_id or extras.get("seller_tax_number"),
                "seller VAT id (BT-31) or tax number (BT-32) (BR-DE-16)",
            )
        if delivery is not None:
            need(delivery.city, "deliver-to city (BT-77) (BR-DE-10)")
            need(delivery.postcode, "deliver-to post code (BT-78) (BR-DE-11)")
        for party, address in (
            ("seller", invoice.seller_address),
            ("buyer", invoice.buyer_address),
        ):
            need(address and address.city, f"{party} city (BR-DE-3/8)")
            need(address and address.postcode, f"{party} post code (BR-DE-4/9)")
    if missing:
        raise InvoiceNotWritable(
            f"invoice {invoice.number or '(no number)'} cannot be written: missing "
            + "; ".join(missing)
        )


def payment_terms_text(invoice: Invoice, extras: DocumentExtras) -> str | None:
    """BT-20 as written: the terms' text, then one XRechnung #SKONTO# line per discount step
    (the form KoSIT's BR-DE-18 checks, also readable in a Factur-X document; EN 16931 has no
    structured discount element, and CII's ApplicableTradePaymentDiscountTerms is EXTENDED only)."""
    return xrechnung_terms_text(invoice.discount_terms, extras.get("payment_terms"))


def format_amount(value: Decimal) -> str:
    """An amount with exactly two decimals; more precision is refused, never rounded away.

    EN 16931 allows at most two decimals for amounts (BR-DEC-*); rounding here would hide an
    arithmetic error in the caller, so it must round at its documented points itself.
    """
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvoiceNotWritable(f"amount {value!r} is not a finite Decimal")
    quantized = value.quantize(CENT)
    if quantized != value:
        raise InvoiceNotWritable(f"amount {value} has more than two decimals")
    # a zero is written "0.00", never "-0.00" (a negative base times 0 % is Decimal -0.00): the
    # rules compare it with 0 and some readers take the sign for a negative amount
    return format(quantized.copy_abs() if not quantized else quantized, "f")


def format_number(value: Decimal) -> str:
    """Quantities, prices and rates as stated (prices may carry more than two decimals)."""
    return plain_string(value)


def vat_total(invoice: Invoice) -> Decimal:
    """BT-110 as stated, else the sum of the breakdown's VAT amounts (BR-CO-14)."""
    if invoice.tax_total is not None:
        return invoice.tax_total
    return sum((vat.amount or ZERO for vat in invoice.vat_breakdown), ZERO)


def exemption_reason(category: str | None, stated: str | None) -> str | None:
    return stated or DEFAULT_EXEMPTION_REASONS.get(category or "")


def payment_means_code(invoice: Invoice) -> str | None:
    """BT-81: as stated; a SEPA credit transfer when only an IBAN is known."""
    return invoice.payment_means_code or (SEPA_CREDIT_TRANSFER if invoice.iban else None)


def allowance_reason(ac: AllowanceCharge) -> str:
    # BR-33/BR-38 require a reason text or code on every document-level allowance and charge.
    return ac.reason or ("Zuschlag" if ac.is_charge else "Nachlass")


# ---------------------------------------------------------------- CII tree building


def element_factory(namespaces: Mapping[str, str]) -> Callable[..., etree._Element]:
    """`el(parent, "ram:Name", text, **attributes)` for one set of prefixes.

    Clark names are cached per prefixed name: the writers run thousands of times a second.
    """
    tags: dict[str, str] = {}

    def el(
        parent: etree._Element, name: str, text: str | None = None, **attrib: str
    ) -> etree._Element:
        tag = tags.get(name)
        if tag is None:
            prefix, local = name.split(":")
            tag = tags[name] = f"{{{namespaces[prefix]}}}{local}"
        node = etree.SubElement(parent, tag, attrib)
        if text is not None:
            bad = NOT_IN_XML.search(text)
            if bad is not None:
                # lxml would only say "All strings must be XML compatible", naming nothing
                raise InvoiceNotWritable(
                    f"{name} {text.strip()[:60]!r}: the character U+{ord(bad.group()):04X} "
                    "cannot be written in an XML e-invoice (no control characters other than "
                    "tab and line breaks)"
                )
            node.text = text
        return node

    return el


_el = element_factory(_NSMAP)


def _date(parent: etree._Element, name: str, value: date) -> None:
    holder = _el(parent, name)
    _el(holder, "udt:DateTimeString", value.strftime("%Y%m%d"), format="102")


def _address(party: etree._Element, address: Address) -> None:
    node = _el(party, "ram:PostalTradeAddress")
    if address.postcode:
        _el(node, "ram:PostcodeCode", address.postcode)
    if address.line_one:
        _el(node, "ram:LineOne", address.line_one)
    if address.city:
        _el(node, "ram:CityName", address.city)
    _el(node, "ram:CountryID", address.country_code)


def _tax(
    parent: etree._Element,
    category: str | None,
    rate: Decimal | None,
    *,
    calculated: Decimal | None = None,
    basis: Decimal | None = None,
    reason: str | None = None,
) -> None:
    """A ram:ApplicableTradeTax / CategoryTradeTax body, children in XSD order."""
    if calculated is not None:
        _el(parent, "ram:CalculatedAmount", format_amount(calculated))
    _el(parent, "ram:TypeCode", "VAT")
    if reason:
        _el(parent, "ram:ExemptionReason", reason)
    if basis is not None:
        _el(parent, "ram:BasisAmount", format_amount(basis))
    _el(parent, "ram:CategoryCode", category)
    # the breakdown (the one with a calculated amount) always states its rate (BR-DE-14)
    if category not in CATEGORIES_WITHOUT_RATE or calculated is not None:
        _el(parent, "ram:RateApplicablePercent", format_number(rate if rate is not None else ZERO))


def _line_allowance(parent: etree._Element, amount: Decimal, *, is_charge: bool) -> None:
    node = _el(parent, "ram:SpecifiedTradeAllowanceCharge")
    _el(_el(node, "ram:ChargeIndicator"), "udt:Indicator", "true" if is_charge else "false")
    _el(node, "ram:ActualAmount", format_amount(amount))
    # BR-41/BR-42: a line allowance or charge needs a reason; the model keeps only the amount.
    _el(node, "ram:Reason", "Zuschlag" if is_charge else "Rabatt")


def _line(transaction: etree._Element, line: InvoiceLine, index: int) -> None:
    item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
    _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", line.line_id or str(index))
    product = _el(item, "ram:SpecifiedTradeProduct")
    _el(product, "ram:Name", line.description)
    if line.item_description:
        _el(product, "ram:Description", line.item_description)
    unit = line.unit_code or DEFAULT_UNIT_CODE
    price = _el(_el(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice")
    _el(price, "ram:ChargeAmount", format_number(line.unit_price))
    if line.price_base_quantity is not None:
        _el(price, "ram:BasisQuantity", format_number(line.price_base_quantity), unitCode=unit)
    delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
    _el(delivery, "ram:BilledQuantity", format_number(line.quantity), unitCode=unit)
    settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    _tax(_el(settlement, "ram:ApplicableTradeTax"), line.vat_category, line.vat_rate)
    for amount in line.allowances:
        _line_allowance(settlement, amount, is_charge=False)
    for amount in line.charges:
        _line_allowance(settlement, amount, is_charge=True)
    summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _el(summation, "ram:LineTotalAmount", format_amount(line.net_amount))


def _seller(agreement: etree._Element, invoice: Invoice, extras: DocumentExtras) -> None:
    party = _el(agreement, "ram:SellerTradeParty")
    identifier = seller_identifier(invoice, extras)
    if identifier:
        _el(party, "ram:ID", identifier)
    _el(party, "ram:Name", invoice.seller_name)
    if extras.get("seller_contact_name") or extras.get("seller_contact_email"):
        contact = _el(party, "ram:DefinedTradeContact")
        if extras.get("seller_contact_name"):
            _el(contact, "ram:PersonName", extras["seller_contact_name"])
        if extras.get("seller_contact_phone"):
            phone = _el(contact, "ram:TelephoneUniversalCommunication")
            _el(phone, "ram:CompleteNumber", extras["seller_contact_phone"])
        if extras.get("seller_contact_email"):
            email = _el(contact, "ram:EmailURIUniversalCommunication")
            _el(email, "ram:URIID", extras["seller_contact_email"])
    _address(party, invoice.seller_address)
    if extras.get("seller_electronic_address"):
        uri = _el(party, "ram:URIUniversalCommunication")
        _el(uri, "ram:URIID", extras["seller_electronic_address"], schemeID=EMAIL_SCHEME)
    if extras.get("seller_tax_number"):
        registration = _el(party, "ram:SpecifiedTaxRegistration")
        _el(registration, "ram:ID", extras["seller_tax_number"], schemeID="FC")
    if invoice.seller_vat_id and not not_subject_to_vat(invoice):  # BR-O-02
        registration = _el(party, "ram:SpecifiedTaxRegistration")
        _el(registration, "ram:ID", invoice.seller_vat_id, schemeID="VA")


def _buyer(agreement: etree._Element, invoice: Invoice, extras: DocumentExtras) -> None:
    party = _el(agreement, "ram:BuyerTradeParty")
    _el(party, "ram:Name", invoice.buyer_name)
    _address(party, invoice.buyer_address)
    if extras.get("buyer_electronic_address"):
        uri = _el(party, "ram:URIUniversalCommunication")
        _el(uri, "ram:URIID", extras["buyer_electronic_address"], schemeID=EMAIL_SCHEME)
    if invoice.buyer_vat_id and not not_subject_to_vat(invoice):  # BR-O-04
        registration = _el(party, "ram:SpecifiedTaxRegistration")
        _el(registration, "ram:ID", invoice.buyer_vat_id, schemeID="VA")


def _settlement(transaction: etree._Element, invoice: Invoice, extras: DocumentExtras) -> None:
    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    code = payment_means_code(invoice)
    if invoice.iban:
        # BT-83 remittance information: the invoice number is what a buyer's bank transfer quotes.
        _el(settlement, "ram:PaymentReference", invoice.number)
    separate_tax_currency = bool(invoice.tax_currency and invoice.tax_currency != invoice.currency)
    if separate_tax_currency:
        _el(settlement, "ram:TaxCurrencyCode", invoice.tax_currency)
    _el(settlement, "ram:InvoiceCurrencyCode", invoice.currency)
    if code:
        means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        _el(means, "ram:TypeCode", code)
        if invoice.iban:
            account = _el(means, "ram:PayeePartyCreditorFinancialAccount")
            _el(account, "ram:IBANID", invoice.iban.replace(" ", ""))
            if extras.get("payee_account_name"):
                _el(account, "ram:AccountName", extras["payee_account_name"])
    for vat in invoice.vat_breakdown:
        _tax(
            _el(settlement, "ram:ApplicableTradeTax"),
            vat.category,
            vat.rate,
            calculated=vat.amount,
            basis=vat.basis,
            reason=exemption_reason(vat.category, vat.exemption_reason),
        )
    for ac in invoice.allowances_charges:
        node = _el(settlement, "ram:SpecifiedTradeAllowanceCharge")
        _el(_el(node, "ram:ChargeIndicator"), "udt:Indicator", "true" if ac.is_charge else "false")
        if ac.percent is not None:
            _el(node, "ram:CalculationPercent", format_number(ac.percent))
        if ac.base_amount is not None:
            _el(node, "ram:BasisAmount", format_amount(ac.base_amount))
        _el(node, "ram:ActualAmount", format_amount(ac.amount if ac.amount is not None else ZERO))
        _el(node, "ram:Reason", allowance_reason(ac))
        _tax(_el(node, "ram:CategoryTradeTax"), ac.vat_category, ac.vat_rate)
    payment_terms = payment_terms_text(invoice, extras)
    if payment_terms or invoice.due_date:
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        if payment_terms:
            _el(terms, "ram:Description", payment_terms)
        if invoice.due_date:
            _date(terms, "ram:DueDateDateTime", invoice.due_date)
    summation = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summation, "ram:LineTotalAmount", format_amount(invoice.line_total))
    if invoice.charge_total is not None:
        _el(summation, "ram:ChargeTotalAmount", format_amount(invoice.charge_total))
    if invoice.allowance_total is not None:
        _el(summation, "ram:AllowanceTotalAmount", format_amount(invoice.allowance_total))
    _el(summation, "ram:TaxBasisTotalAmount", format_amount(invoice.net_total))
    _el(
        summation,
        "ram:TaxTotalAmount",
        format_amount(vat_total(invoice)),
        currencyID=invoice.currency,
    )
    if separate_tax_currency:
        _el(
            summation,
            "ram:TaxTotalAmount",
            format_amount(invoice.tax_total_tax_currency),
            currencyID=invoice.tax_currency,
        )
    if invoice.rounding is not None:
        _el(summation, "ram:RoundingAmount", format_amount(invoice.rounding))
    _el(summation, "ram:GrandTotalAmount", format_amount(invoice.gross_total))
    if invoice.prepaid is not None:
        _el(summation, "ram:TotalPrepaidAmount", format_amount(invoice.prepaid))
    _el(summation, "ram:DuePayableAmount", format_amount(invoice.amount_due))
    if extras.get("preceding_invoice_number"):
        # BG-3: after the summation, where the CII schema places InvoiceReferencedDocument
        referenced = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(referenced, "ram:IssuerAssignedID", extras["preceding_invoice_number"])
        if extras.get("preceding_invoice_date"):
            holder = _el(referenced, "ram:FormattedIssueDateTime")
            _el(
                holder,
                "qdt:DateTimeString",
                extras["preceding_invoice_date"].strftime("%Y%m%d"),
                format="102",
            )


def write_cii(
    invoice: Invoice,
    *,
    guideline_id: str = EN16931_GUIDELINE,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The invoice as a UTF-8 CrossIndustryInvoice document, elements in the order the XSD demands.

    `guideline_id` becomes BT-24: EN 16931 by default, or `XRECHNUNG_GUIDELINE`, which also
    needs the extras in `XRECHNUNG_REQUIRED_EXTRAS` (see `DocumentExtras` for every key).
    Raises InvoiceNotWritable when a required term is missing or an amount has more than two
    decimals; ValueError for unknown extras.
    """
    extras = checked_extras(extra)
    xrechnung = is_xrechnung(guideline_id)
    check_writable(invoice, extras, xrechnung=xrechnung)

    root = etree.Element(f"{{{CII_NS}}}CrossIndustryInvoice", nsmap=_NSMAP)
    context = _el(root, "rsm:ExchangedDocumentContext")
    process = extras.get("business_process") or (PEPPOL_BILLING_PROCESS if xrechnung else None)
    if process:
        _el(_el(context, "ram:BusinessProcessSpecifiedDocumentContextParameter"), "ram:ID", process)
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", guideline_id)

    document = _el(root, "rsm:ExchangedDocument")
    _el(document, "ram:ID", invoice.number)
    _el(document, "ram:TypeCode", invoice.type_code or "380")
    _date(document, "ram:IssueDateTime", invoice.issue_date)
    if extras.get("note"):
        _el(_el(document, "ram:IncludedNote"), "ram:Content", extras["note"])

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for index, line in enumerate(invoice.lines, start=1):
        _line(transaction, line, index)
    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    if extras.get("buyer_reference"):
        _el(agreement, "ram:BuyerReference", extras["buyer_reference"])
    _seller(agreement, invoice, extras)
    _buyer(agreement, invoice, extras)
    if extras.get("order_reference"):
        order = _el(agreement, "ram:BuyerOrderReferencedDocument")
        _el(order, "ram:IssuerAssignedID", extras["order_reference"])
    delivery = _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    address = deliver_to(invoice, extras)
    if address is not None:
        _address(_el(delivery, "ram:ShipToTradeParty"), address)
    if extras.get("delivery_date"):
        event = _el(delivery, "ram:ActualDeliverySupplyChainEvent")
        _date(event, "ram:OccurrenceDateTime", extras["delivery_date"])
    _settlement(transaction, invoice, extras)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
