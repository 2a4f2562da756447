"""The audit trail as a chain of hashes: `audit_seals`, one seal per audit row of an organization

Revision ID: 0053
Revises: 0052

An auditor must be able to see that no audit row was removed or changed (GoBD: what was recorded
stays as it was, or the change is visible). Each organization's audit rows are sealed in the
order of their ids (audit/chain.py): a seal holds the row's position in the chain, the SHA-256 of
the row's content and the chain hash, the SHA-256 of the previous seal's chain hash and this
row's hash. `audit-verify` recomputes them: a seal whose row is gone names the row removed, a row
whose hash differs names the row changed, a broken chain names where.

Tenant table under row-level security. Nothing to fill: the rows are sealed by the next
`audit-verify` or the scheduled check.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, UtcDateTime

revision = "0053"
down_revision = "0052"
branch_labels = None
depends_on = None

SEALS = "audit_seals"


def upgrade() -> None:
    op.create_table(
        SEALS,
        sa.Column(
            "organization_id",
            Id,
            sa.ForeignKey(
                "organizations.id",
                ondelete="CASCADE",
                name=f"fk_{SEALS}_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("audit_log_id", Id, nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column(
            "sealed_at", UtcDateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")
        ),
        sa.PrimaryKeyConstraint("organization_id", "position", name=f"pk_{SEALS}"),
        sa.UniqueConstraint("audit_log_id", name=f"uq_{SEALS}_audit_log_id"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), [SEALS])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        unprotect_tables(bind, app_role(), [SEALS])
    op.drop_table(SEALS)
