"""Our verdict against the official one on every shared e-invoice sample, and the CEN testSet cases.

`python -m invoice_pipelines_tests.intake.verdicts` prints the figure (N of M equal) and every
mismatch; `test_samples.py` fails on any mismatch. The samples are read in place from
../shared/samples/einvoice (MANIFEST.md); nothing is copied into the repo.

The official verdict of a document is what the official artefacts say: the CEN EN 16931 rules
(0 fatal asserts = valid) plus, for Factur-X/ZUGFeRD, the XSD and the Factur-X profile schematron,
as MANIFEST.md records them. One file is labelled differently by the corpus than by those
artefacts: noNetPriceValidation.xml sits in the corpus's fail/ folder because Mustang's own
calculation check rejects it, while CEN reports 0 fatal. Its official verdict is valid; our own
line check reports it as a warning (IP-LINE-01), which `WARNING_EXPECTED` pins.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from invoice_pipelines.intake.domain.parse import ParseOutcome, parse_document
from invoice_pipelines_tests.conftest import SAMPLES_DIR

SAMPLES = SAMPLES_DIR
VEFA = "{http://difi.no/xsd/vefa/validator/1.0}"

FX = "ZUGFeRD-corpus/XML-Rechnung/"
ZF2 = "ZUGFeRD-corpus/ZUGFeRDv2/"
KOSIT = "xrechnung-testsuite/src/test/"

# relative path -> (official verdict, why), for every document MANIFEST.md lists (not testSets)
OFFICIAL: dict[str, tuple[str, str]] = {
    FX + "FX/EN16931_Einfach.pdf": ("valid", "CEN 0 fatal, XSD and Factur-X schematron clean"),
    FX + "CII/EN16931_Einfach.cii.xml": ("valid", "CEN 0 fatal"),
    FX + "UBL/EN16931_Einfach.ubl.xml": (
        "valid",
        "CEN-UBL 0 fatal; names Peppol BIS: OpenPEPPOL's errors kept as the CIUS's, not deciding",
    ),
    FX + "FX/XRECHNUNG_Einfach.pdf": ("valid", "CEN 0 fatal (XRechnung guideline ID)"),
    FX + "FX/EN16931_Betriebskostenabrechnung.pdf": ("valid", "CEN 0 fatal"),
    FX + "CII/EN16931_Gutschrift.cii.xml": ("valid", "CEN 0 fatal"),
    FX + "CII/EN16931_Innergemeinschaftliche_Lieferungen.cii.xml": ("valid", "CEN 0 fatal"),
    FX + "CII/EN16931_Rabatte.cii.xml": ("valid", "CEN 0 fatal"),
    ZF2 + "correct/intarsys/BASIC/zugferd_2p0_BASIC_Einfach.pdf": ("valid", "XSD ok, CEN 0"),
    ZF2 + "correct/Mustangproject/MustangGnuaccountingBeispielRE-20201121_508_withBOM.pdf": (
        "valid",
        "CEN 0 fatal",
    ),
    "ZUGFeRD-corpus/ZUGFeRDv1/correct/Intarsys/ZUGFeRD_1p0_COMFORT_Einfach.pdf": (
        "valid",
        "ZUGFeRD 1.0 XSD ok; corpus correct/",
    ),
    "eInvoicing-EN16931/cii/examples/CII_business_example_02.xml": ("valid", "CEN 0 fatal"),
    "eInvoicing-EN16931/ubl/examples/ubl-tc434-creditnote1.xml": ("valid", "CEN 0 fatal"),
    KOSIT + "business-cases/standard/01.01a-INVOICE_uncefact.xml": ("valid", "KoSIT positive"),
    KOSIT + "business-cases/standard/01.01a-INVOICE_ubl.xml": ("valid", "KoSIT positive"),
    KOSIT + "business-cases/standard/01.21a-INVOICE_uncefact.xml": ("valid", "KoSIT positive"),
    KOSIT + "business-cases/standard/01.20a-INVOICE_ubl.xml": ("valid", "KoSIT positive"),
    KOSIT + "technical-cases/cius/01.06_minimal_test_uncefact.xml": ("valid", "KoSIT positive"),
    KOSIT + "technical-cases/cius/01.06_minimal_test_ubl.xml": ("valid", "KoSIT positive"),
    FX + "UBL/not_validating_full_invoice_based_onTest_EeISI_300_CENfullmodel.ubl.xml": (
        "invalid",
        "CEN BR-CO-10, BR-CO-15",
    ),
    ZF2 + "fail/Mustangproject/noNetPriceValidation.xml": (
        "valid",
        "CEN 0 fatal; corpus fail/ only for Mustang's own line check (our IP-LINE-01 warning)",
    ),
    FX + "CII/EN16931_ElektronischeAdresse.cii.xml": (
        "invalid",
        "code-list drift: EAS 9958 (CEN BR-CL-25, Factur-X FX-SCH-A-000571)",
    ),
    ZF2 + "fail/FNFE-factur-x-examples/Facture_UE_EN16931.pdf": ("invalid", "CEN BR-IC-11"),
    ZF2 + "fail/FNFE-factur-x-examples/Facture_FR_BASIC.pdf": (
        "invalid",
        "Factur-X BASIC FX-SCH-A-000026",
    ),
    ZF2 + "fail/Mustangproject/MustangGnuaccountingBeispielRE-20190610_507a.pdf": (
        "invalid",
        "XSD: BuyerReference without namespace",
    ),
    ZF2 + "fail/Mustangproject/factur-x-invalid-xml-encoding-attribute.pdf": (
        "invalid",
        "embedded XML not parseable",
    ),
    ZF2 + "fail/python-factur-x/python-factur-x.pdf": ("invalid", "XSD: unexpected Description"),
    "ZUGFeRD-corpus/ZUGFeRDv1/fail/Mustangproject/fail1.pdf": (
        "invalid",
        "ZUGFeRD 1.0 XSD, unknown profile URN",
    ),
    "ZUGFeRD-corpus/unstructured/RE-E-974-Hetzner_2016-01-19_R0005532486.pdf": (
        "valid",
        "no e-invoice: text PDF whose totals add up (no official artefact applies)",
    ),
}
# Valid documents whose official verdict is valid but that must still show our own finding.
WARNING_EXPECTED = {ZF2 + "fail/Mustangproject/noNetPriceValidation.xml": "IP-LINE-01"}

TEST_SETS = (
    "eInvoicing-EN16931/test/Invoice-unit-UBL/BR-CO-15.xml",
    "eInvoicing-EN16931/test/cii/BR-CO-15-2.xml",
    "eInvoicing-EN16931/test/cii/BR-CO-17.xml",
    "eInvoicing-EN16931/test/Invoice-unit-UBL/BR-CO-10.xml",
    "eInvoicing-EN16931/test/Invoice-unit-UBL/BR-02.xml",
)


@dataclass(frozen=True)
class TestSetCase:
    """One <test> of a vefa testSet: a partial invoice and whether CEN reports `rule` on it."""

    relative: str
    index: int
    kind: str  # "success" (rule not reported) or "error" (rule reported)
    rule: str
    document: bytes

    __test__ = False  # not a pytest class

    @property
    def name(self) -> str:
        return f"{Path(self.relative).stem}#{self.index}:{self.kind}"


def test_set_cases(samples: Path = SAMPLES) -> list[TestSetCase]:
    cases = []
    for relative in TEST_SETS:
        root = etree.parse(str(samples / relative)).getroot()
        for index, test in enumerate(root.findall(f"{VEFA}test")):
            document = next(c for c in test if isinstance(c.tag, str) and c.tag != f"{VEFA}assert")
            for expectation in test.find(f"{VEFA}assert"):
                if expectation.tag in (f"{VEFA}success", f"{VEFA}error"):
                    cases.append(
                        TestSetCase(
                            relative,
                            index,
                            expectation.tag.removeprefix(VEFA),
                            expectation.text.strip(),
                            etree.tostring(document),
                        )
                    )
    return cases


def parse_sample(relative: str, samples: Path = SAMPLES) -> ParseOutcome:
    path = samples / relative
    return parse_document(path.read_bytes(), path.name)


def verdict(result: ParseOutcome) -> str:
    """Our verdict: valid when the document is VALIDATED, or judged a valid e-invoice and held
    only because its page shows another invoice than its XML (the XML is still valid)."""
    if result.status == "VALIDATED":
        return "valid"
    valid_class = result.verdict is not None and result.verdict.klass.value == "valid_einvoice"
    held_for_page = result.status == "NEEDS_REVIEW" and all(
        f.stage == "hybrid" for f in result.review
    )
    return "valid" if valid_class and held_for_page and result.review else "invalid"


def document_mismatch(relative: str, result: ParseOutcome) -> str | None:
    """Why our outcome differs from the official verdict of one sample, or None when it agrees."""
    expected, why = OFFICIAL[relative]
    ours = verdict(result)
    if ours != expected:
        errors = "; ".join(f"{e.rule}: {e.message}" for e in result.errors[:5])
        return f"official {expected} ({why}), ours {ours}: {errors}"
    warning = WARNING_EXPECTED.get(relative)
    if warning and warning not in {w.rule for w in result.warnings}:
        return f"valid as expected, but our {warning} warning is missing"
    return None


def test_set_mismatch(case: TestSetCase, result: ParseOutcome) -> str | None:
    """Whether our errors name the case's rule exactly when CEN expects it to."""
    reported = case.rule in {e.rule for e in result.errors}
    if reported == (case.kind == "error"):
        return None
    errors = "; ".join(f"{e.stage}/{e.rule}: {e.message}" for e in result.errors[:5])
    return f"CEN expects {case.kind} for {case.rule}, ours {'reports' if reported else 'does not'}: {errors}"


def parse_test_set_case(case: TestSetCase) -> ParseOutcome:
    return parse_document(case.document, f"{Path(case.relative).stem}-{case.index}.xml")


def measure(samples: Path = SAMPLES) -> Iterator[tuple[str, str | None]]:
    """(name, mismatch or None) for every document sample, then every testSet case."""
    for relative in OFFICIAL:
        yield relative, document_mismatch(relative, parse_sample(relative, samples))
    for case in test_set_cases(samples):
        yield case.name, test_set_mismatch(case, parse_test_set_case(case))


def main() -> int:
    if not (SAMPLES / "MANIFEST.md").is_file():
        print(f"samples not found at {SAMPLES}", file=sys.stderr)
        return 2
    rows = list(measure())
    documents = rows[: len(OFFICIAL)]
    cases = rows[len(OFFICIAL) :]
    for name, problem in rows:
        if problem:
            print(f"MISMATCH {name}: {problem}")
    doc_ok = sum(1 for _, p in documents if p is None)
    case_ok = sum(1 for _, p in cases if p is None)
    print(f"documents: {doc_ok} of {len(documents)} verdicts equal the official verdict")
    print(f"CEN testSet cases: {case_ok} of {len(cases)} agree on the named rule")
    print(f"total: {doc_ok + case_ok} of {len(rows)}")
    return 0 if doc_ok + case_ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
