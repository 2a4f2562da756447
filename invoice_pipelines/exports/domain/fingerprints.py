"""Whether a month books what its latest version booked: the fingerprint a version is written
with, and the earlier formula versions written before it still carry."""

from __future__ import annotations

import hashlib

from invoice_pipelines.exports.domain import formatting
from invoice_pipelines.exports.domain.csv import INVOICE_COLUMNS
from invoice_pipelines.exports.domain.plan import Booked
from invoice_pipelines.exports.domain.rendering import Rendered, render
from invoice_pipelines.exports.domain.result import ExportResult

# What a version's fingerprint hashes: its settings, the DATEV data rows and the invoices CSV's
# bytes as written (before this, the CSV's rows as Python values: `legacy_fingerprint`).
FINGERPRINT_VERSION = b"invoice_pipelines export fingerprint 2\n"


_BREAKDOWN = INVOICE_COLUMNS.index("vat_breakdown")


def fingerprint(rendered: Rendered, result: ExportResult) -> str:
    """What the export books and lists, and the settings that shape it: the settings, the
    DATEV data rows, the invoices CSV's bytes and the skipped invoices."""
    digest = hashlib.sha256(FINGERPRINT_VERSION)
    digest.update(repr(rendered.head).encode())
    digest.update(rendered.bookings_text)
    for block in rendered.csv:
        digest.update(block)
    return finish_fingerprint(digest, result)


def finish_fingerprint(digest, result: ExportResult) -> str:
    digest.update("".join([repr(skipped) for skipped in result.skipped]).encode("utf-8"))
    return digest.hexdigest()


def version_fingerprint(rendered: Rendered, booked: Booked, result) -> str:
    """The fingerprint a new version is written with. (`booked` is what the earlier formula
    needs too: tests write a version as the code before did by putting `legacy_fingerprint`
    here.)"""
    return fingerprint(rendered, result)


def same_month(rendered: Rendered, booked: Booked, result, latest) -> bool:
    """Whether the latest version books and lists what `rendered` does: the same fingerprint,
    or, for a version written before the fingerprint hashed the files' bytes, the same one
    worked out the way it was then. A provisional version (of a month not over yet) and a
    final one are never the same: the month's first export once it is over is a new version."""
    if bool((latest.notes or {}).get("provisional")) != result.provisional:
        return False
    if latest.fingerprint == fingerprint(rendered, result):
        return True
    return latest.fingerprint == legacy_fingerprint(rendered, booked, result)


def legacy_fingerprint(rendered: Rendered, booked: Booked, result) -> str:
    """The fingerprint as versions written before it hashed the files' bytes have it: the
    invoices CSV's rows as Python values (repr) instead of its bytes."""
    digest = hashlib.sha256(repr(rendered.head).encode())
    digest.update(rendered.bookings_text)
    # without the reference when there is none: a month exported before credit notes carried one
    # keeps its fingerprint, so materializing it again writes no new version; so does a month
    # whose text PDFs and scans were listed with "?" for their VAT category
    fingerprinted = [
        row[:_BREAKDOWN]
        + (formatting.breakdown_text(inv, as_printed_before=True),)
        + row[_BREAKDOWN + 1 :]
        if any(not t.category for t in inv.taxes)
        else row
        for row, (inv, _) in zip(rendered.invoices, booked, strict=True)
    ]
    digest.update(
        "".join([repr(row if row[-1] is not None else row[:-1]) for row in fingerprinted]).encode(
            "utf-8"
        )
    )
    return finish_fingerprint(digest, result)


def same_before_packages(job, header, unlinked: Booked, partners, result, latest) -> bool:
    """Whether a version written before the export carried DATEV document packages books what
    the month books without Beleglinks: such a month keeps its version (a new one only for the
    links would put the same bookings into DATEV twice); its next change brings the package."""
    if "datev_documents" in (latest.files or {}):
        return False
    return same_month(render(job, header, unlinked, partners, result), unlinked, result, latest)
