"""Reading back an e-invoice we wrote as a supplier's would be read (`READ_BACK`): the file read
and checked as every received one is (`read.read_einvoice`: XSD, CEN's EN 16931 rules, the
Factur-X profile rules, our rules) and, for an XRechnung, the KoSIT XRechnung rules, for a Peppol
BIS document OpenPEPPOL's rules. The documents area proves each document it writes with it
(`documents/domain/build.py`)."""

from __future__ import annotations

from invoice_pipelines.core.rules import Finding
from invoice_pipelines.einvoice.read import ParseOutcome, read_einvoice
from invoice_pipelines.einvoice.schematron import (
    KOSIT_RULES_SETTING,
    PEPPOL_RULES_SETTING,
    ArtefactsMissing,
    check_kosit,
    check_peppol,
)


class RulesMissing(RuntimeError):
    """The rules a document is checked against cannot be loaded here (the message says which)."""


class ReadBack:
    """Stateless: pickled by reference into the documents' worker processes, which warm up with
    `verdict.WARM_UP`. `xrechnung_rules_setting`, `peppol_rules_setting`: where the KoSIT
    XRechnung rules and OpenPEPPOL's rules are configured, for the message when they are not."""

    xrechnung_rules_setting = KOSIT_RULES_SETTING
    peppol_rules_setting = PEPPOL_RULES_SETTING

    def read(self, data: bytes, filename: str) -> ParseOutcome:
        """Everything a supplier's document gets but the comparison of the page with the XML:
        ours are written from one invoice, so they cannot disagree unless the renderer is wrong,
        which the documents' tests check on generated invoices (test_build.py) instead of every
        document paying for a text extraction (a pdftotext process, ~45 ms a page, three times
        the rest of the read-back)."""
        return read_einvoice(data, filename)

    def xrechnung_findings(self, xml: str, syntax: str) -> list[Finding] | None:
        """The KoSIT XRechnung rules' findings on an XRechnung (`syntax` cii or ubl); None when
        the rules are not configured; RulesMissing when they cannot be loaded."""
        try:
            return check_kosit(xml, syntax)
        except ArtefactsMissing as exc:
            raise RulesMissing(str(exc)) from exc

    def peppol_findings(self, xml: str, syntax: str) -> list[Finding] | None:
        """OpenPEPPOL's Peppol BIS rules' findings on a Peppol BIS document (`syntax` ubl or
        ubl-creditnote); None when the rules are not configured; RulesMissing when they cannot
        be loaded."""
        try:
            return check_peppol(xml, syntax)
        except ArtefactsMissing as exc:
            raise RulesMissing(str(exc)) from exc


READ_BACK = ReadBack()
