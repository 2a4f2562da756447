"""Each synced QuickBooks entity's sync function, by its name in core/qbo_entities.py.

The assets (defs.py) and `qbo-sync` (cli.py) both run them from here: (engine, organization,
client, **options) -> SyncCounts; a sync in NEEDS_FILES also gets `read_upload` (the upload
store's read) and `write_letter` (sync/bills.py `letter_pdf` of the `letter_writer`).
"""

from __future__ import annotations

from collections.abc import Callable

from invoice_pipelines.core.qbo_entities import SYNCED
from invoice_pipelines.quickbooks.domain.sync.bill_payments import pull_bill_payments
from invoice_pipelines.quickbooks.domain.sync.bills import push_bills
from invoice_pipelines.quickbooks.domain.sync.common import SyncCounts
from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
from invoice_pipelines.quickbooks.domain.sync.invoices import OTHER_COUNTS, push_invoices
from invoice_pipelines.quickbooks.domain.sync.items import sync_items
from invoice_pipelines.quickbooks.domain.sync.payments import pull_payments
from invoice_pipelines.quickbooks.domain.sync.vendors import sync_vendors

SYNCS: dict[str, Callable[..., SyncCounts]] = {
    "customers": sync_customers,
    "items": sync_items,
    "invoices": push_invoices,
    "payments": pull_payments,
    "vendors": sync_vendors,
    "bills": push_bills,
    "bill_payments": pull_bill_payments,
}
# the figures a sync counts besides the common ones (SyncCounts.extra), by sync: its asset's
# metadata and table have them, zero or not; the other syncs have none
EXTRA_COUNTS: dict[str, tuple[str, ...]] = {"invoices": OTHER_COUNTS}
# what a sync takes beside (engine, organization, client), given by the asset and `qbo-sync`:
# the bill push reads the originals from the upload store and writes readable PDFs of XML
NEEDS_FILES = frozenset({"bills"})
if set(SYNCS) != {e.sync for e in SYNCED}:
    raise RuntimeError("core/qbo_entities.py and quickbooks/domain/syncs.py name different syncs")
