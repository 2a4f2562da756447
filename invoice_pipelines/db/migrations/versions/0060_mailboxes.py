"""Invoices by e-mail: each organization's mailbox, the messages read from it, and the uploads'
provenance

Revision ID: 0060
Revises: 0058

Issue 86 (intake/domain/mailbox.py reads them):

- `mailboxes`: one per organization, configured by command (`invoice-pipelines mailbox set`): the
  IMAP server, account and folder, the password's NAME only (an environment variable), where
  read mail goes (a folder or a keyword), the recipient address that routes a shared mailbox's
  messages, and what the last tick saw.
- `mailbox_messages`: one row per message taken up, unique per (mailbox, UIDVALIDITY, UID), with
  what its headers claim and what became of it (read, refused and why, duplicate).
- `mailbox_uploads`: each upload that came by e-mail, with its message and attachment name.

Tenant tables: row-level security, keys that carry the organization (0034) and the offboarded
read-only triggers of 0055 (db/read_only_triggers.py, frozen: a migration imports no other revision).
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.read_only_triggers import drop_triggers, triggers
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, UtcDateTime

revision = "0060"
down_revision = "0058"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
TABLES = ("mailboxes", "mailbox_messages", "mailbox_uploads")


def _organization(table: str) -> sa.Column:
    return sa.Column(
        "organization_id",
        Id,
        sa.ForeignKey(
            "organizations.id", ondelete="CASCADE", name=f"fk_{table}_organization_id_organizations"
        ),
        nullable=False,
    )


def _same_organization(table: str, column: str, parent: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id", column],
        [f"{parent}.organization_id", f"{parent}.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_organization_id_{parent}",
    )


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
    ]


def upgrade() -> None:
    op.create_table(
        "mailboxes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _organization("mailboxes"),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("tls", sa.String(8), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("secret_name", sa.String(128), nullable=False),
        sa.Column("folder", sa.String(255), nullable=False),
        sa.Column("processed_folder", sa.String(255)),
        sa.Column("processed_flag", sa.String(64)),
        sa.Column("address", sa.String(320)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("last_read_at", UtcDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", UtcDateTime),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_mailboxes"),
        sa.UniqueConstraint("organization_id", name="uq_mailboxes_organization_id"),
        sa.UniqueConstraint("organization_id", "id", name="uq_mailboxes_organization_id_id"),
        sa.CheckConstraint("tls IN ('tls', 'starttls', 'none')", name="ck_mailboxes_tls"),
        sa.CheckConstraint(
            "processed_folder IS NOT NULL OR processed_flag IS NOT NULL",
            name="ck_mailboxes_processed",
        ),
    )
    op.create_table(
        "mailbox_messages",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _organization("mailbox_messages"),
        sa.Column("mailbox_id", Id, nullable=False),
        sa.Column("uidvalidity", Id, nullable=False),
        sa.Column("uid", Id, nullable=False),
        sa.Column("message_id", sa.String(500)),
        sa.Column("from_address", sa.String(320)),
        sa.Column("to_address", sa.String(1000)),
        sa.Column("sent_at", UtcDateTime),
        sa.Column("subject", sa.String(500)),
        sa.Column("authentication_results", sa.Text),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("uploads", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("moved_at", UtcDateTime),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_mailbox_messages"),
        sa.UniqueConstraint(
            "organization_id",
            "mailbox_id",
            "uidvalidity",
            "uid",
            name="uq_mailbox_messages_organization_id_mailbox_id_uidvalidity_uid",
        ),
        sa.UniqueConstraint("organization_id", "id", name="uq_mailbox_messages_organization_id_id"),
        _same_organization("mailbox_messages", "mailbox_id", "mailboxes"),
        sa.CheckConstraint(
            "state IN ('read', 'refused', 'duplicate')", name="ck_mailbox_messages_state"
        ),
    )
    op.create_index(
        "ix_mailbox_messages_org_message_id", "mailbox_messages", ["organization_id", "message_id"]
    )
    op.create_index(
        "ix_mailbox_messages_org_created_at", "mailbox_messages", ["organization_id", "created_at"]
    )
    op.create_table(
        "mailbox_uploads",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _organization("mailbox_uploads"),
        sa.Column("mailbox_message_id", Id, nullable=False),
        sa.Column("upload_id", Id, nullable=False),
        sa.Column("incoming_invoice_id", Id),
        sa.Column("attachment_name", sa.String(512), nullable=False),
        sa.Column("duplicate", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.PrimaryKeyConstraint("id", name="pk_mailbox_uploads"),
        sa.UniqueConstraint(
            "organization_id", "upload_id", name="uq_mailbox_uploads_organization_id_upload_id"
        ),
        _same_organization("mailbox_uploads", "mailbox_message_id", "mailbox_messages"),
        _same_organization("mailbox_uploads", "upload_id", "uploads"),
        _same_organization("mailbox_uploads", "incoming_invoice_id", "incoming_invoices"),
    )
    op.create_index(
        "ix_mailbox_uploads_org_message",
        "mailbox_uploads",
        ["organization_id", "mailbox_message_id"],
    )
    op.create_index(
        "ix_mailbox_uploads_org_invoice",
        "mailbox_uploads",
        ["organization_id", "incoming_invoice_id"],
    )
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        protect_tables(bind, app_role(), list(TABLES))
    for table in TABLES:
        for statement in triggers(table, postgres=postgres):
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    for table in TABLES:
        for statement in drop_triggers(table, postgres=postgres):
            op.execute(statement)
    if postgres:
        unprotect_tables(bind, app_role(), list(TABLES))
    for index, table in (
        ("ix_mailbox_uploads_org_invoice", "mailbox_uploads"),
        ("ix_mailbox_uploads_org_message", "mailbox_uploads"),
    ):
        op.drop_index(index, table_name=table)
    op.drop_table("mailbox_uploads")
    op.drop_index("ix_mailbox_messages_org_created_at", table_name="mailbox_messages")
    op.drop_index("ix_mailbox_messages_org_message_id", table_name="mailbox_messages")
    op.drop_table("mailbox_messages")
    op.drop_table("mailboxes")
