"""Asset checks that guard `sales_invoices`.

Both checks are ERROR: a gap in the numbers or totals that do not add up is broken data that a tax
auditor would find, never a matter of one bad input (bad orders end as failed batch items, and
the invoices written are still whole). Every batch invoicing run evaluates them for its
organization; `sales_invoices_checks_job` evaluates them for every organization on demand and
on its schedule (both at the end of this module).

- `gapless_invoice_numbers`: the organization's sequence numbers are 1, 2, ... with no gap and no
  duplicate, and the number sequence has handed out no number that no invoice carries.
- `reviewed_orders_invoiced` (daily, WARN): the daily work keeps up; no reviewed order dated
  before yesterday is still waiting for its invoice. WARN: late invoicing costs money, it does not
  break data.
- `totals_consistent`: per invoice, each line's net is quantity x price rounded to cents, the
  VAT breakdown has one row per (category, rate) with basis = sum of those lines and VAT = basis x
  rate rounded, and net, VAT and gross totals are the sums (`core/totals.py`).
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    ResourceParam,
    multi_asset_check,
)
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from invoice_pipelines.billing.domain.credit_notes import SEQUENCE_NAME as CREDIT_NOTES
from invoice_pipelines.core.chunks import chunked
from invoice_pipelines.core.money import CENT
from invoice_pipelines.core.numbering import find_gaps
from invoice_pipelines.core.totals import LineAmounts, compute_totals, line_net, vat_amount
from invoice_pipelines.db.tables import (
    invoice_number_sequences,
    organizations,
    reviewed_sales_orders,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.scheduled_checks import scheduled_checks

SALES_INVOICES = "sales_invoices"
SHOWN = 20
# invoices whose totals are checked per query (their lines and breakdown rows are read together)
TOTALS_BATCH = 2000

gapless_numbers_spec = AssetCheckSpec(
    "gapless_invoice_numbers",
    asset=SALES_INVOICES,
    description="The organization's invoice sequence numbers run 1, 2, ... without gap or "
    "duplicate, up to the last number handed out. ERROR: a gap is a missing invoice to an auditor.",
)
totals_spec = AssetCheckSpec(
    "totals_consistent",
    asset=SALES_INVOICES,
    description="Every invoice's line nets, VAT breakdown per (category, rate) and net/VAT/gross "
    "totals agree with its lines (EN 16931 rounding). ERROR: the books would not balance.",
)


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


def gapless_numbers_result(
    found: dict, check_name: str = gapless_numbers_spec.name
) -> AssetCheckResult:
    notes = found.get("credit_notes") or {"invoices": 0, "highest": 0, "gaps": [], "duplicates": 0}
    passed = not (found["gaps"] or found["duplicates"] or notes["gaps"] or notes["duplicates"])
    metadata = {
        "invoices": MetadataValue.int(found["invoices"]),
        "highest_number": MetadataValue.int(found["highest"]),
        "gaps": MetadataValue.int(len(found["gaps"])),
        "duplicates": MetadataValue.int(found["duplicates"]),
        "first_gaps": MetadataValue.json(found["gaps"][:SHOWN]),
    }
    description = (
        f"{found['invoices']} invoices numbered 1..{found['highest']} without gap"
        if not (found["gaps"] or found["duplicates"])
        else f"{len(found['gaps'])} missing numbers, {found['duplicates']} duplicates"
    )
    if notes["invoices"] or notes["gaps"]:
        metadata.update(
            credit_notes=MetadataValue.int(notes["invoices"]),
            credit_note_gaps=MetadataValue.int(len(notes["gaps"])),
            credit_note_duplicates=MetadataValue.int(notes["duplicates"]),
            first_credit_note_gaps=MetadataValue.json(notes["gaps"][:SHOWN]),
        )
        description += (
            f"; {notes['invoices']} credit notes numbered 1..{notes['highest']} without gap"
            if not (notes["gaps"] or notes["duplicates"])
            else f"; credit notes: {len(notes['gaps'])} missing numbers, "
            f"{notes['duplicates']} duplicates"
        )
    return AssetCheckResult(
        check_name=check_name,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=description,
    )


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


def totals_result(found: dict, scope: str, check_name: str = totals_spec.name) -> AssetCheckResult:
    wrong = found["wrong"]
    return AssetCheckResult(
        check_name=check_name,
        passed=not wrong,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "checked_invoices": MetadataValue.int(found["checked"]),
            "inconsistent_invoices": MetadataValue.int(len(wrong)),
            "scope": MetadataValue.text(scope),
            "first_problems": MetadataValue.json(wrong[:SHOWN]),
        },
        description=(
            f"{found['checked']} invoices ({scope}) add up"
            if not wrong
            else f"{len(wrong)} of {found['checked']} invoices ({scope}) do not add up"
        ),
    )


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            "gapless_invoice_numbers_all_organizations",
            asset=SALES_INVOICES,
            description="gapless_invoice_numbers for every active organization at once (daily; each "
            "batch run shows the last audit's finding with when it was made).",
        ),
        AssetCheckSpec(
            "totals_consistent_all_organizations",
            asset=SALES_INVOICES,
            description="totals_consistent over every invoice of every active organization (daily; "
            "each batch run shows the last audit's finding with when it was made).",
        ),
        AssetCheckSpec(
            "reviewed_orders_invoiced",
            asset=SALES_INVOICES,
            description="Freshness of the daily work: no reviewed sales order dated before "
            "yesterday is still waiting for its invoice (WARN; daily, restated by each batch run).",
        ),
    ],
    description="The sales invoice checks over every organization and every invoice.",
)
def sales_invoices_audit(
    context: AssetCheckExecutionContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    yield from audit_results(database, system_database)


# the audit's checks, which a batch run restates from the last audit (scheduled_checks.latest_or_now)
AUDIT_CHECKS = (
    "gapless_invoice_numbers_all_organizations",
    "totals_consistent_all_organizations",
    "reviewed_orders_invoiced",
)


def audit_results(engine: Engine, system: Engine) -> Iterable[AssetCheckResult]:
    """The audit over every active organization (found on the system engine `system`) and every
    invoice (read as its organization's on `engine`), one result per check."""
    with system_transaction(system) as conn:
        orgs = conn.execute(
            select(organizations.c.id, organizations.c.slug).where(organizations.c.active.is_(True))
        ).all()
    gaps: dict[str, dict] = {}
    checked, wrong = 0, []
    late: dict[str, int] = {}
    before = date.today() - timedelta(days=1)
    for org_id, slug in orgs:
        with tenant_transaction(engine, org_id) as conn:
            found = number_gaps(conn, org_id)
            totals = totals_problems(conn, org_id)
            # the working set (migration 0047), not the organization's whole history
            waiting = conn.execute(
                select(func.count()).where(
                    reviewed_sales_orders.c.organization_id == org_id,
                    reviewed_sales_orders.c.order_date < before,
                )
            ).scalar_one()
        if waiting:
            late[slug] = waiting
        if found["gaps"] or found["duplicates"]:
            gaps[slug] = {"gaps": found["gaps"][:SHOWN], "duplicates": found["duplicates"]}
        notes = found["credit_notes"]
        if notes["gaps"] or notes["duplicates"]:
            gaps.setdefault(slug, {})["credit_notes"] = {
                "gaps": notes["gaps"][:SHOWN],
                "duplicates": notes["duplicates"],
            }
        checked += totals["checked"]
        wrong += [{"organization": slug, **w} for w in totals["wrong"]]
    yield AssetCheckResult(
        check_name="gapless_invoice_numbers_all_organizations",
        passed=not gaps,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "organizations": MetadataValue.int(len(orgs)),
            "organizations_with_gaps": MetadataValue.json(gaps),
        },
        description=f"{len(gaps)} of {len(orgs)} organizations have gaps or duplicates",
    )
    yield totals_result(
        {"checked": checked, "wrong": wrong},
        "every organization",
        check_name="totals_consistent_all_organizations",
    )
    yield AssetCheckResult(
        check_name="reviewed_orders_invoiced",
        passed=not late,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "waiting_orders": MetadataValue.int(sum(late.values())),
            "by_organization": MetadataValue.json(late),
        },
        description=f"{sum(late.values())} reviewed orders dated before {before} not invoiced yet",
    )


sales_invoices_checks_job, sales_invoices_checks_schedule = scheduled_checks(
    "sales_invoices_checks",
    [sales_invoices_audit],
    cron="30 2 * * *",
    job_description="Checks numbering and totals of every sales invoice of every organization.",
    schedule_description="Daily at 02:30 (Berlin): gapless numbers and consistent totals across all "
    "organizations, beside the per-run checks of batch_invoicing_job.",
)
