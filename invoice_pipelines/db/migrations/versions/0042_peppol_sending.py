"""Peppol sending: the channel, the document kind, the transport's message id (issue 58)

Revision ID: 0042
Revises: 0041

- `deliveries.channel` may be `peppol`: an invoice handed to the Peppol access point, recorded
  in the outbox like an e-mail (intent before it leaves, `unknown` never resent on its own).
- `deliveries.transport_message_id`: the id the transport gave the message (Peppol's AS4
  message id); `message_id` stays ours, recorded before the message left.
- `deliveries.fallback_reason`: why an invoice to a customer on Peppol went over another
  channel (the SMP lookup's answer, no Peppol document). NULL on every existing row.
- `sales_invoice_documents.kind` may be `peppol`: the Peppol BIS Billing 3.0 UBL document.

Only columns and check constraints of existing tenant tables; row-level security already
covers them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
CHANNELS_BEFORE = ("email", "sms", "whatsapp")  # 0007
CHANNELS_AFTER = (*CHANNELS_BEFORE, "peppol")
KINDS_BEFORE = ("facturx", "xrechnung")  # 0007
KINDS_AFTER = (*KINDS_BEFORE, "peppol")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# 0007 named these checks in full and the naming convention prefixed them again: the ones to
# drop are ck_<table>_ck_<table>_<column>; they come back under tables.py's ck_<table>_<column>
# (as 0016 did for QuickBooks' tables)
OLD_CHANNEL, NEW_CHANNEL = "ck_deliveries_ck_deliveries_channel", "ck_deliveries_channel"
OLD_KIND = "ck_sales_invoice_documents_ck_sales_invoice_documents_kind"
NEW_KIND = "ck_sales_invoice_documents_kind"


def _check(table: str, drop: str, create: str, condition: str, columns=None) -> None:
    with op.batch_alter_table(table, naming_convention=NAMING) as batch:
        batch.drop_constraint(op.f(drop), type_="check")
        batch.create_check_constraint(op.f(create), condition)
        for column in columns or ():
            batch.add_column(column)


def upgrade() -> None:
    _check(
        "deliveries",
        OLD_CHANNEL,
        NEW_CHANNEL,
        _in("channel", CHANNELS_AFTER),
        [
            sa.Column("transport_message_id", sa.String(255)),
            sa.Column("fallback_reason", sa.Text()),
        ],
    )
    _check("sales_invoice_documents", OLD_KIND, NEW_KIND, _in("kind", KINDS_AFTER))


def downgrade() -> None:
    op.execute("DELETE FROM deliveries WHERE channel = 'peppol'")
    op.execute("DELETE FROM sales_invoice_documents WHERE kind = 'peppol'")
    with op.batch_alter_table("deliveries", naming_convention=NAMING) as batch:
        batch.drop_column("fallback_reason")
        batch.drop_column("transport_message_id")
    _check("deliveries", NEW_CHANNEL, OLD_CHANNEL, _in("channel", CHANNELS_BEFORE))
    _check("sales_invoice_documents", NEW_KIND, OLD_KIND, _in("kind", KINDS_BEFORE))
