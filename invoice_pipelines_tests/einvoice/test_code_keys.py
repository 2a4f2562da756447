"""The Factur-X code checks run as key look-ups (`schematron.with_code_keys`) report what the
published rules report: a code outside its list is found, under the same rule, at the same
place, and a valid document stays without findings."""

from __future__ import annotations

import pytest

from invoice_pipelines.einvoice import schematron
from invoice_pipelines.einvoice.readers.xmlsafe import parse_xml
from invoice_pipelines.intake.domain.warm_up import made_up_invoices


def _cii() -> str:
    name, data = next(made_up_invoices(1))
    assert name.endswith(".xml") and b"CrossIndustryInvoice" in data[:500]
    return parse_xml(data).text


def _findings(text: str, *, as_published: bool) -> list[tuple]:
    report = schematron.svrl_report(
        schematron.FACTURX_XSLT["en16931"], text, as_published=as_published
    )
    return [(f.rule, f.message, f.severity) for f in schematron.svrl_findings(report)]


@pytest.mark.parametrize(
    ("written", "wrong"),
    [
        ('unitCode="H87"', 'unitCode="NOPE"'),  # unit codes (UN/ECE Rec 20)
        (">EUR<", ">EUX<"),  # currency codes
        (">DE<", ">XQ<"),  # country codes
    ],
)
def test_a_code_outside_its_list_is_found_as_published(written, wrong):
    text = _cii()
    assert written in text
    bad = text.replace(written, wrong)
    ours = _findings(bad, as_published=False)
    assert ours == _findings(bad, as_published=True)
    assert any(rule and rule.startswith("FX-SCH") for rule, _, _ in ours), ours


def test_a_valid_document_has_no_findings_either_way():
    text = _cii()
    assert _findings(text, as_published=False) == _findings(text, as_published=True) == []


def test_every_evaluated_code_check_is_a_key_look_up():
    source = (
        '<xsl:stylesheet><xsl:param name="ip_codedb"/>'
        '<xsl:when test="string-length($v)=0 or '
        '$ip_codedb/codedb/cl[@id=12]/enumeration[@value=$v]"/>'
        '<svrl:failed-assert test="$ip_codedb/codedb/cl[@id=12]/enumeration[@value=$v]"/>'
        "</xsl:stylesheet>"
    )
    keyed = schematron.with_code_keys(source)
    assert "key('ip_codes_12', $v, $ip_codedb)" in keyed
    assert '<xsl:key name="ip_codes_12" match="/codedb/cl[@id=12]/enumeration"' in keyed
    # the report's copy of the test is not rewritten
    assert 'failed-assert test="$ip_codedb/codedb/cl[@id=12]' in keyed
