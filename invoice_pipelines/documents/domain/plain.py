"""One sales invoice as a plain PDF invoice: where an EN 16931 e-invoice does not apply
(documents/domain/formats.py decides), the visible invoice alone.

No XML is written or embedded and nothing is read back against EN 16931 (its rules are what such
an invoice cannot meet). What is checked instead is what the page states: the lines add up to the
net total, the tax amounts to the tax total, net and tax to the gross total, to the cent; an
invalid seller IBAN and a page that cannot be laid out are refused as on the Factur-X path. A
failure is a failed document with rule ids, like any other.
"""

from __future__ import annotations

import time
from datetime import datetime

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from invoice_pipelines.core.money import ZERO
from invoice_pipelines.documents.domain.built import BuiltDocument
from invoice_pipelines.documents.domain.payment_qr import payment_qr
from invoice_pipelines.documents.domain.render import RenderError, render_plain_pdf
from invoice_pipelines.documents.domain.sources import DocumentSource


def _totals_errors(source: DocumentSource) -> list[dict]:
    invoice = source.invoice
    lines = sum((line.net_amount or ZERO for line in invoice.lines), ZERO)
    adjustments = sum(
        ((ac.amount or ZERO) * (1 if ac.is_charge else -1) for ac in invoice.allowances_charges),
        ZERO,
    )
    taxes = sum((tax.amount or ZERO for tax in invoice.vat_breakdown), ZERO)
    net, tax, gross = (
        invoice.net_total or ZERO,
        invoice.tax_total or ZERO,
        invoice.gross_total or ZERO,
    )
    checks = [
        (lines + adjustments == net, f"the lines add up to {lines + adjustments}, net total {net}"),
        (taxes == tax, f"the taxes add up to {taxes}, tax total {tax}"),
        (net + tax == gross, f"net {net} and tax {tax} are not the gross total {gross}"),
    ]
    return [{"rule": "IP-DOC-TOTALS", "message": message} for ok, message in checks if not ok]


def build_plain_document(
    source: DocumentSource, *, created: datetime | None = None
) -> BuiltDocument:
    started = time.perf_counter()
    built = BuiltDocument(source.sales_invoice_id)
    invoice = source.invoice
    if getattr(source, "document_format", "pdf") != "pdf":
        built.errors.append(
            {"rule": "IP-DOC-FORMAT", "message": getattr(source, "format_reason", "") or "?"}
        )
    if invoice.iban:
        try:
            IBAN(invoice.iban)
        except SchwiftyException as exc:
            built.errors.append(
                {"rule": "IP-DOC-IBAN", "message": f"the seller IBAN is invalid: {exc}"}
            )
    built.errors.extend(_totals_errors(source))
    if not built.errors:
        try:
            built.pdf = render_plain_pdf(
                invoice,
                language=source.language,
                seller_country=invoice.seller_country,
                seller_tax_number=source.extras.get("seller_tax_number"),
                payment_terms=source.extras.get("payment_terms"),
                service_date=source.extras.get("delivery_date"),
                qr=payment_qr(source),
                created=created,
            )
        except (RenderError, ValueError) as exc:
            built.errors.append({"rule": "IP-DOC-LAYOUT", "message": str(exc)})
    built.seconds = time.perf_counter() - started
    return built
