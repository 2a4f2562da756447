"""QuickBooks Online: connections, tokens, id mappings, cursors, conflicts, push queue (issue 13)

Revision ID: 0009
Revises: 0008

- `qbo_connections`: one QBO company (realm) per organization, its OAuth tokens encrypted at rest.
- `qbo_mappings`: our customer/item/invoice ids to QBO ids, with the baseline of the last sync
  (SyncToken, QBO's LastUpdatedTime, a fingerprint of our row).
- `qbo_cursors`: the pull cursor per organization and entity, and the initial import's progress.
- `sync_conflicts`: both versions and the decision of every two-way conflict; open ones are held.
- `qbo_push_queue`: sales invoices to create or void in QBO, with their deterministic requestid.

All five are tenant tables under row-level security.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, Json, UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
TABLES = ["qbo_connections", "qbo_mappings", "qbo_cursors", "sync_conflicts", "qbo_push_queue"]


def _org(table: str, **kwargs) -> sa.Column:
    return sa.Column(
        "organization_id",
        Id,
        sa.ForeignKey(
            "organizations.id", ondelete="CASCADE", name=f"fk_{table}_organization_id_organizations"
        ),
        nullable=False,
        **kwargs,
    )


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
    ]


def upgrade() -> None:
    op.create_table(
        "qbo_connections",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _org("qbo_connections"),
        sa.Column("realm_id", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("client_secret_enc", sa.Text, nullable=False),
        sa.Column("refresh_token_enc", sa.Text, nullable=False),
        sa.Column("access_token_enc", sa.Text),
        sa.Column("access_expires_at", UtcDateTime),
        sa.Column("refresh_expires_at", UtcDateTime),
        sa.Column("refresh_hard_expires_at", UtcDateTime),
        sa.Column("token_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_refreshed_at", UtcDateTime),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("last_error", sa.Text),
        sa.Column("sync_owner", sa.String(64)),
        sa.Column("sync_lease_until", UtcDateTime),
        sa.Column("settings", Json, nullable=False, server_default=sa.text("'{}'")),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_qbo_connections"),
        sa.UniqueConstraint("organization_id", name="uq_qbo_connections_organization_id"),
        sa.CheckConstraint("status IN ('active', 'revoked')", name="ck_qbo_connections_status"),
    )
    op.create_table(
        "qbo_mappings",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _org("qbo_mappings"),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("local_id", Id, nullable=False),
        sa.Column("qbo_id", sa.String(32), nullable=False),
        sa.Column("sync_token", sa.String(16)),
        sa.Column("qbo_updated_at", UtcDateTime),
        sa.Column("local_fingerprint", sa.String(64)),
        sa.Column("qbo_state", sa.String(16), nullable=False, server_default="active"),
        sa.Column("details", Json, nullable=False, server_default=sa.text("'{}'")),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_qbo_mappings"),
        sa.UniqueConstraint(
            "organization_id",
            "entity",
            "local_id",
            name="uq_qbo_mappings_organization_id_entity_local_id",
        ),
        sa.UniqueConstraint(
            "organization_id",
            "entity",
            "qbo_id",
            name="uq_qbo_mappings_organization_id_entity_qbo_id",
        ),
        sa.CheckConstraint(
            "entity IN ('customer', 'item', 'invoice', 'payment')", name="ck_qbo_mappings_entity"
        ),
    )
    op.create_table(
        "qbo_cursors",
        _org("qbo_cursors", primary_key=True),
        sa.Column("entity", sa.String(16), primary_key=True),
        sa.Column("cursor", UtcDateTime),
        sa.Column("imported", sa.Integer, nullable=False, server_default="0"),
        sa.Column("import_done", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("pull_requested_at", UtcDateTime),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("organization_id", "entity", name="pk_qbo_cursors"),
    )
    op.create_table(
        "sync_conflicts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _org("sync_conflicts"),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("local_id", Id),
        sa.Column("qbo_id", sa.String(32)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("local_version", Json),
        sa.Column("qbo_version", Json),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_by", sa.String(255)),
        sa.Column("resolved_at", UtcDateTime),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_sync_conflicts"),
        sa.CheckConstraint(
            "decision IN ('local_won', 'qbo_won', 'manual_review', 'linked', 'kept_local', "
            "'kept_qbo')",
            name="ck_sync_conflicts_decision",
        ),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_sync_conflicts_status"),
    )
    op.create_index("ix_sync_conflicts_org_status", "sync_conflicts", ["organization_id", "status"])
    op.create_table(
        "qbo_push_queue",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("sales_invoice_id", Id, nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("request_id", sa.String(50), nullable=False),
        sa.Column("qbo_id", sa.String(32)),
        sa.Column("error_code", sa.String(16)),
        sa.Column("error_message", sa.Text),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_qbo_push_queue"),
        sa.UniqueConstraint(
            "sales_invoice_id", "action", name="uq_qbo_push_queue_sales_invoice_id_action"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
            name="fk_qbo_push_queue_organization_id_sales_invoices",
        ),
        sa.CheckConstraint("action IN ('create', 'void')", name="ck_qbo_push_queue_action"),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'pushed', 'failed', 'conflict')",
            name="ck_qbo_push_queue_status",
        ),
    )
    op.create_index("ix_qbo_push_queue_org_status", "qbo_push_queue", ["organization_id", "status"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), TABLES)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        unprotect_tables(bind, app_role(), TABLES)
    for table in reversed(TABLES):
        op.drop_table(table)
