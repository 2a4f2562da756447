"""incoming discounts: their invoice is one of the same organization (issue 46)

Revision ID: 0029
Revises: 0028

`incoming_discounts.incoming_invoice_id` referenced `incoming_invoices.id` alone, so the database
let a discount row of one organization point at another organization's invoice (row-level
security checks the discount row's own organization, not its invoice's). Now the foreign key is
`(organization_id, incoming_invoice_id)` -> `incoming_invoices (organization_id, id)`, as 0022 and
0024 made it for the sales invoices' discounts and payments; `incoming_invoices` gets the unique
`(organization_id, id)` that key needs. Existing rows: the upgrade fails on a discount whose
invoice belongs to another organization (none is written so by the application) rather than
dropping it.
"""

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

TABLE = "incoming_discounts"
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
UNIQUE = "uq_incoming_invoices_organization_id_id"
OLD_FK = f"fk_{TABLE}_incoming_invoice_id_incoming_invoices"
NEW_FK = f"fk_{TABLE}_organization_id_incoming_invoices"


def upgrade() -> None:
    with op.batch_alter_table("incoming_invoices", naming_convention=NAMING) as batch:
        batch.create_unique_constraint(UNIQUE, ["organization_id", "id"])
    with op.batch_alter_table(TABLE, naming_convention=NAMING) as batch:
        batch.drop_constraint(OLD_FK, type_="foreignkey")
        batch.create_foreign_key(
            NEW_FK,
            "incoming_invoices",
            ["organization_id", "incoming_invoice_id"],
            ["organization_id", "id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table(TABLE, naming_convention=NAMING) as batch:
        batch.drop_constraint(NEW_FK, type_="foreignkey")
        batch.create_foreign_key(
            OLD_FK, "incoming_invoices", ["incoming_invoice_id"], ["id"], ondelete="CASCADE"
        )
    with op.batch_alter_table("incoming_invoices", naming_convention=NAMING) as batch:
        batch.drop_constraint(UNIQUE, type_="unique")
