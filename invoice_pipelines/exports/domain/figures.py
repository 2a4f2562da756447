"""What an export asset shows, built without Dagster: one partition's export (its outcome, totals,
a preview of its bookings, the invoices it skipped), a run over several partitions as one table,
and the finding of the asset's check `every_invoice_booked`. The export assets record them as
typed metadata (lib/asset_metadata.py); `invoice-pipelines export` prints the same totals.

The figures of one run are built in one place (`export_figures`), in the order the UI lists
them: a reader of exports/assets.py finds the export's work there, and what it shows here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from invoice_pipelines.exports.domain.result import ExportResult
from invoice_pipelines.metadata import CheckFinding, Location, Markdown, markdown_table

# the skipped invoices a run's warning names (its materialization lists every one)
SKIPPED_NAMED = 10
SKIPPED_SHOWN = 50
PREVIEW_COLUMNS = (
    "Umsatz",
    "S/H",
    "WKZ",
    "Konto",
    "Gegenkonto",
    "BU",
    "Belegdatum",
    "Belegfeld 1",
    "Buchungstext",
)


@dataclass(frozen=True)
class _Table:
    """A table among the figures, drawn as `Markdown` once they are all built (`_drawn`)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[object]]
    align: str = ""
    limit: int | None = None
    empty: str | None = None  # what is shown instead of a table without rows


def totals_text(totals: dict[str, list[Decimal]]) -> dict[str, dict[str, str]]:
    """{currency: {net, tax, gross}} as exact decimal strings (metadata, JSON)."""
    return {
        currency: {
            "net": format(values[0], "f"),
            "tax": format(values[1], "f"),
            "gross": format(values[2], "f"),
        }
        for currency, values in sorted(totals.items())
    }


def skipped_by_reason(result: ExportResult) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for _, _, reason in result.skipped:
        counts[reason] += 1
    return dict(counts)


def skipped_line(slug: str, period: str, result: ExportResult) -> str:
    """One warning per partition for its skipped invoices, naming the first ten: a month of
    thousands of skipped invoices wrote one event each, which nobody reads in the run's log (the
    materialization's metadata lists every one of them)."""
    named = "; ".join(
        f"invoice {invoice_id} ({number}): {reason}"
        for invoice_id, number, reason in result.skipped[:SKIPPED_NAMED]
    )
    more = len(result.skipped) - SKIPPED_NAMED
    return f"{slug} {period}: {len(result.skipped)} invoice(s) skipped: {named}" + (
        f"; and {more} more (the materialization lists them)" if more > 0 else ""
    )


def outcome(result: ExportResult) -> str:
    if result.disabled:
        return "direction disabled in the organization's settings"
    if result.empty:
        return "no invoices in this month"
    if result.unchanged:
        return f"unchanged since version {result.version}"
    if result.rewritten:
        return f"version {result.version} written again: {result.rewritten}"
    return f"version {result.version} written"


def _preview_rows(result: ExportResult) -> list[tuple]:
    return [
        (
            b.amount,
            b.side,
            b.currency,
            b.account,
            b.contra_account,
            b.tax_key,
            b.document_date.isoformat(),
            b.document_number,
            b.text,
        )
        for b in result.preview
    ]


def _partition_figures(r: ExportResult) -> dict[str, object]:
    """One partition's figures; its tables as rows still (`export_figures` draws them)."""
    figures: dict[str, object] = {
        "organization": r.organization,
        "month": r.period,
        "outcome": outcome(r),
        "version": r.version or 0,
        "invoices": r.invoice_count,
        "bookings": r.booking_count,
        "skipped": r.skipped_count,
        "closed": r.closed,
        "provisional": r.provisional,
        "totals": totals_text(r.totals),
        "preview": _Table(PREVIEW_COLUMNS, _preview_rows(r), "rllrr", empty="(no bookings)"),
    }
    if r.documents_packed is not None and (
        "datev_documents" in r.files or r.notes.get("documents_left_out")
    ):
        figures["documents_packaged"] = r.documents_packed
        figures["documents_left_out"] = len(r.notes.get("documents_left_out", []))
    if r.skipped:
        figures["skipped_invoices"] = _skipped_table(r)
        figures["skipped_by_reason"] = skipped_by_reason(r)
    if r.notes:
        figures["changes"] = dict(r.notes)
    return figures


def _skipped_table(result: ExportResult) -> _Table:
    return _Table(("invoice id", "number", "reason"), result.skipped, "r", SKIPPED_SHOWN)


def _runs_figures(results: list[ExportResult]) -> dict[str, object]:
    rows = [
        (
            r.organization,
            r.period,
            outcome(r),
            r.invoice_count,
            r.skipped_count,
            r.files.get("datev", ""),
        )
        for r in results
    ]
    return {
        "partitions": len(results),
        "invoices": sum(r.invoice_count for r in results),
        "bookings": sum(r.booking_count for r in results),
        "skipped": sum(r.skipped_count for r in results),
        "exports": _Table(
            ("organization", "month", "outcome", "invoices", "skipped", "DATEV file"), rows, "lllrr"
        ),
    }


def export_figures(results: list[ExportResult]) -> dict[str, object]:
    """What a run's materialization shows: one partition's export (its files as locations), or a
    table of the partitions of a run over several; the invoices waiting for review in both."""
    one = len(results) == 1
    figures = _partition_figures(results[0]) if one else _runs_figures(results)
    in_review = sum(r.in_review for r in results)
    if in_review:
        # not booked and not skipped: held until a person reviews them (intake)
        figures["in_review"] = in_review
    files = sorted(results[0].files.items()) if one else []
    return _drawn(figures) | {f"{kind}_file": Location(where) for kind, where in files}


def booked_finding(results: list[ExportResult]) -> CheckFinding:
    """Skipped invoices fail the check. Supplier invoices waiting in NEEDS_REVIEW do not: they are
    not booked on purpose until a person confirms them; the check says how many there are."""
    skipped = sum(r.skipped_count for r in results)
    in_review = sum(r.in_review for r in results)
    waiting = (
        f" {in_review} supplier invoice(s) of the month wait for review (NEEDS_REVIEW) and are "
        "booked once confirmed."
        if in_review
        else ""
    )
    metadata: dict[str, object] = {"skipped": skipped}
    if in_review:
        metadata["in_review"] = in_review
    if skipped and len(results) == 1:
        metadata["reasons"] = _skipped_table(results[0])
    return CheckFinding(
        passed=skipped == 0,
        description=(
            "Every invoice of the month was booked."
            if skipped == 0
            else f"{skipped} invoice(s) could not be booked and stay out of the export."
        )
        + waiting,
        metadata=_drawn(metadata),
        severity="ERROR",
    )


def _drawn(figures: dict[str, object]) -> dict[str, object]:
    """The figures with each `_Table` drawn as `Markdown`."""
    drawn = dict(figures)
    for name, table in figures.items():
        if isinstance(table, _Table):
            text = markdown_table(table.columns, table.rows, align=table.align, limit=table.limit)
            drawn[name] = Markdown(text if table.rows or table.empty is None else table.empty)
    return drawn
