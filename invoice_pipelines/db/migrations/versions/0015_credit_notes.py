"""credit notes for sales invoices (issue 23)

Revision ID: 0015
Revises: 0014

- `sales_invoices.corrects_invoice_id`: on a credit note (type 381), the invoice it corrects
  (BT-25); `sales_invoices.credit_reason`: why it was issued. A partial index finds an invoice's
  credit notes. Credit notes are numbered in their own gapless series, the
  `invoice_number_sequences` row named `credit_notes` (no schema change: that table is keyed by
  organization and name already).

Only columns on an existing tenant table: its row-level security already covers them.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.types import Id

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
INDEX = "ix_sales_invoices_corrects_invoice_id"
WHERE = "corrects_invoice_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("sales_invoices", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("corrects_invoice_id", Id))
        batch.add_column(sa.Column("credit_reason", sa.Text))
    op.create_index(
        INDEX,
        "sales_invoices",
        ["corrects_invoice_id"],
        postgresql_where=sa.text(WHERE),
        sqlite_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="sales_invoices")
    with op.batch_alter_table("sales_invoices", naming_convention=NAMING) as batch:
        batch.drop_column("credit_reason")
        batch.drop_column("corrects_invoice_id")
