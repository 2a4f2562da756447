"""The official verdict on received XML: each class of the BMF letter and each rule source.

Documents are the shared public samples (read in place) and invoices our own writer makes,
changed in memory where a test needs a defect, read by the library (`einvoice.read.read_einvoice`,
what the intake's parse_document calls for XML and a PDF's invoice XML). What a user notices: the status the document gets,
its class with the rule ids, and which rule sources ran.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from lxml import etree

from invoice_pipelines.einvoice import verdict
from invoice_pipelines.einvoice.classes import (
    EInvoiceClass,
    NotEInvoiceReason,
    Verdict,
    action_for,
)
from invoice_pipelines.einvoice.read import ParseOutcome, read_einvoice
from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices
from invoice_pipelines_tests.intake.test_samples import require_samples

RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": RAM,
    "cbc": CBC,
}
KOSIT = "xrechnung-testsuite/src/test/business-cases/standard/"
XR_EXTENSION = (
    "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
    "#conformant#urn:xeinkauf.de:kosit:extension:xrechnung_3.0"
)


def sample(relative: str) -> bytes:
    return (require_samples() / relative).read_bytes()


def parse(data: bytes, name: str = "invoice.xml") -> ParseOutcome:
    return read_einvoice(data, name)


def rules_of(result: ParseOutcome, stage: str, severity: str = "error") -> set[str | None]:
    findings = result.errors if severity == "error" else result.warnings
    return {f.rule for f in findings if f.stage == stage}


def generated_cii() -> etree._Element:
    _, data = next(synthetic_xml_invoices(1, seed=3, kinds=("cii",)))
    return etree.fromstring(data)


def _set(root: etree._Element, path: str, value: str) -> None:
    (node,) = root.xpath(path, namespaces=NS)
    node.text = value


def without_lines(root: etree._Element, guideline: str) -> bytes:
    _set(root, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", guideline)
    for line in root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS):
        line.getparent().remove(line)
    return etree.tostring(root)


def test_a_valid_einvoice_is_judged_by_every_source_that_applies() -> None:
    result = parse(etree.tostring(generated_cii()))
    assert result.status == "VALIDATED"
    assert result.verdict is not None
    assert result.verdict.klass is EInvoiceClass.VALID
    assert result.verdict.rules == ()
    sources = result.verdict.sources
    assert (sources["xsd"], sources["en16931"], sources["facturx"], sources["ours"]) == (
        "checked",
        "checked",
        "checked",
        "checked",
    )
    assert sources["xrechnung"] == "not applicable"
    assert result.raw["verdict"]["class"] == "valid_einvoice"


def test_basic_wl_is_not_an_einvoice_and_goes_to_review() -> None:
    """BASIC-WL has no lines: CEN rejects it (BR-16 ...) and the law does not count it as an
    e-invoice; by default a person looks at it instead of it being booked or rejected unseen."""
    result = parse(without_lines(generated_cii(), "urn:factur-x.eu:1p0:basicwl"))
    assert result.verdict is not None
    assert result.verdict.policy_key == "not_einvoice.profile"
    assert "BR-16" in result.verdict.rules
    assert "BR-16" in rules_of(result, "en16931")
    assert result.status == "NEEDS_REVIEW"
    assert "MINIMUM or BASIC-WL" in result.verdict.label


def test_minimum_is_not_an_einvoice_whatever_its_rules_say() -> None:
    invoice = parse(etree.tostring(generated_cii())).invoice
    assert invoice is not None
    for guideline in ("urn:factur-x.eu:1p0:minimum", "urn:zugferd.de:2p0:minimum"):
        minimum = dataclasses.replace(invoice, guideline_id=guideline)
        judged = verdict.classify("cii", minimum, [], {"en16931": "checked"})
        assert (judged.klass, judged.reason) == (
            EInvoiceClass.NOT_EINVOICE,
            NotEInvoiceReason.PROFILE,
        )


def test_a_cen_datatype_rule_decides_where_the_factur_x_rules_see_nothing_else() -> None:
    """Facture_FR_BASIC: the superseded guideline URN is a Factur-X finding (kept, stage facturx);
    CII-DT-031 (currencyID where it is not allowed) is CEN's fatal rule and decides."""
    result = parse(
        sample("ZUGFeRD-corpus/ZUGFeRDv2/fail/FNFE-factur-x-examples/Facture_FR_BASIC.pdf"),
        "Facture_FR_BASIC.pdf",
    )
    assert result.status == "FAILED"
    assert result.verdict is not None
    assert result.verdict.policy_key == "einvoice_with_errors"
    assert result.verdict.rules == ("CII-DT-031",)


def test_a_cen_warning_stays_a_warning() -> None:
    """CII-SR-465 is a warning in CEN 1.3.16; the XRechnung hybrid stays valid."""
    result = parse(sample("ZUGFeRD-corpus/XML-Rechnung/FX/XRECHNUNG_Einfach.pdf"), "x.pdf")
    assert result.status == "VALIDATED", [e.to_json_dict() for e in result.errors]
    assert "CII-SR-465" in rules_of(result, "en16931", "warning")


def test_a_factur_x_rule_outside_en16931_does_not_decide() -> None:
    """The 2017 form of the guideline URN breaks a Factur-X rule (FX-SCH-A-*), not EN 16931."""
    root = generated_cii()
    _set(
        root,
        "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
        "urn:cen.eu:en16931:2017:compliant:factur-x.eu:1p0:en16931",
    )
    result = parse(etree.tostring(root))
    facturx = rules_of(result, "facturx")
    assert facturx and all(rule.startswith("FX-SCH") for rule in facturx)
    assert result.verdict is not None and result.verdict.klass is EInvoiceClass.VALID
    assert result.status == "VALIDATED"


def test_without_the_cen_folder_the_verdict_says_so(monkeypatch) -> None:
    monkeypatch.delenv(verdict.EN16931_RULES_SETTING, raising=False)
    result = parse(sample("ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_ElektronischeAdresse.cii.xml"))
    assert result.verdict is not None
    assert result.verdict.sources["en16931"] == verdict.CEN_NOT_CONFIGURED
    assert "CEN rules not configured" in result.verdict.sources["en16931"]
    # the Factur-X profile rules are then the nearest official judge and decide
    assert result.verdict.rules == ("FX-SCH-A-000571",)
    assert result.status == "FAILED"


def test_a_cen_folder_without_the_rules_fails_closed(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(verdict.EN16931_RULES_SETTING, str(tmp_path))
    result = parse(etree.tostring(generated_cii()))
    assert result.status == "FAILED"
    [error] = [e for e in result.errors if e.stage == "en16931"]
    assert verdict.EN16931_RULES_SETTING in error.message
    assert "EN16931-CII-validation.xslt" in error.message


def _ubl_with_wrong_amount_due(customization: str | None) -> bytes:
    root = etree.fromstring(sample(KOSIT + "01.01a-INVOICE_ubl.xml"))
    if customization is not None:
        _set(root, "/*/cbc:CustomizationID", customization)
    _set(root, "//cbc:PayableAmount", "366.90")
    return etree.tostring(root)


def test_kosit_scenario_levels_apply_to_cen_and_our_rules() -> None:
    """BR-CO-16 (amount due) is fatal for CEN and for the XRechnung standard, information in
    KoSIT's extension scenario: KoSIT's validator accepts such an extension document."""
    standard = parse(_ubl_with_wrong_amount_due(None))
    assert standard.status == "FAILED"
    assert "BR-CO-16" in standard.verdict.rules

    extension = parse(_ubl_with_wrong_amount_due(XR_EXTENSION))
    assert extension.status == "VALIDATED", [e.to_json_dict() for e in extension.errors]
    notes = [w.message for w in extension.warnings if w.rule == "BR-CO-16"]
    assert notes and all("information in KoSIT's validator configuration" in m for m in notes)
    assert "Extension" in extension.verdict.sources["xrechnung_scenario"]


def test_kosit_levels_are_read_from_the_configuration_file(monkeypatch, tmp_path: Path) -> None:
    rules = Path(os.environ[verdict.schematron.KOSIT_RULES_SETTING])
    for name in ("XRechnung-CII-validation.xsl", "XRechnung-UBL-validation.xsl"):
        (tmp_path / name).symlink_to(rules / name)
    monkeypatch.setenv(verdict.schematron.KOSIT_RULES_SETTING, str(tmp_path))
    # without scenarios.xml: the rules' own flags count
    assert parse(_ubl_with_wrong_amount_due(XR_EXTENSION)).status == "FAILED"


def test_xrechnung_cius_errors_are_recorded_but_not_binding_for_b2b() -> None:
    """Without the buyer reference (BT-10) an XRechnung breaks BR-DE-15, a rule of the German
    CIUS: recorded with KoSIT's severity, but still a valid EN 16931 e-invoice."""
    root = etree.fromstring(sample(KOSIT + "01.01a-INVOICE_uncefact.xml"))
    for node in root.xpath("//ram:BuyerReference", namespaces=NS):
        node.getparent().remove(node)
    result = parse(etree.tostring(root))
    assert "BR-DE-15" in rules_of(result, "xrechnung")
    assert result.verdict is not None
    assert result.verdict.klass is EInvoiceClass.VALID
    assert "BR-DE-15" in result.verdict.cius_rules
    assert result.status == "VALIDATED"


def test_without_the_kosit_folder_the_verdict_says_so(monkeypatch) -> None:
    monkeypatch.delenv(verdict.schematron.KOSIT_RULES_SETTING, raising=False)
    result = parse(sample(KOSIT + "01.01a-INVOICE_uncefact.xml"))
    assert result.verdict.sources["xrechnung"] == verdict.KOSIT_NOT_CONFIGURED
    assert result.status == "VALIDATED"


def test_format_errors_are_not_einvoices() -> None:
    not_xml = parse(b"<Invoice>broken", "x.xml")
    assert not_xml.verdict.policy_key == "not_einvoice.format_error"
    other_root = parse(b"<?xml version='1.0'?><Order xmlns='urn:x'/>", "x.xml")
    assert other_root.verdict.policy_key == "not_einvoice.format_error"
    assert other_root.status == "FAILED"


@pytest.mark.parametrize(
    ("klass", "reason", "own_errors", "policy", "action"),
    [
        (EInvoiceClass.VALID, None, False, None, "accept"),
        (EInvoiceClass.WITH_ERRORS, None, True, None, "reject"),
        (EInvoiceClass.WITH_ERRORS, None, True, {"einvoice_with_errors": "accept"}, "accept"),
        (EInvoiceClass.NOT_EINVOICE, NotEInvoiceReason.FORMAT_ERROR, False, None, "reject"),
        (EInvoiceClass.NOT_EINVOICE, NotEInvoiceReason.PROFILE, False, None, "review"),
        (EInvoiceClass.NOT_EINVOICE, NotEInvoiceReason.LEGACY_FORMAT, False, None, "accept"),
        # a ZUGFeRD 1.0 invoice whose totals do not add up is not booked unseen
        (EInvoiceClass.NOT_EINVOICE, NotEInvoiceReason.LEGACY_FORMAT, True, None, "review"),
        (EInvoiceClass.NOT_EINVOICE, NotEInvoiceReason.NO_XML, True, None, "review"),
        (
            EInvoiceClass.NOT_EINVOICE,
            NotEInvoiceReason.NO_XML,
            False,
            {"not_einvoice.no_xml": "reject"},
            "reject",
        ),
    ],
)
def test_what_each_class_leads_to(klass, reason, own_errors, policy, action) -> None:
    assert action_for(Verdict(klass, reason), policy, own_errors=own_errors) == action


def test_a_verdict_survives_its_json() -> None:
    judged = Verdict(
        EInvoiceClass.WITH_ERRORS, None, ("BR-CO-15",), {"en16931": "checked"}, ("BR-DE-15",)
    )
    assert Verdict.from_json_dict(judged.to_json_dict()) == judged


@pytest.mark.parametrize("rate", ["25", "1" + "0" * 100_000])
@pytest.mark.parametrize("kind", ["xrechnung-cii", "cii"])
def test_a_line_vat_rate_beside_another_breakdown_fails_cen(kind: str, rate: str) -> None:
    """A line at 25 % (or a rate of 100,001 digits) beside a 19 % breakdown: CEN's CII rules
    (BR-S-08) reject it, for XRechnung CII as for Factur-X (issue 38: it was VALIDATED when
    only our own rules judged XRechnung CII)."""
    _, data = next(synthetic_xml_invoices(1, seed=3, kinds=(kind,)))
    root = etree.fromstring(data)
    line_rate = root.xpath(
        "//ram:IncludedSupplyChainTradeLineItem//ram:ApplicableTradeTax/ram:RateApplicablePercent",
        namespaces=NS,
    )[0]
    line_rate.text = rate
    result = parse(etree.tostring(root))
    assert result.status == "FAILED"
    assert "BR-S-08" in result.verdict.rules
