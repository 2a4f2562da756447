"""Onboarding an organization with history: its past sales and supplier invoices imported from
CSV files (`history/domain/csv_files.py`) and e-invoices (`history/domain/einvoices.py`), written set-based in
chunks, each chunk a transaction of the organization's tenant scope (`db/tenancy.py`).

Idempotent: a sales invoice is keyed by its number in the organization, a supplier invoice by its
supplier and number (a CSV row) or its file's bytes (an e-invoice); importing a file again finds
them and creates nothing. Every refused row or file is named in the report with its file and
line; nothing is dropped without a word. What `invoice-pipelines history import` and the
`history_import_job` run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from invoice_pipelines.core.chunks import chunked
from invoice_pipelines.core.numbering import number_regex
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.sequences import INVOICES, read_sequence
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.history.domain.csv_files import read_csv
from invoice_pipelines.history.domain.einvoices import read_folder
from invoice_pipelines.history.domain.records import PastInvoice, Refusal
from invoice_pipelines.history.domain.writing import Written, write_sales, write_supplier
from invoice_pipelines.supplier_register import own_party

CHUNK = 2000  # invoices per transaction


@dataclass
class HistoryReport:
    """What an import did: per direction the invoices imported and found already there, every
    refusal with its place, and warnings (a history number the series could hand out again)."""

    organization: str
    imported: dict[str, int] = field(default_factory=lambda: {"sales": 0, "supplier": 0})
    already: dict[str, int] = field(default_factory=lambda: {"sales": 0, "supplier": 0})
    refused: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json_dict(self) -> dict:
        return {
            "organization": self.organization,
            "imported": self.imported,
            "already_there": self.already,
            "refused": len(self.refused),
            "warnings": len(self.warnings),
            "seconds": round(self.seconds, 2),
        }

    def refused_sentence(self, named: int) -> str:
        """The refusals in one sentence, the first `named` of them by place ("" when none)."""
        if not self.refused:
            return ""
        first = "; ".join(str(r) for r in self.refused[:named])
        more = f" and {len(self.refused) - named} more" if len(self.refused) > named else ""
        return (
            f"{self.organization}: {len(self.refused)} refused (the others were imported): "
            f"{first}{more}"
        )


def import_history(
    engine: Engine,
    org: Organization,
    *,
    sales: Sequence[Path] = (),
    supplier: Sequence[Path] = (),
    einvoices: Sequence[Path] = (),
    by: str,
    chunk: int = CHUNK,
) -> HistoryReport:
    """Import the organization's past from the files given."""
    started = time.monotonic()
    report = HistoryReport(org.slug)
    read: dict[str, list[PastInvoice]] = {"sales": [], "supplier": []}
    for direction, paths in (("sales", sales), ("supplier", supplier)):
        for path in paths:
            invoices, refused = read_csv(Path(path), direction)
            read[direction] += invoices
            report.refused += refused
    if einvoices:
        with tenant_transaction(engine, org.id) as conn:
            own = own_party(org)
        for folder in einvoices:
            invoices, refused = read_folder(Path(folder), own)
            report.refused += refused
            for invoice in invoices:
                read[invoice.direction].append(invoice)
    # the history's counters of the series follow the issue dates (writing.py), across chunks too
    read["sales"].sort(key=lambda i: (i.issue_date, i.number))
    imported_sales: list[PastInvoice] = []
    for direction, write in (("sales", write_sales), ("supplier", write_supplier)):
        for part in chunked(read[direction], chunk):
            with tenant_transaction(engine, org.id, write=True) as conn:
                written: Written = write(conn, org.id, part, by, datetime.now(UTC))
            report.imported[direction] += written.imported
            report.already[direction] += written.already
            report.refused += written.refused
            imported_sales += written.numbers
    if imported_sales:
        report.warnings += numbers_handed_out_again(engine, org, imported_sales)
    report.seconds = time.monotonic() - started
    return report


def numbers_handed_out_again(
    engine: Engine, organization: Organization, invoices: list[PastInvoice]
) -> list[str]:
    """The imported numbers the organization's number format would give a new invoice later
    (its counter is above the series' last value): the new invoice would collide with the old
    one. One sentence each, for the person to change the format before invoicing."""
    pattern = organization.invoice_number_format
    with tenant_transaction(engine, organization) as conn:
        last = read_sequence(conn, organization.id, INVOICES)
    matcher = number_regex(pattern)
    found = []
    for invoice in invoices:
        match = matcher.fullmatch(invoice.number) if matcher else None
        if match and int(match.group("counter")) > (last or 0):
            found.append(
                f"{invoice.where}: {invoice.number} is a number the format {pattern!r} hands out "
                f"again at counter {int(match.group('counter'))} (the series is at {last}): "
                "change the organization's invoice_number_format before invoicing"
            )
    return found
