"""Our own rules judge a line's VAT rate (issue 46): without the CEN rules configured, a CII or
UBL line at 25 % beside a 19 %/7 % breakdown, or at a rate of 100,001 digits, is no longer
VALIDATED. Documents are our own writer's, changed in memory; what a user notices is the status
and the rule ids with their words."""

from __future__ import annotations

import pytest
from lxml import etree

from invoice_pipelines.einvoice import verdict
from invoice_pipelines.intake.domain.parse import ParseOutcome, parse_document
from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices

NS = {
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
LINE_RATE = {
    "cii": "//ram:IncludedSupplyChainTradeLineItem//ram:ApplicableTradeTax"
    "/ram:RateApplicablePercent",
    "ubl": "//cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory/cbc:Percent",
}
KINDS = ["cii", "xrechnung-cii", "ubl"]


@pytest.fixture(autouse=True)
def _without_cen_rules(monkeypatch) -> None:
    monkeypatch.delenv(verdict.EN16931_RULES_SETTING, raising=False)


def _document(kind: str, rate: str | None = None) -> bytes:
    _, data = next(synthetic_xml_invoices(1, seed=3, kinds=(kind,)))
    if rate is None:
        return data
    root = etree.fromstring(data)
    root.xpath(LINE_RATE[kind.removeprefix("xrechnung-")], namespaces=NS)[0].text = rate
    return etree.tostring(root)


def _ours(result: ParseOutcome) -> dict[str | None, str]:
    return {f.rule: f.message for f in result.errors if f.stage == "rules"}


@pytest.mark.parametrize("kind", KINDS)
def test_the_document_as_written_is_validated(kind: str) -> None:
    result = parse_document(_document(kind), "invoice.xml")
    assert result.status == "VALIDATED", result.errors
    assert "CEN rules not configured" in result.verdict.sources["en16931"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_line_at_a_rate_the_breakdown_lacks_fails_our_rules(kind: str) -> None:
    result = parse_document(_document(kind, "25"), "invoice.xml")
    assert result.status == "FAILED"
    ours = _ours(result)
    assert {"BR-S-08", "IP-VAT-01"} <= set(ours), ours
    assert "at 25 % has no row in the VAT breakdown (BG-23)" in ours["IP-VAT-01"]
    assert {"BR-S-08", "IP-VAT-01"} <= set(result.verdict.rules)


@pytest.mark.parametrize("kind", KINDS)
def test_a_rate_above_100_fails_our_rules(kind: str) -> None:
    result = parse_document(_document(kind, "119"), "invoice.xml")
    assert result.status == "FAILED"
    assert "VAT rate 119 % is not between 0 and 100" in _ours(result)["IP-VAT-02"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_rate_of_100001_digits_is_a_finding(kind: str) -> None:
    result = parse_document(_document(kind, "1" + "0" * 100_000), "invoice.xml")
    assert result.status == "FAILED"
    ours = _ours(result)
    assert "a number of 100001 characters ('10000000000000000000…')" in ours["IP-NUM-01"]
    assert "IP-NUM-01" in result.verdict.rules
    # the rate is not read: none of our findings carries a number of that size
    assert all(len(f.message) < 200 for f in result.errors if f.stage == "rules")
