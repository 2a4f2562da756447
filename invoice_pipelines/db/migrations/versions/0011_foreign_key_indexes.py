"""indexes on the foreign keys that deleting an organization checks (issue 14)

Revision ID: 0011
Revises: 0010

Deleting an organization (`DELETE FROM organizations`, cascading to all of its rows) makes the
database look, for every deleted row, for rows that still refer to it. Without an index on the
referring column that is a scan of the whole table per deleted row: deleting an organization with
20,000 uploads and invoices took 435 s on PostgreSQL before this revision.

- `uploads.duplicate_of_upload_id` and `batch_jobs.retry_of_job_id`: partial (most rows have none).
- `incoming_invoices.upload_id`.
- `export_items.incoming_invoice_id`, `export_items.sales_invoice_id`: partial (each item has
  exactly one of the two).
- `sales_order_lines.item_id`: partial (discount and charge lines have no item).
- `sales_invoices.batch_job_id`: partial (invoices a batch did not make have none). Each batch job
  deleted scanned all sales invoices (200 jobs over 40,000 invoices: 1.7 s); inserting 50,000
  invoices took 5.5-6.3 s without it and 5.9-6.8 s with it (three runs each, load average 5.9 on
  2 cores: the difference is within the noise).

Measured with scripts/measure-organization-delete.py (two organizations of 20,000 uploads, 2,000
duplicate uploads, 20,000 incoming and 20,000 sales invoices, 40,000 export items each).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# (table, column, partial: only rows where the column is set)
INDEXES = (
    ("uploads", "duplicate_of_upload_id", True),
    ("incoming_invoices", "upload_id", False),
    ("export_items", "incoming_invoice_id", True),
    ("export_items", "sales_invoice_id", True),
    ("batch_jobs", "retry_of_job_id", True),
    ("sales_order_lines", "item_id", True),
    ("sales_invoices", "batch_job_id", True),
)


def upgrade() -> None:
    for table, column, partial in INDEXES:
        where = sa.text(f"{column} IS NOT NULL") if partial else None
        op.create_index(
            f"ix_{table}_{column}", table, [column], postgresql_where=where, sqlite_where=where
        )


def downgrade() -> None:
    for table, column, _ in reversed(INDEXES):
        op.drop_index(f"ix_{table}_{column}", table_name=table)
