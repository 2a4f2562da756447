"""row-level security for tenant tables (PostgreSQL only)

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import ensure_app_role, protect_tables, unprotect_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = [
    "customers",
    "items",
    "sales_orders",
    "sales_order_lines",
    "invoice_number_sequences",
    "batch_jobs",
    "batch_job_items",
    "sales_invoices",
    "sales_invoice_lines",
    "sales_invoice_taxes",
    "uploads",
    "incoming_invoices",
    "processing_errors",
    "audit_log",
]


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    role = app_role()
    if role is not None:
        ensure_app_role(conn, role)
    protect_tables(conn, role, TABLES)
    protect_tables(conn, role, ["organizations"], key_column="id")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    role = app_role()
    unprotect_tables(conn, role, [*TABLES, "organizations"])
