"""The e-invoices of an organization's past, read from a folder by the project's own library
(`einvoice/read.py`: Factur-X/ZUGFeRD PDFs, XRechnung and EN 16931 CII and UBL XML). A document
whose seller is the organization itself (its VAT id, tax number or name, as the intake tells its
own documents apart) is one of its sales invoices; any other is a supplier invoice.

A file that does not read as an e-invoice (FAILED, or a PDF without invoice XML) is refused with
its name and the reader's first findings; the others are imported all the same."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.money import ZERO
from invoice_pipelines.core.suppliers import OwnParty, name_skeleton, tax_number_key, vat_id_key
from invoice_pipelines.einvoice.read import read_einvoice
from invoice_pipelines.history.domain.records import (
    Invalid,
    Line,
    PastInvoice,
    Rate,
    Refusal,
    check_invoice,
)

SUFFIXES = (".xml", ".pdf")


def einvoice_files(folder: Path) -> Iterator[Path]:
    """The folder's XML and PDF files (its subfolders' too), in name order."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in SUFFIXES:
            yield path


def read_folder(folder: Path, own: OwnParty) -> tuple[list[PastInvoice], list[Refusal]]:
    """Every e-invoice of `folder`, as sales or supplier invoices, and the files refused."""
    if not folder.is_dir():
        return [], [Refusal(str(folder), "is not a folder")]
    invoices, refused = [], []
    for path in einvoice_files(folder):
        try:
            invoices.append(read_file(path, own))
        except Invalid as exc:
            refused.append(Refusal(str(path), str(exc)))
        except OSError as exc:
            refused.append(Refusal(str(path), f"cannot be read: {exc}"))
    return invoices, refused


def read_file(path: Path, own: OwnParty) -> PastInvoice:
    """One e-invoice file as an invoice of the past; `Invalid` says why it cannot be one."""
    outcome = read_einvoice(path.read_bytes(), path.name)
    invoice = outcome.invoice
    if invoice is None or outcome.status == "FAILED" or outcome.status == "NEEDS_OCR":
        findings = "; ".join(f.message for f in outcome.errors[:3]) or "no invoice XML was read"
        raise Invalid(f"not read as an e-invoice ({outcome.format}): {findings}")
    sales = is_own(invoice, own)
    past = PastInvoice(
        where=str(path),
        direction="sales" if sales else "supplier",
        number=invoice.number or "",
        type_code=invoice.type_code or "380",
        issue_date=_required(invoice.issue_date, "issue date (BT-2)"),
        due_date=invoice.due_date,
        currency=_required(invoice.currency, "currency (BT-5)"),
        rates=_rates(invoice),
        party_name=(invoice.buyer_name if sales else invoice.seller_name) or "",
        party_vat_id=invoice.buyer_vat_id if sales else invoice.seller_vat_id,
        party_country=_country(invoice, sales),
        service_date=invoice.service_date,
        amount_due=invoice.amount_due,
        lines=[] if sales else _lines(invoice),
        format=outcome.format,
        content_hash=outcome.content_hash,
        raw={"file": path.name, "invoice": invoice.to_json_dict()},
    )
    if sales:
        # due at once where the document names no day; paid what it says was paid before
        past.due_date = past.due_date or past.issue_date
        due = invoice.amount_due if invoice.amount_due is not None else past.gross_total
        past.amount_paid = max(past.gross_total - due, ZERO)
    check_invoice(past)
    return past


def is_own(invoice: Invoice, own: OwnParty) -> bool:
    """Whether the organization is the document's seller: the same VAT id, tax number or name
    (as `core/suppliers.py` tells a document naming the organization itself)."""
    vat = vat_id_key(invoice.seller_vat_id)
    tax = tax_number_key(invoice.seller_tax_number)
    name = name_skeleton(invoice.seller_name)
    return bool(
        (vat and vat == vat_id_key(own.vat_id))
        or (tax and tax == tax_number_key(own.tax_number))
        or (name and name == name_skeleton(own.name))
    )


def _required(value, what: str):
    if value is None:
        raise Invalid(f"the document has no {what}")
    return value


def _rates(invoice: Invoice) -> list[Rate]:
    rates = []
    for row in invoice.vat_breakdown:
        if row.rate is None or row.basis is None or row.amount is None:
            raise Invalid("a VAT breakdown row (BG-23) lacks its rate, basis or amount")
        category = row.category or ("S" if row.rate > 0 else "")
        if not category:
            raise Invalid(f"the VAT breakdown row of {row.rate} % has no category")
        rates.append(Rate(category, Decimal(row.rate), Decimal(row.basis), Decimal(row.amount)))
    return rates


def _country(invoice: Invoice, sales: bool) -> str | None:
    address = invoice.buyer_address if sales else invoice.seller_address
    code = address.country_code if address else None
    return code.upper()[:2] if code else None


def _lines(invoice: Invoice) -> list[Line]:
    return [
        Line(
            (line.description or "")[:512] or None,
            line.quantity,
            (line.unit_code or "")[:8] or None,
            line.unit_price,
            line.net_amount,
            line.vat_category,
            line.vat_rate,
        )
        for line in invoice.lines
    ]
