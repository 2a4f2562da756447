"""What building one sales invoice's documents gave: the files, or the findings that refused them.

Both document paths return it (documents/domain/build.py for Factur-X and XRechnung, documents/domain/plain.py
for the plain PDF); the pipeline stores it, the renderer resource carries it back from a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BuiltDocument:
    sales_invoice_id: int
    pdf: bytes | None = None
    xrechnung: bytes | None = None
    xrechnung_name: str | None = None
    # the Peppol BIS Billing 3.0 document, for a customer on Peppol (build.prove_peppol), or
    # the findings that refused it: the invoice's other documents stand without it (its
    # delivery falls back to e-mail and says why)
    peppol: bytes | None = None
    peppol_name: str | None = None
    peppol_errors: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {"rule": ..., "message": ...}
    seconds: float = 0.0
    # what the XRechnung was checked against beyond EN 16931: KOSIT_CHECKED or KOSIT_NOT_CONFIGURED
    xrechnung_rules: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.pdf is not None
