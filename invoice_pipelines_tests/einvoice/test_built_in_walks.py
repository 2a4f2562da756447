"""`schematron.with_built_in_walks`: a pattern's walk left to Saxon's built-in rule only where
that is the same walk, with the same report."""

from __future__ import annotations

from invoice_pipelines.einvoice import schematron

RULES = """<xsl:stylesheet version="2.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:svrl="http://purl.oclc.org/dsdl/svrl">
  <xsl:template match="/">
    <svrl:schematron-output>
      <svrl:active-pattern/><xsl:apply-templates mode="M1" select="/"/>
      <svrl:active-pattern/><xsl:apply-templates mode="M2" select="/"/>
      <svrl:active-pattern/><xsl:apply-templates mode="M3" select="/"/>
    </svrl:schematron-output>
  </xsl:template>
  <xsl:template match="Invoice/Line[Amount]" priority="1000" mode="M1">
    <svrl:fired-rule context="Line"/>
    <xsl:if test="not(Amount &gt; 0)"><svrl:failed-assert id="POS"><svrl:text>not positive</svrl:text></svrl:failed-assert></xsl:if>
    <xsl:apply-templates mode="M1" select="@*|*"/>
  </xsl:template>
  <xsl:template match="text()" priority="-1" mode="M1"/>
  <xsl:template match="@*|node()" priority="-2" mode="M1">
    <xsl:apply-templates mode="M1" select="@*|*"/>
  </xsl:template>
  <xsl:template match="Line/text()" priority="1000" mode="M2">
    <xsl:if test="normalize-space(.)"><svrl:failed-assert id="TEXT"><svrl:text>text in a line</svrl:text></svrl:failed-assert></xsl:if>
  </xsl:template>
  <xsl:template match="text()" priority="-1" mode="M2"/>
  <xsl:template match="@*|node()" priority="-2" mode="M2">
    <xsl:apply-templates mode="M2" select="@*|*"/>
  </xsl:template>
  <xsl:template match="Note" priority="-3" mode="M3">
    <svrl:failed-assert id="LOW"><svrl:text>a note</svrl:text></svrl:failed-assert>
  </xsl:template>
  <xsl:template match="text()" priority="-1" mode="M3"/>
  <xsl:template match="@*|node()" priority="-2" mode="M3">
    <xsl:apply-templates mode="M3" select="@*|*"/>
  </xsl:template>
</xsl:stylesheet>
"""

INVOICE = (
    "<Invoice><!-- c --><Line>loose text<Amount>-5</Amount></Line>"
    '<Line kind="x"><Amount>3</Amount><Note>n</Note></Line></Invoice>'
)


def test_only_walks_that_are_the_same_are_left_to_saxon(tmp_path) -> None:
    """M1 (rules for elements only) walks by Saxon's built-in rule; M2 (a rule for text nodes,
    which the pruned walk never visits) and M3 (a rule below the walk's priority, which the walk
    wins over) keep their templates; the report is the published rules' own."""
    ours = schematron.streamlined(RULES)
    assert '<xsl:mode name="M1" on-no-match="shallow-skip"/>' in ours
    assert 'match="@*|node()" mode="M1"' not in ours and 'mode="M1" priority="-2"' not in ours
    assert 'name="M2"' not in ours and 'name="M3"' not in ours
    assert ours.count('match="@*|node()"') == 2

    rules = tmp_path / "rules.xsl"
    rules.write_text(RULES, encoding="utf-8")
    report = schematron.svrl_report(str(rules), INVOICE)
    published = schematron.svrl_report(str(rules), INVOICE, as_published=True)
    assert [f.rule for f in schematron.svrl_findings(report)] == ["POS"]
    assert [f.rule for f in schematron.svrl_findings(published)] == ["POS"]


def test_a_stylesheet_with_a_template_for_every_mode_is_kept() -> None:
    every = RULES.replace(
        "</xsl:stylesheet>", '<xsl:template match="comment()" mode="#all"/></xsl:stylesheet>'
    )
    assert schematron.with_built_in_walks(schematron.without_attribute_walks(every)) == (
        schematron.without_attribute_walks(every)
    )


def test_every_factur_x_profile_reports_as_published_on_the_samples() -> None:
    """The Factur-X profiles `test_samples` does not run (EXTENDED, MINIMUM) and EN16931, walked
    by Saxon's built-in rule: on every CII sample, the failed asserts and successful reports are
    the published rules' own, byte for byte and in order."""
    from invoice_pipelines.einvoice.readers.xmlsafe import parse_xml
    from invoice_pipelines_tests.intake.test_samples import require_samples, verdicts_in

    texts = []
    for path in sorted(require_samples().rglob("*.xml")):
        try:
            safe = parse_xml(path.read_bytes())
        except Exception:
            continue
        if "CrossIndustryInvoice" in safe.namespace:
            texts.append(safe.text)
    assert len(texts) >= 10
    found = 0
    for profile in ("extended", "minimum", "en16931"):
        xslt = schematron.FACTURX_XSLT[profile]
        published = (schematron.artefacts_dir() / xslt).read_text(encoding="utf-8-sig")
        assert "on-no-match" in schematron.streamlined(published), profile
        for text in texts:
            ours = verdicts_in(schematron.svrl_report(xslt, text))
            assert ours == verdicts_in(schematron.svrl_report(xslt, text, as_published=True))
            found += len(ours)
    assert found > 20
