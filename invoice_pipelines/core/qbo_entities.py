"""The QuickBooks Online entities we keep in step with, written once.

Everything that names them reads this list: the `qbo_mappings` / `qbo_cursors` entity column
(db/tables.py), the sync assets, their jobs and daily schedules and the webhook sensor
(quickbooks/assets.py, jobs.py, schedules.py, sensors.py), `qbo-sync --what`
(quickbooks/commands/cli.py), which QBO change asks for which pull (quickbooks/domain/webhooks.py) and which
mappings wake the push sensor (quickbooks/domain/watch.py). What one sync does is its function in
quickbooks/domain/sync/, named in quickbooks/domain/syncs.py.
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
    # mapped in a table of its own (the payables: qbo_vendors, qbo_bills), not in qbo_mappings
    own_table: bool = False

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
    # pushed by the invoices' sync after the invoice it corrects (quickbooks/domain/sync/credit_memos.py)
    QboEntity("credit_memo", direction=PUSHED),
    # the payables (issue 49): our suppliers as QBO vendors, supplier invoices as bills, and the
    # bill payments that pay them
    QboEntity(
        "vendor",
        "vendors",
        BOTH_WAYS,
        "One organization's QuickBooks vendors: pulled into qbo_vendors (initial import, then "
        "changes); each supplier's vendor is the one the supplier register links, else one with "
        "its full, unmasked VAT id (then linked); a name match only suggests one to a person. A "
        "registered supplier without a vendor is created in QuickBooks when the "
        "organization allows it (qbo-payables --create-vendors yes), else its bills wait with a "
        "finding naming the vendor to create.",
        "Sync now: vendors pulled from QuickBooks, missing ones created where allowed.",
        deps=("incoming_invoices",),
        daily_hour=5,
        webhook=("vendor",),
        initial_import=True,
        own_table=True,
    ),
    QboEntity(
        "bill",
        "bills",
        PUSHED,
        "One organization's VALIDATED incoming invoices pushed to QuickBooks as Bills (credit "
        "notes as VendorCredits), exactly once (requestid and mapping, through the outbox): "
        "vendor, the supplier's number as DocNumber, dates, currency, lines on the expense "
        "account set for the supplier or the organization, tax codes by VAT rate, the supplier's "
        "discount as a Term; the original document attached; then EXPORTED. A document processed "
        "again updates its bill, one that failed deletes it.",
        "Push now: VALIDATED incoming invoices to QuickBooks as bills.",
        deps=("incoming_invoices", "qbo_vendors"),
        own_table=True,
    ),
    QboEntity(
        "bill_payment",
        "bill_payments",
        PULLED,
        "Bill payments pulled from QuickBooks onto one organization's incoming invoices: each "
        "payment's day and amount, the invoice paid, partly paid or open, and a supplier's "
        "early-payment discount taken when the payments in its period reached what it asks.",
        "Pull now: bill payments from QuickBooks onto incoming invoices.",
        deps=("qbo_bills",),
        daily_hour=1,
        # a bill payment changes its bills' balance; a vendor credit taken does too
        webhook=("bill", "billpayment", "vendorcredit"),
        own_table=True,
    ),
)

# the entities qbo_mappings keeps (the payables have tables of their own)
MAPPED = tuple(e.mapping for e in QBO_ENTITIES if not e.own_table)
SYNCED = tuple(e for e in QBO_ENTITIES if e.sync)
# QBO entity name in a webhook notice -> the entity whose pull it asks for
PULL_FOR = {name: e.mapping for e in QBO_ENTITIES for name in e.webhook}
# mappings an invoice waits for: a new one may let a refused invoice be pushed
NEEDED_BY_PUSH = tuple(e.mapping for e in QBO_ENTITIES if e.needed_by_push)
