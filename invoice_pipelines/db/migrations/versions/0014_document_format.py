"""document format: plain PDF invoices where an EN 16931 e-invoice does not apply (issue 23)

Revision ID: 0014
Revises: 0013

- `customers.document_format` (auto | facturx | pdf, NULL = the organization's
  `settings["documents"]["format"]`): the per-customer override of which document an invoice is.
- `sales_invoice_documents.format` and `.format_reason`: what the invoice's PDF is (facturx or a
  plain pdf) and why that was chosen. Rows written before this revision are Factur-X.

Only columns on existing tenant tables: their row-level security already covers them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
FORMAT_CHECK = "document_format IN ('auto', 'facturx', 'pdf')"


def upgrade() -> None:
    with op.batch_alter_table("customers", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("document_format", sa.String(16)))
        batch.create_check_constraint("document_format", FORMAT_CHECK)
    with op.batch_alter_table("sales_invoice_documents", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("format", sa.String(16)))
        batch.add_column(sa.Column("format_reason", sa.Text))
    # every document generated so far is a Factur-X PDF (or its XRechnung companion)
    op.execute(
        "UPDATE sales_invoice_documents SET format = 'facturx' "
        "WHERE kind = 'facturx' AND status = 'generated'"
    )


def downgrade() -> None:
    with op.batch_alter_table("sales_invoice_documents", naming_convention=NAMING) as batch:
        batch.drop_column("format_reason")
        batch.drop_column("format")
    with op.batch_alter_table("customers", naming_convention=NAMING) as batch:
        batch.drop_constraint("document_format", type_="check")
        batch.drop_column("document_format")
