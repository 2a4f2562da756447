"""dunning: overdue notices, levels, blocks, execution log (issue 12)

Revision ID: 0008
Revises: 0007

- `sales_invoices.last_payment_date` (default interest restarts from it), `sales_invoices.disputed`
  (no notices while set) and `sales_invoices.deleted_at` (never noticed).
- `customers.dunning_blocked` (Mahnsperre: no notices for the customer while set).
- `dunning_notices`: one notice per invoice and level (unique), with fees and interest, and its
  e-mail delivery (at most once) where the organization enables it, and the batch invoicing job
  that invoices its fee and interest where the organization chooses fee invoices.
- `dunning_runs`: the execution log, one row per run and organization.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, Json, Money, Rate, UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
FALSE = sa.text("false")
TABLES = ["dunning_notices", "dunning_runs"]


def upgrade() -> None:
    op.add_column("sales_invoices", sa.Column("last_payment_date", sa.Date))
    op.add_column(
        "sales_invoices", sa.Column("disputed", sa.Boolean, nullable=False, server_default=FALSE)
    )
    op.add_column("sales_invoices", sa.Column("deleted_at", UtcDateTime))
    op.add_column(
        "customers",
        sa.Column("dunning_blocked", sa.Boolean, nullable=False, server_default=FALSE),
    )
    op.create_table(
        "dunning_notices",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("sales_invoice_id", Id, nullable=False),
        sa.Column("customer_id", Id, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("level_name", sa.String(64), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("days_overdue", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_open", Money(), nullable=False),
        sa.Column("fee", Money(), nullable=False),
        sa.Column("interest", Money(), nullable=False),
        sa.Column("interest_rate_percent", Rate(), nullable=False),
        sa.Column("interest_from", sa.Date),
        sa.Column("interest_until", sa.Date),
        sa.Column("fees_total", Money(), nullable=False),
        sa.Column("interest_total", Money(), nullable=False),
        sa.Column("total_claimed", Money(), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("language", sa.String(5), nullable=False),
        sa.Column("dunning_run_id", Id),
        sa.Column("dagster_run_id", sa.String(64)),
        sa.Column("delivery_status", sa.String(16)),
        sa.Column("recipient", sa.String(255)),
        sa.Column("message_id", sa.String(255)),
        sa.Column("delivery_error", sa.Text),
        sa.Column("delivery_started_at", UtcDateTime),
        sa.Column("sent_at", UtcDateTime),
        sa.Column("fee_batch_job_id", Id),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_dunning_notices"),
        sa.CheckConstraint(
            "delivery_status IN ('pending', 'sending', 'sent', 'failed', 'unknown')",
            name="ck_dunning_notices_delivery_status",
        ),
        sa.UniqueConstraint(
            "sales_invoice_id", "level", name="uq_dunning_notices_sales_invoice_id_level"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
            name="fk_dunning_notices_organization_id_sales_invoices",
        ),
    )
    op.create_index("ix_dunning_notices_org_as_of", "dunning_notices", ["organization_id", "as_of"])
    waiting = sa.text("delivery_status IN ('pending', 'sending')")
    op.create_index(
        "ix_dunning_notices_org_delivery",
        "dunning_notices",
        ["organization_id", "delivery_status"],
        postgresql_where=waiting,
        sqlite_where=waiting,
    )
    op.create_table(
        "dunning_runs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "organization_id",
            Id,
            sa.ForeignKey(
                "organizations.id",
                ondelete="CASCADE",
                name="fk_dunning_runs_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column("dagster_run_id", sa.String(64)),
        sa.Column("as_of", sa.Date),
        sa.Column("dry_run", sa.Boolean, nullable=False, server_default=FALSE),
        sa.Column("status", sa.String(16), nullable=False, server_default="RUNNING"),
        sa.Column("started_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("duration_seconds", sa.Float),
        sa.Column("invoices_scanned", sa.Integer, nullable=False, server_default="0"),
        sa.Column("notices_created", sa.Integer, nullable=False, server_default="0"),
        sa.Column("notices_by_level", Json, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("fees_charged", Money(), nullable=False, server_default="0"),
        sa.Column("interest_charged", Money(), nullable=False, server_default="0"),
        sa.Column("error_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("errors", Json, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("created_by", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="pk_dunning_runs"),
        sa.CheckConstraint(
            "status IN ('RUNNING', 'SUCCESS', 'PARTIAL', 'FAILED')", name="ck_dunning_runs_status"
        ),
    )
    op.create_index(
        "ix_dunning_runs_org_started", "dunning_runs", ["organization_id", "started_at"]
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), TABLES)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        unprotect_tables(bind, app_role(), TABLES)
    op.drop_table("dunning_runs")
    op.drop_table("dunning_notices")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("dunning_blocked")
    with op.batch_alter_table("sales_invoices") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("disputed")
        batch.drop_column("last_payment_date")
