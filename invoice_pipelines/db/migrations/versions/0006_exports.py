"""exports: export versions and items, DATEV partner accounts, incoming invoice breakdowns and lines

Revision ID: 0006
Revises: 0005

- `exports` (one version of one organization's month, per direction) and `export_items` (each
  invoice the export booked or skipped, with the reason).
- `partner_accounts`: the creditor/debtor account each supplier/customer got, stable across
  exports.
- `incoming_invoice_taxes` and `incoming_invoice_lines`: the VAT breakdown and lines the intake
  read, so an export books a month with set-based reads instead of opening every document's JSON.
  Existing documents are backfilled from their stored JSON (raw_json.invoice), with a frozen copy
  of the intake's `breakdown_rows`/`line_rows` (intake/breakdown.py) as this revision was
  written: a migration is history and does not follow later changes of the intake.
- `incoming_invoices.service_date`: the Leistungsdatum a document states (delivery date BT-72,
  else the end of its invoicing period BT-74), for the DATEV column of that name.
- `incoming_invoices` loses its single-column organization index: three indexes lead with
  organization_id already, and an export moves thousands of documents to EXPORTED at once (a
  status change rewrites every index entry of the row).
"""

from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, Json, Money, Quantity, Rate, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
TABLES = [
    "incoming_invoice_taxes",
    "incoming_invoice_lines",
    "partner_accounts",
    "exports",
    "export_items",
]
BATCH = 2000
MAX_AMOUNT = Decimal(10) ** 16  # NUMERIC(18, 2)
MAX_RATE = Decimal(1000)  # NUMERIC(5, 2)


def _document(table: str) -> sa.Column:
    return sa.Column(
        "incoming_invoice_id",
        Id,
        sa.ForeignKey(
            "incoming_invoices.id",
            ondelete="CASCADE",
            name=f"fk_{table}_incoming_invoice_id_incoming_invoices",
        ),
        nullable=False,
    )


def upgrade() -> None:
    for table in ("incoming_invoice_taxes", "incoming_invoice_lines"):
        columns = (
            [
                sa.Column("vat_category", sa.String(2)),
                sa.Column("vat_rate", Rate()),
                sa.Column("basis", Money()),
                sa.Column("amount", Money()),
            ]
            if table == "incoming_invoice_taxes"
            else [
                sa.Column("line_no", sa.Integer, nullable=False),
                sa.Column("description", sa.String(512)),
                sa.Column("quantity", Quantity()),
                sa.Column("unit_code", sa.String(8)),
                sa.Column("unit_price", Quantity()),
                sa.Column("net_amount", Money()),
                sa.Column("vat_category", sa.String(2)),
                sa.Column("vat_rate", Rate()),
            ]
        )
        op.create_table(
            table,
            sa.Column("id", Id, primary_key=True, autoincrement=True),
            sa.Column(
                "organization_id",
                Id,
                sa.ForeignKey(
                    "organizations.id",
                    ondelete="CASCADE",
                    name=f"fk_{table}_organization_id_organizations",
                ),
                nullable=False,
            ),
            _document(table),
            *columns,
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        )
        op.create_index(f"ix_{table}_incoming_invoice_id", table, ["incoming_invoice_id"])

    op.create_table(
        "partner_accounts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "organization_id",
            Id,
            sa.ForeignKey(
                "organizations.id",
                ondelete="CASCADE",
                name="fk_partner_accounts_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("partner_key", sa.String(255), nullable=False),
        sa.Column("account_number", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("vat_id", sa.String(64)),
        sa.Column("country", sa.String(2)),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_partner_accounts"),
        sa.UniqueConstraint(
            "organization_id",
            "kind",
            "partner_key",
            name="uq_partner_accounts_organization_id_kind_partner_key",
        ),
        sa.UniqueConstraint(
            "organization_id",
            "account_number",
            name="uq_partner_accounts_organization_id_account_number",
        ),
        sa.CheckConstraint("kind IN ('creditor', 'debtor')", name="ck_partner_accounts_kind"),
    )

    op.create_table(
        "exports",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "organization_id",
            Id,
            sa.ForeignKey(
                "organizations.id",
                ondelete="CASCADE",
                name="fk_exports_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("files", Json, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("invoice_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("booking_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skipped_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("net_total", Money(), nullable=False, server_default="0"),
        sa.Column("tax_total", Money(), nullable=False, server_default="0"),
        sa.Column("gross_total", Money(), nullable=False, server_default="0"),
        sa.Column("closed", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("notes", Json, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("dagster_run_id", sa.String(64)),
        sa.Column("created_by", sa.String(255)),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_exports"),
        sa.UniqueConstraint(
            "organization_id",
            "direction",
            "period",
            "version",
            name="uq_exports_organization_id_direction_period_version",
        ),
        sa.UniqueConstraint("organization_id", "id", name="uq_exports_organization_id_id"),
        sa.CheckConstraint("direction IN ('incoming', 'sales')", name="ck_exports_direction"),
    )

    op.create_table(
        "export_items",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("export_id", Id, nullable=False),
        sa.Column(
            "incoming_invoice_id",
            Id,
            sa.ForeignKey(
                "incoming_invoices.id",
                ondelete="CASCADE",
                name="fk_export_items_incoming_invoice_id_incoming_invoices",
            ),
        ),
        sa.Column(
            "sales_invoice_id",
            Id,
            sa.ForeignKey(
                "sales_invoices.id",
                ondelete="CASCADE",
                name="fk_export_items_sales_invoice_id_sales_invoices",
            ),
        ),
        sa.Column("invoice_number", sa.String(128)),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("document_version", sa.Integer),
        sa.Column("net_total", Money()),
        sa.Column("tax_total", Money()),
        sa.Column("gross_total", Money()),
        sa.PrimaryKeyConstraint("id", name="pk_export_items"),
        sa.UniqueConstraint(
            "export_id",
            "incoming_invoice_id",
            "sales_invoice_id",
            name="uq_export_items_export_id_incoming_invoice_id_sales_invoice_id",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "export_id"],
            ["exports.organization_id", "exports.id"],
            ondelete="CASCADE",
            name="fk_export_items_organization_id_exports",
        ),
        sa.CheckConstraint("status IN ('exported', 'skipped')", name="ck_export_items_status"),
        sa.CheckConstraint(
            "(incoming_invoice_id IS NULL) <> (sales_invoice_id IS NULL)",
            name="ck_export_items_one_invoice",
        ),
    )

    op.drop_index("ix_incoming_invoices_organization_id", table_name="incoming_invoices")
    op.add_column("incoming_invoices", sa.Column("service_date", sa.Date))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        role = app_role()
        protect_tables(bind, role, TABLES)
        # the owner is subject to row-level security too (FORCE): see every tenant's rows
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
    _backfill(bind)


def _backfill(bind) -> None:
    """Breakdowns and lines of documents stored before this revision, from raw_json.invoice."""
    invoices = sa.table(
        "incoming_invoices",
        sa.column("id", sa.BigInteger),
        sa.column("organization_id", sa.BigInteger),
        sa.column("raw_json", Json),
    )
    taxes = sa.table(
        "incoming_invoice_taxes",
        *(sa.column(c) for c in ("organization_id", "incoming_invoice_id", "vat_category")),
        sa.column("vat_rate", Rate()),
        sa.column("basis", Money()),
        sa.column("amount", Money()),
    )
    lines = sa.table(
        "incoming_invoice_lines",
        *(
            sa.column(c)
            for c in (
                "organization_id",
                "incoming_invoice_id",
                "line_no",
                "description",
                "unit_code",
                "vat_category",
            )
        ),
        sa.column("quantity", Quantity()),
        sa.column("unit_price", Quantity()),
        sa.column("net_amount", Money()),
        sa.column("vat_rate", Rate()),
    )
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(invoices.c.id, invoices.c.organization_id, invoices.c.raw_json)
            .where(invoices.c.id > last_id)
            .order_by(invoices.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        tax_rows, line_values = [], []
        for row in rows:
            document = (
                (row.raw_json or {}).get("invoice") if isinstance(row.raw_json, dict) else None
            )
            if not isinstance(document, dict):
                continue
            tax_rows += breakdown_rows(row.organization_id, row.id, document)
            line_values += line_rows(row.organization_id, row.id, document)
        if tax_rows:
            bind.execute(sa.insert(taxes), tax_rows)
        if line_values:
            bind.execute(sa.insert(lines), line_values)
        last_id = rows[-1].id


# The rows of one document, as the intake wrote them when this revision was written: a value that
# does not fit its column (an absurd rate, an over-long unit code) is left empty.


def _decimal(value: Any, limit: Decimal = MAX_AMOUNT) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and abs(number) < limit else None


def _text(value: Any, length: int, *, code: bool = False) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if len(value) > length:
        # a code cut short would look valid ("EURO" -> "EUR"): leave it out; text is shortened
        return None if code else value[:length]
    return value


def breakdown_rows(organization_id: int, document_id: int, invoice: dict) -> list[dict]:
    rows = []
    for entry in invoice.get("vat_breakdown") or ():
        if not isinstance(entry, dict):
            continue
        rows.append(
            {
                "organization_id": organization_id,
                "incoming_invoice_id": document_id,
                "vat_category": _text(entry.get("category"), 2, code=True),
                "vat_rate": _decimal(entry.get("rate"), MAX_RATE),
                "basis": _decimal(entry.get("basis")),
                "amount": _decimal(entry.get("amount")),
            }
        )
    return rows


def line_rows(organization_id: int, document_id: int, invoice: dict) -> list[dict]:
    rows = []
    for number, line in enumerate(invoice.get("lines") or (), start=1):
        if not isinstance(line, dict):
            continue
        rows.append(
            {
                "organization_id": organization_id,
                "incoming_invoice_id": document_id,
                "line_no": number,
                "description": _text(line.get("description") or line.get("item_description"), 512),
                "quantity": _decimal(line.get("quantity"), Decimal(10) ** 14),
                "unit_code": _text(line.get("unit_code"), 8, code=True),
                "unit_price": _decimal(line.get("unit_price"), Decimal(10) ** 14),
                "net_amount": _decimal(line.get("net_amount")),
                "vat_category": _text(line.get("vat_category"), 2, code=True),
                "vat_rate": _decimal(line.get("vat_rate"), MAX_RATE),
            }
        )
    return rows


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        unprotect_tables(bind, app_role(), TABLES)
    for table in reversed(TABLES):
        op.drop_table(table)
    op.create_index(
        "ix_incoming_invoices_organization_id", "incoming_invoices", ["organization_id"]
    )
    with op.batch_alter_table("incoming_invoices", naming_convention=NAMING) as batch:
        batch.drop_column("service_date")
