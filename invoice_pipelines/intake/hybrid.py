"""A hybrid PDF's visible page against its embedded XML.

(Being written: the HYBRID helper replaces this with the real comparison.)
"""

from __future__ import annotations

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.rules import Finding


def compare(page_text: str, invoice: Invoice) -> list[Finding]:
    return []
