"""billing: index the batch item foreign keys; drop indexes a unique index already covers

Revision ID: 0003
Revises: 0002

- `batch_job_items.sales_order_id` and `.customer_id` get indexes: deleting a sales order, a
  customer (or an organization) checks those foreign keys, and without an index every deleted row
  scans all batch items (35 s to delete a 20,000-order organization). The customer index is
  partial: only customer-driven items have a customer.
- `sales_invoices.organization_id`, `sales_invoice_lines.sales_invoice_id` and
  `sales_invoice_taxes.sales_invoice_id` lose their single-column indexes: the unique constraints
  (organization_id, invoice_number), (sales_invoice_id, line_no) and (sales_invoice_id,
  vat_category, vat_rate) lead with those columns and answer the same lookups, while every batch
  insert paid for maintaining both.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

REDUNDANT = [
    ("ix_sales_invoices_organization_id", "sales_invoices", ["organization_id"]),
    ("ix_sales_invoice_lines_sales_invoice_id", "sales_invoice_lines", ["sales_invoice_id"]),
    ("ix_sales_invoice_taxes_sales_invoice_id", "sales_invoice_taxes", ["sales_invoice_id"]),
]
HAS_CUSTOMER = sa.text("customer_id IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_batch_job_items_sales_order_id", "batch_job_items", ["sales_order_id"])
    op.create_index(
        "ix_batch_job_items_customer_id",
        "batch_job_items",
        ["customer_id"],
        postgresql_where=HAS_CUSTOMER,
        sqlite_where=HAS_CUSTOMER,
    )
    for name, table, _columns in REDUNDANT:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, columns in REDUNDANT:
        op.create_index(name, table, columns)
    # IF EXISTS: databases migrated with the first version of this revision lack this index
    op.drop_index("ix_batch_job_items_customer_id", table_name="batch_job_items", if_exists=True)
    op.drop_index("ix_batch_job_items_sales_order_id", table_name="batch_job_items")
