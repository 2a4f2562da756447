"""Each synced QuickBooks entity's sync function, by its name in core/qbo_entities.py.

The assets (defs.py) and `qbo-sync` (cli.py) both run them from here: (engine, organization id,
client, **options) -> SyncCounts.
"""

from __future__ import annotations

from collections.abc import Callable

from invoice_pipelines.core.qbo_entities import SYNCED
from invoice_pipelines.quickbooks.sync.common import SyncCounts
from invoice_pipelines.quickbooks.sync.customers import sync_customers
from invoice_pipelines.quickbooks.sync.invoices import push_invoices
from invoice_pipelines.quickbooks.sync.items import sync_items
from invoice_pipelines.quickbooks.sync.payments import pull_payments

SYNCS: dict[str, Callable[..., SyncCounts]] = {
    "customers": sync_customers,
    "items": sync_items,
    "invoices": push_invoices,
    "payments": pull_payments,
}
if set(SYNCS) != {e.sync for e in SYNCED}:
    raise RuntimeError("core/qbo_entities.py and quickbooks/syncs.py name different syncs")
