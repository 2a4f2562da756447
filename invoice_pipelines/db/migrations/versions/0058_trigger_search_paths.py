"""The side tables' trigger functions look names up in this schema first, and an incoming
invoice's content hash is written once (issue 83, what 0056 left)

Revision ID: 0058
Revises: 0057

0056 gave its own functions and 0055's guard a fixed search path, since any login may create a
temporary table named like a real one and an unqualified name in a function resolved to it. The
functions that keep the side tables of 0047 (`reviewed_sales_orders`) and 0048
(`incoming_validated`) had the same hole: a runtime session that created a temporary
`reviewed_sales_orders` or `incoming_validated` sent the trigger's rows there, and billing or the
export then missed the reviewed order or the validated invoice of the real one. Now they too look
names up in pg_catalog and this schema before the session's temporary tables.

`incoming_invoices.content_hash` (the bytes the intake read, one document per hash and
organization) is now filled once and never changed by the runtime login, by 0056's
`refuse_hash_change`, as `uploads.content_hash` is. Its deletion is not guarded here: an incoming
invoice always comes from an upload, whose row 0056 keeps already.

SQLite has no logins and no search path: nothing here applies there.
"""

from alembic import op

revision = "0058"
down_revision = "0057"
branch_labels = None
depends_on = None

SIDE_TABLE_FUNCTIONS = (
    "reviewed_sales_orders_inserted()",
    "reviewed_sales_orders_updated()",
    "incoming_validated_inserted()",
    "incoming_validated_updated()",
)
TRIGGER = "incoming_invoices_content_hash_write_once"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = bind.exec_driver_sql("SELECT current_schema()").scalar()
    for function in SIDE_TABLE_FUNCTIONS:
        op.execute(f'ALTER FUNCTION {function} SET search_path = pg_catalog, "{schema}", pg_temp')
    # called only for a row whose recorded hash the statement changes: never, normally
    op.execute(
        f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE OF content_hash ON incoming_invoices "
        "FOR EACH ROW WHEN (OLD.content_hash IS NOT NULL AND OLD.content_hash <> '' "
        "AND NEW.content_hash IS DISTINCT FROM OLD.content_hash) "
        "EXECUTE FUNCTION refuse_hash_change('content_hash')"
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON incoming_invoices")
    for function in SIDE_TABLE_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} RESET search_path")
