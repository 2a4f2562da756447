"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 23:18:45.308099
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import invoice_pipelines.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "organizations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("country", sa.String(length=2), server_default="DE", nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="EUR", nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="Europe/Berlin", nullable=False),
        sa.Column(
            "invoice_number_format",
            sa.String(length=64),
            server_default="RE-{year}-{counter:06d}",
            nullable=False,
        ),
        sa.Column("vat_id", sa.String(length=32), nullable=True),
        sa.Column("datev_berater_nr", sa.Integer(), nullable=True),
        sa.Column("datev_mandant_nr", sa.Integer(), nullable=True),
        sa.Column("datev_chart", sa.String(length=5), server_default="SKR03", nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column(
            "created_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "datev_chart IN ('SKR03', 'SKR04')", name=op.f("ck_organizations_datev_chart")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=True),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "created_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_audit_log_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_log_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "batch_jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=32), server_default="sales_orders", nullable=False),
        sa.Column(
            "request",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("invoice_date", sa.Date(), nullable=True),
        sa.Column("due_days", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=32), server_default="pending", nullable=False),
        sa.Column("total_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("processed_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("successful_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "cancel_requested", sa.Boolean(), server_default=sa.text("(false)"), nullable=False
        ),
        sa.Column(
            "retry_of_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column(
            "started_at", invoice_pipelines.db.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "heartbeat_at", invoice_pipelines.db.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "completed_at", invoice_pipelines.db.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("estimated_duration_seconds", sa.Float(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column(
            "errors",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default=sa.text("'[]'"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'completed_with_errors', 'failed', 'cancelled')",
            name=op.f("ck_batch_jobs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_batch_jobs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["retry_of_job_id"],
            ["batch_jobs.id"],
            name=op.f("fk_batch_jobs_retry_of_job_id_batch_jobs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_jobs")),
    )
    with op.batch_alter_table("batch_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_batch_jobs_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            "ix_batch_jobs_status_created", ["status", "created_at"], unique=False
        )

    op.create_table(
        "customers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("customer_number", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("street", sa.String(length=255), nullable=True),
        sa.Column("postal_code", sa.String(length=32), nullable=True),
        sa.Column("city", sa.String(length=128), nullable=True),
        sa.Column("country", sa.String(length=2), server_default="DE", nullable=False),
        sa.Column("vat_id", sa.String(length=32), nullable=True),
        sa.Column("payment_terms_days", sa.Integer(), server_default="14", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column(
            "created_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_customers_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint(
            "organization_id",
            "customer_number",
            name=op.f("uq_customers_organization_id_customer_number"),
        ),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customers_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "invoice_number_sequences",
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_value", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_invoice_number_sequences_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "name", name=op.f("pk_invoice_number_sequences")
        ),
    )
    op.create_table(
        "items",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("unit_code", sa.String(length=8), server_default="C62", nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("vat_rate", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("vat_category", sa.String(length=2), server_default="S", nullable=False),
        sa.Column("is_stock_item", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column(
            "inventory_quantity",
            sa.Numeric(precision=18, scale=4),
            server_default="0",
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column(
            "created_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_items_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("organization_id", "sku", name=op.f("uq_items_organization_id_sku")),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_items_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "uploads",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("filename", sa.String(length=512), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="registered", nullable=False),
        sa.Column(
            "duplicate_of_upload_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "incoming_invoice_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of_upload_id"],
            ["uploads.id"],
            name=op.f("fk_uploads_duplicate_of_upload_id_uploads"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_uploads_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint(
            "organization_id", "storage_key", name=op.f("uq_uploads_organization_id_storage_key")
        ),
    )
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_uploads_org_hash", ["organization_id", "content_hash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_uploads_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "incoming_invoices",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("upload_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="UPLOADED", nullable=False),
        sa.Column("processing_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "last_processed_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "status_changed_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("format", sa.String(length=32), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "raw_json",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("invoice_number", sa.String(length=128), nullable=True),
        sa.Column("type_code", sa.String(length=3), nullable=True),
        sa.Column("seller_name", sa.String(length=255), nullable=True),
        sa.Column("seller_vat_id", sa.String(length=64), nullable=True),
        sa.Column("issue_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("net_total", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("tax_total", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("gross_total", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("amount_due", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("processing_seconds", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('UPLOADED', 'CREATED', 'PARSED', 'VALIDATED', 'EXPORTED', 'FAILED')",
            name=op.f("ck_incoming_invoices_status"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_incoming_invoices_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"], ["uploads.id"], name=op.f("fk_incoming_invoices_upload_id_uploads")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incoming_invoices")),
        sa.UniqueConstraint(
            "organization_id",
            "content_hash",
            name=op.f("uq_incoming_invoices_organization_id_content_hash"),
        ),
    )
    with op.batch_alter_table("incoming_invoices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incoming_invoices_org_status", ["organization_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_incoming_invoices_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "sales_orders",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("order_number", sa.String(length=64), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("order_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="EUR", nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "invoiced_at", invoice_pipelines.db.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'pending', 'reviewed', 'invoiced', 'cancelled')",
            name=op.f("ck_sales_orders_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_sales_orders_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sales_orders_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_orders")),
        sa.UniqueConstraint(
            "organization_id",
            "order_number",
            name=op.f("uq_sales_orders_organization_id_order_number"),
        ),
    )
    with op.batch_alter_table("sales_orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sales_orders_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_sales_orders_org_status_date",
            ["organization_id", "status", "order_date"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_sales_orders_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "batch_job_items",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "batch_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "sales_order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column(
            "sales_invoice_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'skipped')",
            name=op.f("ck_batch_job_items_status"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_job_id"],
            ["batch_jobs.id"],
            name=op.f("fk_batch_job_items_batch_job_id_batch_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_batch_job_items_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_batch_job_items_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sales_order_id"],
            ["sales_orders.id"],
            name=op.f("fk_batch_job_items_sales_order_id_sales_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_job_items")),
        sa.UniqueConstraint(
            "batch_job_id", "position", name=op.f("uq_batch_job_items_batch_job_id_position")
        ),
    )
    with op.batch_alter_table("batch_job_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_batch_job_items_job_status", ["batch_job_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_batch_job_items_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "processing_errors",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "incoming_invoice_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("processing_version", sa.Integer(), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=True),
        sa.Column("severity", sa.String(length=16), server_default="error", nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["incoming_invoice_id"],
            ["incoming_invoices.id"],
            name=op.f("fk_processing_errors_incoming_invoice_id_incoming_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_processing_errors_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_errors")),
    )
    with op.batch_alter_table("processing_errors", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processing_errors_incoming_invoice_id"),
            ["incoming_invoice_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_processing_errors_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "sales_invoices",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("invoice_number", sa.String(length=64), nullable=False),
        sa.Column("sequence_number", sa.Integer(), nullable=False),
        sa.Column(
            "sales_order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "batch_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("type_code", sa.String(length=3), server_default="380", nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("net_total", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("tax_total", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("gross_total", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column(
            "amount_paid", sa.Numeric(precision=18, scale=2), server_default="0", nullable=False
        ),
        sa.Column("amount_due", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            invoice_pipelines.db.types.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('open', 'partially_paid', 'paid', 'cancelled')",
            name=op.f("ck_sales_invoices_status"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_job_id"],
            ["batch_jobs.id"],
            name=op.f("fk_sales_invoices_batch_job_id_batch_jobs"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_sales_invoices_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sales_invoices_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sales_order_id"],
            ["sales_orders.id"],
            name=op.f("fk_sales_invoices_sales_order_id_sales_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_invoices")),
        sa.UniqueConstraint(
            "organization_id",
            "invoice_number",
            name=op.f("uq_sales_invoices_organization_id_invoice_number"),
        ),
        sa.UniqueConstraint(
            "organization_id",
            "sequence_number",
            name=op.f("uq_sales_invoices_organization_id_sequence_number"),
        ),
        sa.UniqueConstraint("sales_order_id", name=op.f("uq_sales_invoices_sales_order_id")),
    )
    with op.batch_alter_table("sales_invoices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sales_invoices_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_sales_invoices_org_status_due",
            ["organization_id", "status", "due_date"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_sales_invoices_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "sales_order_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "sales_order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("line_type", sa.String(length=16), server_default="item", nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("description", sa.String(length=512), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("vat_rate", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("vat_category", sa.String(length=2), server_default="S", nullable=False),
        sa.CheckConstraint(
            "line_type IN ('item', 'discount', 'charge')",
            name=op.f("ck_sales_order_lines_line_type"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_sales_order_lines_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sales_order_lines_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sales_order_id"],
            ["sales_orders.id"],
            name=op.f("fk_sales_order_lines_sales_order_id_sales_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_order_lines")),
        sa.UniqueConstraint(
            "sales_order_id", "line_no", name=op.f("uq_sales_order_lines_sales_order_id_line_no")
        ),
    )
    with op.batch_alter_table("sales_order_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sales_order_lines_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sales_order_lines_sales_order_id"), ["sales_order_id"], unique=False
        )

    op.create_table(
        "sales_invoice_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "sales_invoice_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("line_type", sa.String(length=16), server_default="item", nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("description", sa.String(length=512), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("net_amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("vat_rate", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("vat_category", sa.String(length=2), server_default="S", nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_sales_invoice_lines_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sales_invoice_lines_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sales_invoice_id"],
            ["sales_invoices.id"],
            name=op.f("fk_sales_invoice_lines_sales_invoice_id_sales_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_invoice_lines")),
        sa.UniqueConstraint(
            "sales_invoice_id",
            "line_no",
            name=op.f("uq_sales_invoice_lines_sales_invoice_id_line_no"),
        ),
    )
    with op.batch_alter_table("sales_invoice_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sales_invoice_lines_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sales_invoice_lines_sales_invoice_id"),
            ["sales_invoice_id"],
            unique=False,
        )

    op.create_table(
        "sales_invoice_taxes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "sales_invoice_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("vat_category", sa.String(length=2), nullable=False),
        sa.Column("vat_rate", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("basis", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sales_invoice_taxes_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sales_invoice_id"],
            ["sales_invoices.id"],
            name=op.f("fk_sales_invoice_taxes_sales_invoice_id_sales_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_invoice_taxes")),
        sa.UniqueConstraint(
            "sales_invoice_id",
            "vat_category",
            "vat_rate",
            name=op.f("uq_sales_invoice_taxes_sales_invoice_id_vat_category_vat_rate"),
        ),
    )
    with op.batch_alter_table("sales_invoice_taxes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sales_invoice_taxes_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sales_invoice_taxes_sales_invoice_id"),
            ["sales_invoice_id"],
            unique=False,
        )


def downgrade() -> None:

    with op.batch_alter_table("sales_invoice_taxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_invoice_taxes_sales_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_sales_invoice_taxes_organization_id"))

    op.drop_table("sales_invoice_taxes")
    with op.batch_alter_table("sales_invoice_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_invoice_lines_sales_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_sales_invoice_lines_organization_id"))

    op.drop_table("sales_invoice_lines")
    with op.batch_alter_table("sales_order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_order_lines_sales_order_id"))
        batch_op.drop_index(batch_op.f("ix_sales_order_lines_organization_id"))

    op.drop_table("sales_order_lines")
    with op.batch_alter_table("sales_invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_invoices_organization_id"))
        batch_op.drop_index("ix_sales_invoices_org_status_due")
        batch_op.drop_index(batch_op.f("ix_sales_invoices_customer_id"))

    op.drop_table("sales_invoices")
    with op.batch_alter_table("processing_errors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_errors_organization_id"))
        batch_op.drop_index(batch_op.f("ix_processing_errors_incoming_invoice_id"))

    op.drop_table("processing_errors")
    with op.batch_alter_table("batch_job_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batch_job_items_organization_id"))
        batch_op.drop_index("ix_batch_job_items_job_status")

    op.drop_table("batch_job_items")
    with op.batch_alter_table("sales_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_orders_organization_id"))
        batch_op.drop_index("ix_sales_orders_org_status_date")
        batch_op.drop_index(batch_op.f("ix_sales_orders_customer_id"))

    op.drop_table("sales_orders")
    with op.batch_alter_table("incoming_invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incoming_invoices_organization_id"))
        batch_op.drop_index("ix_incoming_invoices_org_status")

    op.drop_table("incoming_invoices")
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_uploads_organization_id"))
        batch_op.drop_index("ix_uploads_org_hash")

    op.drop_table("uploads")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_items_organization_id"))

    op.drop_table("items")
    op.drop_table("invoice_number_sequences")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_organization_id"))

    op.drop_table("customers")
    with op.batch_alter_table("batch_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_batch_jobs_status_created")
        batch_op.drop_index(batch_op.f("ix_batch_jobs_organization_id"))

    op.drop_table("batch_jobs")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_organization_id"))

    op.drop_table("audit_log")
    op.drop_table("organizations")
