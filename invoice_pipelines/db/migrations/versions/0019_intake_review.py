"""intake: the review step, each document's class under German VAT law, duplicate keys that
ignore invisible characters (issue 36)

Revision ID: 0019
Revises: 0018

- `incoming_invoices.status` may be NEEDS_REVIEW: read, but a person confirms or corrects its
  values before it is booked (the CHECK constraint is replaced).
- `incoming_invoices.einvoice_class`, `einvoice_reason`: valid_einvoice, einvoice_with_errors or
  not_einvoice with its reason (core/einvoice_verdict.py).
- `incoming_reviews`: who confirmed, corrected (field, old, new) or rejected what, when. A
  tenant table under row-level security.
- `supplier_notices`: the one notice a supplier gets when the intake rejects a document of theirs
  (pending, then sent at most once through the outbox). A tenant table under RLS.
- `invoice_number_key` is recomputed for every row with `core.rules.invoice_number_key`, which now
  also folds Unicode compatibility forms (NFKC: full-width digits) and drops invisible and format
  characters (zero-width space, soft hyphen, ...), so a number re-sent with them is a duplicate.
  The function is a frozen copy of the live rule as this revision was written: a migration is
  history and does not follow later changes of the rule (0028 recomputed the keys with its own).
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, UtcDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
TABLE = "incoming_reviews"
NOTICES = "supplier_notices"
CHECK = "status"
OLD_STATUSES = ("UPLOADED", "CREATED", "PARSED", "VALIDATED", "EXPORTED", "FAILED")
NEW_STATUSES = ("UPLOADED", "CREATED", "PARSED", "NEEDS_REVIEW", "VALIDATED", "EXPORTED", "FAILED")
BATCH = 5000


def invoice_number_key(number: str | None) -> str | None:
    """The duplicate key of an invoice number as of this revision: NFKC, case-folded, without
    whitespace and without invisible or format characters (categories Cf, Cc)."""
    if number is None:
        return None
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", number).casefold())
    return (
        "".join(
            char
            for char in folded
            if not char.isspace() and unicodedata.category(char) not in ("Cf", "Cc")
        )
        or None
    )


def _in(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(v) for v in values)})"


def _recompute_keys(bind) -> None:
    invoices = sa.table(
        "incoming_invoices",
        sa.column("id", sa.BigInteger),
        sa.column("invoice_number", sa.String),
        sa.column("invoice_number_key", sa.String),
    )
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(invoices.c.id, invoices.c.invoice_number, invoices.c.invoice_number_key)
            .where(invoices.c.id > last_id, invoices.c.invoice_number.is_not(None))
            .order_by(invoices.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        changed = [
            {"row_id": row.id, "key": key}
            for row in rows
            if (key := (invoice_number_key(row.invoice_number) or "")[:255] or None)
            != row.invoice_number_key
        ]
        if changed:
            bind.execute(
                sa.update(invoices)
                .where(invoices.c.id == sa.bindparam("row_id"))
                .values(invoice_number_key=sa.bindparam("key")),
                changed,
            )
        last_id = rows[-1].id


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # the owner is subject to row-level security too (FORCE): see every tenant's rows
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
    with op.batch_alter_table("incoming_invoices", naming_convention=NAMING) as batch:
        batch.drop_constraint(CHECK, type_="check")
        batch.create_check_constraint(CHECK, _in(NEW_STATUSES))
        batch.add_column(sa.Column("einvoice_class", sa.String(32)))
        batch.add_column(sa.Column("einvoice_reason", sa.String(32)))
    op.create_table(
        TABLE,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "organization_id",
            Id,
            sa.ForeignKey(
                "organizations.id",
                ondelete="CASCADE",
                name=f"fk_{TABLE}_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column(
            "incoming_invoice_id",
            Id,
            sa.ForeignKey(
                "incoming_invoices.id",
                ondelete="CASCADE",
                name=f"fk_{TABLE}_incoming_invoice_id_incoming_invoices",
            ),
            nullable=False,
        ),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("field", sa.String(64)),
        sa.Column("old_value", sa.Text),
        sa.Column("new_value", sa.Text),
        sa.Column("reviewed_by", sa.String(255), nullable=False),
        sa.Column(
            "reviewed_at", UtcDateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")
        ),
        sa.CheckConstraint(
            "action IN ('corrected', 'confirmed', 'rejected')", name=f"ck_{TABLE}_action"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
    )
    op.create_index(f"ix_{TABLE}_incoming_invoice_id", TABLE, ["incoming_invoice_id"])
    op.create_table(
        NOTICES,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "organization_id",
            Id,
            sa.ForeignKey(
                "organizations.id",
                ondelete="CASCADE",
                name=f"fk_{NOTICES}_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column(
            "incoming_invoice_id",
            Id,
            sa.ForeignKey(
                "incoming_invoices.id",
                ondelete="CASCADE",
                name=f"fk_{NOTICES}_incoming_invoice_id_incoming_invoices",
            ),
            nullable=False,
        ),
        sa.Column("recipient", sa.String(320)),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("error", sa.Text),
        sa.Column("message_id", sa.String(255)),
        sa.Column(
            "created_at", UtcDateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")
        ),
        sa.Column(
            "updated_at", UtcDateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")
        ),
        sa.UniqueConstraint("incoming_invoice_id", name=f"uq_{NOTICES}_incoming_invoice_id"),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'unknown')",
            name=f"ck_{NOTICES}_status",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{NOTICES}"),
    )
    op.create_index(f"ix_{NOTICES}_org_status", NOTICES, ["organization_id", "status"])
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), [TABLE, NOTICES])
    _recompute_keys(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
        unprotect_tables(bind, app_role(), [TABLE, NOTICES])
    op.drop_index(f"ix_{NOTICES}_org_status", table_name=NOTICES)
    op.drop_table(NOTICES)
    op.drop_index(f"ix_{TABLE}_incoming_invoice_id", table_name=TABLE)
    op.drop_table(TABLE)
    # a document in review has no status of the earlier lifecycle: it is read again
    op.execute("UPDATE incoming_invoices SET status = 'CREATED' WHERE status = 'NEEDS_REVIEW'")
    with op.batch_alter_table("incoming_invoices", naming_convention=NAMING) as batch:
        batch.drop_constraint(CHECK, type_="check")
        batch.create_check_constraint(CHECK, _in(OLD_STATUSES))
        batch.drop_column("einvoice_reason")
        batch.drop_column("einvoice_class")
