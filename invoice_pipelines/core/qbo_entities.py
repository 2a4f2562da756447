"""The QuickBooks Online entities we keep in step with, written once.

Everything that names them reads this list: the `qbo_mappings` / `qbo_cursors` entity column
(db/tables.py), the sync assets, their jobs and daily schedules and the webhook sensor
(quickbooks/defs.py), `qbo-sync --what` (quickbooks/cli.py), which QBO change asks for which pull
(quickbooks/webhooks.py) and which mappings wake the push sensor (quickbooks/watch.py). What one
sync does is its function in quickbooks/sync/, named in quickbooks/syncs.py.
docs/quickbooks.md says which files adding an entity touches.
"""

from __future__ import annotations

from dataclasses import dataclass

BOTH_WAYS, PUSHED, PULLED = "both ways", "pushed", "pulled"


@dataclass(frozen=True)
class QboEntity:
    mapping: str  # the entity column of qbo_mappings and qbo_cursors (singular, our word)
    # the sync's own name: the asset qbo_<sync>, its job qbo_<sync>_job, `qbo-sync --what <sync>`;
    # empty: no sync of its own (a credit memo is pushed by the invoices' sync)
    sync: str = ""
    direction: str = BOTH_WAYS
    description: str = ""  # the asset's, shown in the Dagster UI
    job_description: str = ""
    deps: tuple[str, ...] = ()  # asset keys the sync's asset comes after
    daily_hour: int | None = None  # local hour of the organization's daily run, if any
    # QBO entity names (lower case) whose webhook notice asks for this entity's pull
    webhook: tuple[str, ...] = ()
    initial_import: bool = False  # its first sync is the paged, resumable initial import
    # an invoice waits for this entity's records to be mapped before it can be pushed
    needed_by_push: bool = False

    @property
    def asset(self) -> str:
        return f"qbo_{self.sync}"

    @property
    def job(self) -> str:
        return f"qbo_{self.sync}_job"


QBO_ENTITIES: tuple[QboEntity, ...] = (
    QboEntity(
        "customer",
        "customers",
        BOTH_WAYS,
        "One organization's customers synced with its QuickBooks company, both ways: changes on "
        "one side are copied, changes on both sides are decided by the later change (skew "
        "tolerance 2 s) and logged in sync_conflicts, ties are held for review; a new customer "
        "whose name QBO already has is linked when it is the same party. The first "
        "materialization is the initial import (paged, resumable).",
        "Sync now: customers both ways for the chosen organizations.",
        daily_hour=3,
        webhook=("customer",),
        initial_import=True,
        needed_by_push=True,
    ),
    QboEntity(
        "item",
        "items",
        BOTH_WAYS,
        "One organization's items synced with QuickBooks: QBO's unit price and active flag are "
        "taken, our description (and name) is sent; new items travel both ways.",
        "Sync now: items both ways for the chosen organizations.",
        daily_hour=4,
        webhook=("item",),
        initial_import=True,
        needed_by_push=True,
    ),
    QboEntity(
        "invoice",
        "invoices",
        PUSHED,
        "One organization's sales invoices pushed to QuickBooks (one way): queued on creation, "
        "checked (customer, items and tax codes mapped, totals), sent in batches of 30 with "
        "deterministic requestids (never twice), DocNumber = our invoice number (an existing one "
        "is linked when it is the same invoice, else a conflict); cancelled invoices are voided. "
        "Credit notes follow their invoice as CreditMemos applied to it.",
        "Push now: queued sales invoices (and voids) to QuickBooks.",
        deps=("sales_invoices", "qbo_customers", "qbo_items"),
    ),
    QboEntity(
        "payment",
        "payments",
        PULLED,
        "Payments pulled from QuickBooks onto one organization's sales invoices: amount paid, "
        "amount due, status (paid / partially_paid / open) and last payment date from each "
        "invoice's Balance, TotalAmt and linked payments (partial and voided payments included).",
        "Pull now: payments from QuickBooks onto sales invoices.",
        deps=("qbo_invoices",),
        daily_hour=2,
        # a payment changes its invoices' balance, and so does a credit memo applied to them,
        # changed or deleted
        webhook=("invoice", "payment", "creditmemo"),
    ),
    # pushed by the invoices' sync after the invoice it corrects (quickbooks/sync/credit_memos.py)
    QboEntity("credit_memo", direction=PUSHED),
)

MAPPED = tuple(e.mapping for e in QBO_ENTITIES)
SYNCED = tuple(e for e in QBO_ENTITIES if e.sync)
# QBO entity name in a webhook notice -> the entity whose pull it asks for
PULL_FOR = {name: e.mapping for e in QBO_ENTITIES for name in e.webhook}
# mappings an invoice waits for: a new one may let a refused invoice be pushed
NEEDED_BY_PUSH = tuple(e.mapping for e in QBO_ENTITIES if e.needed_by_push)
