"""The parse server's warm-up: the rule sets compiled, then made-up documents read through.

A worker that has compiled the schematrons still reads its first documents slower than the rest:
measured on 2 workers, the first 100-150 e-invoices cost 0.3-0.6 s more worker CPU than the same
number later, whatever documents come first (documents of another seed warmed the workers for
the bench's as well as its own did; `docs/benchmarks.md`, issue 59). A parse server lives for
many runs (`keep_warm_seconds`), so its workers pay that once, before they take a document:
each reads `warm_documents()` made-up invoices (EN 16931 CII and UBL, written by our own writers
and read by `parse_document` exactly as an upload is). Nothing of them is recorded anywhere; their
outcomes are dropped. A run's own workers (keep_warm_seconds 0) keep the compile-only warm-up:
they end with the run, and the documents would cost every run start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

from invoice_pipelines.core.invoice import Address, Invoice, InvoiceLine, VatBreakdown
from invoice_pipelines.core.totals import LineAmounts, compute_totals
from invoice_pipelines.einvoice import verdict
from invoice_pipelines.einvoice.cii import EN16931_GUIDELINE, write_cii
from invoice_pipelines.einvoice.ubl import write_ubl

WARM_UP_WITH_DOCUMENTS = "invoice_pipelines.intake.domain.warm_up:warm_up_with_documents"
# per worker: about the number after which a worker's documents cost what they cost later
# (measured: 64 left part of the difference, 128 none); INVOICE_PIPELINES_PARSE_WARM_DOCUMENTS
WARM_DOCUMENTS = 128
# a valid German VAT id and IBAN (their check digits hold), of no real company
_SELLER_VAT_ID = "DE123456788"
_SELLER_IBAN = "DE89370400440532013000"
_RATES = (Decimal("19.00"), Decimal("7.00"))


def made_up_invoices(n: int) -> Iterator[tuple[str, bytes]]:
    """n made-up valid e-invoices (file name, bytes), CII and UBL in turn, 1-4 lines each."""
    seller = Address("Musterweg 1", "Bremen", "28195", "DE")
    buyer = Address("Beispielstraße 2", "Hannover", "30159", "DE")
    first = date(2025, 3, 3)
    for index in range(n):
        amounts = [
            LineAmounts(
                Decimal(1 + (index + k) % 9),
                Decimal(100 + 37 * k + index % 50).scaleb(-1),
                "S",
                _RATES[(index + k) % 2],
            )
            for k in range(1 + index % 4)
        ]
        totals = compute_totals(amounts)
        issued = first + timedelta(days=index % 200)
        invoice = Invoice(
            number=f"WARM-{index:05d}",
            type_code="380",
            issue_date=issued,
            due_date=issued + timedelta(days=30),
            currency="EUR",
            guideline_id=EN16931_GUIDELINE,
            seller_name="Vorwärmen Werkstatt GmbH",
            seller_vat_id=_SELLER_VAT_ID,
            seller_address=seller,
            buyer_name="Beispiel Handel KG",
            buyer_address=buyer,
            iban=_SELLER_IBAN,
            payment_means_code="58",
            line_total=totals.net_total,
            net_total=totals.net_total,
            tax_total=totals.tax_total,
            gross_total=totals.gross_total,
            amount_due=totals.amount_due,
            lines=tuple(
                InvoiceLine(
                    line_id=str(k),
                    description=f"Position {k}",
                    quantity=line.quantity,
                    unit_code="H87",
                    unit_price=line.unit_price,
                    net_amount=net,
                    vat_category=line.vat_category,
                    vat_rate=line.vat_rate,
                )
                for k, (line, net) in enumerate(zip(amounts, totals.line_nets, strict=True), 1)
            ),
            vat_breakdown=tuple(
                VatBreakdown(b.vat_category, b.vat_rate, b.basis, b.amount)
                for b in totals.breakdown
            ),
        )
        # BT-72: a CII's delivery is never empty (PEPPOL-EN16931-R008)
        extra = {"delivery_date": issued - timedelta(days=1)}
        if index % 2 == 0:
            yield f"{invoice.number}.xml", write_cii(invoice, extra=extra)
        else:
            yield f"{invoice.number}.ubl.xml", write_ubl(invoice, extra=extra)


def warm_documents() -> int:
    """How many made-up invoices a parse server's worker reads as it starts:
    INVOICE_PIPELINES_PARSE_WARM_DOCUMENTS (0: none), default WARM_DOCUMENTS."""
    raw = os.environ.get("INVOICE_PIPELINES_PARSE_WARM_DOCUMENTS", "").strip()
    if not raw:
        return WARM_DOCUMENTS
    if not raw.isdigit():
        raise ValueError(
            f"INVOICE_PIPELINES_PARSE_WARM_DOCUMENTS must be a whole number >= 0, not {raw!r}"
        )
    return int(raw)


def warm_up_with_documents() -> None:
    """`verdict.warm_up`, then `warm_documents()` made-up invoices read as uploads are."""
    from invoice_pipelines.intake.domain.parse import parse_document

    count = warm_documents()  # (checked where the server's spec is made: DocumentParser)
    verdict.warm_up()
    for name, data in made_up_invoices(count):
        parse_document(data, name)
