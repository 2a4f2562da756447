"""What reading back an e-invoice we wrote takes, as the documents area needs it and the intake
provides it (the reader every supplier document goes through): `ReadBack`. Neither area imports
the other; `definitions.py` hands the intake's reader to the documents area
(`documents/read_back.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.rules import Finding


class RulesMissing(RuntimeError):
    """The rules a document is checked against cannot be loaded here (the message says which)."""


class ReadOutcome(Protocol):
    status: str  # VALIDATED when the document holds up, as a received one would be judged
    errors: Sequence[Finding]
    invoice: Invoice | None  # what was read, None when nothing could be


class ReadBack(Protocol):
    """Reads a written document back as a supplier's document would be read.

    `warm_up`: `module:function` a worker process runs once before its first document (compiling
    the rules), or "". `xrechnung_rules_setting`: where the KoSIT XRechnung rules are configured,
    for the message when they are not."""

    warm_up: str
    xrechnung_rules_setting: str

    def read(self, data: bytes, filename: str) -> ReadOutcome:
        """The document read and checked (XSD, EN 16931 schematron, our rules)."""
        ...

    def xrechnung_findings(self, xml: str, syntax: str) -> Sequence[Finding] | None:
        """The KoSIT XRechnung rules' findings on an XRechnung (`syntax` cii or ubl); None when
        the rules are not configured; RulesMissing when they cannot be loaded."""
        ...
