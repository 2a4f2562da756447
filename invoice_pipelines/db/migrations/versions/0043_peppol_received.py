"""Peppol receiving: each document an access point forwards, once per SBDH InstanceIdentifier (issue 58)

Revision ID: 0043
Revises: 0042

`peppol_received`: one row per message (unique `instance_identifier`; a bare document's is
`sha256:<content hash>`), with what its envelope says (sender, receiver, document type, process,
the sender's country), and either the upload and incoming invoice it became in the receiving
organization (`registered`) or, when no organization has the receiver's participant id, no
organization and the document itself (`unknown_receiver`, `held_document`), so nothing is lost.
Nothing to fill.

A tenant table under row-level security; rows without an organization are seen in system scope
only.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, UtcDateTime

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
TABLE = "peppol_received"


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        TABLE,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id),
        sa.Column("instance_identifier", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("envelope", sa.String(8), nullable=False),
        sa.Column("sender", sa.String(160)),
        sa.Column("receiver", sa.String(160)),
        sa.Column("document_type", sa.String(500)),
        sa.Column("process", sa.String(300)),
        sa.Column("country", sa.String(8)),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("upload_id", Id),
        sa.Column("incoming_invoice_id", Id),
        sa.Column("held_document", sa.LargeBinary),
        sa.Column("error", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint("instance_identifier", name=f"uq_{TABLE}_instance_identifier"),
        # the parent side of a key that pairs the organization (peppol_responses, 0044)
        sa.UniqueConstraint("organization_id", "id", name=f"uq_{TABLE}_organization_id_id"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            ondelete="CASCADE",
            name=f"fk_{TABLE}_organization_id_organizations",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "upload_id"],
            ["uploads.organization_id", "uploads.id"],
            name=f"fk_{TABLE}_organization_id_uploads",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "incoming_invoice_id"],
            ["incoming_invoices.organization_id", "incoming_invoices.id"],
            name=f"fk_{TABLE}_organization_id_incoming_invoices",
        ),
        sa.CheckConstraint("state IN ('registered', 'unknown_receiver')", name=f"ck_{TABLE}_state"),
        sa.CheckConstraint("envelope IN ('sbdh', 'bare')", name=f"ck_{TABLE}_envelope"),
    )
    op.create_index(f"ix_{TABLE}_org_state", TABLE, ["organization_id", "state"])
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), [TABLE])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
        unprotect_tables(bind, app_role(), [TABLE])
    op.drop_index(f"ix_{TABLE}_org_state", TABLE)
    op.drop_table(TABLE)
