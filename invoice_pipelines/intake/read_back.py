"""The intake's reader as the documents area uses it to prove what it writes (`ReadBack` of
`einvoice/read_back.py`): `parse_document` and the KoSIT XRechnung rules, the same checks every
supplier document gets. `definitions.py` hands `READ_BACK` to the documents area."""

from __future__ import annotations

from invoice_pipelines.core.rules import Finding
from invoice_pipelines.einvoice.read_back import RulesMissing
from invoice_pipelines.einvoice.schematron import KOSIT_RULES_SETTING, ArtefactsMissing, check_kosit
from invoice_pipelines.intake.parse import ParseOutcome, parse_document
from invoice_pipelines.intake.workers import WARM_UP


class IntakeReadBack:
    """Stateless: pickled by reference into the documents' worker processes."""

    warm_up = WARM_UP
    xrechnung_rules_setting = KOSIT_RULES_SETTING

    def read(self, data: bytes, filename: str) -> ParseOutcome:
        """Everything a supplier's document gets but the comparison of the page with the XML:
        ours are written from one invoice, so they cannot disagree unless the renderer is wrong,
        which the documents' tests check on generated invoices (test_build.py) instead of every
        document paying for a text extraction (a pdftotext process, ~45 ms a page, three times
        the rest of the read-back)."""
        return parse_document(data, filename, compare_page=False)

    def xrechnung_findings(self, xml: str, syntax: str) -> list[Finding] | None:
        try:
            return check_kosit(xml, syntax)
        except ArtefactsMissing as exc:
            raise RulesMissing(str(exc)) from exc


READ_BACK = IntakeReadBack()
