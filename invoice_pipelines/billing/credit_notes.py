"""Credit notes for sales invoices: issuing one (full or per line), its own gapless number series.

An issued invoice never changes (GoBD); a correction or a cancellation is a credit note: a
`sales_invoices` row with type code 381 whose `corrects_invoice_id` names the invoice (BT-25 on
its document) and whose `credit_reason` says why. Its amounts are positive, as EN 16931 wants
them on a 381; the DATEV export books it on the other side (S/H reversed, `exports/bookings.py`).
"""

# Lines: a credit note credits lines of the invoice, each with a quantity (all of the invoice's
# lines with what is left of them when none are given). Its line numbers are the invoice's line
# numbers, so what is left of a line is its quantity minus what earlier credit notes credited
# under that number. Amounts follow `core/totals.py` (line net = quantity x price rounded
# half-up; VAT per rate on the summed nets), except for the credit note that credits everything
# that is left: its lines, VAT and totals are the invoice's minus the earlier credit notes', so an
# invoice and all its credit notes add up to exactly zero (per-note VAT rounding cannot leave a
# cent open).
#
# Numbers: the series is the `invoice_number_sequences` row named `credit_notes`, formatted with
# `settings["credit_notes"]["number_format"]` (default `GS-{year}-{counter:06d}`). The row is
# locked (FOR UPDATE) for the transaction, so every credit note of an organization queues on it
# and only a commit moves it: consecutive numbers, no gap, no duplicate. `sequence_number` holds
# the counter negated: UNIQUE (organization_id, sequence_number) then covers both series, and
# everything that reads invoices by their (positive) counter keeps seeing invoices only.
#
# The invoice's amount_due drops by the credited gross, so dunning (amount_due > 0) and anyone
# reading what is open see it; its status stays what payments made it.

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.engine import Connection

from invoice_pipelines.core.money import ZERO, round_cents
from invoice_pipelines.core.numbering import InvalidNumberFormat, NumberFormat
from invoice_pipelines.core.totals import vat_amount
from invoice_pipelines.db.tables import (
    audit_log,
    invoice_number_sequences,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.requests import organization_today

CREDIT_NOTE = "381"
SEQUENCE_NAME = "credit_notes"
DEFAULT_NUMBER_FORMAT = "GS-{year}-{counter:06d}"
RATE = Decimal("0.01")


class CreditNoteRefused(ValueError):
    """A credit note that cannot be issued; the message says why."""


@dataclass(frozen=True)
class CreditNote:
    id: int
    number: str
    corrects: str  # the invoice's number (BT-25)
    issue_date: date
    currency: str
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    reason: str
    lines: tuple[tuple[int, Decimal], ...]  # (invoice line number, credited quantity)
    invoice_amount_due: Decimal  # what is still open on the invoice afterwards

    def to_json_dict(self) -> dict:
        return {
            "id": self.id,
            "number": self.number,
            "type_code": CREDIT_NOTE,
            "corrects": self.corrects,
            "issue_date": self.issue_date.isoformat(),
            "currency": self.currency,
            "net_total": str(self.net_total),
            "tax_total": str(self.tax_total),
            "gross_total": str(self.gross_total),
            "reason": self.reason,
            "lines": [{"line_no": n, "quantity": _quantity(q)} for n, q in self.lines],
            "invoice_amount_due": str(self.invoice_amount_due),
        }


def parse_lines(spec: str | None) -> dict[int, Decimal] | None:
    """`"1:2,3:1.5"` -> {1: 2, 3: 1.5} (invoice line number: quantity to credit); None or "" -> None."""
    if spec is None or not spec.strip():
        return None
    chosen: dict[int, Decimal] = {}
    for part in spec.split(","):
        number, sep, quantity = part.strip().partition(":")
        try:
            line_no = int(number)
            amount = Decimal(quantity.strip()) if sep else None
        except (ValueError, InvalidOperation):
            raise CreditNoteRefused(
                f"lines {spec!r}: {part.strip()!r} is not LINE:QUANTITY (e.g. 1:2,3:1)"
            ) from None
        if amount is None:
            raise CreditNoteRefused(
                f"lines {spec!r}: {part.strip()!r} has no quantity (LINE:QUANTITY)"
            )
        if line_no in chosen:
            raise CreditNoteRefused(f"lines {spec!r}: line {line_no} is given twice")
        chosen[line_no] = amount
    return chosen


def _quantity(value) -> str:
    """2.0000 -> "2", 1.5000 -> "1.5": quantities as a person writes them."""
    return format(Decimal(value).normalize(), "f")


def number_format(organization: Mapping) -> NumberFormat:
    """The organization's credit note number format; refused when it could repeat invoice numbers."""
    settings = (organization.get("settings") or {}).get("credit_notes") or {}
    pattern = settings.get("number_format") or DEFAULT_NUMBER_FORMAT
    try:
        parsed = NumberFormat.parse(pattern)
    except InvalidNumberFormat as exc:
        raise CreditNoteRefused(f"settings credit_notes.number_format: {exc}") from None
    if pattern == organization.get("invoice_number_format"):
        raise CreditNoteRefused(
            f"settings credit_notes.number_format {pattern!r} is the invoice number format: "
            "credit notes need their own series (e.g. GS-{year}-{counter:06d})"
        )
    return parsed


def _lock_sequence(conn: Connection, organization_id: int) -> int:
    """Lock the organization's credit note series for this transaction; its last value."""
    params = {"org": organization_id, "name": SEQUENCE_NAME}
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "INSERT INTO invoice_number_sequences (organization_id, name, last_value) "
                "VALUES (:org, :name, 0) ON CONFLICT DO NOTHING"
            ),
            params,
        )
        return conn.execute(
            text(
                "SELECT last_value FROM invoice_number_sequences "
                "WHERE organization_id = :org AND name = :name FOR UPDATE"
            ),
            params,
        ).scalar_one()
    # SQLite: the transaction holds the database write lock already (BEGIN IMMEDIATE)
    conn.execute(
        text(
            "INSERT OR IGNORE INTO invoice_number_sequences (organization_id, name, last_value) "
            "VALUES (:org, :name, 0)"
        ),
        params,
    )
    return conn.execute(
        select(invoice_number_sequences.c.last_value).where(
            invoice_number_sequences.c.organization_id == organization_id,
            invoice_number_sequences.c.name == SEQUENCE_NAME,
        )
    ).scalar_one()


def _invoice(conn: Connection, organization_id: int, invoice_number: str):
    query = select(sales_invoices).where(
        sales_invoices.c.organization_id == organization_id,
        sales_invoices.c.invoice_number == invoice_number,
    )
    if conn.dialect.name == "postgresql":
        # payments and other credit notes change amount_due: one writer at a time
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise CreditNoteRefused(f"there is no invoice {invoice_number!r}")
    if row["type_code"] == CREDIT_NOTE or row["corrects_invoice_id"] is not None:
        raise CreditNoteRefused(
            f"{invoice_number} is a credit note; only an invoice can be credited"
        )
    if row["status"] == "cancelled" or row["deleted_at"] is not None:
        raise CreditNoteRefused(
            f"invoice {invoice_number} is cancelled; there is nothing to credit"
        )
    return row


def _credited(conn: Connection, invoice_id: int):
    """What earlier credit notes took of the invoice: per line (quantity, net), per rate (basis, VAT)."""
    notes = select(sales_invoices.c.id).where(sales_invoices.c.corrects_invoice_id == invoice_id)
    lines: dict[int, tuple[Decimal, Decimal]] = defaultdict(lambda: (ZERO, ZERO))
    for line_no, quantity, net in conn.execute(
        select(
            sales_invoice_lines.c.line_no,
            func.sum(sales_invoice_lines.c.quantity),
            func.sum(sales_invoice_lines.c.net_amount),
        )
        .where(sales_invoice_lines.c.sales_invoice_id.in_(notes))
        .group_by(sales_invoice_lines.c.line_no)
    ):
        lines[line_no] = (Decimal(quantity), Decimal(net))
    taxes: dict[tuple[str, Decimal], tuple[Decimal, Decimal]] = defaultdict(lambda: (ZERO, ZERO))
    for category, rate, basis, amount in conn.execute(
        select(
            sales_invoice_taxes.c.vat_category,
            sales_invoice_taxes.c.vat_rate,
            func.sum(sales_invoice_taxes.c.basis),
            func.sum(sales_invoice_taxes.c.amount),
        )
        .where(sales_invoice_taxes.c.sales_invoice_id.in_(notes))
        .group_by(sales_invoice_taxes.c.vat_category, sales_invoice_taxes.c.vat_rate)
    ):
        taxes[(category, Decimal(rate).quantize(RATE))] = (Decimal(basis), Decimal(amount))
    gross = conn.execute(
        select(func.coalesce(func.sum(sales_invoices.c.gross_total), 0)).where(
            sales_invoices.c.corrects_invoice_id == invoice_id
        )
    ).scalar_one()
    return lines, taxes, Decimal(gross)


def issue_credit_note(
    engine: Engine,
    organization: Mapping,
    invoice_number: str,
    *,
    reason: str,
    lines: Mapping[int, Decimal] | None = None,
    issue_date: date | None = None,
    created_by: str = "unknown",
) -> CreditNote:
    """Issue a credit note for one sales invoice in one transaction; CreditNoteRefused says why not.

    `lines` maps the invoice's line numbers to the quantity to credit; None credits everything
    that earlier credit notes left.
    """
    reason = (reason or "").strip()
    if not reason:
        raise CreditNoteRefused("a credit note needs a reason (it is printed and audit-logged)")
    fmt = number_format(organization)
    organization_id = organization["id"]
    issue_date = issue_date or organization_today(organization.get("timezone") or "Europe/Berlin")
    with tenant_transaction(engine, organization_id, write=True) as conn:
        last_value = _lock_sequence(conn, organization_id)
        invoice = _invoice(conn, organization_id, invoice_number)
        if issue_date < invoice["issue_date"]:
            raise CreditNoteRefused(
                f"credit note date {issue_date} is before invoice {invoice_number}'s date "
                f"{invoice['issue_date']}"
            )
        invoice_lines = {
            row["line_no"]: row
            for row in conn.execute(
                select(sales_invoice_lines).where(
                    sales_invoice_lines.c.sales_invoice_id == invoice["id"]
                )
            ).mappings()
        }
        credited_lines, credited_taxes, credited_gross = _credited(conn, invoice["id"])
        left = {
            n: Decimal(row["quantity"]) - credited_lines[n][0] for n, row in invoice_lines.items()
        }
        if lines is None:
            chosen = {n: q for n, q in left.items() if q != 0}
            if not chosen:
                raise CreditNoteRefused(f"invoice {invoice_number} is credited in full already")
        else:
            chosen = dict(lines)
            if not chosen:
                raise CreditNoteRefused("no lines to credit")
            problems = []
            for n, quantity in sorted(chosen.items()):
                if n not in invoice_lines:
                    problems.append(f"invoice {invoice_number} has no line {n}")
                elif quantity <= 0:
                    problems.append(f"line {n}: quantity {quantity} is not above 0")
                elif quantity > left[n]:
                    problems.append(
                        f"line {n}: {_quantity(quantity)} is more than the {_quantity(left[n])} "
                        f"left to credit of {_quantity(invoice_lines[n]['quantity'])}"
                    )
            if problems:
                raise CreditNoteRefused("; ".join(problems))
        everything = all(chosen.get(n, ZERO) == q for n, q in left.items() if q != 0) and all(
            q == left[n] for n, q in chosen.items()
        )

        new_lines = []
        bases: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
        for n, quantity in sorted(chosen.items()):
            row = invoice_lines[n]
            if quantity == left[n]:
                # the rest of the line: exactly what earlier credit notes left of its net
                net = Decimal(row["net_amount"]) - credited_lines[n][1]
            else:
                net = round_cents(quantity * Decimal(row["unit_price"]))
            key = (row["vat_category"], Decimal(row["vat_rate"]).quantize(RATE))
            bases[key] += net
            new_lines.append((row, quantity, net))
        if everything:
            invoice_taxes = {
                (r.vat_category, Decimal(r.vat_rate).quantize(RATE)): (r.basis, r.amount)
                for r in conn.execute(
                    select(sales_invoice_taxes).where(
                        sales_invoice_taxes.c.sales_invoice_id == invoice["id"]
                    )
                )
            }
            breakdown = {
                key: (
                    Decimal(basis) - credited_taxes[key][0],
                    Decimal(amount) - credited_taxes[key][1],
                )
                for key, (basis, amount) in invoice_taxes.items()
            }
            breakdown = {k: v for k, v in breakdown.items() if v != (ZERO, ZERO)}
        else:
            breakdown = {key: (basis, vat_amount(basis, key[1])) for key, basis in bases.items()}
        net_total = sum((b for b, _ in breakdown.values()), ZERO)
        tax_total = sum((a for _, a in breakdown.values()), ZERO)
        gross_total = net_total + tax_total
        if gross_total <= 0:
            # e.g. a discount line alone: that would charge the customer, not credit them
            raise CreditNoteRefused(
                f"the chosen lines come to {gross_total} {invoice['currency']}; a credit note "
                "credits an amount above 0"
            )
        left_gross = Decimal(invoice["gross_total"]) - credited_gross
        if gross_total > left_gross:
            raise CreditNoteRefused(
                f"credit of {gross_total} {invoice['currency']} is more than the {left_gross} "
                f"left to credit on invoice {invoice_number}"
            )

        counter = last_value + 1
        number = fmt.format(counter, issue_date)
        now = utcnow()
        credit_id = conn.execute(
            insert(sales_invoices)
            .values(
                organization_id=organization_id,
                invoice_number=number,
                sequence_number=-counter,  # the credit note series, negated (see the top)
                customer_id=invoice["customer_id"],
                type_code=CREDIT_NOTE,
                issue_date=issue_date,
                # nothing is due on a credit note; a due date is required by the table
                due_date=issue_date,
                currency=invoice["currency"],
                net_total=net_total,
                tax_total=tax_total,
                gross_total=gross_total,
                amount_paid=ZERO,
                # settled by lowering the invoice's amount_due: it never appears as open itself
                amount_due=ZERO,
                status="paid",
                corrects_invoice_id=invoice["id"],
                credit_reason=reason,
                created_by=created_by,
                created_at=now,
                updated_at=now,
            )
            .returning(sales_invoices.c.id)
        ).scalar_one()
        conn.execute(
            insert(sales_invoice_lines),
            [
                {
                    "organization_id": organization_id,
                    "sales_invoice_id": credit_id,
                    "line_no": row["line_no"],
                    "line_type": row["line_type"],
                    "item_id": row["item_id"],
                    "description": row["description"],
                    "quantity": quantity,
                    "unit_price": row["unit_price"],
                    "net_amount": net,
                    "vat_rate": row["vat_rate"],
                    "vat_category": row["vat_category"],
                }
                for row, quantity, net in new_lines
            ],
        )
        conn.execute(
            insert(sales_invoice_taxes),
            [
                {
                    "organization_id": organization_id,
                    "sales_invoice_id": credit_id,
                    "vat_category": category,
                    "vat_rate": rate,
                    "basis": basis,
                    "amount": amount,
                }
                for (category, rate), (basis, amount) in sorted(breakdown.items())
            ],
        )
        amount_due = Decimal(invoice["amount_due"]) - gross_total
        conn.execute(
            update(sales_invoices)
            .where(sales_invoices.c.id == invoice["id"])
            .values(amount_due=amount_due, updated_at=now)
        )
        conn.execute(
            update(invoice_number_sequences)
            .where(
                invoice_number_sequences.c.organization_id == organization_id,
                invoice_number_sequences.c.name == SEQUENCE_NAME,
            )
            .values(last_value=counter, updated_at=now)
        )
        credited = tuple((row["line_no"], quantity) for row, quantity, _net in new_lines)
        conn.execute(
            insert(audit_log).values(
                organization_id=organization_id,
                created_by=created_by,
                action="credit_note.issue",
                entity_type="sales_invoice",
                entity_id=str(credit_id),
                details={
                    "credit_note": number,
                    "corrects": invoice_number,
                    "reason": reason,
                    "full": everything and credited_gross == 0,
                    "lines": [{"line_no": n, "quantity": _quantity(q)} for n, q in credited],
                    "gross_total": str(gross_total),
                    "invoice_amount_due": str(amount_due),
                },
            )
        )
    return CreditNote(
        id=credit_id,
        number=number,
        corrects=invoice_number,
        issue_date=issue_date,
        currency=invoice["currency"],
        net_total=net_total,
        tax_total=tax_total,
        gross_total=gross_total,
        reason=reason,
        lines=credited,
        invoice_amount_due=amount_due,
    )
