"""The export's VALIDATED -> EXPORTED update heap-only, with every working set still indexed (issue 59)

Revision ID: 0048
Revises: 0047

Until now `ix_incoming_invoices_org_status (organization_id, status)` found the documents of an
organization by status, and because it mentions `status` no status change was a heap-only update:
the export's 20,000 VALIDATED -> EXPORTED rows wrote 20,000 new entries in each of the table's six
indexes. The working sets it served are now found without an index that tells VALIDATED from
EXPORTED:

- `incoming_invoices.intake_status`, a stored generated column: `status` while the intake works
  on the document (UPLOADED, CREATED, PARSED, NEEDS_REVIEW, FAILED) and NULL once it is accepted
  (VALIDATED, EXPORTED). Indexed `(organization_id, intake_status) WHERE intake_status IS NOT
  NULL`: the index holds the intake's working sets only, and the export's transition leaves the
  column NULL (PostgreSQL compares the old and new values of every indexed column, and two NULLs
  count as the same).
- `incoming_validated`: one row per VALIDATED document (organization, document), a tenant table
  under row-level security. The database keeps it: on PostgreSQL statement-level triggers with
  transition tables (one INSERT or DELETE per statement, whatever its row count; the export's
  UPDATE deletes its 20,000 rows in one statement, and a deleted row adds no index entry), on
  SQLite row triggers. A deleted document takes its row with it (the foreign key cascades).
- `fillfactor = 50` on PostgreSQL: the export updates a month's rows in one transaction, whose old
  versions cannot be pruned before it commits, so a page needs room for a second version of every
  row of the month it holds; a month that arrived in one go (a bulk upload, a migration's history)
  fills whole pages. At 70 only 8,000 of the bench's 20,000 went heap-only, at 50 all of them.
  Adding the stored column rewrites the table (under an exclusive lock), so the existing pages are
  written at that fill factor too: the table takes about twice the pages (docs/benchmarks.md,
  "Issue 59, export: the VALIDATED set beside the table").

On SQLite there is no heap-only update to win, but the same column, index, table and triggers keep
the readers' queries one and the same on both engines. SQLite cannot add a stored column to a
table, so there it is virtual (computed when read; its index stores it). A later migration that
rebuilds `incoming_invoices` in SQLite's batch mode must create the triggers again.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id

revision = "0048"
down_revision = "0047"
branch_labels = None
depends_on = None

TABLE = "incoming_validated"
ACCEPTED = "('VALIDATED', 'EXPORTED')"
INTAKE_STATUS = f"CASE WHEN status IN {ACCEPTED} THEN NULL ELSE status END"
FILLFACTOR = 50

PG_FUNCTIONS = {
    "incoming_validated_inserted": f"""
        INSERT INTO {TABLE} (organization_id, incoming_invoice_id)
        SELECT organization_id, id FROM new_rows WHERE status = 'VALIDATED'
        ON CONFLICT DO NOTHING;
        RETURN NULL;""",
    # no join of the old rows with the new: a document that is not VALIDATED after the statement
    # has no row (deleting one that is not there is an index probe), one that is has one
    "incoming_validated_updated": f"""
        DELETE FROM {TABLE} v USING new_rows n
        WHERE n.status <> 'VALIDATED'
          AND v.organization_id = n.organization_id AND v.incoming_invoice_id = n.id;
        INSERT INTO {TABLE} (organization_id, incoming_invoice_id)
        SELECT organization_id, id FROM new_rows WHERE status = 'VALIDATED'
        ON CONFLICT DO NOTHING;
        RETURN NULL;""",
}
PG_TRIGGERS = {
    "trg_incoming_validated_insert": (
        "AFTER INSERT",
        "NEW TABLE AS new_rows",
        "incoming_validated_inserted",
    ),
    "trg_incoming_validated_update": (
        "AFTER UPDATE",
        "NEW TABLE AS new_rows",
        "incoming_validated_updated",
    ),
}
SQLITE_TRIGGERS = {
    "trg_incoming_validated_insert": f"""
        AFTER INSERT ON incoming_invoices WHEN NEW.status = 'VALIDATED' BEGIN
          INSERT OR IGNORE INTO {TABLE} (organization_id, incoming_invoice_id)
          VALUES (NEW.organization_id, NEW.id);
        END""",
    "trg_incoming_validated_update": f"""
        AFTER UPDATE OF status ON incoming_invoices BEGIN
          DELETE FROM {TABLE} WHERE NEW.status <> 'VALIDATED'
            AND organization_id = OLD.organization_id AND incoming_invoice_id = OLD.id;
          INSERT OR IGNORE INTO {TABLE} (organization_id, incoming_invoice_id)
          SELECT NEW.organization_id, NEW.id WHERE NEW.status = 'VALIDATED';
        END""",
}


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
        # before the column: adding a stored column rewrites the table, at this fill factor
        op.execute(f"ALTER TABLE incoming_invoices SET (fillfactor = {FILLFACTOR})")
    kind = "STORED" if postgres else "VIRTUAL"
    op.execute(
        "ALTER TABLE incoming_invoices ADD COLUMN intake_status VARCHAR(16) "
        f"GENERATED ALWAYS AS ({INTAKE_STATUS}) {kind}"
    )
    op.create_index(
        "ix_incoming_invoices_org_intake_status",
        "incoming_invoices",
        ["organization_id", "intake_status"],
        postgresql_where=sa.text("intake_status IS NOT NULL"),
        sqlite_where=sa.text("intake_status IS NOT NULL"),
    )
    op.create_table(
        TABLE,
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("incoming_invoice_id", Id, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "incoming_invoice_id", name=f"pk_{TABLE}"),
        sa.ForeignKeyConstraint(
            ["organization_id", "incoming_invoice_id"],
            ["incoming_invoices.organization_id", "incoming_invoices.id"],
            ondelete="CASCADE",
            name=f"fk_{TABLE}_organization_id_incoming_invoices",
        ),
    )
    if postgres:
        protect_tables(bind, app_role(), [TABLE])
        for name, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN{body}\nEND$$"
            )
        for name, (event, referencing, function) in PG_TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER {name} {event} ON incoming_invoices REFERENCING {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute(
        f"INSERT INTO {TABLE} (organization_id, incoming_invoice_id) "
        "SELECT organization_id, id FROM incoming_invoices WHERE status = 'VALIDATED'"
    )
    op.drop_index("ix_incoming_invoices_org_status", table_name="incoming_invoices")


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
    op.create_index(
        "ix_incoming_invoices_org_status", "incoming_invoices", ["organization_id", "status"]
    )
    for name in PG_TRIGGERS if postgres else SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER {name}" + (" ON incoming_invoices" if postgres else ""))
    if postgres:
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION {name}()")
        unprotect_tables(bind, app_role(), [TABLE])
    op.drop_table(TABLE)
    op.drop_index("ix_incoming_invoices_org_intake_status", table_name="incoming_invoices")
    op.execute("ALTER TABLE incoming_invoices DROP COLUMN intake_status")
    if postgres:
        op.execute("ALTER TABLE incoming_invoices RESET (fillfactor)")
