"""QuickBooks: a Skonto settled in our database pushed as a CreditMemo applied to its invoice (issue 49)

Revision ID: 0031
Revises: 0030

`qbo_push_queue.action` may be `discount` (create the CreditMemo that grants an invoice's
early-payment discount, one line per VAT rate) or `dapply` (apply it to the invoice with a
zero-amount Payment), each with its own deterministic requestid, as `credit` and `apply` are for a
credit note. The CreditMemo is mapped in `qbo_mappings` as entity `credit_memo` with the invoice's
id as its local id (a credit note's CreditMemo has the credit note's id), so that check is unchanged.

Only a check constraint of an existing tenant table changes; row-level security already covers it.
"""

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
BEFORE = ("create", "void", "credit", "apply")  # 0016
AFTER = (*BEFORE, "discount", "dapply")


def _in(values: tuple[str, ...]) -> str:
    return f"action IN ({', '.join(repr(v) for v in values)})"


def _replace(values: tuple[str, ...]) -> None:
    # 0016 created it as ck_qbo_push_queue_action
    with op.batch_alter_table("qbo_push_queue", naming_convention=NAMING) as batch:
        batch.drop_constraint(op.f("ck_qbo_push_queue_action"), type_="check")
        batch.create_check_constraint(op.f("ck_qbo_push_queue_action"), _in(values))


def upgrade() -> None:
    _replace(AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM qbo_push_queue WHERE action IN ('discount', 'dapply')")
    # the discounts' CreditMemos: mapped to an invoice, not to a credit note
    op.execute(
        "DELETE FROM qbo_mappings WHERE entity = 'credit_memo' AND local_id IN "
        "(SELECT id FROM sales_invoices WHERE corrects_invoice_id IS NULL)"
    )
    _replace(BEFORE)
