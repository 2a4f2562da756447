"""issued invoices keep the early-payment discount steps their documents state (Skonto, issue 40)

Revision ID: 0023
Revises: 0022

`sales_invoices.skonto_steps`: the steps ([{"days", "percent"}, ...]; [] none) the invoice's
first document stated, recorded when that document is written (documents/pipeline.py) and used
from then on by documents written again and by the payment settlement; NULL: no document written
yet, no discount. A column on an existing tenant table: its row-level security already covers it.

Filled for invoices that already have a generated document with the terms the payment pull read
for them until this revision (the customer's own steps, else the organization's
`settings["skonto"]`; [] for credit notes), so upgrading changes no invoice's settlement. Where a
customer or organization changed its steps after such a document was written, the document's
own steps are not recoverable from the database: this records the current ones, as before.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.types import Json

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
CREDIT_NOTE = "381"


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("sales_invoices", sa.Column("skonto_steps", Json))
    if bind.dialect.name == "postgresql":
        # the owner is subject to row-level security too (FORCE): see every tenant's rows
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
    invoices = sa.table(
        "sales_invoices",
        sa.column("id", sa.BigInteger),
        sa.column("organization_id", sa.BigInteger),
        sa.column("customer_id", sa.BigInteger),
        sa.column("type_code", sa.String),
        sa.column("corrects_invoice_id", sa.BigInteger),
        sa.column("skonto_steps", Json),
    )
    customers = sa.table("customers", sa.column("id", sa.BigInteger), sa.column("skonto", Json))
    organizations = sa.table(
        "organizations", sa.column("id", sa.BigInteger), sa.column("settings", Json)
    )
    documents = sa.table(
        "sales_invoice_documents",
        sa.column("sales_invoice_id", sa.BigInteger),
        sa.column("kind", sa.String),
        sa.column("status", sa.String),
    )
    written = (
        sa.select(documents.c.sales_invoice_id)
        .where(documents.c.kind == "facturx", documents.c.status == "generated")
        .scalar_subquery()
    )
    rows = bind.execute(
        sa.select(
            invoices.c.id,
            invoices.c.type_code,
            invoices.c.corrects_invoice_id,
            customers.c.skonto,
            organizations.c.settings,
        )
        .join(customers, customers.c.id == invoices.c.customer_id)
        .join(organizations, organizations.c.id == invoices.c.organization_id)
        .where(invoices.c.id.in_(written))
    ).all()
    filled = [{"invoice": row.id, "steps": _steps(row)} for row in rows]
    if filled:
        bind.execute(
            sa.update(invoices)
            .where(invoices.c.id == sa.bindparam("invoice"))
            .values(skonto_steps=sa.bindparam("steps", type_=Json)),
            filled,
        )


def _steps(row) -> list:
    if row.type_code == CREDIT_NOTE or row.corrects_invoice_id is not None:
        return []
    if row.skonto is not None:
        return row.skonto
    return (row.settings or {}).get("skonto") or []


def downgrade() -> None:
    with op.batch_alter_table("sales_invoices", naming_convention=NAMING) as batch:
        batch.drop_column("skonto_steps")
