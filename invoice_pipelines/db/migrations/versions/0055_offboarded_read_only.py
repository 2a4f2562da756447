"""An offboarded organization's data are read-only

Revision ID: 0055
Revises: 0054

After `organizations offboard --export DIR` (issue 75, tenants/domain/offboarding.py) an organization's
data are kept until every retention period is over, and nothing may change them meanwhile: no
command, run or sensor. The database refuses it, whoever asks:

- `organizations.offboarding_step`: set only inside the offboarding's own transactions (`thinning`
  right after the export, which deletes what the law does not keep; `deleting`, the deletion when
  it is due) and back to NULL (or gone with the row) when they commit; no other transaction ever
  sees it set;
- on every table with an `organization_id` (but the audit: `audit_log` and `audit_seals` go on
  recording), a trigger refuses an INSERT, UPDATE or DELETE of a row of an organization with
  `offboarded_at` set and no `offboarding_step`. PostgreSQL: one check per statement over its
  transition tables (as 0047's), after a test of an index of the offboarded organizations, which
  is empty almost always; the error is SQLSTATE 25006 (read_only_sql_transaction) naming the
  organization. SQLite: one check per row, RAISE(ABORT) with the same sentence less the name.

The organization's own row is the lifecycle's to guard (tenants/domain/lifecycle.py refuses change,
suspend and resume of an offboarded organization). A table added later needs the triggers too:
invoice_pipelines_tests/tenants/test_read_only.py names one without them. The triggers' text is
db/read_only_triggers.py's (frozen: 0060 writes the same ones on its tables).
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.read_only_triggers import MESSAGE, drop_triggers, triggers

revision = "0055"
down_revision = "0054"
branch_labels = None
depends_on = None

# what goes on being written for an offboarded organization: its audit
NOT_GUARDED = ("audit_log", "audit_seals")
INDEX = "ix_organizations_offboarded"

PG_FUNCTION = f"""
CREATE FUNCTION refuse_offboarded_writes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    refused text;
BEGIN
    -- almost always no organization is offboarded: one probe of a (then empty) partial index
    IF NOT EXISTS (
        SELECT 1 FROM organizations WHERE offboarded_at IS NOT NULL AND offboarding_step IS NULL
    ) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT o.slug INTO refused FROM organizations o
        WHERE o.offboarded_at IS NOT NULL AND o.offboarding_step IS NULL
          AND o.id IN (SELECT organization_id FROM written_rows) LIMIT 1;
    ELSE
        SELECT o.slug INTO refused FROM organizations o
        WHERE o.offboarded_at IS NOT NULL AND o.offboarding_step IS NULL
          AND o.id IN (SELECT organization_id FROM touched_rows) LIMIT 1;
    END IF;
    IF refused IS NOT NULL THEN
        RAISE EXCEPTION 'organization % {MESSAGE}', refused
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'table ' || TG_TABLE_NAME || ': docs/organizations.md, "Offboarding"';
    END IF;
    RETURN NULL;
END
$$;
"""


def guarded_tables(bind) -> list[str]:
    inspector = sa.inspect(bind)
    return sorted(
        table
        for table in inspector.get_table_names()
        if table not in NOT_GUARDED
        and table != "alembic_version"
        and any(c["name"] == "organization_id" for c in inspector.get_columns(table))
    )


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.add_column("organizations", sa.Column("offboarding_step", sa.String(16)))
    op.create_index(
        INDEX,
        "organizations",
        ["id"],
        postgresql_where=sa.text("offboarded_at IS NOT NULL AND offboarding_step IS NULL"),
        sqlite_where=sa.text("offboarded_at IS NOT NULL AND offboarding_step IS NULL"),
    )
    tables = guarded_tables(bind)
    if postgres:
        op.execute(PG_FUNCTION)
    for table in tables:
        for statement in triggers(table, postgres=postgres):
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    for table in guarded_tables(bind):
        for statement in drop_triggers(table, postgres=postgres):
            op.execute(statement)
    if postgres:
        op.execute("DROP FUNCTION refuse_offboarded_writes()")
    op.drop_index(INDEX, table_name="organizations")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("offboarding_step")
