"""UN/CEFACT CII (Factur-X, ZUGFeRD 2.x, XRechnung CII) to the normalized invoice.

The same mapper reads ZUGFeRD 1.0 (see zugferd1.py): both are Cross Industry documents whose
business terms sit in the same places under different element names, so one table of paths
per syntax drives one mapping function.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from invoice_pipelines.core.skonto import MAX_DAYS, DiscountTerm, SkontoError, read_terms
from invoice_pipelines.einvoice.readers.xmlsafe import ValueReader

CII_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
NAMESPACES = {
    "rsm": CII_NS,
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
# Document totals (BG-22) by Invoice field: element in the monetary summation.
CII_TOTALS = {
    "line_total": "ram:LineTotalAmount",
    "allowance_total": "ram:AllowanceTotalAmount",
    "charge_total": "ram:ChargeTotalAmount",
    "net_total": "ram:TaxBasisTotalAmount",
    "gross_total": "ram:GrandTotalAmount",
    "prepaid": "ram:TotalPrepaidAmount",
    "rounding": "ram:RoundingAmount",
    "amount_due": "ram:DuePayableAmount",
}
# EXTENDED sub-lines that only group or annotate other lines carry no billed amount of their own.
NON_BILLED_LINE_STATUS = frozenset({"GROUP", "INFORMATION"})


@dataclass(frozen=True)
class CrossIndustryPaths:
    """Where each group of business terms lives in one Cross Industry syntax."""

    namespaces: dict[str, str]
    guideline: str
    document: str
    transaction: str
    agreement: str
    settlement: str
    summation: str
    line_item: str
    line_agreement: str
    line_delivery: str
    line_settlement: str
    line_summation: str
    rate: str  # VAT rate element inside ApplicableTradeTax / CategoryTradeTax


CII_PATHS = CrossIndustryPaths(
    namespaces=NAMESPACES,
    guideline="rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
    document="rsm:ExchangedDocument",
    transaction="rsm:SupplyChainTradeTransaction",
    agreement="ram:ApplicableHeaderTradeAgreement",
    settlement="ram:ApplicableHeaderTradeSettlement",
    summation="ram:SpecifiedTradeSettlementHeaderMonetarySummation",
    line_item="ram:IncludedSupplyChainTradeLineItem",
    line_agreement="ram:SpecifiedLineTradeAgreement",
    line_delivery="ram:SpecifiedLineTradeDelivery",
    line_settlement="ram:SpecifiedLineTradeSettlement",
    line_summation="ram:SpecifiedTradeSettlementLineMonetarySummation",
    rate="ram:RateApplicablePercent",
)


def _address(read: ValueReader, party: etree._Element | None) -> Address | None:
    node = read.element(party, "ram:PostalTradeAddress")
    if node is None:
        return None
    return Address(
        line_one=read.text(node, "ram:LineOne"),
        city=read.text(node, "ram:CityName"),
        postcode=read.text(node, "ram:PostcodeCode"),
        country_code=read.text(node, "ram:CountryID"),
    )


def _vat_id(read: ValueReader, party: etree._Element | None, scheme: str = "VA") -> str | None:
    """The party's VAT id (scheme VA, BT-31), or with scheme FC its tax number (BT-32)."""
    for registration in read.elements(party, "ram:SpecifiedTaxRegistration/ram:ID"):
        if registration.get("schemeID") == scheme and registration.text:
            return registration.text.strip()
    return None


def _allowances_charges(
    read: ValueReader, parent: etree._Element | None, paths: CrossIndustryPaths, where: str
) -> list[AllowanceCharge]:
    result = []
    for node in read.elements(parent, "ram:SpecifiedTradeAllowanceCharge"):
        indicator = (read.text(node, "ram:ChargeIndicator/udt:Indicator") or "").lower()
        result.append(
            AllowanceCharge(
                is_charge=indicator == "true",
                amount=read.decimal(node, "ram:ActualAmount", f"{where} allowance/charge amount"),
                base_amount=read.decimal(node, "ram:BasisAmount", f"{where} allowance/charge base"),
                percent=read.decimal(node, "ram:CalculationPercent", f"{where} allowance/charge %"),
                vat_category=read.text(node, "ram:CategoryTradeTax/ram:CategoryCode"),
                vat_rate=read.decimal(
                    node, f"ram:CategoryTradeTax/{paths.rate}", f"{where} allowance/charge VAT rate"
                ),
                reason=read.text(node, "ram:Reason"),
            )
        )
    return result


def _price_discount(
    read: ValueReader, gross_price: etree._Element | None, where: str
) -> tuple[Decimal | None, Decimal | None]:
    """BT-147 (the allowances on the gross price; EXTENDED also allows charges, which add) and
    the percentage of a single discount."""
    total = None
    percents = []
    for node in read.elements(gross_price, "ram:AppliedTradeAllowanceCharge"):
        amount = read.decimal(node, "ram:ActualAmount", f"{where} item price discount (BT-147)")
        indicator = (read.text(node, "ram:ChargeIndicator/udt:Indicator") or "").lower()
        sign = -1 if indicator == "true" else 1
        percent = read.decimal(node, "ram:CalculationPercent", f"{where} price discount %")
        percents.append(None if percent is None else sign * percent)
        if amount is not None:
            total = (total or Decimal(0)) + sign * amount
    return total, (percents[0] if len(percents) == 1 else None)


def _lines(
    read: ValueReader, transaction: etree._Element | None, paths: CrossIndustryPaths
) -> tuple[InvoiceLine, ...]:
    lines = []
    for index, item in enumerate(read.elements(transaction, paths.line_item), start=1):
        status = read.text(item, "ram:AssociatedDocumentLineDocument/ram:LineStatusReasonCode")
        if status and status.upper() in NON_BILLED_LINE_STATUS:
            continue
        line_id = read.text(item, "ram:AssociatedDocumentLineDocument/ram:LineID") or str(index)
        where = f"line {line_id}"
        agreement = read.element(item, paths.line_agreement)
        delivery = read.element(item, paths.line_delivery)
        settlement = read.element(item, paths.line_settlement)
        net_price = read.element(agreement, "ram:NetPriceProductTradePrice")
        gross_price = read.element(agreement, "ram:GrossPriceProductTradePrice")
        quantity = read.element(delivery, "ram:BilledQuantity")
        allowances, charges = allowance_and_charge_amounts(
            _allowances_charges(read, settlement, paths, where)
        )
        discount, discount_percent = _price_discount(read, gross_price, where)
        lines.append(
            InvoiceLine(
                line_id=line_id,
                description=read.text(item, "ram:SpecifiedTradeProduct/ram:Name"),
                item_description=read.text(item, "ram:SpecifiedTradeProduct/ram:Description"),
                quantity=read.decimal_of(quantity, f"{where} quantity (BT-129)"),
                unit_code=None if quantity is None else quantity.get("unitCode"),
                unit_price=read.decimal(
                    net_price, "ram:ChargeAmount", f"{where} net price (BT-146)"
                ),
                price_base_quantity=read.decimal(
                    net_price, "ram:BasisQuantity", f"{where} price base quantity (BT-149)"
                ),
                net_amount=read.decimal(
                    settlement,
                    f"{paths.line_summation}/ram:LineTotalAmount",
                    f"{where} net amount (BT-131)",
                ),
                vat_category=read.text(settlement, "ram:ApplicableTradeTax/ram:CategoryCode"),
                vat_rate=read.decimal(
                    settlement, f"ram:ApplicableTradeTax/{paths.rate}", f"{where} VAT rate (BT-152)"
                ),
                allowances=allowances,
                charges=charges,
                gross_price=read.decimal(
                    gross_price, "ram:ChargeAmount", f"{where} gross price (BT-148)"
                ),
                price_discount=discount,
                price_discount_percent=discount_percent,
                gross_price_base_quantity=read.decimal(
                    gross_price, "ram:BasisQuantity", f"{where} gross price base quantity"
                ),
            )
        )
    return tuple(lines)


def map_cross_industry(
    root: etree._Element, paths: CrossIndustryPaths
) -> tuple[Invoice, list[Finding]]:
    """Map a Cross Industry invoice; findings name values that could not be read."""
    read = ValueReader(paths.namespaces)
    document = read.element(root, paths.document)
    transaction = read.element(root, paths.transaction)
    agreement = read.element(transaction, paths.agreement)
    settlement = read.element(transaction, paths.settlement)
    summation = read.element(settlement, paths.summation)
    seller = read.element(agreement, "ram:SellerTradeParty")
    buyer = read.element(agreement, "ram:BuyerTradeParty")

    currency = read.text(settlement, "ram:InvoiceCurrencyCode")
    tax_currency = read.text(settlement, "ram:TaxCurrencyCode")
    tax_entries = read.currency_amounts(
        read.elements(summation, "ram:TaxTotalAmount"), "total VAT (BT-110)"
    )
    tax_total, tax_total_tax_currency = pick_tax_total(tax_entries, currency, tax_currency)

    means_code = None
    for means in read.elements(settlement, "ram:SpecifiedTradeSettlementPaymentMeans"):
        means_code = means_code or read.text(means, "ram:TypeCode")
    accounts = _payment_accounts(read, settlement)

    due_date = None
    for terms in read.elements(settlement, "ram:SpecifiedTradePaymentTerms"):
        due_date = due_date or read.date_102(
            terms, "ram:DueDateDateTime/udt:DateTimeString", "due date (BT-9)"
        )
    payment_terms, discount_terms = _payment_terms(read, settlement)

    vat_breakdown = tuple(
        VatBreakdown(
            category=read.text(tax, "ram:CategoryCode"),
            rate=read.decimal(tax, paths.rate, "VAT category rate (BT-119)"),
            basis=read.decimal(tax, "ram:BasisAmount", "VAT category taxable amount (BT-116)"),
            amount=read.decimal(tax, "ram:CalculatedAmount", "VAT category tax amount (BT-117)"),
            exemption_reason=read.text(tax, "ram:ExemptionReason"),
        )
        for tax in read.elements(settlement, "ram:ApplicableTradeTax")
    )

    invoice = Invoice(
        number=read.text(document, "ram:ID"),
        type_code=read.text(document, "ram:TypeCode"),
        issue_date=read.date_102(
            document, "ram:IssueDateTime/udt:DateTimeString", "issue date (BT-2)"
        ),
        due_date=due_date,
        service_date=read.optional_date(
            transaction,
            "ram:ApplicableHeaderTradeDelivery/ram:ActualDeliverySupplyChainEvent/"
            "ram:OccurrenceDateTime/udt:DateTimeString",
            "ram:ApplicableSupplyChainTradeDelivery/ram:ActualDeliverySupplyChainEvent/"
            "ram:OccurrenceDateTime/udt:DateTimeString",  # ZUGFeRD 1
        )
        or read.optional_date(
            settlement, "ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString"
        ),
        currency=currency,
        tax_currency=tax_currency,
        guideline_id=read.text(root, paths.guideline),
        seller_name=read.text(seller, "ram:Name"),
        seller_vat_id=_vat_id(read, seller),
        seller_tax_number=_vat_id(read, seller, "FC"),
        seller_email=read.text(
            seller, "ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID"
        )
        or read.email_address(seller, "ram:URIUniversalCommunication/ram:URIID"),
        seller_address=_address(read, seller),
        buyer_name=read.text(buyer, "ram:Name"),
        buyer_vat_id=_vat_id(read, buyer),
        buyer_address=_address(read, buyer),
        iban=accounts[0].iban if accounts else None,
        payment_accounts=accounts,
        payment_means_code=means_code,
        tax_total=tax_total,
        tax_total_tax_currency=tax_total_tax_currency,
        **read.totals(summation, CII_TOTALS),
        tax_total_entries=tax_entries,
        lines=_lines(read, transaction, paths),
        vat_breakdown=vat_breakdown,
        allowances_charges=tuple(_allowances_charges(read, settlement, paths, "document")),
        payment_terms=payment_terms,
        discount_terms=discount_terms,
        origin="xml",
    )
    return invoice, read.findings


def _payment_accounts(
    read: ValueReader, settlement: etree._Element | None
) -> tuple[PaymentAccount, ...]:
    """Every payee account of every payment means (BG-17), in document order: BT-84 is the IBAN
    (IBANID), or a national account id (ProprietaryID) where no IBAN is given; BT-86 the BIC of
    the payee's bank. Whatever the means' code says, a payee account named is one money may be
    sent to, so none is left out."""
    pairs = []
    for means in read.elements(settlement, "ram:SpecifiedTradeSettlementPaymentMeans"):
        bic = read.text(means, "ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID")
        for account in read.elements(means, "ram:PayeePartyCreditorFinancialAccount"):
            iban = read.text(account, "ram:IBANID") or read.text(account, "ram:ProprietaryID")
            pairs.append((iban, bic))
    return payment_accounts(pairs)


def _payment_terms(
    read: ValueReader, settlement: etree._Element | None
) -> tuple[str | None, tuple[DiscountTerm, ...]]:
    """BT-20 with its lines kept, and the discount steps: CII's structured
    ApplicableTradePaymentDiscountTerms where the document has them (Factur-X EXTENDED), else
    the XRechnung #SKONTO# lines or the words of BT-20 (core/skonto.py)."""
    texts: list[str] = []
    structured: list[DiscountTerm] = []
    for terms in read.elements(settlement, "ram:SpecifiedTradePaymentTerms"):
        for description in read.elements(terms, "ram:Description"):
            if description.text and description.text.strip():
                texts.append(description.text.strip("\r\n "))
        for node in read.elements(terms, "ram:ApplicableTradePaymentDiscountTerms"):
            term = _structured_term(read, node)
            if term is not None:
                structured.append(term)
    text = "\n".join(texts) or None
    return text, tuple(structured) or tuple(read_terms(text))


def _structured_term(read: ValueReader, node: etree._Element) -> DiscountTerm | None:
    """One ApplicableTradePaymentDiscountTerms: days (BasisPeriodMeasure in days), percent, base
    amount, start day (BasisDateTime). A step we cannot read whole is left out, not guessed."""
    period = read.element(node, "ram:BasisPeriodMeasure")
    percent = read.decimal(node, "ram:CalculationPercent", "payment discount percent")
    if period is None or percent is None:
        return None
    unit = (period.get("unitCode") or "DAY").upper()
    days = _whole_days((period.text or "").strip())
    if days is None:
        return None
    if unit in ("WEE", "WK"):
        days *= 7
    elif unit not in ("DAY", "D"):
        return None
    try:
        return DiscountTerm(
            days=days,
            percent=percent,
            base_amount=read.decimal(node, "ram:BasisAmount", "payment discount base amount"),
            start=read.optional_date(node, "ram:BasisDateTime/udt:DateTimeString"),
            source="cii",
        )
    except SkontoError:
        return None


def _whole_days(text: str) -> int | None:
    """A period measure as a whole number of at most MAX_DAYS, or None: read without ever
    expanding the number (int(Decimal('1E+200000000')) would take the worker for minutes), and
    NaN, infinities, fractions and negatives are no period."""
    try:
        measure = Decimal(text)
    except ArithmeticError:
        return None
    if not measure.is_finite() or measure < 0 or measure.adjusted() > len(str(MAX_DAYS)):
        return None
    if measure != measure.to_integral_value():
        return None
    days = int(measure)
    return days if days <= MAX_DAYS else None


def parse_cii(root: etree._Element) -> tuple[Invoice, list[Finding]]:
    """Map a CrossIndustryInvoice (D16B and later) root element."""
    return map_cross_industry(root, CII_PATHS)
