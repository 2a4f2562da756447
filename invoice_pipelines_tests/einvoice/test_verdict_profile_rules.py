"""The Factur-X profile rules beside CEN's own: the profile's copies of CEN's rules are left out
(CEN's run reports them), every rule of the profile's own stays and still finds what it found.

What a user notices: a Factur-X rule (FX-SCH-*) broken by a document is still among its findings,
a CEN rule is reported once (by the en16931 stage), and the verdict is the one the published rules
give.
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from invoice_pipelines.einvoice import schematron, verdict
from invoice_pipelines.einvoice.readers.xmlsafe import parse_xml
from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices
from invoice_pipelines_tests.einvoice.test_verdict import NS, generated_cii, parse, rules_of
from invoice_pipelines_tests.intake.test_samples import require_samples, verdicts_in

PROFILES = ("en16931", "extended", "basic", "basicwl", "minimum")
# How the published XSLTs (Factur-X and CEN alike) write an assert's or report's rule id; read
# here with a pattern of its own, not with the code under test.
RULE_ID = re.compile(r'<xsl:attribute name="id">\s*([^<\s]+)\s*</xsl:attribute>')


def cen_cii() -> Path:
    rules = verdict.cen_rules("cii")
    if rules is None:
        pytest.skip(f"{verdict.EN16931_RULES_SETTING} is not set")
    return rules


def published(profile: str) -> str:
    path = schematron.artefacts_dir() / schematron.FACTURX_XSLT[profile]
    return path.read_text(encoding="utf-8-sig")


def ids_in(source: str) -> Counter[str]:
    return Counter(RULE_ID.findall(source))


@pytest.mark.parametrize("profile", PROFILES)
def test_the_profile_rules_beside_cen_keep_every_factur_x_rule_and_none_of_cens(
    profile: str,
) -> None:
    cen_text = cen_cii().read_text(encoding="utf-8-sig")
    cen = set(ids_in(cen_text))
    assert {"BR-16", "BR-CL-25", "CII-SR-465", "CII-DT-031"} <= cen
    theirs = ids_in(published(profile))
    ours = ids_in(schematron.without_rules(published(profile), schematron.rule_ids(cen_text)))
    own = {rule: n for rule, n in theirs.items() if rule not in cen}
    assert any(rule.startswith("FX-SCH-") for rule in own)
    # every rule of the profile's own, each assert of it: FX-SCH-*, BR-FXEXT-*, PEPPOL-*
    assert {rule: n for rule, n in ours.items() if rule in own} == own
    assert [rule for rule in ours if rule in cen] == []
    if profile in ("en16931", "extended", "basicwl"):
        assert "BR-02" in theirs  # these publish copies of CEN's rules under CEN's ids
    else:  # BASIC and MINIMUM give their copies FX-SCH ids: nothing of theirs is CEN's
        assert ours == theirs


def unknown_unit_code() -> bytes:
    """A generated invoice with a unit code outside UN/ECE Rec. 20."""
    root = generated_cii()
    root.xpath("//ram:BilledQuantity", namespaces=NS)[0].set("unitCode", "QQQ1")
    return etree.tostring(root)


def wrong_grand_total() -> bytes:
    """A generated invoice whose total with VAT is not net + VAT (BR-CO-15)."""
    root = generated_cii()
    (total,) = root.xpath("//ram:GrandTotalAmount", namespaces=NS)
    total.text = str(Decimal(total.text) + Decimal("10.00"))
    return etree.tostring(root)


def without_invoice_number() -> bytes:
    """A generated invoice whose invoice number (BT-1) is empty (BR-02)."""
    root = generated_cii()
    (number,) = root.xpath("/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID", namespaces=NS)
    number.text = ""
    return etree.tostring(root)


def _cii_documents() -> list[str]:
    texts = []
    samples = require_samples()
    documents = [path.read_bytes() for path in sorted(samples.rglob("*.xml"))]
    documents += [data for _, data in synthetic_xml_invoices(6, seed=5, kinds=("cii",))]
    documents += [unknown_unit_code(), wrong_grand_total(), without_invoice_number()]
    for data in documents:
        try:
            safe = parse_xml(data)
        except Exception:
            continue  # not well-formed XML; never reaches the schematron
        if "CrossIndustryInvoice" in safe.namespace:
            texts.append(safe.text)
    return texts


def _rule_of(found: bytes) -> str | None:
    return etree.fromstring(found).get("id")


@pytest.mark.parametrize("profile", ["en16931", "extended", "basicwl"])
def test_the_profile_rules_beside_cen_find_what_the_published_ones_find_but_cens(
    profile: str,
) -> None:
    """On every CII sample and generated invoices, the profile rules as the intake runs them beside
    CEN's report byte for byte the published rules' failed asserts and reports, in order, less
    those under a CEN rule id."""
    cen = cen_cii()
    cen_ids = set(ids_in(cen.read_text(encoding="utf-8-sig")))
    rules = schematron.Rules(schematron.FACTURX_XSLT[profile], leaving_out=str(cen))
    own_found = left_out = 0
    texts = _cii_documents()
    assert len(texts) >= 10
    for text in texts:
        theirs = verdicts_in(
            schematron.svrl_report(schematron.FACTURX_XSLT[profile], text, as_published=True)
        )
        expected = [found for found in theirs if _rule_of(found) not in cen_ids]
        assert verdicts_in(schematron.svrl_report(rules, text)) == expected
        own_found += sum(1 for found in expected if (_rule_of(found) or "").startswith("FX-SCH-"))
        left_out += len(theirs) - len(expected)
    assert own_found > 0 and left_out > 0  # the comparison covered both kinds


def test_a_document_breaking_a_factur_x_rule_still_gets_that_finding() -> None:
    """A unit code outside UN/ECE Rec. 20: CEN reports BR-CL-23 (and decides), the Factur-X
    EN16931 rules their own code-list rule; BR-CL-23 is not reported twice."""
    cen_cii()
    result = parse(unknown_unit_code())
    assert result.status == "FAILED"
    assert result.verdict is not None and result.verdict.rules == ("BR-CL-23",)
    assert "BR-CL-23" in rules_of(result, "en16931")
    facturx = rules_of(result, "facturx")
    assert facturx and all(rule.startswith("FX-SCH-") for rule in facturx), facturx
    [message] = [f.message for f in result.errors if f.stage == "facturx"]
    assert "@unitCode" in message


def test_a_published_sample_keeps_its_factur_x_finding() -> None:
    """EN16931_ElektronischeAdresse: an EAS code (9958) CEN 1.3.16 does not know (BR-CL-25), nor
    the Factur-X code list (FX-SCH-A-000571); both findings stay, CEN's decides."""
    cen_cii()
    relative = "ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_ElektronischeAdresse.cii.xml"
    result = parse((require_samples() / relative).read_bytes())
    assert "FX-SCH-A-000571" in rules_of(result, "facturx")
    assert "BR-CL-25" in rules_of(result, "en16931")
    assert result.verdict is not None and "BR-CL-25" in result.verdict.rules
    assert result.status == "FAILED"


def test_a_cen_rule_is_reported_by_cen_alone_and_by_the_profile_without_cen(monkeypatch) -> None:
    """An EN16931-profile invoice whose total with VAT is wrong breaks BR-CO-15: reported once, by
    CEN's run. Without the CEN folder the profile rules are the judge and report it themselves."""
    cen_cii()
    data = wrong_grand_total()
    beside_cen = parse(data)
    assert "BR-CO-15" in rules_of(beside_cen, "en16931")
    assert "BR-CO-15" not in rules_of(beside_cen, "facturx")
    assert "BR-CO-15" in beside_cen.verdict.rules

    monkeypatch.delenv(verdict.EN16931_RULES_SETTING)
    alone = parse(data)
    assert "BR-CO-15" in rules_of(alone, "facturx")
    assert "BR-CO-15" in alone.verdict.rules
    assert alone.status == beside_cen.status == "FAILED"
