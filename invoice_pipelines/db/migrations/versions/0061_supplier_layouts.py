"""A supplier's layout, learned from documents a person confirmed

Revision ID: 0061
Revises: 0060

Issue 84 (intake/domain/supplier_layouts.py writes and reads it):

- `supplier_layouts`: for one registered supplier of one organization, where each key field's
  value stood on a page a person confirmed in review, relative to its label (the label's words,
  `right` of it on its line or `below` it, how far, on which page and in which third of it). A
  confirmation that teaches something writes a new `version` (one row per field learned), never
  changes an older one; `forgotten` is a version that holds no field (`suppliers layout
  --forget`). Who confirmed it, when, and from which incoming invoice.

A tenant table: row-level security, the key to the supplier carries the organization (0034), and
the offboarded read-only triggers of 0055 (db/read_only_triggers.py, frozen, as 0055 and 0060
build them). What the runtime login writes here it cannot rewrite (0056): SELECT
and INSERT only, UPDATE and DELETE for the system role (the offboarding's deletion), and 0056's
`refuse_rewrite` trigger for whoever else is granted them.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.read_only_triggers import drop_triggers, triggers
from invoice_pipelines.db.rls import protect_tables, system_role, unprotect_tables
from invoice_pipelines.db.types import Id, UtcDateTime

revision = "0061"
down_revision = "0060"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
TABLE = "supplier_layouts"
# 0056's: the runtime login adds, it never rewrites (PostgreSQL; SQLite has no logins)
APPEND_ONLY = (
    f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
    "FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite()",
    f"CREATE TRIGGER {TABLE}_append_only_truncate BEFORE TRUNCATE ON {TABLE} "
    "FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite()",
)


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "organization_id",
            Id,
            sa.ForeignKey(
                "organizations.id",
                ondelete="CASCADE",
                name="fk_supplier_layouts_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column("supplier_id", Id, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("label", sa.String(120)),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("lines_below", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("column_offset", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("skip", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("page", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("region", sa.String(8), nullable=False, server_default=sa.text("'top'")),
        sa.Column("confirmed_by", sa.String(255), nullable=False),
        sa.Column("confirmed_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("incoming_invoice_id", Id),
        sa.PrimaryKeyConstraint("id", name="pk_supplier_layouts"),
        sa.UniqueConstraint(
            "organization_id",
            "supplier_id",
            "version",
            "field",
            name="uq_supplier_layouts_organization_id_supplier_id_version_field",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "supplier_id"],
            ["suppliers.organization_id", "suppliers.id"],
            ondelete="CASCADE",
            name="fk_supplier_layouts_organization_id_suppliers",
        ),
        sa.CheckConstraint(
            "direction IN ('right', 'below', 'forgotten')", name="ck_supplier_layouts_direction"
        ),
        sa.CheckConstraint(
            "region IN ('top', 'middle', 'bottom')", name="ck_supplier_layouts_region"
        ),
        sa.CheckConstraint(
            "direction = 'forgotten' OR label IS NOT NULL", name="ck_supplier_layouts_label"
        ),
    )
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    role = app_role()
    if postgres:
        protect_tables(bind, role, [TABLE])
        if role:
            op.execute(f'REVOKE UPDATE, DELETE, TRUNCATE ON "{TABLE}" FROM "{role}"')
            op.execute(
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{TABLE}" TO "{system_role(role)}"'
            )
    for statement in triggers(TABLE, postgres=postgres) + (list(APPEND_ONLY) if postgres else []):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    for statement in drop_triggers(TABLE, postgres=postgres):
        op.execute(statement)
    if postgres:
        for name in (f"{TABLE}_append_only", f"{TABLE}_append_only_truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {TABLE}")
    if postgres:
        role = app_role()
        if role:
            op.execute(f'REVOKE ALL ON "{TABLE}" FROM "{system_role(role)}"')
        unprotect_tables(bind, role, [TABLE])
    op.drop_table(TABLE)
