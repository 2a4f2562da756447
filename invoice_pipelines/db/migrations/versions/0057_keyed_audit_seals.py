"""Keyed audit seals that name their record: `audit_seals.key_id`, `record_table`, `record_id`

Revision ID: 0057
Revises: 0056

The audit chain's seals were a plain SHA-256 chain (0053) the runtime login could recompute after
changing a row (issue 83). From here each seal's chain hash is an HMAC under a key of the system
side, whose id the seal records (`key_id`; NULL on the seals made before, which verify as
legacy). The chain also seals the supplier register's history and the hashes recorded when files
were stored (audit/domain/sealed_records.py): a seal names its table (`record_table`, 'audit_log'
for the seals before) and row (`audit_log_id` for an audit row, `record_id` otherwise), so
`audit_log_id` may now be empty.

Nothing is rewritten: the new columns come with their default or empty, no seal is updated. On
SQLite making `audit_log_id` nullable rebuilds the table; the triggers on it are read before and
made again after, so whatever guards it (an INSERT-only rule) stays.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.types import Id

revision = "0057"
down_revision = "0056"
branch_labels = None
depends_on = None

SEALS = "audit_seals"
INDEX = "uq_audit_seals_record"


def _sqlite_triggers(bind) -> list[str]:
    return [
        sql
        for (sql,) in bind.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": SEALS},
        )
        if sql
    ]


def upgrade() -> None:
    bind = op.get_bind()
    columns = [
        sa.Column(
            "record_table", sa.String(40), nullable=False, server_default=sa.text("'audit_log'")
        ),
        sa.Column("record_id", Id),
        sa.Column("key_id", sa.String(40)),
    ]
    if bind.dialect.name == "postgresql":
        for column in columns:
            op.add_column(SEALS, column)
        op.alter_column(SEALS, "audit_log_id", existing_type=Id, nullable=True)
    else:
        triggers = _sqlite_triggers(bind)
        with op.batch_alter_table(SEALS) as batch:
            for column in columns:
                batch.add_column(column)
            batch.alter_column("audit_log_id", existing_type=Id, nullable=True)
        for sql in triggers:
            op.execute(sql)
    op.create_index(INDEX, SEALS, ["organization_id", "record_table", "record_id"], unique=True)


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_index(INDEX, table_name=SEALS)
    # the seals of other records go with their columns; the audit rows' seals stay
    op.execute(sa.text(f"DELETE FROM {SEALS} WHERE audit_log_id IS NULL"))
    triggers = _sqlite_triggers(bind) if bind.dialect.name != "postgresql" else []
    with op.batch_alter_table(SEALS) as batch:
        batch.alter_column("audit_log_id", existing_type=Id, nullable=False)
        for name in ("key_id", "record_id", "record_table"):
            batch.drop_column(name)
    for sql in triggers:
        op.execute(sql)
