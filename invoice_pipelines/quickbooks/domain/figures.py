"""What a QuickBooks sync asset shows, built without Dagster: the counts of a sync over one or
more organizations, a table by organization and, for the bill payment pull, what it found paid.
The assets record it as typed metadata (quickbooks/assets.py); `qbo-sync` and `qbo-import`
report the same for their organization to the UI at once (resources/dagster_instance/dagster_ui.py)."""

from __future__ import annotations

from invoice_pipelines.metadata import Markdown, markdown_table
from invoice_pipelines.quickbooks.domain.sync.common import SyncCounts

# the invoices whose payments changed that one materialization's metadata lists; the count says
# how many there were, `incoming list` shows each
PAID_ROWS_SHOWN = 50
COUNTED = ("pushed", "pulled", "linked", "conflicts", "held", "failed", "unchanged")


def paid_cells(row: dict) -> tuple:
    """invoice, supplier, status, paid, day, Skonto, open (amounts with the currency)."""

    def money(value) -> str:
        return f"{value} {row['currency']}".strip() if value is not None else ""

    return (
        row["invoice"],
        row["supplier"],
        {"partially_paid": "partly paid"}.get(row["status"], row["status"]),
        money(row["paid"]),
        row["paid_on"].isoformat() if row["paid_on"] else "",
        money(row["skonto"]),
        money(row["open"]),
    )


def paid_figures(paid: list[tuple]) -> dict[str, object]:
    """What a bill payment pull found paid: a count and a table of at most PAID_ROWS_SHOWN."""
    return {
        "invoices_paid_changed": len(paid),
        "paid": Markdown(
            markdown_table(
                ("organization", "invoice", "supplier", "status", "paid", "day", "Skonto", "open"),
                paid,
                align="llllrlrr",
                limit=PAID_ROWS_SHOWN,
            )
            if paid
            else "No payment changed since the last pull."
        ),
    }


def row_of(slug: str, counts: SyncCounts, extra: tuple[str, ...]) -> tuple:
    """One organization's row of the table by organization."""
    return (
        slug,
        counts.pushed,
        *(counts.extra.get(name, 0) for name in extra),
        counts.pulled,
        counts.linked,
        counts.conflicts,
        counts.held,
        counts.failed,
    )


def sync_figures(
    sync: str,
    totals: SyncCounts,
    rows: list[tuple],
    *,
    extra: tuple[str, ...] = (),
    not_connected: int = 0,
    refused: int = 0,
    paid: list[tuple] | None = None,
) -> dict[str, object]:
    """A sync's figures: its totals, how many organizations it synced, skipped and was refused,
    the table by organization, and what the bill payment pull found paid."""
    figures: dict[str, object] = dict(totals.as_dict())
    figures["organizations"] = len(rows)
    figures["not_connected"] = not_connected
    figures["refused"] = refused
    figures["by_organization"] = Markdown(
        markdown_table(
            ("organization", "pushed", *extra, "pulled", "linked", "conflicts", "held", "failed"),
            rows,
            align="l" + "r" * (6 + len(extra)),
        )
    )
    if sync == "bill_payments":
        figures.update(paid_figures(paid or []))
    return figures


def one_organization(sync: str, slug: str, counts: SyncCounts, extra=()) -> dict[str, object]:
    """A command's sync of one organization, as the asset's run over it would record it."""
    paid = [(slug, *paid_cells(row)) for row in counts.paid]
    return sync_figures(sync, counts, [row_of(slug, counts, extra)], extra=extra, paid=paid)
