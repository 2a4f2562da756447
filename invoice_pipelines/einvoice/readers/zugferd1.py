"""ZUGFeRD 1.0 (urn:ferd:CrossIndustryDocument:invoice:1p0) to the normalized invoice."""

from __future__ import annotations

from lxml import etree

from invoice_pipelines.core.invoice import ZUGFERD1_PROFILES, ZUGFERD1_URN_PREFIX, Invoice
from invoice_pipelines.core.rules import Finding
from invoice_pipelines.einvoice.readers.cii import CrossIndustryPaths, map_cross_industry

ZUGFERD1_NS = "urn:ferd:CrossIndustryDocument:invoice:1p0"
NAMESPACES = {
    "rsm": ZUGFERD1_NS,
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15",
}

ZUGFERD1_PATHS = CrossIndustryPaths(
    namespaces=NAMESPACES,
    guideline=(
        "rsm:SpecifiedExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"
    ),
    document="rsm:HeaderExchangedDocument",
    transaction="rsm:SpecifiedSupplyChainTradeTransaction",
    agreement="ram:ApplicableSupplyChainTradeAgreement",
    settlement="ram:ApplicableSupplyChainTradeSettlement",
    summation="ram:SpecifiedTradeSettlementMonetarySummation",
    line_item="ram:IncludedSupplyChainTradeLineItem",
    line_agreement="ram:SpecifiedSupplyChainTradeAgreement",
    line_delivery="ram:SpecifiedSupplyChainTradeDelivery",
    line_settlement="ram:SpecifiedSupplyChainTradeSettlement",
    line_summation="ram:SpecifiedTradeSettlementMonetarySummation",
    rate="ram:ApplicablePercent",
)


def parse_zugferd1(root: etree._Element) -> tuple[Invoice, list[Finding]]:
    """Map a ZUGFeRD 1.0 CrossIndustryDocument; an unknown profile URN is a finding of its own.

    No EN 16931 schematron applies to ZUGFeRD 1.0 (it predates the norm), so the profile URN is
    checked here: only basic, comfort and extended exist.
    """
    invoice, findings = map_cross_industry(root, ZUGFERD1_PATHS)
    urn = invoice.guideline_id
    if urn and invoice.profile is None:
        expected = ", ".join(ZUGFERD1_URN_PREFIX + p for p in ZUGFERD1_PROFILES)
        findings.append(
            Finding(
                "IP-ZF1-01",
                f"unknown ZUGFeRD 1.0 profile '{urn}' (expected one of {expected})",
                stage="parse",
            )
        )
    return invoice, findings
