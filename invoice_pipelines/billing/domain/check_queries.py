"""What the sales invoice checks ask the database (billing/checks.py words the answers for
Dagster): the gaps in an organization's number series, the invoices whose totals do not add up,
the reviewed orders still waiting for their invoice, and all of it over every active organization
for the daily audit."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from invoice_pipelines.billing.domain.credit_notes import SEQUENCE_NAME as CREDIT_NOTES
from invoice_pipelines.core.chunks import chunked
from invoice_pipelines.core.money import CENT
from invoice_pipelines.core.numbering import find_gaps
from invoice_pipelines.core.totals import LineAmounts, compute_totals, line_net, vat_amount
from invoice_pipelines.db.tables import (
    invoice_number_sequences,
    reviewed_sales_orders,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import active_organizations, tenant_transaction

# the invoices' own number series (its row in invoice_number_sequences)
SALES_INVOICES = "sales_invoices"
# how many gaps and problems a finding keeps to show
SHOWN = 20
# invoices whose totals are checked per query (their lines and breakdown rows are read together)
TOTALS_BATCH = 2000


def _series_gaps(conn: Connection, organization_id: int, credit_notes: bool) -> dict:
    """One number series: invoices (positive sequence numbers) or credit notes (stored negated,
    billing/domain/credit_notes.py), against its row in invoice_number_sequences."""
    number = sales_invoices.c.sequence_number
    numbers = [
        abs(n)
        for n in conn.execute(
            select(number).where(
                sales_invoices.c.organization_id == organization_id,
                number < 0 if credit_notes else number > 0,
            )
        ).scalars()
    ]
    handed_out = conn.execute(
        select(invoice_number_sequences.c.last_value).where(
            invoice_number_sequences.c.organization_id == organization_id,
            invoice_number_sequences.c.name == (CREDIT_NOTES if credit_notes else SALES_INVOICES),
        )
    ).scalar()
    highest = max(numbers, default=0)
    gaps = find_gaps(numbers)
    if handed_out is not None and handed_out > highest:
        gaps += list(range(highest + 1, handed_out + 1))
    return {
        "invoices": len(numbers),
        "highest": highest,
        "last_handed_out": handed_out or 0,
        "gaps": gaps,
        "duplicates": len(numbers) - len(set(numbers)),
    }


def number_gaps(conn: Connection, organization_id: int) -> dict:
    """Gaps, duplicates and numbers handed out beyond the last invoice, for one organization;
    the same for its credit notes' own series under "credit_notes"."""
    found = _series_gaps(conn, organization_id, credit_notes=False)
    found["credit_notes"] = _series_gaps(conn, organization_id, credit_notes=True)
    return found


def _problems_of(invoice, lines: list, taxes: list) -> list[str]:  # Rows
    problems = []
    amounts = [
        LineAmounts(ln.quantity, ln.unit_price, ln.vat_category, ln.vat_rate) for ln in lines
    ]
    expected = compute_totals(amounts)
    for line, net in zip(lines, expected.line_nets, strict=True):
        if line.net_amount != net:
            problems.append(f"line {line.line_no}: net {line.net_amount}, expected {net}")
    stored = sorted((t.vat_category, t.vat_rate, t.basis, t.amount) for t in taxes)
    wanted = [(b.vat_category, b.vat_rate, b.basis, b.amount) for b in expected.breakdown]
    if [(c, Decimal(r).quantize(Decimal("0.01")), b, a) for c, r, b, a in stored] != wanted:
        problems.append(f"VAT breakdown {stored}, expected {wanted}")
    for name in ("net_total", "tax_total", "gross_total"):
        if invoice._mapping[name] != getattr(expected, name):
            problems.append(f"{name} {invoice._mapping[name]}, expected {getattr(expected, name)}")
    return problems


def _settled(conn: Connection, invoice_id: int) -> tuple[set[int], set[tuple[str, Decimal]]]:
    """The line numbers and (category, rate) at which an invoice and all its credit notes add up
    to exactly zero (quantity and net; basis and VAT)."""
    notes = select(sales_invoices.c.id).where(sales_invoices.c.corrects_invoice_id == invoice_id)
    lines: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in conn.execute(
        select(sales_invoice_lines).where(
            (sales_invoice_lines.c.sales_invoice_id == invoice_id)
            | sales_invoice_lines.c.sales_invoice_id.in_(notes)
        )
    ):
        sign = 1 if row.sales_invoice_id == invoice_id else -1
        lines[row.line_no][0] += sign * row.quantity
        lines[row.line_no][1] += sign * row.net_amount
    rates: dict[tuple[str, Decimal], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in conn.execute(
        select(sales_invoice_taxes).where(
            (sales_invoice_taxes.c.sales_invoice_id == invoice_id)
            | sales_invoice_taxes.c.sales_invoice_id.in_(notes)
        )
    ):
        sign = 1 if row.sales_invoice_id == invoice_id else -1
        key = (row.vat_category, Decimal(row.vat_rate).quantize(CENT))
        rates[key][0] += sign * row.basis
        rates[key][1] += sign * row.amount
    return (
        {n for n, sums in lines.items() if sums == [0, 0]},
        {k for k, sums in rates.items() if sums == [0, 0]},
    )


def _credit_note_problems(conn: Connection, note, lines: list, taxes: list) -> list[str]:
    """A credit note adds up like an invoice, except where it credits the rest of its invoice
    (billing/domain/credit_notes.py): there a line's net or a rate's VAT is what the invoice less the
    earlier credit notes left, which is right when the invoice and its notes add up to zero."""
    settled_lines, settled_rates = _settled(conn, note.corrects_invoice_id)
    problems = []
    bases: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
    for line in lines:
        net = line_net(line.quantity, line.unit_price)
        if line.net_amount != net and line.line_no not in settled_lines:
            problems.append(f"line {line.line_no}: net {line.net_amount}, expected {net}")
        bases[(line.vat_category, Decimal(line.vat_rate).quantize(CENT))] += line.net_amount
    stored = {(t.vat_category, Decimal(t.vat_rate).quantize(CENT)): t for t in taxes}
    if set(stored) != set(bases):
        problems.append(f"VAT breakdown rates {sorted(stored)}, lines' rates {sorted(bases)}")
    for key, tax in sorted(stored.items()):
        if tax.basis != bases.get(key):
            problems.append(f"{key[0]} {key[1]} %: basis {tax.basis}, lines {bases.get(key)}")
        if tax.amount != vat_amount(tax.basis, key[1]) and key not in settled_rates:
            problems.append(
                f"{key[0]} {key[1]} %: VAT {tax.amount}, expected {vat_amount(tax.basis, key[1])}"
            )
    net = sum((t.basis for t in taxes), Decimal(0))
    tax_total = sum((t.amount for t in taxes), Decimal(0))
    for name, expected in (
        ("net_total", net),
        ("tax_total", tax_total),
        ("gross_total", net + tax_total),
    ):
        if note._mapping[name] != expected:
            problems.append(f"{name} {note._mapping[name]}, expected {expected}")
    return problems


def totals_problems(
    conn: Connection, organization_id: int, batch_job_id: int | None = None
) -> dict:
    """Invoices of the organization (or of one batch job) whose totals do not add up."""
    query = select(sales_invoices.c.id).where(sales_invoices.c.organization_id == organization_id)
    if batch_job_id is not None:
        query = query.where(sales_invoices.c.batch_job_id == batch_job_id)
    ids = list(conn.execute(query.order_by(sales_invoices.c.id)).scalars())
    wrong: list[dict] = []
    for chunk in chunked(ids, TOTALS_BATCH):
        invoices = conn.execute(
            select(
                sales_invoices.c.id,
                sales_invoices.c.invoice_number,
                sales_invoices.c.net_total,
                sales_invoices.c.tax_total,
                sales_invoices.c.gross_total,
                sales_invoices.c.corrects_invoice_id,
            ).where(sales_invoices.c.id.in_(chunk))
        ).all()
        lines: dict[int, list] = {}
        for row in conn.execute(
            select(sales_invoice_lines)
            .where(sales_invoice_lines.c.sales_invoice_id.in_(chunk))
            .order_by(sales_invoice_lines.c.sales_invoice_id, sales_invoice_lines.c.line_no)
        ):
            lines.setdefault(row.sales_invoice_id, []).append(row)
        taxes: dict[int, list] = {}
        for row in conn.execute(
            select(sales_invoice_taxes).where(sales_invoice_taxes.c.sales_invoice_id.in_(chunk))
        ):
            taxes.setdefault(row.sales_invoice_id, []).append(row)
        for invoice in invoices:
            problems = _problems_of(invoice, lines.get(invoice.id, []), taxes.get(invoice.id, []))
            if problems and invoice.corrects_invoice_id is not None:
                problems = _credit_note_problems(
                    conn, invoice, lines.get(invoice.id, []), taxes.get(invoice.id, [])
                )
            if problems:
                wrong.append({"invoice": invoice.invoice_number, "problems": problems[:3]})
    return {"checked": len(ids), "wrong": wrong}


def invoice_findings(
    engine: Engine, organization_id: int, batch_job_id: int | None = None
) -> tuple[dict, dict]:
    """(`number_gaps`, `totals_problems`) of one organization (its totals: of one batch job's
    invoices, or of all), read in one transaction."""
    with tenant_transaction(engine, organization_id) as conn:
        return (
            number_gaps(conn, organization_id),
            totals_problems(conn, organization_id, batch_job_id=batch_job_id),
        )


def late_reviewed_orders(conn: Connection, organization_id: int, before: date) -> int:
    """How many of the organization's reviewed orders dated before `before` still wait for their
    invoice: the working set (migration 0047), not the organization's whole history."""
    return conn.execute(
        select(func.count()).where(
            reviewed_sales_orders.c.organization_id == organization_id,
            reviewed_sales_orders.c.order_date < before,
        )
    ).scalar_one()


@dataclass
class AuditFindings:
    """The daily audit over every active organization, by slug where something is wrong."""

    organizations: int = 0
    gaps: dict[str, dict] = field(default_factory=dict)
    checked: int = 0
    wrong: list[dict] = field(default_factory=list)
    late: dict[str, int] = field(default_factory=dict)


def audit_findings(engine: Engine, system: Engine, before: date) -> AuditFindings:
    """Every active organization (found on the system engine `system`) and every invoice of it
    (read as its organization's on `engine`): gaps, totals, and reviewed orders dated before
    `before` not invoiced yet."""
    found = AuditFindings()
    for org in active_organizations(system):
        found.organizations += 1
        with tenant_transaction(engine, org) as conn:
            numbers = number_gaps(conn, org.id)
            totals = totals_problems(conn, org.id)
            waiting = late_reviewed_orders(conn, org.id, before)
        if waiting:
            found.late[org.slug] = waiting
        if numbers["gaps"] or numbers["duplicates"]:
            found.gaps[org.slug] = {
                "gaps": numbers["gaps"][:SHOWN],
                "duplicates": numbers["duplicates"],
            }
        notes = numbers["credit_notes"]
        if notes["gaps"] or notes["duplicates"]:
            found.gaps.setdefault(org.slug, {})["credit_notes"] = {
                "gaps": notes["gaps"][:SHOWN],
                "duplicates": notes["duplicates"],
            }
        found.checked += totals["checked"]
        found.wrong += [{"organization": org.slug, **w} for w in totals["wrong"]]
    return found
