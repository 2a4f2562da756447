"""The application's tables (SQLAlchemy Core). Every tenant row carries `organization_id`.

Migrations in `db/migrations/versions` create exactly these; a test compares the two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

from invoice_pipelines.core.batch_kinds import BATCH_JOB_STATUSES
from invoice_pipelines.core.channels import INVOICE_CHANNELS
from invoice_pipelines.core.qbo_entities import MAPPED
from invoice_pipelines.db.types import Id, Json, Money, Quantity, Rate, UtcDateTime, utcnow

_metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

NOW = text("CURRENT_TIMESTAMP")

SALES_ORDER_STATUSES = ("draft", "pending", "reviewed", "invoiced", "cancelled")
SALES_INVOICE_STATUSES = ("open", "partially_paid", "paid", "cancelled")
BATCH_ITEM_STATUSES = ("pending", "succeeded", "failed", "skipped")
# incoming_invoices.intake_status: the status while the intake works on a document
INTAKE_STATUS = "CASE WHEN status IN ('VALIDATED', 'EXPORTED') THEN NULL ELSE status END"

INCOMING_STATUSES = (
    "UPLOADED",
    "CREATED",
    "PARSED",
    "NEEDS_REVIEW",
    "VALIDATED",
    "EXPORTED",
    "FAILED",
)


# a Peppol participant id's shape, "<eas>:<value>"; its scheme and checksum are checked in Python
PEPPOL_PARTICIPANT_SHAPE = (
    "peppol_participant IS NULL OR "
    "(length(peppol_participant) > 5 AND substr(peppol_participant, 5, 1) = ':')"
)

# an offboarded organization whose data no offboarding step is changing now: read-only (0055)
READ_ONLY = "offboarded_at IS NOT NULL AND offboarding_step IS NULL"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _org_fk(*, index: bool = True) -> Column:
    return Column(
        "organization_id",
        Id,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=index,
    )


def _same_organization(column: str, parent: str, **kwargs) -> ForeignKeyConstraint:
    """`column` refers to a row of `parent` of the row's own organization: the key is
    (organization_id, column) -> parent (organization_id, id), so the database refuses a reference
    across organizations whatever the policies let through (migration 0034). A NULL `column` is
    not checked (MATCH SIMPLE)."""
    return ForeignKeyConstraint(
        ["organization_id", column], [f"{parent}.organization_id", f"{parent}.id"], **kwargs
    )


def _timestamps() -> list[Column]:
    return [
        Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        # onupdate: every UPDATE through SQLAlchemy moves it (the organizations sensor relies on it)
        Column("updated_at", UtcDateTime, nullable=False, server_default=NOW, onupdate=utcnow),
    ]


def _organizations() -> Table:
    return Table(
        "organizations",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        # The slug is the Dagster partition key: stable, readable, unique.
        Column("slug", String(64), nullable=False, unique=True),
        Column("name", String(255), nullable=False),
        Column("country", String(2), nullable=False, server_default="DE"),
        Column("currency", String(3), nullable=False, server_default="EUR"),
        Column("timezone", String(64), nullable=False, server_default="Europe/Berlin"),
        # e.g. "RE-{year}-{counter:06d}"; see core/numbering.py
        Column(
            "invoice_number_format",
            String(64),
            nullable=False,
            server_default="RE-{year}-{counter:06d}",
        ),
        Column("vat_id", String(32)),
        # its tax number (Steuernummer): a document naming it as the seller's is its own (0033)
        Column("tax_number", String(32)),
        # DATEV: Beraternummer (tax advisor number) and Mandantennummer (client number), chart SKR03/04
        Column("datev_berater_nr", Integer),
        Column("datev_mandant_nr", Integer),
        Column("datev_chart", String(5), nullable=False, server_default="SKR03"),
        Column("settings", Json, nullable=False, server_default=text("'{}'")),
        Column("active", Boolean, nullable=False, server_default=text("true")),
        # its Peppol participant id "<eas>:<value>" (einvoice/peppol_ids.py), BT-34 of its Peppol
        # documents; NULL: not on Peppol (0041)
        Column("peppol_participant", String(128)),
        # suspended: sensors, schedules and backfills request nothing for it until it is resumed;
        # offboarded: its data were handed over, deleted when every retention period is over (0052,
        # tenants/domain/lifecycle.py)
        Column("suspended_at", UtcDateTime),
        Column("suspended_by", String(255)),
        Column("suspension_reason", Text),
        Column("offboarded_at", UtcDateTime),
        Column("offboarded_by", String(255)),
        # offboarded: its data are read-only (triggers of 0055) but inside the offboarding's own
        # transactions, which set this ("thinning", "deleting") and clear it before they commit
        Column("offboarding_step", String(16)),
        *_timestamps(),
        CheckConstraint("datev_chart IN ('SKR03', 'SKR04')", name="datev_chart"),
        CheckConstraint(PEPPOL_PARTICIPANT_SHAPE, name="peppol_participant"),
        Index(
            "ix_organizations_offboarded",
            "id",
            postgresql_where=text(READ_ONLY),
            sqlite_where=text(READ_ONLY),
        ),
    )


def _customers() -> Table:
    return Table(
        "customers",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(),
        Column("customer_number", String(64), nullable=False),
        Column("name", String(255), nullable=False),
        Column("email", String(255)),
        Column("phone", String(64)),
        Column("street", String(255)),
        Column("postal_code", String(32)),
        Column("city", String(128)),
        Column("country", String(2), nullable=False, server_default="DE"),
        Column("vat_id", String(32)),
        Column("payment_terms_days", Integer, nullable=False, server_default="14"),
        # the language of the documents and messages this customer gets (de, en)
        Column("language", String(5), nullable=False, server_default="de"),
        # which e-invoice the customer receives: facturx (PDF/A-3 with CII inside), or in addition an
        # XRechnung XML for public buyers: xrechnung-cii | xrechnung-ubl
        Column("einvoice_format", String(16), nullable=False, server_default="facturx"),
        # BT-10 buyer reference; for public buyers the Leitweg-ID XRechnung requires
        Column("buyer_reference", String(64)),
        # the document this customer's invoices are: auto | facturx | pdf (a plain PDF invoice, no
        # e-invoice); NULL follows the organization's settings["documents"]["format"]
        # (documents/domain/formats.py decides)
        Column("document_format", String(16)),
        # Mahnsperre: no dunning notices for this customer until lifted (dunning_block_job, CLI)
        Column("dunning_blocked", Boolean, nullable=False, server_default=text("false")),
        # business | consumer (§§ 13, 14 BGB) for the dunning's default interest and flat fee
        # (§ 288 BGB); NULL: read from the VAT id (one: business, none: consumer), migration 0013
        Column("kind", String(16)),
        Column("active", Boolean, nullable=False, server_default=text("true")),
        # the customer's own early-payment discount steps (Skonto, core/skonto.py customer_terms):
        # [{"days": 10, "percent": "2"}, ...]; [] no discount; NULL the organization's settings["skonto"]
        Column("skonto", Json),
        # the customer's Peppol participant id "<eas>:<value>" (einvoice/peppol_ids.py), BT-49 of
        # its Peppol documents; NULL: not reachable on Peppol (0041)
        Column("peppol_participant", String(128)),
        *_timestamps(),
        UniqueConstraint("organization_id", "customer_number"),
        # the target of the (organization_id, customer_id) foreign keys (0034)
        UniqueConstraint("organization_id", "id"),
        CheckConstraint("kind IN ('business', 'consumer')", name="kind"),
        CheckConstraint(
            "einvoice_format IN ('facturx', 'xrechnung-cii', 'xrechnung-ubl')",
            name="einvoice_format",
        ),
        CheckConstraint("document_format IN ('auto', 'facturx', 'pdf')", name="document_format"),
        CheckConstraint(PEPPOL_PARTICIPANT_SHAPE, name="peppol_participant"),
    )


def _items() -> Table:
    return Table(
        "items",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(),
        Column("sku", String(64), nullable=False),
        Column("name", String(255), nullable=False),
        Column("description", Text),
        Column("unit_code", String(8), nullable=False, server_default="C62"),
        Column("unit_price", Quantity(), nullable=False),
        Column("vat_rate", Rate(), nullable=False),
        # EN 16931 VAT category (UNTDID 5305): S standard, Z zero, E exempt, AE reverse charge, K intra-EU
        Column("vat_category", String(2), nullable=False, server_default="S"),
        Column("is_stock_item", Boolean, nullable=False, server_default=text("false")),
        Column("inventory_quantity", Quantity(), nullable=False, server_default="0"),
        Column("active", Boolean, nullable=False, server_default=text("true")),
        *_timestamps(),
        UniqueConstraint("organization_id", "sku"),
        # the target of the order lines' (organization_id, item_id) foreign key (0034)
        UniqueConstraint("organization_id", "id"),
        sqlite_autoincrement=True,  # never reuse a deleted item's id (see sales_orders)
    )


def _sales_orders() -> Table:
    return Table(
        "sales_orders",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        # no index of its own: the unique (organization_id, order_number) index leads with it
        _org_fk(index=False),
        Column("order_number", String(64), nullable=False),
        Column("customer_id", Id, nullable=False, index=True),
        Column("order_date", Date, nullable=False),
        Column("status", String(16), nullable=False, server_default="draft"),
        Column("currency", String(3), nullable=False, server_default="EUR"),
        Column("notes", Text),
        Column("invoiced_at", UtcDateTime),
        Column("created_by", String(255)),
        *_timestamps(),
        UniqueConstraint("organization_id", "order_number"),
        # the target of the (organization_id, sales_order_id) foreign keys (0034)
        UniqueConstraint("organization_id", "id"),
        _same_organization("customer_id", "customers"),
        CheckConstraint(_in("status", SALES_ORDER_STATUSES), name="status"),
        # no index mentions `status` (migration 0047): a chunk's reviewed -> invoiced is then a
        # heap-only update on PostgreSQL (fillfactor 45 leaves each page room for a second version of
        # its orders); the reviewed ones are found through reviewed_sales_orders below
        # SQLite: never reuse the id of a deleted order (batch items and invoice lines refer to
        # orders and items by id without a foreign key; PostgreSQL sequences never reuse ids)
        sqlite_autoincrement=True,
    )


# The reviewed orders waiting for an invoice, one row per sales order whose status is `reviewed`
# (migration 0047): what an all-reviewed job claims, in order date order, and what the daily check
# counts, read through the (organization_id, order_date) index whatever the organization's history.
# The database keeps it, for our code and users' own loaders alike: triggers on sales_orders
# (PostgreSQL: per statement, with transition tables; SQLite: per row) add an order when it is
# inserted or updated as reviewed and remove it when it leaves `reviewed`; a deleted order's row
# goes with the foreign key. Nothing here is written by our code.
def _reviewed_sales_orders() -> Table:
    return Table(
        "reviewed_sales_orders",
        _metadata,
        Column("sales_order_id", Id, primary_key=True, autoincrement=False),
        # no index of its own: the (organization_id, order_date) index leads with it
        Column("organization_id", Id, nullable=False),
        Column("order_date", Date, nullable=False),
        # the order of the row's own organization; follows a changed key, goes with a deleted order
        _same_organization(
            "sales_order_id", "sales_orders", ondelete="CASCADE", onupdate="CASCADE"
        ),
        # the order is not in it: the triggers find an order's row by `sales_order_id = ANY(...)`, and
        # with statistics from an empty table the planner scanned a third column of the whole index
        Index("ix_reviewed_sales_orders_org_date", "organization_id", "order_date"),
    )


def _sales_order_lines() -> Table:
    return Table(
        "sales_order_lines",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(),
        Column("sales_order_id", Id, nullable=False, index=True),
        Column("line_no", Integer, nullable=False),
        # item lines reference an item; discount lines carry a negative unit price and no item
        Column("line_type", String(16), nullable=False, server_default="item"),
        Column("item_id", Id),
        Column("description", String(512), nullable=False),
        Column("quantity", Quantity(), nullable=False),
        Column("unit_price", Quantity(), nullable=False),
        Column("vat_rate", Rate(), nullable=False),
        Column("vat_category", String(2), nullable=False, server_default="S"),
        UniqueConstraint("sales_order_id", "line_no"),
        _same_organization("sales_order_id", "sales_orders", ondelete="CASCADE"),
        _same_organization("item_id", "items"),
        CheckConstraint("line_type IN ('item', 'discount', 'charge')", name="line_type"),
        Index(
            "ix_sales_order_lines_item_id",
            "item_id",
            postgresql_where=text("item_id IS NOT NULL"),
            sqlite_where=text("item_id IS NOT NULL"),
        ),
    )


def _invoice_number_sequences() -> Table:
    return Table(
        "invoice_number_sequences",
        _metadata,
        Column(
            "organization_id",
            Id,
            ForeignKey("organizations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("name", String(32), primary_key=True),
        # the last number handed out; the next invoice gets last_value + 1 (gapless: only a committed
        # transaction moves it, together with the invoices that use the numbers)
        Column("last_value", Integer, nullable=False, server_default="0"),
        Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
    )


def _batch_jobs() -> Table:
    return Table(
        "batch_jobs",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(),
        # sales_orders: invoice existing orders; customer_lines: invoice given customers/items/prices
        Column("kind", String(32), nullable=False, server_default="sales_orders"),
        Column("request", Json, nullable=False, server_default=text("'{}'")),
        Column("invoice_date", Date),
        Column("due_days", Integer, nullable=False, server_default="0"),
        Column("status", String(32), nullable=False, server_default="pending"),
        Column("total_count", Integer, nullable=False, server_default="0"),
        Column("processed_count", Integer, nullable=False, server_default="0"),
        Column("successful_count", Integer, nullable=False, server_default="0"),
        Column("failed_count", Integer, nullable=False, server_default="0"),
        Column("skipped_count", Integer, nullable=False, server_default="0"),
        Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
        Column("retry_of_job_id", Id),
        Column("dagster_run_id", String(64)),
        Column("started_at", UtcDateTime),
        Column("heartbeat_at", UtcDateTime),
        Column("completed_at", UtcDateTime),
        Column("duration_seconds", Float),
        Column("estimated_duration_seconds", Float),
        Column("failure_reason", Text),
        Column("errors", Json, nullable=False, server_default=text("'[]'")),
        Column("created_by", String(255)),
        *_timestamps(),
        CheckConstraint(_in("status", BATCH_JOB_STATUSES), name="status"),
        Index("ix_batch_jobs_status_created", "status", "created_at"),
        Index(
            "ix_batch_jobs_retry_of_job_id",
            "retry_of_job_id",
            postgresql_where=text("retry_of_job_id IS NOT NULL"),
            sqlite_where=text("retry_of_job_id IS NOT NULL"),
        ),
        # the target of the items' (organization_id, batch_job_id) foreign key
        UniqueConstraint("organization_id", "id"),
        _same_organization("retry_of_job_id", "batch_jobs"),
    )


# On PostgreSQL the table has fillfactor 45 (migration 0004): a chunk rewrites each of its items
# once (status, outcome), and with room on the page and none of those columns indexed the
# rewrite is a heap-only update that touches no index.
def _batch_job_items() -> Table:
    return Table(
        "batch_job_items",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        # one foreign key for both: the job exists and belongs to the item's organization (no index of
        # its own: the unique (batch_job_id, position) index serves the job's lookups)
        Column("organization_id", Id, nullable=False),
        Column("batch_job_id", Id, nullable=False),
        Column("position", Integer, nullable=False),
        # what was asked for, not a foreign key: an order deleted after the request fails its item as
        # unknown when its chunk comes (a key would block the delete, and cost a lookup and an index
        # entry per item when a job of 100,000 orders is expanded)
        Column("sales_order_id", Id),
        Column("customer_id", Id),
        # customer_lines jobs: the lines to invoice for this customer
        Column("payload", Json),
        Column("status", String(16), nullable=False, server_default="pending"),
        Column("sales_invoice_id", Id),
        Column("error_code", String(64)),
        Column("error_message", Text),
        Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
        UniqueConstraint("batch_job_id", "position"),
        CheckConstraint(_in("status", BATCH_ITEM_STATUSES), name="status"),
        ForeignKeyConstraint(
            ["organization_id", "batch_job_id"],
            ["batch_jobs.organization_id", "batch_jobs.id"],
            ondelete="CASCADE",
        ),
        _same_organization("customer_id", "customers"),
        # only customer-driven items have a customer: a partial index costs sales-order items nothing
        Index(
            "ix_batch_job_items_customer_id",
            "customer_id",
            postgresql_where=text("customer_id IS NOT NULL"),
            sqlite_where=text("customer_id IS NOT NULL"),
        ),
    )


def _sales_invoices() -> Table:
    return Table(
        "sales_invoices",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        # no index of its own: the unique (organization_id, ...) indexes below lead with it
        _org_fk(index=False),
        Column("invoice_number", String(64), nullable=False),
        Column("sequence_number", Integer, nullable=False),
        # exactly once: at most one invoice per sales order, enforced by the database
        Column("sales_order_id", Id, unique=True),
        Column("customer_id", Id, nullable=False, index=True),
        Column("batch_job_id", Id),
        Column("type_code", String(3), nullable=False, server_default="380"),
        Column("issue_date", Date, nullable=False),
        Column("due_date", Date, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("net_total", Money(), nullable=False),
        Column("tax_total", Money(), nullable=False),
        Column("gross_total", Money(), nullable=False),
        Column("amount_paid", Money(), nullable=False, server_default="0"),
        Column("amount_due", Money(), nullable=False),
        Column("status", String(16), nullable=False, server_default="open"),
        # dunning (overdue/): the day of the last (partial) payment restarts default interest; a
        # disputed invoice gets no notices until the flag is lifted; a deleted one never again
        Column("last_payment_date", Date),
        Column("disputed", Boolean, nullable=False, server_default=text("false")),
        Column("deleted_at", UtcDateTime),
        # a migration's history (0036): exported and reported, never rendered, sent, pushed or dunned
        # unless a person names it
        Column("history", Boolean, nullable=False, server_default=text("false")),
        Column("created_by", String(255)),
        # a credit note (type 381, billing/domain/credit_notes.py): the invoice it corrects (BT-25) and why.
        # No foreign key: adding one to this table on SQLite means rebuilding it, which would cascade
        # into every table that refers to it; billing/domain/credit_notes.py checks the invoice instead.
        Column("corrects_invoice_id", Id),
        Column("credit_reason", Text),
        # the early-payment discount steps (Skonto) its document states, recorded with its first
        # document and never changed after: [{"days": 10, "percent": "2"}, ...]; [] none; NULL no
        # document written yet. Documents written again and the settlement use these, never the
        # customer's or organization's current terms (documents/domain/sources.py, db/sales_discounts.py)
        Column("skonto_steps", Json),
        *_timestamps(),
        UniqueConstraint("organization_id", "invoice_number"),
        UniqueConstraint("organization_id", "sequence_number"),
        # the target of the lines' and breakdowns' (organization_id, sales_invoice_id) foreign keys
        UniqueConstraint("organization_id", "id"),
        _same_organization("sales_order_id", "sales_orders"),
        _same_organization("customer_id", "customers"),
        _same_organization("batch_job_id", "batch_jobs"),
        CheckConstraint(_in("status", SALES_INVOICE_STATUSES), name="status"),
        Index("ix_sales_invoices_org_status_due", "organization_id", "status", "due_date"),
        # an organization's month, as an export reads it (0049)
        Index("ix_sales_invoices_org_issue_date", "organization_id", "issue_date"),
        # deleting a batch job (with its organization) looks for its invoices (migration 0011)
        Index(
            "ix_sales_invoices_batch_job_id",
            "batch_job_id",
            postgresql_where=text("batch_job_id IS NOT NULL"),
            sqlite_where=text("batch_job_id IS NOT NULL"),
        ),
        # the credit notes of an invoice (what is left to credit, BT-25 on the document)
        Index(
            "ix_sales_invoices_corrects_invoice_id",
            "corrects_invoice_id",
            postgresql_where=text("corrects_invoice_id IS NOT NULL"),
            sqlite_where=text("corrects_invoice_id IS NOT NULL"),
        ),
    )


def _sales_invoice_lines() -> Table:
    return Table(
        "sales_invoice_lines",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        # one foreign key for both: the invoice exists and belongs to the row's organization (a batch
        # writes hundreds of thousands of these rows: each foreign key is a lookup per row). No
        # index of their own: the unique constraint below leads with sales_invoice_id.
        Column("organization_id", Id, nullable=False),
        Column("sales_invoice_id", Id, nullable=False),
        Column("line_no", Integer, nullable=False),
        Column("line_type", String(16), nullable=False, server_default="item"),
        # The item the line was made from, as a reference, not a foreign key: the line carries its
        # own description, quantity, price and VAT. Batch invoicing checks the item (exists, active,
        # this organization) and holds it (FOR KEY SHARE) until the chunk commits; afterwards the sales
        # order line it came from keeps the item from being deleted. A foreign key here was a lookup
        # and a row lock per line on the same few hot item rows: 15 % of a 100,000-order batch.
        Column("item_id", Id),
        Column("description", String(512), nullable=False),
        Column("quantity", Quantity(), nullable=False),
        Column("unit_price", Quantity(), nullable=False),
        Column("net_amount", Money(), nullable=False),
        Column("vat_rate", Rate(), nullable=False),
        Column("vat_category", String(2), nullable=False, server_default="S"),
        UniqueConstraint("sales_invoice_id", "line_no"),
        ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
        ),
    )


# One VAT breakdown per (category, rate) on each invoice (EN 16931 BG-23).
def _sales_invoice_taxes() -> Table:
    return Table(
        "sales_invoice_taxes",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        # one foreign key for both: the invoice exists and belongs to the row's organization (a batch
        # writes hundreds of thousands of these rows: each foreign key is a lookup per row). No
        # index of their own: the unique constraint below leads with sales_invoice_id.
        Column("organization_id", Id, nullable=False),
        Column("sales_invoice_id", Id, nullable=False),
        Column("vat_category", String(2), nullable=False),
        Column("vat_rate", Rate(), nullable=False),
        Column("basis", Money(), nullable=False),
        Column("amount", Money(), nullable=False),
        UniqueConstraint("sales_invoice_id", "vat_category", "vat_rate"),
        ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
        ),
    )


# An early-payment discount a customer took on a sales invoice (Skonto, issue 40), booked per VAT
# rate: the gross part that falls on the rate and the net and VAT it corrects (§ 17 UStG: the VAT
# base shrinks by what was not paid). Written in the transaction that settles the invoice
# (db/sales_discounts.py, from the QuickBooks payment pull), replaced when the payments change.
def _sales_invoice_discounts() -> Table:
    return Table(
        "sales_invoice_discounts",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("sales_invoice_id", Id, nullable=False),
        Column("vat_category", String(2), nullable=False),
        Column("vat_rate", Rate(), nullable=False),
        Column("gross", Money(), nullable=False),
        Column("net", Money(), nullable=False),
        Column("vat", Money(), nullable=False),
        # the step earned: its percentage and last day, and the day the payments reached its amount
        Column("percent", Rate(), nullable=False),
        Column("last_day", Date, nullable=False),
        Column("paid_on", Date, nullable=False),
        Column("source", String(16), nullable=False),
        Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        # named: the convention's name would pass PostgreSQL's 63 characters
        UniqueConstraint(
            "sales_invoice_id", "vat_category", "vat_rate", name="uq_sales_invoice_discounts_rate"
        ),
        ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
        ),
        Index("ix_sales_invoice_discounts_org_paid_on", "organization_id", "paid_on"),
    )


# The money payments applied to a sales invoice, as the QuickBooks payment pull read them (one row
# per payment and invoice: a payment applied to two invoices is two rows): the payment's QBO id,
# its day (TxnDate) and the money it applied to the invoice (less what it took from our credit
# notes' CreditMemos). Written in the transaction that sets the invoice's amounts; a payment voided
# or deleted in QBO loses its row on the next pull. The sales export books them in the month of
# their day (exports/domain/payments.py).
def _sales_invoice_payments() -> Table:
    return Table(
        "sales_invoice_payments",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("sales_invoice_id", Id, nullable=False),
        Column("qbo_payment_id", String(32), nullable=False),
        Column("paid_on", Date, nullable=False),
        Column("amount", Money(), nullable=False),
        Column("source", String(16), nullable=False),
        *_timestamps(),
        UniqueConstraint(
            "sales_invoice_id", "qbo_payment_id", name="uq_sales_invoice_payments_payment"
        ),
        ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("amount > 0", name="amount"),
        Index("ix_sales_invoice_payments_org_paid_on", "organization_id", "paid_on"),
    )


# peppol: the Peppol BIS Billing 3.0 UBL document of an invoice to a customer on Peppol (0042)
DOCUMENT_KINDS = ("facturx", "xrechnung", "peppol")


# The documents of a sales invoice: its Factur-X PDF and, for customers who need one, its XRechnung
# XML. Written once (the invoice does not change; a correction is a credit note); a failed attempt
# keeps its findings and is tried again on the next run.
def _sales_invoice_documents() -> Table:
    return Table(
        "sales_invoice_documents",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("sales_invoice_id", Id, nullable=False),
        Column("kind", String(16), nullable=False),
        Column("status", String(16), nullable=False),  # generated | failed
        Column("storage_key", String(1024)),
        Column("size_bytes", Integer),
        Column("sha256", String(64)),
        Column("errors", Json, nullable=False, server_default=text("'[]'")),
        Column("dagster_run_id", String(64)),
        # what the kind "facturx" row's PDF is: facturx (CII embedded) or pdf (a plain PDF invoice
        # where an EN 16931 e-invoice does not apply), and why that was chosen (documents/domain/formats.py)
        Column("format", String(16)),
        Column("format_reason", Text),
        *_timestamps(),
        UniqueConstraint("sales_invoice_id", "kind"),
        ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint(_in("kind", DOCUMENT_KINDS), name="kind"),
        CheckConstraint("status IN ('generated', 'failed')", name="status"),
        Index("ix_sales_invoice_documents_org_status", "organization_id", "status"),
    )


DELIVERY_STATUSES = ("sending", "sent", "failed", "unknown")


# Each attempt to send an invoice over a channel. The row is written (status `sending`, with the
# Message-ID) and committed BEFORE the message leaves, and moved to `sent` or `failed` after; a
# row still `sending` after a crash is `unknown`: reported, never sent again on its own. At most
# one delivery per invoice and channel (sequence 0); an explicit resend is the next sequence.
def _deliveries() -> Table:
    return Table(
        "deliveries",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("sales_invoice_id", Id, nullable=False),
        Column("channel", String(16), nullable=False),
        Column("sequence", Integer, nullable=False, server_default="0"),
        Column("recipient", String(255), nullable=False),
        Column("status", String(16), nullable=False),
        Column("message_id", String(255)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("error", Text),
        Column("batch_job_id", Id),
        Column("dagster_run_id", String(64)),
        Column("created_by", String(255)),
        Column("sent_at", UtcDateTime),
        # the id the transport gave the message (Peppol: the AS4 message id; SMS/WhatsApp: the
        # provider's), where it named one; `message_id` is ours, recorded before it left (0042)
        Column("transport_message_id", String(255)),
        # why this invoice went over this channel and not over Peppol, its customer being on Peppol
        # (the SMP lookup's answer, no Peppol document); NULL: nothing chose otherwise (0042)
        Column("fallback_reason", Text),
        *_timestamps(),
        UniqueConstraint("sales_invoice_id", "channel", "sequence"),
        ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint(_in("channel", INVOICE_CHANNELS), name="channel"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        Index("ix_deliveries_org_status", "organization_id", "status"),
        # the peppol_undelivered check's rows among every channel's (migration 0045)
        Index(
            "ix_deliveries_peppol_undelivered",
            "created_at",
            postgresql_where=text("channel = 'peppol' AND status <> 'sent'"),
            sqlite_where=text("channel = 'peppol' AND status <> 'sent'"),
        ),
    )


DUNNING_RUN_STATUSES = ("RUNNING", "SUCCESS", "PARTIAL", "FAILED")
NOTICE_DELIVERY_STATUSES = ("pending", "sending", "sent", "failed", "unknown")
LETTER_STATUSES = ("writing", "written", "failed")


# A dunning notice: one per invoice and level, whoever runs at the same time (the unique key is the
# guarantee, not the code). Fees and interest are recorded here, never on the invoice: `fee` and
# `interest` are what this notice adds, `fees_total` / `interest_total` what all notices of the
# invoice claim so far; interest_from..interest_until is the period this notice charged.
def _dunning_notices() -> Table:
    return Table(
        "dunning_notices",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("sales_invoice_id", Id, nullable=False),
        Column("customer_id", Id, nullable=False),
        Column("level", Integer, nullable=False),
        Column("level_name", String(64), nullable=False),
        Column("as_of", Date, nullable=False),  # the organization's local day it was issued for
        Column("days_overdue", Integer, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("amount_open", Money(), nullable=False),
        Column("fee", Money(), nullable=False),
        Column("interest", Money(), nullable=False),
        Column("interest_rate_percent", Rate(), nullable=False),
        Column("interest_from", Date),
        Column("interest_until", Date),
        # what the interest was charged on, one entry per balance (migration 0030; overdue/domain/letter.py
        # lists them): [{"after", "until", "amount"}]; NULL before 0030 and without interest
        Column("interest_segments", Json),
        Column("fees_total", Money(), nullable=False),
        # the levels' own dunning costs so far, before the § 288(5) BGB flat fee is offset against
        # them (fees_total is what is claimed); NULL on notices before migration 0013: fees_total
        Column("dunning_costs_total", Money()),
        Column("interest_total", Money(), nullable=False),
        Column("total_claimed", Money(), nullable=False),
        Column("template", String(64), nullable=False),
        Column("channel", String(16), nullable=False),
        Column("language", String(5), nullable=False),
        Column("dunning_run_id", Id),
        Column("dagster_run_id", String(64)),
        # e-mail delivery when the organization enables it (NULL: an in-app notice only): pending ->
        # sending (committed before the message leaves) -> sent | failed; a notice left sending by a
        # dead run becomes unknown and is never sent again on its own (at most once)
        Column("delivery_status", String(16)),
        Column("recipient", String(255)),
        Column("message_id", String(255)),
        Column("delivery_error", Text),
        Column("delivery_started_at", UtcDateTime),
        Column("sent_at", UtcDateTime),
        # the batch invoicing job that invoices this notice's fee and interest, when the organization
        # chooses fee invoices (queued in the same transaction that sets it: invoiced once)
        Column("fee_batch_job_id", Id),
        # the notice's letter (PDF/A in the document store, overdue/domain/letter.py): claimed `writing` by
        # one run before it is written (a conditional update: two runs never both write it), then
        # `written` with where it is and its size and pages, or `failed` with the reason
        Column("letter_status", String(16)),
        Column("letter_key", String(1024)),
        Column("letter_size_bytes", Integer),
        # its SHA-256, recorded when it is written (0054; audit-verify proves it unchanged)
        Column("letter_sha256", String(64)),
        Column("letter_pages", Integer),
        Column("letter_error", Text),
        Column("letter_started_at", UtcDateTime),
        Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        UniqueConstraint("sales_invoice_id", "level"),
        CheckConstraint(_in("delivery_status", NOTICE_DELIVERY_STATUSES), name="delivery_status"),
        CheckConstraint(_in("letter_status", LETTER_STATUSES), name="letter_status"),
        Index(
            "ix_dunning_notices_org_delivery",
            "organization_id",
            "delivery_status",
            postgresql_where=text("delivery_status IN ('pending', 'sending')"),
            sqlite_where=text("delivery_status IN ('pending', 'sending')"),
        ),
        ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
        ),
        Index("ix_dunning_notices_org_as_of", "organization_id", "as_of"),
    )


# The execution log: one row per run and organization (RUNNING until it ends).
def _dunning_runs() -> Table:
    return Table(
        "dunning_runs",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("dagster_run_id", String(64)),
        Column("as_of", Date),
        Column("dry_run", Boolean, nullable=False, server_default=text("false")),
        Column("status", String(16), nullable=False, server_default="RUNNING"),
        Column("started_at", UtcDateTime, nullable=False, server_default=NOW),
        Column("finished_at", UtcDateTime),
        Column("duration_seconds", Float),
        Column("invoices_scanned", Integer, nullable=False, server_default="0"),
        Column("notices_created", Integer, nullable=False, server_default="0"),
        Column("notices_by_level", Json, nullable=False, server_default=text("'{}'")),
        Column("fees_charged", Money(), nullable=False, server_default="0"),
        Column("interest_charged", Money(), nullable=False, server_default="0"),
        Column("error_count", Integer, nullable=False, server_default="0"),
        Column("errors", Json, nullable=False, server_default=text("'[]'")),
        Column("created_by", String(255)),
        CheckConstraint(_in("status", DUNNING_RUN_STATUSES), name="status"),
        Index("ix_dunning_runs_org_started", "organization_id", "started_at"),
    )


def _uploads() -> Table:
    return Table(
        "uploads",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(),
        Column("filename", String(512), nullable=False),
        # where the original bytes are kept (relative to the upload store root); removed only by
        # housekeeping once the retention period the organization sets is over
        Column("storage_key", String(1024), nullable=False),
        Column("size_bytes", Integer, nullable=False),
        Column("content_hash", String(64), nullable=False),
        Column("content_type", String(128)),
        # registered: first time we see these bytes; duplicate: same content as an earlier upload
        Column("status", String(16), nullable=False, server_default="registered"),
        Column("duplicate_of_upload_id", Id),
        Column("incoming_invoice_id", Id),
        Column("created_by", String(255)),
        Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        # housekeeping removed the archived original after its retention period (housekeeping/):
        # purge_result 'removed', or 'missing' when it was already gone; the row and hash stay
        Column("purged_at", UtcDateTime),
        Column("purge_result", String(16)),
        UniqueConstraint("organization_id", "storage_key"),
        # the target of the (organization_id, upload id) foreign keys (0034)
        UniqueConstraint("organization_id", "id"),
        _same_organization("duplicate_of_upload_id", "uploads"),
        Index("ix_uploads_org_hash", "organization_id", "content_hash"),
        # deleting an upload (with its organization) looks for rows that refer to it (migration 0011)
        Index(
            "ix_uploads_duplicate_of_upload_id",
            "duplicate_of_upload_id",
            postgresql_where=text("duplicate_of_upload_id IS NOT NULL"),
            sqlite_where=text("duplicate_of_upload_id IS NOT NULL"),
        ),
    )


def _incoming_invoices() -> Table:
    return Table(
        "incoming_invoices",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        # no index of its own: the (organization_id, ...) indexes below lead with it, and every status
        # change would maintain one more index
        _org_fk(index=False),
        Column("upload_id", Id),
        # not indexed (0048): the export's VALIDATED -> EXPORTED update is heap-only (the table has
        # fillfactor 50 on PostgreSQL, room on each page for a month's new versions); the working
        # sets are found through intake_status and incoming_validated
        Column("status", String(16), nullable=False, server_default="UPLOADED"),
        # status while the intake works on the document, NULL once accepted (VALIDATED, EXPORTED):
        # indexed for the intake's working sets, and unchanged by the export. Stored on PostgreSQL,
        # virtual on SQLite (which cannot add a stored column to a table)
        Column("intake_status", String(16), Computed(INTAKE_STATUS, persisted=True)),
        # optimistic lock: every status change is UPDATE ... WHERE processing_version = :seen
        Column("processing_version", Integer, nullable=False, server_default="0"),
        # intake runs that took the document up while it waited without recording its outcome (0025)
        Column("intake_attempts", Integer, nullable=False, server_default="0"),
        Column("last_processed_at", UtcDateTime),
        Column("status_changed_at", UtcDateTime, nullable=False, server_default=NOW),
        Column("format", String(32)),
        Column("content_hash", String(64), nullable=False),
        Column("raw_json", Json),
        Column("invoice_number", String(128)),
        # core.rules.invoice_number_key(invoice_number): what the duplicate check (IP-DUP-01) selects by
        Column("invoice_number_key", String(255)),
        Column("type_code", String(3)),
        Column("seller_name", String(255)),
        Column("seller_vat_id", String(64)),
        Column("issue_date", Date),
        Column("due_date", Date),
        # Leistungsdatum: delivery date (BT-72), else end of the invoicing period (BT-74)
        Column("service_date", Date),
        Column("currency", String(3)),
        Column("net_total", Money()),
        Column("tax_total", Money()),
        Column("gross_total", Money()),
        Column("amount_due", Money()),
        Column("processing_seconds", Float),
        # what the document is under German VAT law (einvoice/classes.py): valid_einvoice,
        # einvoice_with_errors or not_einvoice with its reason (format_error, profile, ...)
        Column("einvoice_class", String(32)),
        Column("einvoice_reason", String(32)),
        # a migration's history (0036): exported, never pushed to QuickBooks as a bill
        Column("history", Boolean, nullable=False, server_default=text("false")),
        Column("created_by", String(255)),
        *_timestamps(),
        # the same bytes are one document per organization
        UniqueConstraint("organization_id", "content_hash"),
        # the target of the (organization_id, incoming_invoice_id) foreign keys (0029, 0034)
        UniqueConstraint("organization_id", "id"),
        _same_organization("upload_id", "uploads"),
        CheckConstraint(_in("status", INCOMING_STATUSES), name="status"),
        Index(
            "ix_incoming_invoices_org_intake_status",
            "organization_id",
            "intake_status",
            postgresql_where=text("intake_status IS NOT NULL"),
            sqlite_where=text("intake_status IS NOT NULL"),
        ),
        Index("ix_incoming_invoices_org_number_key", "organization_id", "invoice_number_key"),
        Index("ix_incoming_invoices_upload_id", "upload_id"),
        # an organization's month (incoming_in_month): by issue date, or received in it without one
        # (0049); neither column changes on export, so that update stays heap-only
        Index("ix_incoming_invoices_org_issue_date", "organization_id", "issue_date"),
        Index(
            "ix_incoming_invoices_org_undated",
            "organization_id",
            "created_at",
            postgresql_where=text("issue_date IS NULL"),
            sqlite_where=text("issue_date IS NULL"),
        ),
    )


# The VALIDATED documents, one row each: the documents an export, the QuickBooks bill queue and
# the checks look for, found without an index on incoming_invoices.status (0048). Kept by triggers
# on incoming_invoices (PostgreSQL: statement-level, with transition tables; SQLite: per row): a
# document's row is there exactly while its status is VALIDATED, whoever writes the status.
def _incoming_validated() -> Table:
    return Table(
        "incoming_validated",
        _metadata,
        Column("organization_id", Id, primary_key=True),
        Column("incoming_invoice_id", Id, primary_key=True),
        _same_organization("incoming_invoice_id", "incoming_invoices", ondelete="CASCADE"),
    )


def _processing_errors() -> Table:
    return Table(
        "processing_errors",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(),
        Column("incoming_invoice_id", Id, nullable=False, index=True),
        Column("processing_version", Integer),
        Column("stage", String(32), nullable=False),
        Column("rule_id", String(64)),
        Column("severity", String(16), nullable=False, server_default="error"),
        Column("message", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        # a finding that no longer holds (a person's confirmation in review resolved it): kept for
        # the audit trail, left out of what the listings show as the document's findings (0038)
        Column("resolved_at", UtcDateTime),
        Column("resolved_by", String(255)),
        _same_organization("incoming_invoice_id", "incoming_invoices", ondelete="CASCADE"),
    )


# What a person confirmed or corrected on a document in review (intake/domain/review.py): one row per
# changed field (old and new value as text), or one row with field NULL for a confirmation or a
# rejection; who and when. The document's own columns hold the values as corrected.
def _incoming_reviews() -> Table:
    return Table(
        "incoming_reviews",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("incoming_invoice_id", Id, nullable=False, index=True),
        Column("action", String(16), nullable=False),  # corrected, confirmed, rejected
        Column("field", String(64)),
        Column("old_value", Text),
        Column("new_value", Text),
        Column("reviewed_by", String(255), nullable=False),
        Column("reviewed_at", UtcDateTime, nullable=False, server_default=NOW),
        CheckConstraint("action IN ('corrected', 'confirmed', 'rejected')", name="action"),
        _same_organization("incoming_invoice_id", "incoming_invoices", ondelete="CASCADE"),
    )


# The one notice a supplier gets when the intake rejects a document of theirs (intake/domain/notices.py):
# the intent recorded with the rejection (pending), then sent at most once through the outbox
# (outbox/machine.py: sending -> sent | failed | unknown). One per document.
# folded: listed in the day's notice to the same address (`folded_into`), sent with it;
# suppressed: that day's notice had gone out already, this document is not sent again
SUPPLIER_NOTICE_STATUSES = (
    "pending", "sending", "sent", "failed", "unknown", "folded", "suppressed",
)  # fmt: skip
_CARRIER = "folded_into IS NULL AND recipient IS NOT NULL AND notice_day IS NOT NULL"


def _supplier_notices() -> Table:
    return Table(
        "supplier_notices",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("incoming_invoice_id", Id, nullable=False),
        Column("recipient", String(320)),
        Column("subject", Text, nullable=False),
        Column("body", Text, nullable=False),
        Column("status", String(16), nullable=False, server_default="pending"),
        Column("error", Text),
        Column("message_id", String(255)),
        # the (UTC) day it was recorded; NULL for a notice recorded before migration 0026
        Column("notice_day", Date),
        # the day's notice to the same address this one is folded into (NULL: it is that notice)
        Column("folded_into", Id),
        *_timestamps(),
        UniqueConstraint("incoming_invoice_id"),
        UniqueConstraint("organization_id", "id"),
        CheckConstraint(_in("status", SUPPLIER_NOTICE_STATUSES), name="status"),
        _same_organization("incoming_invoice_id", "incoming_invoices", ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["organization_id", "folded_into"],
            ["supplier_notices.organization_id", "supplier_notices.id"],
            ondelete="CASCADE",
        ),
        Index("ix_supplier_notices_org_status", "organization_id", "status"),
        Index(
            "ix_supplier_notices_folded_into",
            "folded_into",
            postgresql_where=text("folded_into IS NOT NULL"),
            sqlite_where=text("folded_into IS NOT NULL"),
        ),
        # at most one notice a day per organization and address: the others are folded into it
        Index(
            "uq_supplier_notices_day_recipient",
            "organization_id",
            "recipient",
            "notice_day",
            unique=True,
            postgresql_where=text(_CARRIER),
            sqlite_where=text(_CARRIER),
        ),
    )


# The VAT breakdown (BG-23) and lines (BG-25) of an incoming invoice as read by the intake: what
# exports book and list. Written with the document's fields when it is stored; raw_json keeps
# everything else the document said.
def _incoming_invoice_taxes() -> Table:
    return Table(
        "incoming_invoice_taxes",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("incoming_invoice_id", Id, nullable=False, index=True),
        # None when a text or OCR document printed a rate without a category
        Column("vat_category", String(2)),
        Column("vat_rate", Rate()),
        Column("basis", Money()),
        Column("amount", Money()),
        _same_organization("incoming_invoice_id", "incoming_invoices", ondelete="CASCADE"),
    )


def _incoming_invoice_lines() -> Table:
    return Table(
        "incoming_invoice_lines",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("incoming_invoice_id", Id, nullable=False, index=True),
        Column("line_no", Integer, nullable=False),
        Column("description", String(512)),
        Column("quantity", Quantity()),
        Column("unit_code", String(8)),
        Column("unit_price", Quantity()),
        Column("net_amount", Money()),
        Column("vat_category", String(2)),
        Column("vat_rate", Rate()),
        _same_organization("incoming_invoice_id", "incoming_invoices", ondelete="CASCADE"),
    )


# The early-payment discount steps (Skonto, core/skonto.py) an incoming invoice offers, one row
# per step as read (XRechnung's #SKONTO# lines in BT-20, CII's ApplicableTradePaymentDiscountTerms,
# a page's words), with its last day and its worth computed from the document's issue date and
# amount due: what the listing shows and the check `discounts_not_expiring` selects by day.
def _incoming_discounts() -> Table:
    return Table(
        "incoming_discounts",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("incoming_invoice_id", Id, nullable=False, index=True),
        Column("step", Integer, nullable=False),
        Column("days", Integer, nullable=False),
        Column("percent", Rate(), nullable=False),
        # BASISBETRAG: the amount the percentage applies to when it is not the amount due
        Column("base_amount", Money()),
        # the day the days count from when it is not the issue date (CII BasisDateTime, "bis zum ...")
        Column("start_date", Date),
        Column("source", String(16), nullable=False),
        # NULL when the document has no issue date or nothing positive is due
        Column("last_day", Date),
        Column("discount", Money()),
        Column("pay", Money()),
        # a discount's invoice is one of its own organization (0029)
        ForeignKeyConstraint(
            ["organization_id", "incoming_invoice_id"],
            ["incoming_invoices.organization_id", "incoming_invoices.id"],
            ondelete="CASCADE",
        ),
        Index("ix_incoming_discounts_org_last_day", "organization_id", "last_day"),
    )


EXPORT_DIRECTIONS = ("incoming", "sales")


# DATEV business-partner accounts (Personenkonten): a creditor account per supplier, a debtor
# account per customer. Assigned once, on the first export that books the partner, and never
# changed: the tax advisor's ledger keys on them.
def _partner_accounts() -> Table:
    return Table(
        "partner_accounts",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("kind", String(8), nullable=False),  # creditor | debtor
        # exports.accounts.partner_key: the supplier's VAT id, else its normalized name; for customers
        # the customer number
        Column("partner_key", String(255), nullable=False),
        Column("account_number", Integer, nullable=False),
        Column("name", String(255), nullable=False),
        Column("vat_id", String(64)),
        Column("country", String(2)),
        Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        UniqueConstraint("organization_id", "kind", "partner_key"),
        UniqueConstraint("organization_id", "account_number"),
        CheckConstraint("kind IN ('creditor', 'debtor')", name="kind"),
    )


# One export of one organization, direction and month. A month exported again after a change is a
# new version; files of earlier versions stay where they are.
def _exports() -> Table:
    return Table(
        "exports",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("direction", String(8), nullable=False),
        Column("period", String(7), nullable=False),  # YYYY-MM
        Column("version", Integer, nullable=False),
        # sha256 of what the export books and lists (not of the files: the DATEV header carries the
        # time it was written); equal fingerprints mean an unchanged month
        Column("fingerprint", String(64), nullable=False),
        Column("files", Json, nullable=False, server_default=text("'{}'")),
        Column("invoice_count", Integer, nullable=False, server_default="0"),
        Column("booking_count", Integer, nullable=False, server_default="0"),
        Column("skipped_count", Integer, nullable=False, server_default="0"),
        Column("net_total", Money(), nullable=False, server_default="0"),
        Column("tax_total", Money(), nullable=False, server_default="0"),
        Column("gross_total", Money(), nullable=False, server_default="0"),
        Column("closed", Boolean, nullable=False, server_default=text("false")),  # Festschreibung
        Column("notes", Json, nullable=False, server_default=text("'{}'")),
        Column("dagster_run_id", String(64)),
        Column("created_by", String(255)),
        Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        # housekeeping removed this version's files after the retention period (like uploads)
        Column("purged_at", UtcDateTime),
        Column("purge_result", String(16)),
        UniqueConstraint("organization_id", "direction", "period", "version"),
        # the target of the items' (organization_id, export_id) foreign key
        UniqueConstraint("organization_id", "id"),
        CheckConstraint(_in("direction", EXPORT_DIRECTIONS), name="direction"),
    )


# One row per invoice an export looked at: booked (exported) or skipped with the reason.
def _export_items() -> Table:
    table = Table(
        "export_items",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("export_id", Id, nullable=False),
        # exactly one of the two, as the export's direction says
        Column("incoming_invoice_id", Id),
        Column("sales_invoice_id", Id),
        Column("invoice_number", String(128)),
        Column("status", String(8), nullable=False),  # exported | skipped
        Column("reason", Text),
        # incoming invoices: the processing_version the export saw (VALIDATED -> EXPORTED is
        # conditional on it, like every status change)
        Column("document_version", Integer),
        Column("net_total", Money()),
        Column("tax_total", Money()),
        Column("gross_total", Money()),
        # one item per invoice and export: `uq_export_items_one_per_invoice` below (a unique
        # constraint over the two invoice columns refused nothing, one of them being always NULL)
        ForeignKeyConstraint(
            ["organization_id", "export_id"],
            ["exports.organization_id", "exports.id"],
            ondelete="CASCADE",
        ),
        _same_organization("incoming_invoice_id", "incoming_invoices", ondelete="CASCADE"),
        _same_organization("sales_invoice_id", "sales_invoices", ondelete="CASCADE"),
        CheckConstraint("status IN ('exported', 'skipped')", name="status"),
        CheckConstraint(
            "(incoming_invoice_id IS NULL) <> (sales_invoice_id IS NULL)", name="one_invoice"
        ),
        Index(
            "ix_export_items_incoming_invoice_id",
            "incoming_invoice_id",
            postgresql_where=text("incoming_invoice_id IS NOT NULL"),
            sqlite_where=text("incoming_invoice_id IS NOT NULL"),
        ),
        Index(
            "ix_export_items_sales_invoice_id",
            "sales_invoice_id",
            postgresql_where=text("sales_invoice_id IS NOT NULL"),
            sqlite_where=text("sales_invoice_id IS NOT NULL"),
        ),
    )
    # An invoice is one item of an export at most (migration 0018). NULL is never equal to NULL in a
    # unique index, so the invoice column an item does not use counts as 0 (no row has id 0); the
    # export comes first, so the index also finds an export's items.
    Index(
        "uq_export_items_one_per_invoice",
        table.c.export_id,
        func.coalesce(table.c.incoming_invoice_id, 0),
        func.coalesce(table.c.sales_invoice_id, 0),
        unique=True,
    )
    return table


# Who started what: batch jobs, retries, re-exports, manual runs.
def _audit_log() -> Table:
    return Table(
        "audit_log",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column(
            "organization_id", Id, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
        ),
        Column("created_by", String(255), nullable=False),
        Column("action", String(64), nullable=False),
        Column("entity_type", String(64)),
        Column("entity_id", String(64)),
        Column("details", Json),
        Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
    )


# The audit trail as a chain of hashes (audit/domain/chain.py, migration 0053): one seal per audit row of
# an organization, in the order of the rows' ids: its position, the SHA-256 of the row's content
# and the chain hash (SHA-256 of the previous seal's chain hash and this row's hash).
def _audit_seals() -> Table:
    return Table(
        "audit_seals",
        _metadata,
        Column(
            "organization_id",
            Id,
            ForeignKey("organizations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("position", Integer, primary_key=True),
        # what the seal seals (0057): an audit row (`audit_log_id`) or a row of another sealed
        # table (`record_table`, `record_id`: audit/domain/sealed_records.py)
        Column("audit_log_id", Id, unique=True),
        Column("row_hash", String(64), nullable=False),
        Column("chain_hash", String(64), nullable=False),
        Column("sealed_at", UtcDateTime, nullable=False, server_default=NOW),
        Column("record_table", String(40), nullable=False, server_default="audit_log"),
        Column("record_id", Id),
        # the key the chain hash is an HMAC under (audit/domain/seal_keys.py); NULL: a legacy
        # seal of before 0057, a plain SHA-256
        Column("key_id", String(40)),
        Index(
            "uq_audit_seals_record",
            "organization_id",
            "record_table",
            "record_id",
            unique=True,
        ),
    )


# QuickBooks Online (quickbooks/): one connection per organization (a realm, its OAuth tokens
# encrypted with INVOICE_PIPELINES_QBO_TOKEN_KEY), the mapping of our rows to QBO ids with the
# baseline of the last sync, the pull cursors, the conflicts found by the two-way sync and the
# queue of invoices to push.
QBO_ENTITIES = MAPPED  # core/qbo_entities.py
QBO_PUSH_ACTIONS = ("create", "void", "credit", "apply", "discount", "dapply")
QBO_QUEUE_STATUSES = ("pending", "sending", "pushed", "failed", "conflict")
SYNC_CONFLICT_DECISIONS = (
    "local_won",
    "qbo_won",
    "manual_review",
    "linked",
    "kept_local",
    "kept_qbo",
)


def _qbo_connections() -> Table:
    return Table(
        "qbo_connections",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column(
            "organization_id",
            Id,
            ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        Column("realm_id", String(32), nullable=False),
        Column("client_id", String(255), nullable=False),
        # Fernet tokens (never the plain secrets)
        Column("client_secret_enc", Text, nullable=False),
        Column("refresh_token_enc", Text, nullable=False),
        Column("access_token_enc", Text),
        Column("access_expires_at", UtcDateTime),
        # rolling 100-day idle expiry, and Intuit's hard 5-year maximum when the server tells it
        Column("refresh_expires_at", UtcDateTime),
        Column("refresh_hard_expires_at", UtcDateTime),
        Column("token_version", Integer, nullable=False, server_default="0"),
        Column("last_refreshed_at", UtcDateTime),
        Column("status", String(16), nullable=False, server_default="active"),
        Column("last_error", Text),
        # one sync at a time per organization and realm, whatever launched it (a lease: a dead run's
        # lease runs out)
        Column("sync_owner", String(64)),
        Column("sync_lease_until", UtcDateTime),
        # tax codes by VAT rate, income account for new items, company timezone ...
        Column("settings", Json, nullable=False, server_default=text("'{}'")),
        *_timestamps(),
        CheckConstraint("status IN ('active', 'revoked')", name="status"),
    )


def _qbo_mappings() -> Table:
    return Table(
        "qbo_mappings",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("entity", String(16), nullable=False),
        Column("local_id", Id, nullable=False),
        Column("qbo_id", String(32), nullable=False),
        # the baseline: what both sides looked like when they last agreed
        Column("sync_token", String(16)),
        Column("qbo_updated_at", UtcDateTime),
        Column("local_fingerprint", String(64)),
        # active | inactive | voided | deleted
        Column("qbo_state", String(16), nullable=False, server_default="active"),
        Column("details", Json, nullable=False, server_default=text("'{}'")),
        *_timestamps(),
        UniqueConstraint("organization_id", "entity", "local_id"),
        UniqueConstraint("organization_id", "entity", "qbo_id"),
        CheckConstraint(_in("entity", QBO_ENTITIES), name="entity"),
    )


def _qbo_cursors() -> Table:
    return Table(
        "qbo_cursors",
        _metadata,
        Column(
            "organization_id",
            Id,
            ForeignKey("organizations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("entity", String(16), primary_key=True),
        # the largest LastUpdatedTime QBO returned (UTC), never our own clock
        Column("cursor", UtcDateTime),
        # initial import: rows read so far (a resumed import goes on from here)
        Column("imported", Integer, nullable=False, server_default="0"),
        Column("import_done", Boolean, nullable=False, server_default=text("false")),
        # a webhook asked for a pull of this entity (qbo_webhook_sensor launches it)
        Column("pull_requested_at", UtcDateTime),
        Column("updated_at", UtcDateTime, nullable=False, server_default=NOW, onupdate=utcnow),
    )


def _sync_conflicts() -> Table:
    return Table(
        "sync_conflicts",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("entity", String(16), nullable=False),
        Column("local_id", Id),
        Column("qbo_id", String(32)),
        Column("reason", Text, nullable=False),
        Column("local_version", Json),
        Column("qbo_version", Json),
        Column("decision", String(16), nullable=False),
        # open: held until a person resolves it; resolved: decided (automatically or by a person)
        Column("status", String(16), nullable=False),
        Column("resolved_by", String(255)),
        Column("resolved_at", UtcDateTime),
        Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        CheckConstraint(_in("decision", SYNC_CONFLICT_DECISIONS), name="decision"),
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
        Index("ix_sync_conflicts_org_status", "organization_id", "status"),
    )


def _qbo_push_queue() -> Table:
    return Table(
        "qbo_push_queue",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("sales_invoice_id", Id, nullable=False),
        # create | void (an invoice), credit | apply (a credit note: its CreditMemo, then the
        # application of that CreditMemo to the corrected invoice), discount | dapply (an invoice's
        # Skonto settled here: its CreditMemo, then the application to the invoice)
        Column("action", String(8), nullable=False),
        Column("status", String(16), nullable=False, server_default="pending"),
        Column("attempts", Integer, nullable=False, server_default="0"),
        # deterministic per invoice and action: a retry after an unknown outcome replays, never doubles
        Column("request_id", String(50), nullable=False),
        Column("qbo_id", String(32)),
        Column("error_code", String(16)),
        Column("error_message", Text),
        *_timestamps(),
        UniqueConstraint("sales_invoice_id", "action"),
        ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint(_in("action", QBO_PUSH_ACTIONS), name="action"),
        CheckConstraint(_in("status", QBO_QUEUE_STATUSES), name="status"),
        Index("ix_qbo_push_queue_org_status", "organization_id", "status"),
    )


# The requests counted toward the QBO limits of an organization's realm (quickbooks/domain/realm_meter.py):
# every process that talks to the realm counts its requests here, under one lock, so together they
# keep QBO's 500 a minute, 10 a second, 10 in flight and 40 batches a minute. `at`: seconds since
# the epoch on the database's clock (PostgreSQL; SQLite: the machine's, one machine), the moment
# it was sent while `in_flight`, the moment its answer came back after; a row leaves a minute
# after its answer (or, in flight, when it is too old to be anything but a dead process's)
def _qbo_realm_requests() -> Table:
    return Table(
        "qbo_realm_requests",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("realm_id", String(32), nullable=False),
        Column("at", Float, nullable=False),
        # items: a batch counts each of its operations
        Column("cost", Integer, nullable=False),
        Column("batch", Boolean, nullable=False),
        Column("in_flight", Boolean, nullable=False),
        Index("ix_qbo_realm_requests_org_realm", "organization_id", "realm_id"),
    )


# The signed webhook bodies (SHA-256) that asked for an organization's pulls: the same body again
# within limits.WEBHOOK_REPLAY_WINDOW_S asks for nothing (quickbooks/domain/webhooks.py)
def _qbo_webhook_receipts() -> Table:
    return Table(
        "qbo_webhook_receipts",
        _metadata,
        Column(
            "organization_id",
            Id,
            ForeignKey("organizations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("body_sha256", String(64), primary_key=True),
        Column("received_at", UtcDateTime, nullable=False, server_default=NOW),
        Index("ix_qbo_webhook_receipts_org_received", "organization_id", "received_at"),
    )


# A QuickBooks company is an identity (0051, quickbooks/domain/company.py): connecting an organization to
# another company (realm) is a switch: the first company's links move into `qbo_archived_links`
# (each row as JSON with its table and realm) and every push waits until the new company's import
# completed (`import_done_at`).
def _qbo_company_switches() -> Table:
    return Table(
        "qbo_company_switches",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(),
        Column("old_realm_id", String(32), nullable=False),
        Column("new_realm_id", String(32), nullable=False),
        Column("switched_by", String(255), nullable=False),
        Column("switched_at", UtcDateTime, nullable=False, server_default=NOW),
        # rows archived (or reset) per table
        Column("archived", Json, nullable=False),
        Column("import_done_at", UtcDateTime),
    )


def _qbo_archived_links() -> Table:
    return Table(
        "qbo_archived_links",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("realm_id", String(32), nullable=False),
        Column("source", String(32), nullable=False),  # the table the row was in
        Column("row", Json, nullable=False),
        Column("archived_at", UtcDateTime, nullable=False, server_default=NOW),
        Index("ix_qbo_archived_links_org_realm", "organization_id", "realm_id"),
    )


# QuickBooks payables (issue 49, quickbooks/domain/sync/vendors.py, bills.py, bill_payments.py): the
# company's vendors as we know them, the expense account per supplier, the bill push's outbox and
# each incoming invoice's bill, and what QBO's bill payments paid of our incoming invoices.
QBO_BILL_ACTIONS = ("push", "delete")
QBO_BILL_ENTITIES = ("Bill", "VendorCredit")
INCOMING_PAYMENT_STATUSES = ("open", "partially_paid", "paid")


# The company's vendors: pulled from QBO (initial import, CDC) or created by the bill push for a
# supplier. `vat_id` is the registered supplier's full VAT id we created the vendor with (origin
# `created`; nothing else writes it now, older rows may hold one a name match taught);
# `tax_identifier` is QBO's TaxIdentifier as QBO shows it (masked but for its last five
# characters: never an identity); `name_key` its normalized name.
def _qbo_vendors() -> Table:
    return Table(
        "qbo_vendors",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("qbo_id", String(32), nullable=False),
        Column("sync_token", String(16)),
        Column("display_name", String(500), nullable=False),
        Column("company_name", String(500)),
        Column("name_key", String(255), nullable=False),
        Column("tax_identifier", String(32)),
        Column("vat_id", String(64)),
        Column("email", String(255)),
        Column("currency", String(3)),
        Column("active", Boolean, nullable=False, server_default=text("true")),
        # pulled: read from QBO; created: the bill push created it for a supplier
        Column("origin", String(8), nullable=False),
        Column("qbo_updated_at", UtcDateTime),
        *_timestamps(),
        UniqueConstraint("organization_id", "qbo_id"),
        CheckConstraint("origin IN ('pulled', 'created')", name="origin"),
        Index("ix_qbo_vendors_org_vat_id", "organization_id", "vat_id"),
        Index("ix_qbo_vendors_org_name_key", "organization_id", "name_key"),
    )


# The QBO expense account a supplier's bill lines are booked on: per supplier (`supplier_key`
# "vat:<VAT id>", "name:<normalized name>" or "vendor:<QBO vendor id>") or, with the key '', the
# organization's default. A bill with no account waits with a finding.
def _qbo_expense_accounts() -> Table:
    return Table(
        "qbo_expense_accounts",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("supplier_key", String(255), nullable=False),
        Column("account_id", String(32), nullable=False),
        Column("created_by", String(255)),
        *_timestamps(),
        UniqueConstraint("organization_id", "supplier_key"),
    )


# The bill push's outbox (outbox/machine.py): one row per document version and action, `push`
# (create or update the Bill / VendorCredit, attach the original, then EXPORTED) or `delete` (the
# document failed after its bill was pushed). A row that waits for something a person sets up
# (a vendor, an expense account, a tax code, a person's confirmation of the supplier, the import
# of a company switched to) is `failed` with that finding and its code (error_code vendor |
# account | validation | lines | supplier | company) and is taken again by every run.
def _qbo_bill_queue() -> Table:
    return Table(
        "qbo_bill_queue",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("incoming_invoice_id", Id, nullable=False),
        # the document's processing_version this row is for
        Column("version", Integer, nullable=False),
        Column("action", String(8), nullable=False),
        Column("status", String(16), nullable=False, server_default="pending"),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("request_id", String(50), nullable=False),
        Column("qbo_id", String(32)),
        Column("error_code", String(16)),
        Column("error_message", Text),
        *_timestamps(),
        UniqueConstraint("incoming_invoice_id", "version", "action"),
        ForeignKeyConstraint(
            ["organization_id", "incoming_invoice_id"],
            ["incoming_invoices.organization_id", "incoming_invoices.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint(_in("action", QBO_BILL_ACTIONS), name="action"),
        CheckConstraint(_in("status", QBO_QUEUE_STATUSES), name="status"),
        Index("ix_qbo_bill_queue_org_status", "organization_id", "status"),
    )


# Each incoming invoice's bill (or vendor credit) in QBO: where it went, the document version it
# carries, a fingerprint of what was sent, QBO's total and balance as last read, the attachments
# uploaded ({"original": id, "readable": id}), active or deleted.
def _qbo_bills() -> Table:
    return Table(
        "qbo_bills",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("incoming_invoice_id", Id, nullable=False),
        Column("entity", String(16), nullable=False),
        Column("qbo_id", String(32), nullable=False),
        Column("sync_token", String(16)),
        Column("vendor_qbo_id", String(32), nullable=False),
        Column("document_version", Integer, nullable=False),
        Column("fingerprint", String(64), nullable=False),
        Column("currency", String(3)),
        Column("total", Money()),
        Column("balance", Money()),
        Column("attachments", Json, nullable=False, server_default=text("'{}'")),
        # active | deleted
        Column("state", String(16), nullable=False, server_default="active"),
        Column("pushed_at", UtcDateTime, nullable=False, server_default=NOW),
        *_timestamps(),
        UniqueConstraint("incoming_invoice_id"),
        UniqueConstraint("organization_id", "entity", "qbo_id"),
        ForeignKeyConstraint(
            ["organization_id", "incoming_invoice_id"],
            ["incoming_invoices.organization_id", "incoming_invoices.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint(_in("entity", QBO_BILL_ENTITIES), name="entity"),
        CheckConstraint("state IN ('active', 'deleted')", name="state"),
    )


# The money QBO's bill payments applied to an incoming invoice's bill (one row per payment and
# invoice; a payment voided or deleted in QBO loses its row on the next pull).
def _incoming_invoice_payments() -> Table:
    return Table(
        "incoming_invoice_payments",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("incoming_invoice_id", Id, nullable=False),
        Column("qbo_payment_id", String(32), nullable=False),
        Column("paid_on", Date, nullable=False),
        Column("amount", Money(), nullable=False),
        Column("source", String(16), nullable=False),
        *_timestamps(),
        UniqueConstraint(
            "incoming_invoice_id", "qbo_payment_id", name="uq_incoming_invoice_payments_payment"
        ),
        ForeignKeyConstraint(
            ["organization_id", "incoming_invoice_id"],
            ["incoming_invoices.organization_id", "incoming_invoices.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("amount > 0", name="amount"),
        Index("ix_incoming_invoice_payments_org_paid_on", "organization_id", "paid_on"),
    )


# Where an incoming invoice stands with its supplier: paid, partly paid or open, what was paid and
# when last, and the supplier's early-payment discount (Skonto) taken when the payments within a
# step's period reached what the step asks (core/skonto.py `settlement`).
def _incoming_invoice_settlements() -> Table:
    return Table(
        "incoming_invoice_settlements",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("incoming_invoice_id", Id, nullable=False),
        Column("status", String(16), nullable=False),
        Column("amount_paid", Money(), nullable=False),
        Column("amount_open", Money(), nullable=False),
        Column("last_paid_on", Date),
        Column("discount", Money()),
        Column("discount_percent", Rate()),
        Column("discount_last_day", Date),
        Column("discount_paid_on", Date),
        Column("source", String(16), nullable=False),
        *_timestamps(),
        UniqueConstraint("incoming_invoice_id"),
        # named: the convention's name would pass PostgreSQL's 63 characters
        ForeignKeyConstraint(
            ["organization_id", "incoming_invoice_id"],
            ["incoming_invoices.organization_id", "incoming_invoices.id"],
            ondelete="CASCADE",
            name="fk_incoming_invoice_settlements_invoice",
        ),
        CheckConstraint(_in("status", INCOMING_PAYMENT_STATUSES), name="status"),
        Index("ix_incoming_invoice_settlements_org_status", "organization_id", "status"),
    )


# The supplier's early-payment discount (Skonto) taken on a bill, closed in QBO (0039,
# quickbooks/domain/sync/bill_discounts.py): an outbox of two steps per incoming invoice, `credit` (a
# VendorCredit of the discount) and `apply` (a BillPayment of 0 that takes it against the bill),
# each row committed `sending` before its request, with a requestid of its own.
QBO_BILL_DISCOUNT_ACTIONS = ("credit", "apply")


def _qbo_bill_discounts() -> Table:
    return Table(
        "qbo_bill_discounts",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("incoming_invoice_id", Id, nullable=False),
        Column("action", String(8), nullable=False),
        Column("status", String(16), nullable=False, server_default="pending"),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("request_id", String(50), nullable=False),
        # the discount the settlement took when the row was queued
        Column("amount", Money(), nullable=False),
        # the VendorCredit (`credit`) or the BillPayment (`apply`) once QBO has it
        Column("qbo_id", String(32)),
        Column("error_code", String(16)),
        Column("error_message", Text),
        *_timestamps(),
        UniqueConstraint("incoming_invoice_id", "action"),
        ForeignKeyConstraint(
            ["organization_id", "incoming_invoice_id"],
            ["incoming_invoices.organization_id", "incoming_invoices.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint(_in("action", QBO_BILL_DISCOUNT_ACTIONS), name="action"),
        CheckConstraint(_in("status", QBO_QUEUE_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount"),
        Index("ix_qbo_bill_discounts_org_status", "organization_id", "status"),
    )


# The organization's supplier register (core/suppliers.py, supplier_register.py): the suppliers a
# person confirmed (or the organization's first-invoice policy registered), with their full VAT
# id, names, IBANs, notice address, QuickBooks vendor and DATEV creditor account. What a document
# claims about its seller is compared with it; only a person changes it, and each change is a row
# of `supplier_changes`.
def _suppliers() -> Table:
    return Table(
        "suppliers",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("name", String(500), nullable=False),
        Column("name_key", String(500), nullable=False),  # core.suppliers.name_skeleton(name)
        # other names a person confirmed for it (trading names, spellings): a JSON list of strings
        Column("other_names", Json, nullable=False, server_default=text("'[]'")),
        Column("vat_id", String(64)),  # in full, core.suppliers.vat_id_key
        Column("tax_number", String(64)),
        # [{"iban": ..., "bic": ...}], each a person confirmed
        Column("bank_accounts", Json, nullable=False, server_default=text("'[]'")),
        Column("notice_email", String(255)),
        Column("qbo_vendor_id", String(32)),
        Column("datev_creditor_account", Integer),
        # person: a command, the launchpad or a review; first_invoice: the organization's policy
        Column("origin", String(16), nullable=False),
        # when and by whom a person confirmed it (0050); NULL: registered by the first-invoice policy
        # and not confirmed yet, so no QuickBooks vendor is created and no bill pushed for it
        Column("confirmed_at", UtcDateTime),
        Column("confirmed_by", String(255)),
        Column("active", Boolean, nullable=False, server_default=text("true")),
        Column("version", Integer, nullable=False, server_default=text("1")),
        Column("updated_by", String(255), nullable=False),
        *_timestamps(),
        UniqueConstraint("organization_id", "id"),
        UniqueConstraint("organization_id", "vat_id"),
        UniqueConstraint("organization_id", "qbo_vendor_id"),
        CheckConstraint("origin IN ('person', 'first_invoice')", name="origin"),
        Index("ix_suppliers_org_name_key", "organization_id", "name_key"),
    )


# Every change of the register: who, why, what it was and what it became (the supplier's values
# as JSON); the document a confirmation or the first-invoice policy learned from.
def _supplier_changes() -> Table:
    return Table(
        "supplier_changes",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, nullable=False),
        Column("supplier_id", Id, nullable=False),
        Column("action", String(32), nullable=False),
        Column("changed_by", String(255), nullable=False),
        Column("reason", Text, nullable=False),
        Column("before", Json),
        Column("after", Json, nullable=False),
        Column("incoming_invoice_id", Id),
        Column("changed_at", UtcDateTime, nullable=False, server_default=NOW),
        ForeignKeyConstraint(
            ["organization_id", "supplier_id"],
            ["suppliers.organization_id", "suppliers.id"],
            ondelete="CASCADE",
            name="fk_supplier_changes_supplier",
        ),
        Index("ix_supplier_changes_org_supplier", "organization_id", "supplier_id"),
    )


# Where a registered supplier's values stand on its page, learned from documents a person
# confirmed in review (intake/domain/supplier_layouts.py, issue 84, migration 0061): one row per
# field of each version; a new version is new rows, never an update (append-only for the runtime
# login, 0056's trigger); `forgotten` is a version without fields. Never read across organizations.
SUPPLIER_LAYOUT_DIRECTIONS = ("right", "below", "forgotten")


def _supplier_layouts() -> Table:
    return Table(
        "supplier_layouts",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("supplier_id", Id, nullable=False),
        Column("version", Integer, nullable=False),
        Column("field", String(32), nullable=False),
        Column("label", String(120)),  # the label's words as printed; NULL when forgotten
        Column("direction", String(16), nullable=False),
        Column("lines_below", Integer, nullable=False, server_default=text("0")),
        Column("column_offset", Integer, nullable=False, server_default=text("0")),
        # how many values of the field's kind stand between the label and the value
        Column("skip", Integer, nullable=False, server_default=text("0")),
        Column("page", Integer, nullable=False, server_default=text("0")),
        Column("region", String(8), nullable=False, server_default=text("'top'")),
        Column("confirmed_by", String(255), nullable=False),
        Column("confirmed_at", UtcDateTime, nullable=False, server_default=NOW),
        Column("incoming_invoice_id", Id),  # the confirmed document it was learned from
        UniqueConstraint("organization_id", "supplier_id", "version", "field"),
        _same_organization("supplier_id", "suppliers", ondelete="CASCADE"),
        CheckConstraint(_in("direction", SUPPLIER_LAYOUT_DIRECTIONS), name="direction"),
        CheckConstraint("region IN ('top', 'middle', 'bottom')", name="region"),
        CheckConstraint("direction = 'forgotten' OR label IS NOT NULL", name="label"),
    )


# Documents a Peppol access point forwarded (intake/domain/peppol_inbound.py, 0043): one row per SBDH
# InstanceIdentifier (a bare document's: `sha256:<content hash>`), so a replay registers nothing.
# `registered`: handed to the intake as an upload of the receiving organization (its upload and
# incoming invoice); `unknown_receiver`: no organization has the receiver's participant id, so
# the row has no organization and holds the document (`held_document`) until a replay or
# `peppol receive --org` routes it. Rows without an organization are seen in system scope only.
PEPPOL_RECEIVED_STATES = ("registered", "unknown_receiver")
PEPPOL_ENVELOPES = ("sbdh", "bare")


def _peppol_received() -> Table:
    return Table(
        "peppol_received",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("organization_id", Id, ForeignKey("organizations.id", ondelete="CASCADE")),
        Column("instance_identifier", String(200), nullable=False),
        Column("state", String(16), nullable=False),
        Column("envelope", String(8), nullable=False),
        # participant ids as the envelope (or a bare document's BT-34 / BT-49) states them
        Column("sender", String(160)),
        Column("receiver", String(160)),
        Column("document_type", String(500)),
        Column("process", String(300)),
        Column("country", String(8)),
        Column("content_hash", String(64), nullable=False),
        Column("size_bytes", Integer, nullable=False),
        Column("upload_id", Id),
        Column("incoming_invoice_id", Id),
        Column("held_document", LargeBinary),
        Column("error", Text),
        *_timestamps(),
        UniqueConstraint("instance_identifier"),
        UniqueConstraint("organization_id", "id"),
        _same_organization("upload_id", "uploads"),
        _same_organization("incoming_invoice_id", "incoming_invoices"),
        CheckConstraint(_in("state", PEPPOL_RECEIVED_STATES), name="state"),
        CheckConstraint(_in("envelope", PEPPOL_ENVELOPES), name="envelope"),
        Index("ix_peppol_received_org_state", "organization_id", "state"),
    )


# The answer to a received Peppol document the intake rejected (issue 58): an Invoice Response
# over Peppol through the outbox (`sending` -> `sent` | `failed` | `unknown`, once per message),
# or, where the sender's access point takes none, the supplier notice (`channel` and `status`
# `notice`, the reason in `error`). One row per received message (migration 0044).
PEPPOL_RESPONSE_CHANNELS = ("peppol", "notice")
PEPPOL_RESPONSE_STATUSES = ("sending", "sent", "failed", "unknown", "notice")


def _peppol_responses() -> Table:
    return Table(
        "peppol_responses",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("peppol_received_id", Id, nullable=False),
        Column("incoming_invoice_id", Id, nullable=False),
        Column("channel", String(8), nullable=False),
        Column("status", String(16), nullable=False),
        # cbc:ID of our ApplicationResponse, its cbc:ResponseCode, the document as it left
        Column("response_id", String(64)),
        Column("response_code", String(2)),
        Column("document", LargeBinary),
        # the sender's participant id the response went to, and the AS4 message id it went under
        Column("receiver", String(160)),
        Column("transport_message_id", String(255)),
        Column("error", Text),
        *_timestamps(),
        UniqueConstraint("peppol_received_id"),
        _same_organization("peppol_received_id", "peppol_received", ondelete="CASCADE"),
        _same_organization("incoming_invoice_id", "incoming_invoices", ondelete="CASCADE"),
        CheckConstraint(_in("channel", PEPPOL_RESPONSE_CHANNELS), name="channel"),
        CheckConstraint(_in("status", PEPPOL_RESPONSE_STATUSES), name="status"),
        CheckConstraint("(channel = 'notice') = (status = 'notice')", name="channel_status"),
        Index("ix_peppol_responses_org_status", "organization_id", "status"),
        Index("ix_peppol_responses_incoming_invoice_id", "incoming_invoice_id"),
    )


# Each organization's invoice mailbox (issue 86, migration 0060): where the mailbox sensor reads
# (an IMAP server, account and folder), the password only BY NAME (`secret_name`: an environment
# variable the code location holds, never the password itself), where read mail goes (a folder or
# a keyword flag), and the recipient address that routes a shared mailbox's messages to this
# organization (plus-addressing `invoices+<slug>@...` or one address each; none: every message of
# the folder). `last_read_at` and `last_error` are what the last tick saw (`mailbox_fresh`).
MAILBOX_TLS = ("tls", "starttls", "none")
MAILBOX_MESSAGE_STATES = ("read", "refused", "duplicate")


def _mailboxes() -> Table:
    return Table(
        "mailboxes",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("host", String(255), nullable=False),
        Column("port", Integer, nullable=False),
        Column("tls", String(8), nullable=False),
        Column("username", String(255), nullable=False),
        Column("secret_name", String(128), nullable=False),
        Column("folder", String(255), nullable=False),
        Column("processed_folder", String(255)),
        Column("processed_flag", String(64)),
        Column("address", String(320)),
        Column("active", Boolean, nullable=False, server_default=text("true")),
        Column("last_read_at", UtcDateTime),
        Column("last_error", Text),
        Column("last_error_at", UtcDateTime),
        *_timestamps(),
        UniqueConstraint("organization_id"),
        UniqueConstraint("organization_id", "id"),
        CheckConstraint(_in("tls", MAILBOX_TLS), name="tls"),
        CheckConstraint(
            "processed_folder IS NOT NULL OR processed_flag IS NOT NULL", name="processed"
        ),
    )


# One row per message a mailbox's sensor took up (issue 86): its place on the server (UIDVALIDITY
# and UID, the unique key that keeps it once), what its headers claim (Message-ID, From, To, Date,
# subject, Authentication-Results: recorded, never trusted alone), what became of it (`read` with
# the uploads made, `refused` with one sentence why, `duplicate`: a Message-ID taken up before)
# and when it was moved or flagged on the server (only after its uploads committed).
def _mailbox_messages() -> Table:
    return Table(
        "mailbox_messages",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("mailbox_id", Id, nullable=False),
        Column("uidvalidity", Id, nullable=False),
        Column("uid", Id, nullable=False),
        Column("message_id", String(500)),
        Column("from_address", String(320)),
        Column("to_address", String(1000)),
        Column("sent_at", UtcDateTime),
        Column("subject", String(500)),
        Column("authentication_results", Text),
        Column("size_bytes", Integer, nullable=False),
        Column("state", String(16), nullable=False),
        Column("reason", Text),
        Column("uploads", Integer, nullable=False, server_default=text("0")),
        Column("moved_at", UtcDateTime),
        Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        UniqueConstraint("organization_id", "mailbox_id", "uidvalidity", "uid"),
        UniqueConstraint("organization_id", "id"),
        _same_organization("mailbox_id", "mailboxes", ondelete="CASCADE"),
        CheckConstraint(_in("state", MAILBOX_MESSAGE_STATES), name="state"),
        Index("ix_mailbox_messages_org_message_id", "organization_id", "message_id"),
        Index("ix_mailbox_messages_org_created_at", "organization_id", "created_at"),
    )


# The provenance of an upload that came by e-mail: its message and the attachment's name as the
# message gave it (control and bidi characters escaped); `incoming show` and the UI read it.
def _mailbox_uploads() -> Table:
    return Table(
        "mailbox_uploads",
        _metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        _org_fk(index=False),
        Column("mailbox_message_id", Id, nullable=False),
        Column("upload_id", Id, nullable=False),
        Column("incoming_invoice_id", Id),
        Column("attachment_name", String(512), nullable=False),
        # the same bytes as an earlier document: a duplicate upload of it
        Column("duplicate", Boolean, nullable=False, server_default=text("false")),
        UniqueConstraint("organization_id", "upload_id"),
        _same_organization("mailbox_message_id", "mailbox_messages", ondelete="CASCADE"),
        _same_organization("upload_id", "uploads", ondelete="CASCADE"),
        _same_organization("incoming_invoice_id", "incoming_invoices", ondelete="CASCADE"),
        Index("ix_mailbox_uploads_org_message", "organization_id", "mailbox_message_id"),
        Index("ix_mailbox_uploads_org_invoice", "organization_id", "incoming_invoice_id"),
    )


# Each table is built when a module first imports it (PEP 562): a command that reads three tables
# does not pay for building the other 48 (SQLAlchemy's Table and its constraints, most of what
# importing this module cost: `incoming list` within 1.5x its floor, issue 73). A foreign key
# names its table as text, which SQLAlchemy resolves once both tables are built. `metadata`, and
# what is derived from all tables, builds all of them first.
_BUILDERS: dict[str, Callable[[], Table]] = {
    "organizations": _organizations,
    "customers": _customers,
    "items": _items,
    "sales_orders": _sales_orders,
    "reviewed_sales_orders": _reviewed_sales_orders,
    "sales_order_lines": _sales_order_lines,
    "invoice_number_sequences": _invoice_number_sequences,
    "batch_jobs": _batch_jobs,
    "batch_job_items": _batch_job_items,
    "sales_invoices": _sales_invoices,
    "sales_invoice_lines": _sales_invoice_lines,
    "sales_invoice_taxes": _sales_invoice_taxes,
    "sales_invoice_discounts": _sales_invoice_discounts,
    "sales_invoice_payments": _sales_invoice_payments,
    "sales_invoice_documents": _sales_invoice_documents,
    "deliveries": _deliveries,
    "dunning_notices": _dunning_notices,
    "dunning_runs": _dunning_runs,
    "uploads": _uploads,
    "incoming_invoices": _incoming_invoices,
    "incoming_validated": _incoming_validated,
    "processing_errors": _processing_errors,
    "incoming_reviews": _incoming_reviews,
    "supplier_notices": _supplier_notices,
    "incoming_invoice_taxes": _incoming_invoice_taxes,
    "incoming_invoice_lines": _incoming_invoice_lines,
    "incoming_discounts": _incoming_discounts,
    "partner_accounts": _partner_accounts,
    "exports": _exports,
    "export_items": _export_items,
    "audit_log": _audit_log,
    "audit_seals": _audit_seals,
    "qbo_connections": _qbo_connections,
    "qbo_mappings": _qbo_mappings,
    "qbo_cursors": _qbo_cursors,
    "sync_conflicts": _sync_conflicts,
    "qbo_push_queue": _qbo_push_queue,
    "qbo_realm_requests": _qbo_realm_requests,
    "qbo_webhook_receipts": _qbo_webhook_receipts,
    "qbo_company_switches": _qbo_company_switches,
    "qbo_archived_links": _qbo_archived_links,
    "qbo_vendors": _qbo_vendors,
    "qbo_expense_accounts": _qbo_expense_accounts,
    "qbo_bill_queue": _qbo_bill_queue,
    "qbo_bills": _qbo_bills,
    "incoming_invoice_payments": _incoming_invoice_payments,
    "incoming_invoice_settlements": _incoming_invoice_settlements,
    "qbo_bill_discounts": _qbo_bill_discounts,
    "suppliers": _suppliers,
    "supplier_changes": _supplier_changes,
    "supplier_layouts": _supplier_layouts,
    "peppol_received": _peppol_received,
    "peppol_responses": _peppol_responses,
    "mailboxes": _mailboxes,
    "mailbox_messages": _mailbox_messages,
    "mailbox_uploads": _mailbox_uploads,
}

if TYPE_CHECKING:
    metadata: MetaData
    # Tables whose rows belong to one organization: row-level security applies to each of these.
    TENANT_TABLES: tuple[str, ...]
    organizations: Table
    customers: Table
    items: Table
    sales_orders: Table
    reviewed_sales_orders: Table
    sales_order_lines: Table
    invoice_number_sequences: Table
    batch_jobs: Table
    batch_job_items: Table
    sales_invoices: Table
    sales_invoice_lines: Table
    sales_invoice_taxes: Table
    sales_invoice_discounts: Table
    sales_invoice_payments: Table
    sales_invoice_documents: Table
    deliveries: Table
    dunning_notices: Table
    dunning_runs: Table
    uploads: Table
    incoming_invoices: Table
    incoming_validated: Table
    processing_errors: Table
    incoming_reviews: Table
    supplier_notices: Table
    incoming_invoice_taxes: Table
    incoming_invoice_lines: Table
    incoming_discounts: Table
    partner_accounts: Table
    exports: Table
    export_items: Table
    audit_log: Table
    audit_seals: Table
    qbo_connections: Table
    qbo_mappings: Table
    qbo_cursors: Table
    sync_conflicts: Table
    qbo_push_queue: Table
    qbo_realm_requests: Table
    qbo_webhook_receipts: Table
    qbo_company_switches: Table
    qbo_archived_links: Table
    qbo_vendors: Table
    qbo_expense_accounts: Table
    qbo_bill_queue: Table
    qbo_bills: Table
    incoming_invoice_payments: Table
    incoming_invoice_settlements: Table
    qbo_bill_discounts: Table
    suppliers: Table
    supplier_changes: Table
    supplier_layouts: Table
    peppol_received: Table
    peppol_responses: Table
    mailboxes: Table
    mailbox_messages: Table
    mailbox_uploads: Table


def _all_tables() -> MetaData:
    for name in _BUILDERS:
        _table(name)
    return _metadata


def _table(name: str) -> Table:
    table = _metadata.tables.get(name)
    if table is None:
        table = _BUILDERS[name]()
    globals()[name] = table
    return table


def __getattr__(name: str) -> object:
    if name in _BUILDERS:
        return _table(name)
    if name == "metadata":
        return _all_tables()
    if name == "TENANT_TABLES":
        tables = _all_tables().sorted_tables
        tenant = tuple(
            t.name for t in tables if "organization_id" in t.c and t.name != "organizations"
        )
        globals()["TENANT_TABLES"] = tenant
        return tenant
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
