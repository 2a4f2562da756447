"""A partial index for the deliveries over Peppol not yet delivered (issue 58)

Revision ID: 0045
Revises: 0044

`peppol_undelivered` (delivery/peppol_overview.py `undelivered`) asks, across organizations,
for the deliveries of channel `peppol` whose status is not `sent` and that were recorded before
a moment. `deliveries` holds every e-mail, SMS and WhatsApp too, so without an index of its own
that is a scan of the whole table every hour; `ix_deliveries_peppol_undelivered` holds only those
rows (channel `peppol`, status not `sent`), ordered by `created_at`. On both engines (SQLite has
partial indexes as well); nothing to fill.
"""

import sqlalchemy as sa
from alembic import op

revision = "0045"
down_revision = "0044"
branch_labels = None
depends_on = None

NAME = "ix_deliveries_peppol_undelivered"
WHERE = sa.text("channel = 'peppol' AND status <> 'sent'")


def upgrade() -> None:
    op.create_index(NAME, "deliveries", ["created_at"], postgresql_where=WHERE, sqlite_where=WHERE)


def downgrade() -> None:
    op.drop_index(NAME, "deliveries")
