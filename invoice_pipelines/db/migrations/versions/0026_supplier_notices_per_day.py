"""supplier notices: one a day per supplier address, the rest folded into it (issue 46)

Revision ID: 0026
Revises: 0025

- `supplier_notices.notice_day`: the (UTC) day the notice was recorded. A notice recorded before
  this revision has none: its address came from the rejected document itself, and the sender
  refuses it instead of sending it (intake/notices.py).
- `supplier_notices.folded_into`: the day's notice to the same address that lists this document
  too (status `folded`, sent with it), or that had gone out already when this document was
  rejected (status `suppressed`, not sent again). NULL for the day's notice itself.
- One notice per organization, address and day that is no fold: a unique index.
- The statuses `folded` and `suppressed` join the CHECK constraint.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.sql.elements import conv

from invoice_pipelines.db.types import Id

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

TABLE = "supplier_notices"
STATUS_CHECK = "ck_supplier_notices_status"
OLD_STATUSES = ("pending", "sending", "sent", "failed", "unknown")
NEW_STATUSES = (*OLD_STATUSES, "folded", "suppressed")
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
ONE_A_DAY = "uq_supplier_notices_day_recipient"
CARRIER = sa.text("folded_into IS NULL AND recipient IS NOT NULL AND notice_day IS NOT NULL")


def _in(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(v) for v in values)})"


def _status_checks() -> list[str]:
    """The name of the status CHECK as it is: 0019 gave it the convention's name twice over
    (ck_supplier_notices_ck_supplier_notices_status)."""
    checks = sa.inspect(op.get_bind()).get_check_constraints(TABLE)
    return [c["name"] for c in checks if c["name"] and "status" in c["name"]]


def upgrade() -> None:
    with op.batch_alter_table(TABLE, naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("notice_day", sa.Date))
        batch.add_column(sa.Column("folded_into", Id))
        for name in _status_checks():
            batch.drop_constraint(conv(name), type_="check")
        batch.create_check_constraint(conv(STATUS_CHECK), _in(NEW_STATUSES))
        batch.create_unique_constraint(f"uq_{TABLE}_organization_id_id", ["organization_id", "id"])
    with op.batch_alter_table(TABLE, naming_convention=NAMING) as batch:
        batch.create_foreign_key(
            f"fk_{TABLE}_organization_id_{TABLE}",
            TABLE,
            ["organization_id", "folded_into"],
            ["organization_id", "id"],
            ondelete="CASCADE",
        )
    op.create_index(
        f"ix_{TABLE}_folded_into",
        TABLE,
        ["folded_into"],
        postgresql_where=sa.text("folded_into IS NOT NULL"),
        sqlite_where=sa.text("folded_into IS NOT NULL"),
    )
    op.create_index(
        ONE_A_DAY,
        TABLE,
        ["organization_id", "recipient", "notice_day"],
        unique=True,
        postgresql_where=CARRIER,
        sqlite_where=CARRIER,
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # the owner is subject to row-level security too (FORCE): see every tenant's notices
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
    op.drop_index(ONE_A_DAY, table_name=TABLE)
    op.drop_index(f"ix_{TABLE}_folded_into", table_name=TABLE)
    # a folded or suppressed notice was never sent on its own: it ends failed, saying why
    op.execute(
        f"UPDATE {TABLE} SET status = 'failed', "
        "error = 'listed in another notice of the same day (folded before a downgrade)' "
        "WHERE status IN ('folded', 'suppressed')"
    )
    with op.batch_alter_table(TABLE, naming_convention=NAMING) as batch:
        batch.drop_constraint(f"fk_{TABLE}_organization_id_{TABLE}", type_="foreignkey")
    with op.batch_alter_table(TABLE, naming_convention=NAMING) as batch:
        batch.drop_constraint(f"uq_{TABLE}_organization_id_id", type_="unique")
        for name in _status_checks():
            batch.drop_constraint(conv(name), type_="check")
        batch.create_check_constraint(conv(STATUS_CHECK), _in(OLD_STATUSES))
        batch.drop_column("folded_into")
        batch.drop_column("notice_day")
