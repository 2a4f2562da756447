"""What one export did: its outcome, counts, sums, files and notes (the metadata and the command's
JSON show it), and seconds per phase."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

from invoice_pipelines.core.datev import Booking

PREVIEW_ROWS = 5


@dataclass
class ExportResult:
    organization: str
    direction: str
    period: str
    version: int | None = None
    export_id: int | None = None
    unchanged: bool = False
    # the month is unchanged but the files of its latest version were gone: written again as a new
    # version (the sentence says why)
    rewritten: str | None = None
    empty: bool = False  # nothing to export and never exported: no files, no row
    disabled: bool = False
    closed: bool = False
    # the running month, exported before it is over (INVOICE_PIPELINES_EXPORT_RUNNING_MONTH)
    provisional: bool = False
    files: dict[str, str] = field(default_factory=dict)
    invoice_count: int = 0
    booking_count: int = 0
    skipped: list[tuple[int, str | None, str]] = field(default_factory=list)
    # currency -> [net, tax, gross] of the exported invoices
    totals: dict[str, list[Decimal]] = field(default_factory=dict)
    preview: list[Booking] = field(default_factory=list)
    notes: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # documents in the version's DATEV document package (None: a version written before its count
    # was kept with it, found unchanged)
    documents_packed: int | None = 0
    # sales: the month's payments and their bookings (exports/domain/payments.py), rendered after the
    # invoices' bookings
    payments: list = field(default_factory=list)
    # incoming: the month's supplier invoices waiting in NEEDS_REVIEW, neither booked nor skipped
    # (booked once a person confirms them), counted in the export's snapshot
    in_review: int = 0

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)


class Clock:
    """Seconds per phase of an export, for metadata and the benchmark."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.into[phase] = round(self.into.get(phase, 0.0) + now - self.last, 4)
        self.last = now
