"""Peppol Invoice Responses: the answer each rejected received document had (issue 58)

Revision ID: 0044
Revises: 0043

`peppol_responses`: one row per received Peppol message (unique `peppol_received_id`) whose
document the intake rejected: an Invoice Response (UBL ApplicationResponse, Peppol BIS Invoice
Response 3.0) sent back through the access point at most once (`channel` `peppol`, an outbox row
`sending` -> `sent` | `failed` | `unknown`, with our response id, the document as it left, the
receiver and the AS4 message id), or the supplier notice where the sender's access point takes
no Invoice Response (`channel` and `status` `notice`, the reason in `error`). Nothing to fill:
the rejections before this revision had their notices.

A tenant table under row-level security.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, UtcDateTime

revision = "0044"
down_revision = "0043"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
TABLE = "peppol_responses"


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        TABLE,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("peppol_received_id", Id, nullable=False),
        sa.Column("incoming_invoice_id", Id, nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("response_id", sa.String(64)),
        sa.Column("response_code", sa.String(2)),
        sa.Column("document", sa.LargeBinary),
        sa.Column("receiver", sa.String(160)),
        sa.Column("transport_message_id", sa.String(255)),
        sa.Column("error", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint("peppol_received_id", name=f"uq_{TABLE}_peppol_received_id"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            ondelete="CASCADE",
            name=f"fk_{TABLE}_organization_id_organizations",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "peppol_received_id"],
            ["peppol_received.organization_id", "peppol_received.id"],
            ondelete="CASCADE",
            name=f"fk_{TABLE}_organization_id_peppol_received",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "incoming_invoice_id"],
            ["incoming_invoices.organization_id", "incoming_invoices.id"],
            ondelete="CASCADE",
            name=f"fk_{TABLE}_organization_id_incoming_invoices",
        ),
        sa.CheckConstraint("channel IN ('peppol', 'notice')", name=f"ck_{TABLE}_channel"),
        sa.CheckConstraint(
            "status IN ('sending', 'sent', 'failed', 'unknown', 'notice')",
            name=f"ck_{TABLE}_status",
        ),
        sa.CheckConstraint(
            "(channel = 'notice') = (status = 'notice')", name=f"ck_{TABLE}_channel_status"
        ),
    )
    op.create_index(f"ix_{TABLE}_org_status", TABLE, ["organization_id", "status"])
    op.create_index(f"ix_{TABLE}_incoming_invoice_id", TABLE, ["incoming_invoice_id"])
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), [TABLE])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
        unprotect_tables(bind, app_role(), [TABLE])
    op.drop_index(f"ix_{TABLE}_incoming_invoice_id", TABLE)
    op.drop_index(f"ix_{TABLE}_org_status", TABLE)
    op.drop_table(TABLE)
