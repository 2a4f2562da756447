"""A QuickBooks company is an identity: a switch of company archives the first company's links

Revision ID: 0051
Revises: 0050

Connecting an organization to another QuickBooks company (another realm) used to keep the links
made in the first: the register's vendor links, `qbo_vendors`, `qbo_bills`, the mappings, the
cursors. The next push then booked by them in the new company (issue 72).

- `qbo_company_switches`: one row per switch (the old and the new realm, who, when, what was
  archived as counts per table) and when the import of the new company completed; until then
  every push of the organization waits (quickbooks/company.py).
- `qbo_archived_links`: the first company's rows, moved out of the live tables on the switch,
  each as JSON with its table and realm, so no push can read them and a person still can.

Tenant tables under row-level security. Nothing to fill: no switch happened before.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, Json, UtcDateTime

revision = "0051"
down_revision = "0050"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
SWITCHES = "qbo_company_switches"
ARCHIVE = "qbo_archived_links"


def _organization(table: str) -> sa.Column:
    return sa.Column(
        "organization_id",
        Id,
        sa.ForeignKey(
            "organizations.id", ondelete="CASCADE", name=f"fk_{table}_organization_id_organizations"
        ),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        SWITCHES,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _organization(SWITCHES),
        sa.Column("old_realm_id", sa.String(32), nullable=False),
        sa.Column("new_realm_id", sa.String(32), nullable=False),
        sa.Column("switched_by", sa.String(255), nullable=False),
        sa.Column("switched_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("archived", Json, nullable=False),
        sa.Column("import_done_at", UtcDateTime),
        sa.PrimaryKeyConstraint("id", name=f"pk_{SWITCHES}"),
    )
    op.create_index(f"ix_{SWITCHES}_organization_id", SWITCHES, ["organization_id"])
    op.create_table(
        ARCHIVE,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _organization(ARCHIVE),
        sa.Column("realm_id", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("row", Json, nullable=False),
        sa.Column("archived_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name=f"pk_{ARCHIVE}"),
    )
    op.create_index(f"ix_{ARCHIVE}_org_realm", ARCHIVE, ["organization_id", "realm_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), [SWITCHES, ARCHIVE])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        unprotect_tables(bind, app_role(), [SWITCHES, ARCHIVE])
    op.drop_index(f"ix_{ARCHIVE}_org_realm", table_name=ARCHIVE)
    op.drop_table(ARCHIVE)
    op.drop_index(f"ix_{SWITCHES}_organization_id", table_name=SWITCHES)
    op.drop_table(SWITCHES)
