"""QuickBooks CreditMemos for credit notes (issue 23)

Revision ID: 0016
Revises: 0015

- `qbo_mappings.entity` may be `credit_memo`: a credit note (a `sales_invoices` row of type 381)
  mapped to the QBO CreditMemo pushed for it. Its own entity because QBO numbers each entity on
  its own (CreditMemo 7 and Invoice 7 are different records).
- `qbo_push_queue.action` may be `credit` (create the CreditMemo) or `apply` (apply it to the
  corrected invoice with a zero-amount Payment), each with its own deterministic requestid.

Only check constraints of existing tenant tables change; row-level security already covers them.
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# table: (column, values before, values after). 0009 named these constraints in full and the naming
# convention prefixed them again, so the ones to drop are ck_<table>_ck_<table>_<column>
CHECKS = {
    "qbo_mappings": (
        "entity",
        ("customer", "item", "invoice", "payment"),
        ("customer", "item", "invoice", "payment", "credit_memo"),
    ),
    "qbo_push_queue": ("action", ("create", "void"), ("create", "void", "credit", "apply")),
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    for table, (column, _before, after) in CHECKS.items():
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_ck_{table}_{column}"), type_="check")
            batch.create_check_constraint(op.f(f"ck_{table}_{column}"), _in(column, after))


def downgrade() -> None:
    op.execute("DELETE FROM qbo_push_queue WHERE action IN ('credit', 'apply')")
    op.execute("DELETE FROM qbo_mappings WHERE entity = 'credit_memo'")
    for table, (column, before, _after) in CHECKS.items():
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
            batch.create_check_constraint(
                op.f(f"ck_{table}_ck_{table}_{column}"), _in(column, before)
            )
