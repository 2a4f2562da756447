"""The payment QR code (EPC "GiroCode") a sales invoice's page carries, or none.

Both document paths take it from here: the Factur-X page (documents/domain/build.py) and the plain PDF
(documents/domain/plain.py). The symbol itself is documents/domain/qr.py's, its payload documents/domain/render.py's.
"""

from __future__ import annotations

from invoice_pipelines.documents.domain.qr import QrCode
from invoice_pipelines.documents.domain.render import epc_qr
from invoice_pipelines.documents.domain.sources import DocumentSource

# UNTDID 1001 codes of credit notes: nothing to pay, so no payment code
CREDIT_NOTES = frozenset({"381", "261", "262", "296", "308", "396", "420", "458", "532"})
# the EPC payment code's amount field: EUR 0.01 to 999999999.99
MAX_AMOUNT = 999_999_999


def payment_qr(source: DocumentSource) -> QrCode | None:
    """The code when the invoice asks for a euro amount to an IBAN; None for a credit note, another
    currency, no IBAN or an amount the code cannot carry."""
    invoice = source.invoice
    if (
        not invoice.iban
        or invoice.currency != "EUR"
        or (invoice.type_code or "380") in CREDIT_NOTES
        or invoice.amount_due is None
        or not 0 < invoice.amount_due <= MAX_AMOUNT
    ):
        return None
    return epc_qr(
        invoice.seller_name or "",
        invoice.iban,
        invoice.amount_due,
        invoice.number or "",
        source.seller.get("bic"),
    )
