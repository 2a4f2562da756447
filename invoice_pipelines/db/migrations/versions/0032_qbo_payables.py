"""QuickBooks payables: vendors, bills of incoming invoices, their payments (issue 49)

Revision ID: 0032
Revises: 0031

Six tenant tables under row-level security:

- `qbo_vendors`: the vendors of the organization's QBO company as we know them (pulled, or
  created for a supplier by the bill push), with the keys the match compares (VAT id, name).
- `qbo_expense_accounts`: the QBO expense account per supplier, and the organization's default
  (supplier key '').
- `qbo_bill_queue`: the bill push's outbox, one row per document version and action.
- `qbo_bills`: each incoming invoice's bill (or vendor credit) in QBO.
- `incoming_invoice_payments`: the money QBO's bill payments applied to an incoming invoice.
- `incoming_invoice_settlements`: each paid (or partly paid) incoming invoice's state, with the
  supplier's early-payment discount taken.

The tables referring to an incoming invoice do so with its organization (the composite key
`incoming_invoices (organization_id, id)`, 0029), so no row can name another tenant's document.
Nothing to fill: no bill was pushed before this revision.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, Json, Money, Rate, UtcDateTime

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
TABLES = (
    "qbo_vendors",
    "qbo_expense_accounts",
    "qbo_bill_queue",
    "qbo_bills",
    "incoming_invoice_payments",
    "incoming_invoice_settlements",
)


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
    ]


def _organization(table: str) -> sa.Column:
    return sa.Column(
        "organization_id",
        Id,
        sa.ForeignKey(
            "organizations.id", ondelete="CASCADE", name=f"fk_{table}_organization_id_organizations"
        ),
        nullable=False,
    )


def _of_document(table: str, name: str | None = None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id", "incoming_invoice_id"],
        ["incoming_invoices.organization_id", "incoming_invoices.id"],
        ondelete="CASCADE",
        name=name or f"fk_{table}_organization_id_incoming_invoices",
    )


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "qbo_vendors",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _organization("qbo_vendors"),
        sa.Column("qbo_id", sa.String(32), nullable=False),
        sa.Column("sync_token", sa.String(16)),
        sa.Column("display_name", sa.String(500), nullable=False),
        sa.Column("company_name", sa.String(500)),
        sa.Column("name_key", sa.String(255), nullable=False),
        sa.Column("tax_identifier", sa.String(32)),
        sa.Column("vat_id", sa.String(64)),
        sa.Column("email", sa.String(255)),
        sa.Column("currency", sa.String(3)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("qbo_updated_at", UtcDateTime),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_qbo_vendors"),
        sa.UniqueConstraint(
            "organization_id", "qbo_id", name="uq_qbo_vendors_organization_id_qbo_id"
        ),
        sa.CheckConstraint("origin IN ('pulled', 'created')", name="ck_qbo_vendors_origin"),
    )
    op.create_index("ix_qbo_vendors_org_vat_id", "qbo_vendors", ["organization_id", "vat_id"])
    op.create_index("ix_qbo_vendors_org_name_key", "qbo_vendors", ["organization_id", "name_key"])

    op.create_table(
        "qbo_expense_accounts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _organization("qbo_expense_accounts"),
        sa.Column("supplier_key", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(255)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_qbo_expense_accounts"),
        sa.UniqueConstraint(
            "organization_id",
            "supplier_key",
            name="uq_qbo_expense_accounts_organization_id_supplier_key",
        ),
    )

    op.create_table(
        "qbo_bill_queue",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("incoming_invoice_id", Id, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("request_id", sa.String(50), nullable=False),
        sa.Column("qbo_id", sa.String(32)),
        sa.Column("error_code", sa.String(16)),
        sa.Column("error_message", sa.Text),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_qbo_bill_queue"),
        sa.UniqueConstraint(
            "incoming_invoice_id",
            "version",
            "action",
            name="uq_qbo_bill_queue_incoming_invoice_id_version_action",
        ),
        _of_document("qbo_bill_queue"),
        sa.CheckConstraint(_in("action", ("push", "delete")), name="ck_qbo_bill_queue_action"),
        sa.CheckConstraint(
            _in("status", ("pending", "sending", "pushed", "failed", "conflict")),
            name="ck_qbo_bill_queue_status",
        ),
    )
    op.create_index("ix_qbo_bill_queue_org_status", "qbo_bill_queue", ["organization_id", "status"])

    op.create_table(
        "qbo_bills",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("incoming_invoice_id", Id, nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("qbo_id", sa.String(32), nullable=False),
        sa.Column("sync_token", sa.String(16)),
        sa.Column("vendor_qbo_id", sa.String(32), nullable=False),
        sa.Column("document_version", sa.Integer, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3)),
        sa.Column("total", Money()),
        sa.Column("balance", Money()),
        sa.Column("attachments", Json, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("state", sa.String(16), nullable=False, server_default="active"),
        sa.Column("pushed_at", UtcDateTime, nullable=False, server_default=NOW),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_qbo_bills"),
        sa.UniqueConstraint("incoming_invoice_id", name="uq_qbo_bills_incoming_invoice_id"),
        sa.UniqueConstraint(
            "organization_id", "entity", "qbo_id", name="uq_qbo_bills_organization_id_entity_qbo_id"
        ),
        _of_document("qbo_bills"),
        sa.CheckConstraint(_in("entity", ("Bill", "VendorCredit")), name="ck_qbo_bills_entity"),
        sa.CheckConstraint("state IN ('active', 'deleted')", name="ck_qbo_bills_state"),
    )

    op.create_table(
        "incoming_invoice_payments",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("incoming_invoice_id", Id, nullable=False),
        sa.Column("qbo_payment_id", sa.String(32), nullable=False),
        sa.Column("paid_on", sa.Date, nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_incoming_invoice_payments"),
        sa.UniqueConstraint(
            "incoming_invoice_id", "qbo_payment_id", name="uq_incoming_invoice_payments_payment"
        ),
        _of_document("incoming_invoice_payments"),
        sa.CheckConstraint("amount > 0", name="ck_incoming_invoice_payments_amount"),
    )
    op.create_index(
        "ix_incoming_invoice_payments_org_paid_on",
        "incoming_invoice_payments",
        ["organization_id", "paid_on"],
    )

    op.create_table(
        "incoming_invoice_settlements",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("incoming_invoice_id", Id, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount_paid", Money(), nullable=False),
        sa.Column("amount_open", Money(), nullable=False),
        sa.Column("last_paid_on", sa.Date),
        sa.Column("discount", Money()),
        sa.Column("discount_percent", Rate()),
        sa.Column("discount_last_day", sa.Date),
        sa.Column("discount_paid_on", sa.Date),
        sa.Column("source", sa.String(16), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_incoming_invoice_settlements"),
        sa.UniqueConstraint(
            "incoming_invoice_id", name="uq_incoming_invoice_settlements_incoming_invoice_id"
        ),
        # PostgreSQL's identifiers end at 63 characters
        _of_document("incoming_invoice_settlements", "fk_incoming_invoice_settlements_invoice"),
        sa.CheckConstraint(
            _in("status", ("open", "partially_paid", "paid")),
            name="ck_incoming_invoice_settlements_status",
        ),
    )
    op.create_index(
        "ix_incoming_invoice_settlements_org_status",
        "incoming_invoice_settlements",
        ["organization_id", "status"],
    )
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), list(TABLES))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
        unprotect_tables(bind, app_role(), list(TABLES))
    op.drop_index("ix_incoming_invoice_settlements_org_status", "incoming_invoice_settlements")
    op.drop_index("ix_incoming_invoice_payments_org_paid_on", "incoming_invoice_payments")
    op.drop_index("ix_qbo_bill_queue_org_status", "qbo_bill_queue")
    op.drop_index("ix_qbo_vendors_org_name_key", "qbo_vendors")
    op.drop_index("ix_qbo_vendors_org_vat_id", "qbo_vendors")
    for table in reversed(TABLES):
        op.drop_table(table)
