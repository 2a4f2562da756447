"""OpenPEPPOL's Peppol BIS Billing 3.0 rules run as KoSIT's are: from the folder
INVOICE_PIPELINES_PEPPOL_RULES_DIR names (the suite points it at ../shared/reference/peppol), by
`check_peppol` and the read-back of what we write. The official examples pass them (and CEN's);
an XRechnung UBL fails exactly the two rules Peppol adds to it (R004, CL008); a missing
configuration is stated, never a silent pass."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from invoice_pipelines.einvoice import schematron, verdict
from invoice_pipelines.einvoice.cii import PEPPOL_BIS_GUIDELINE, XRECHNUNG_GUIDELINE
from invoice_pipelines.einvoice.classes import EInvoiceClass
from invoice_pipelines.einvoice.read import read_einvoice
from invoice_pipelines.einvoice.read_back import READ_BACK, RulesMissing
from invoice_pipelines.einvoice.schematron import PEPPOL_RULES_SETTING, check_peppol
from invoice_pipelines.einvoice.ubl import write_ubl
from invoice_pipelines_tests.conftest import PEPPOL_RULES_DIR, PEPPOL_SAMPLES_DIR
from invoice_pipelines_tests.documents.test_build import EXTRAS, make_invoice
from invoice_pipelines_tests.intake.test_samples import verdicts_in

D = Decimal
SAMPLES = sorted(PEPPOL_SAMPLES_DIR.glob("*.xml")) if PEPPOL_SAMPLES_DIR.is_dir() else []
PEPPOL_IDS = {"seller_peppol_id": "9930:DE123456789", "buyer_peppol_id": "0204:991-12345-67"}


@pytest.fixture(autouse=True)
def _peppol_rules():
    if not (PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl").is_file() or not SAMPLES:
        pytest.skip(f"Peppol rules or samples not found beside the repo ({PEPPOL_RULES_DIR})")


def _syntax(path: Path) -> str:
    return "ubl-creditnote" if b"<CreditNote" in path.read_bytes() else "ubl"


def test_there_are_official_examples_of_both_document_types():
    assert len(SAMPLES) >= 8
    assert {_syntax(path) for path in SAMPLES} == {"ubl", "ubl-creditnote"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_official_example_passes_the_peppol_rules(path):
    findings = check_peppol(path.read_text(encoding="utf-8"), _syntax(path))
    assert findings is not None
    assert [f for f in findings if f.severity == "error"] == []


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_official_example_reads_as_a_valid_einvoice(path):
    outcome = read_einvoice(path.read_bytes(), path.name)
    assert outcome.verdict.sources["en16931"] == verdict.CHECKED
    assert outcome.verdict.sources["peppol"] == verdict.CHECKED  # BT-24 names Peppol BIS
    assert [(f.stage, f.rule) for f in outcome.errors] == []
    assert outcome.verdict.klass is EInvoiceClass.VALID


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_the_streamlined_peppol_rules_find_what_the_published_ones_find(path):
    text = path.read_text(encoding="utf-8")
    rules = str(PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl")
    ours = schematron.svrl_report(rules, text)
    published = schematron.svrl_report(rules, text, as_published=True)
    assert verdicts_in(ours) == verdicts_in(published)


def _invoice():
    return make_invoice([("Beratung", D("8"), D("120"), "S", D("19"))])


def test_an_xrechnung_ubl_fails_exactly_the_two_rules_peppol_adds_and_peppol_bis_none():
    invoice = _invoice()
    xrechnung = write_ubl(invoice, customization_id=XRECHNUNG_GUIDELINE, extra=EXTRAS)
    errors = {f.rule for f in check_peppol(xrechnung.decode(), "ubl") if f.severity == "error"}
    assert errors == {"PEPPOL-EN16931-R004", "PEPPOL-EN16931-CL008"}

    peppol = _peppol_document(invoice)
    assert [f for f in check_peppol(peppol, "ubl") if f.severity == "error"] == []
    outcome = READ_BACK.read(peppol.encode(), "peppol.xml")
    assert outcome.status == "VALIDATED" and outcome.errors == []


def _peppol_document(invoice) -> str:
    extras = {**EXTRAS, **PEPPOL_IDS}
    return write_ubl(invoice, customization_id=PEPPOL_BIS_GUIDELINE, extra=extras).decode()


def test_the_read_back_names_a_bad_gln_that_en16931_does_not_mind():
    good = _peppol_document(_invoice())
    bad = good.replace('schemeID="0204">991-12345-67', 'schemeID="0088">4035811991022')
    assert bad != good
    # read as a received document is: CEN and ours find nothing, OpenPEPPOL's rules the GLN, an
    # error of the CIUS that does not make the EN 16931 e-invoice one with errors (verdict.py)
    read = READ_BACK.read(bad.encode(), "peppol.xml")
    assert [(f.stage, f.rule) for f in read.errors] == [("peppol", "PEPPOL-COMMON-R040")]
    assert read.verdict.klass is EInvoiceClass.VALID and read.status == "VALIDATED"
    assert read.verdict.cius_rules == ("PEPPOL-COMMON-R040",)
    errors = [f for f in READ_BACK.peppol_findings(bad, "ubl") if f.severity == "error"]
    assert [f.rule for f in errors] == ["PEPPOL-COMMON-R040"]
    assert "GLN" in errors[0].message and "EndpointID" in errors[0].message


def test_without_the_setting_the_read_back_says_the_rules_are_not_configured(monkeypatch):
    monkeypatch.delenv(PEPPOL_RULES_SETTING, raising=False)
    peppol = _peppol_document(_invoice())
    assert check_peppol(peppol, "ubl") is None
    read = read_einvoice(peppol.encode(), "peppol.xml")
    assert read.verdict.sources["peppol"] == verdict.PEPPOL_NOT_CONFIGURED
    assert READ_BACK.peppol_findings(peppol, "ubl") is None
    assert READ_BACK.peppol_rules_setting == PEPPOL_RULES_SETTING


def test_a_folder_without_the_rules_is_named_not_skipped(monkeypatch, tmp_path):
    monkeypatch.setenv(PEPPOL_RULES_SETTING, str(tmp_path))
    peppol = _peppol_document(_invoice())
    with pytest.raises(schematron.ArtefactsMissing, match=PEPPOL_RULES_SETTING):
        check_peppol(peppol, "ubl")
    with pytest.raises(RulesMissing, match="PEPPOL-EN16931-UBL.xsl is not in that folder"):
        READ_BACK.peppol_findings(peppol, "ubl-creditnote")
    # a received one: the source failed, said as a warning; CEN's rules still judge it
    read = read_einvoice(peppol.encode(), "peppol.xml")
    assert read.verdict.sources["peppol"].startswith("failed: ")
    assert [(f.stage, f.severity) for f in read.warnings if f.stage == "peppol"] == [
        ("peppol", "warning")
    ]
    assert read.verdict.klass is EInvoiceClass.VALID


def test_a_document_that_is_not_peppol_bis_costs_the_peppol_rules_nothing():
    xrechnung = write_ubl(_invoice(), customization_id=XRECHNUNG_GUIDELINE, extra=EXTRAS)
    read = read_einvoice(xrechnung, "xrechnung.xml")
    assert read.verdict.sources["peppol"] == verdict.NOT_APPLICABLE
    assert not [f for f in read.errors + read.warnings if f.stage == "peppol"]
