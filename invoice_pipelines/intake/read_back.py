"""The intake's reader as the documents area uses it to prove what it writes (`ReadBack` of
`einvoice/read_back.py`): `parse_document` and the KoSIT XRechnung rules, the same checks every
supplier document gets. `definitions.py` hands `READ_BACK` to the documents area."""

from __future__ import annotations

from invoice_pipelines.core.rules import Finding
from invoice_pipelines.einvoice.read_back import RulesMissing
from invoice_pipelines.intake.parse import ParseOutcome, parse_document
from invoice_pipelines.intake.schematron import KOSIT_RULES_SETTING, ArtefactsMissing, check_kosit
from invoice_pipelines.intake.workers import WARM_UP


class IntakeReadBack:
    """Stateless: pickled by reference into the documents' worker processes."""

    warm_up = WARM_UP
    xrechnung_rules_setting = KOSIT_RULES_SETTING

    def read(self, data: bytes, filename: str) -> ParseOutcome:
        return parse_document(data, filename)

    def xrechnung_findings(self, xml: str, syntax: str) -> list[Finding] | None:
        try:
            return check_kosit(xml, syntax)
        except ArtefactsMissing as exc:
            raise RulesMissing(str(exc)) from exc


READ_BACK = IntakeReadBack()
