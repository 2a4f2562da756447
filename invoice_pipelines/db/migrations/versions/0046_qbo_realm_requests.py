"""The requests counted toward an organization's QBO limits, shared by every process (issue 59)

Revision ID: 0046
Revises: 0045

`qbo_realm_requests`: one row per request sent to the organization's QuickBooks realm, in flight
or answered less than a minute ago (`quickbooks/realm_meter.py`). Every process that talks to the
realm (an asset run, a command beside it, two runs) counts its requests here under one lock per
organization, so together they keep QBO's 500 requests a minute, 10 a second, 10 in flight and 40
batches a minute, and the limiter no longer keeps 2 % of the 500 back for the calls it could not
see. Rows leave as they go out of the window; nothing to fill.

A tenant table under row-level security.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id

revision = "0046"
down_revision = "0045"
branch_labels = None
depends_on = None

TABLE = "qbo_realm_requests"


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
                name=f"fk_{TABLE}_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column("realm_id", sa.String(32), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("cost", sa.Integer, nullable=False),
        sa.Column("batch", sa.Boolean, nullable=False),
        sa.Column("in_flight", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
    )
    op.create_index(f"ix_{TABLE}_org_realm", TABLE, ["organization_id", "realm_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), [TABLE])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        unprotect_tables(bind, app_role(), [TABLE])
    op.drop_index(f"ix_{TABLE}_org_realm", table_name=TABLE)
    op.drop_table(TABLE)
