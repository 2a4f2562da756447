"""document format: plain PDF invoices where an EN 16931 e-invoice does not apply (issue 23)

Revision ID: 0015
Revises: 0014 (0013 or 0012 while those are not in the tree; see down_revision)

- `customers.document_format` (auto | facturx | pdf, NULL = the organization's
  `settings["documents"]["format"]`): the per-customer override of which document an invoice is.
- `sales_invoice_documents.format` and `.format_reason`: what the invoice's PDF is (facturx or a
  plain pdf) and why that was chosen. Rows written before this revision are Factur-X.

Only columns on existing tenant tables: their row-level security already covers them.
"""

from pathlib import Path

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.tables import metadata

revision = "0015"
# 0013 and 0014 are written alongside this revision (issue 23) and land in their own commits: this
# one follows the newest of them in the tree, so every commit has one linear chain. Once both are
# in, this is "0014" (a database upgraded to 0015 before them would not get them applied).
down_revision = max(
    r for r in ("0012", "0013", "0014") if any(Path(__file__).parent.glob(f"{r}_*.py"))
)
branch_labels = None
depends_on = None

NAMING = metadata.naming_convention
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
