"""Credit notes for sales invoices: issuing one (in full, per line or as a net amount per VAT rate),
its own gapless number series.

An issued invoice never changes (GoBD); a correction or a cancellation is a credit note: a
`sales_invoices` row with type code 381 whose `corrects_invoice_id` names the invoice (BT-25 on
its document) and whose `credit_reason` says why. Its amounts are positive, as EN 16931 wants
them on a 381; the DATEV export books it on the other side (S/H reversed, `exports/domain/bookings.py`).
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
# Amounts: a price reduction or goodwill credit names no lines, only a NET amount per VAT rate
# (`19=100.00,7=20.00`; VAT is added at the rate). Each becomes one line of type `credit_amount`
# ("Preisminderung/Gutschrift zu RE-... (19 %)", quantity 1, the invoice's VAT category at that
# rate), numbered after the invoice's last line so it never counts as a credit of an invoice line.
# What is left at a rate is the invoice's net at that rate minus what every earlier credit note
# (lines or amounts) credited there; a line credit may not take more than that either. An amount
# that takes the rest of a rate takes the rest of its VAT too (zero to the cent, as above). The
# credit note that credits everything left after amount credits lists the invoice's lines left and,
# per rate, one negative `credit_amount` line "less what was credited before", so its lines add up
# to its VAT breakdown and the invoice's lines end fully credited.
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
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.engine import Connection

from invoice_pipelines.core.dates import ImplausibleDay, check_plausible_day
from invoice_pipelines.core.money import CENT, ZERO, MoneyError, round_cents, to_decimal
from invoice_pipelines.core.numbering import InvalidNumberFormat, NumberFormat
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.totals import vat_amount
from invoice_pipelines.db.audit_log import record_audit_entries
from invoice_pipelines.db.sequences import CREDIT_NOTES as CREDIT_NOTE_SERIES
from invoice_pipelines.db.sequences import lock_sequence, set_sequence
from invoice_pipelines.db.tables import (
    customers,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.limits import CREDIT_NOTE_MAX_DAYS_AHEAD
from invoice_pipelines.queue.domain.requests import organization_today

CREDIT_NOTE = "381"
SEQUENCE_NAME = CREDIT_NOTE_SERIES
DEFAULT_NUMBER_FORMAT = "GS-{year}-{counter:06d}"
RATE = Decimal("0.01")
# the line type of an amount credited per VAT rate (and of its "less credited before" line)
AMOUNT_LINE = "credit_amount"

# (VAT category, rate): the category None means "the invoice's category at that rate"
AmountKey = tuple[str | None, Decimal]


class CreditNoteRefused(ValueError):
    """A credit note that cannot be issued; the message says why, `code` names the kind of reason
    (a batch job records it with the item)."""

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.code = code


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
    # (VAT category, rate, net) credited as an amount; negative: less what was credited before
    amounts: tuple[tuple[str, Decimal, Decimal], ...] = field(default=())

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
            "amounts": amounts_json(self.amounts),
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
                f"lines {spec!r}: {part.strip()!r} is not LINE:QUANTITY (e.g. 1:2,3:1)",
                "invalid_lines",
            ) from None
        if amount is None:
            raise CreditNoteRefused(
                f"lines {spec!r}: {part.strip()!r} has no quantity (LINE:QUANTITY)",
                "invalid_lines",
            )
        if not amount.is_finite():
            # NaN and Infinity are Decimals too; a NaN quantity once ended in a traceback
            raise CreditNoteRefused(
                f"lines {spec!r}: the quantity of {part.strip()!r} is not a number",
                "invalid_lines",
            )
        if line_no in chosen:
            raise CreditNoteRefused(
                f"lines {spec!r}: line {line_no} is given twice", "invalid_lines"
            )
        chosen[line_no] = amount
    return chosen


def parse_amounts(spec: str | None) -> dict[AmountKey, Decimal] | None:
    """`"19=100.00,7=20.00"` -> the NET amount to credit per VAT rate (VAT is added at the rate);
    `"AE:0=50.00"` names the VAT category too, where the invoice has one rate in two categories.
    None or "" -> None."""
    if spec is None or not spec.strip():
        return None
    chosen: dict[AmountKey, Decimal] = {}
    for part in (p.strip() for p in spec.split(",")):
        key_text, sep, amount_text = part.partition("=")
        if not sep or not key_text.strip() or not amount_text.strip():
            raise CreditNoteRefused(
                f"amounts {spec!r}: {part!r} is not RATE=NET (e.g. 19=100.00,7=20.00)",
                "invalid_amounts",
            )
        category, _, rate_text = key_text.strip().rpartition(":")
        key = amount_key(rate_text, category or None)
        if key in chosen:
            raise CreditNoteRefused(
                f"amounts {spec!r}: VAT rate {_label(key)} is given twice", "invalid_amounts"
            )
        chosen[key] = _decimal(amount_text, f"amounts {spec!r}: net amount of {part!r}")
    return chosen


def amount_key(rate: object, category: str | None = None) -> AmountKey:
    """A VAT rate (and optionally its category) as given by a user: (category or None, rate)."""
    value = _decimal(rate, f"VAT rate {rate!r}")
    if value < 0 or value != value.quantize(RATE):
        raise CreditNoteRefused(
            f"VAT rate {rate!r} is not a rate like 19 or 7 or 10.7", "invalid_amounts"
        )
    category = str(category or "").strip().upper() or None
    return category, value.quantize(RATE)


def _decimal(value: object, what: str) -> Decimal:
    try:
        return to_decimal(value.strip() if isinstance(value, str) else value)
    except MoneyError as exc:
        raise CreditNoteRefused(f"{what}: {exc}", "invalid_amounts") from None


def _entries(value: object, what: str, keys: tuple[str, str], text: str) -> list:
    """A request's list of `what` (a mapping stands for entries of its two `keys`); anything else
    is refused, saying the `text` form and the list."""
    if isinstance(value, Mapping):
        return [{keys[0]: k, keys[1]: v} for k, v in value.items()]
    if not isinstance(value, list):
        raise CreditNoteRefused(
            f"{what} {value!r}: give {text} text or a list of {keys[0]} and {keys[1]}",
            f"invalid_{what}",
        )
    return value


def lines_from(value: object) -> dict[int, Decimal] | None:
    """Lines to credit as a request gives them: `"1:2,3:1"`, `[{"line_no": 1, "quantity": "2"}]`
    or `{"1": "2"}`; None when none are given."""
    if value is None or isinstance(value, str):
        return parse_lines(value)
    chosen: dict[int, Decimal] = {}
    for entry in _entries(value, "lines", ("line_no", "quantity"), "LINE:QUANTITY"):
        try:
            line_no = int(str(entry["line_no"]))
            quantity = to_decimal(entry["quantity"])
        except (KeyError, TypeError, ValueError):
            raise CreditNoteRefused(
                f"lines: {entry!r} is not a line_no and a decimal quantity (as text)",
                "invalid_lines",
            ) from None
        if line_no in chosen:
            raise CreditNoteRefused(f"lines: line {line_no} is given twice", "invalid_lines")
        chosen[line_no] = quantity
    return chosen


def amounts_from(value: object) -> dict[AmountKey, Decimal] | None:
    """Amounts to credit as a request gives them: `"19=100.00,7=20.00"`,
    `[{"vat_rate": "19", "net_amount": "100.00", "vat_category": "S"}]` (category optional) or
    `{"19": "100.00"}`; None when none are given."""
    if value is None or isinstance(value, str):
        return parse_amounts(value)
    chosen: dict[AmountKey, Decimal] = {}
    for entry in _entries(value, "amounts", ("vat_rate", "net_amount"), "RATE=NET"):
        if not isinstance(entry, Mapping) or "vat_rate" not in entry or "net_amount" not in entry:
            raise CreditNoteRefused(
                f"amounts: {entry!r} needs vat_rate and net_amount", "invalid_amounts"
            )
        key = amount_key(entry["vat_rate"], entry.get("vat_category"))
        if key in chosen:
            raise CreditNoteRefused(
                f"amounts: VAT rate {_label(key)} is given twice", "invalid_amounts"
            )
        chosen[key] = _decimal(entry["net_amount"], f"amounts: net amount at {_label(key)}")
    return chosen


def lines_json(lines: Mapping[int, Decimal] | None) -> list[dict] | None:
    """Lines as stored in a batch request (decimal strings: exact in JSON)."""
    if lines is None:
        return None
    return [{"line_no": n, "quantity": _quantity(q)} for n, q in lines.items()]


def amounts_json(amounts) -> list[dict] | None:
    """Amounts ({key: net} or (category, rate, net) triples) as stored and printed."""
    if amounts is None:
        return None
    triples = (
        [(c, r, a) for (c, r), a in amounts.items()] if isinstance(amounts, Mapping) else amounts
    )
    return [
        {
            **({"vat_category": c} if c else {}),
            "vat_rate": _quantity(r),
            "net_amount": str(a),
        }
        for c, r, a in triples
    ]


def _quantity(value) -> str:
    """2.0000 -> "2", 1.5000 -> "1.5": quantities as a person writes them."""
    return format(Decimal(value).normalize(), "f")


def _label(key: AmountKey) -> str:
    """(None, 19.00) -> "19 %", ("AE", 0.00) -> "AE 0 %": a rate in a message."""
    category, rate = key
    return f"{category + ' ' if category and category != 'S' else ''}{_quantity(rate)} %"


def number_format(organization: Organization) -> NumberFormat:
    """The organization's credit note number format; refused when it could repeat invoice numbers."""
    settings = organization.section("credit_notes")
    pattern = settings.get("number_format") or DEFAULT_NUMBER_FORMAT
    try:
        parsed = NumberFormat.parse(pattern)
    except InvalidNumberFormat as exc:
        raise CreditNoteRefused(
            f"settings credit_notes.number_format: {exc}", "number_format"
        ) from None
    if pattern == organization.invoice_number_format:
        raise CreditNoteRefused(
            f"settings credit_notes.number_format {pattern!r} is the invoice number format: "
            "credit notes need their own series (e.g. GS-{year}-{counter:06d})",
            "number_format",
        )
    return parsed


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
        raise CreditNoteRefused(f"there is no invoice {invoice_number!r}", "unknown_invoice")
    if row["type_code"] == CREDIT_NOTE or row["corrects_invoice_id"] is not None:
        raise CreditNoteRefused(
            f"{invoice_number} is a credit note; only an invoice can be credited", "not_an_invoice"
        )
    if row["status"] == "cancelled" or row["deleted_at"] is not None:
        raise CreditNoteRefused(
            f"invoice {invoice_number} is cancelled; there is nothing to credit",
            "cancelled_invoice",
        )
    return row


@dataclass
class _Credited:
    """What earlier credit notes took of an invoice."""

    # per invoice line number: (quantity, net) credited by line
    lines: dict[int, tuple[Decimal, Decimal]]
    # per (category, rate): (basis, VAT) of the credit notes' breakdowns, lines and amounts alike
    taxes: dict[tuple[str, Decimal], tuple[Decimal, Decimal]]
    # per (category, rate): net credited as amounts (less what a later rest credit took back)
    amounts: dict[tuple[str, Decimal], Decimal]
    gross: Decimal


def _credited(conn: Connection, invoice_id: int) -> _Credited:
    notes = select(sales_invoices.c.id).where(sales_invoices.c.corrects_invoice_id == invoice_id)
    lines: dict[int, tuple[Decimal, Decimal]] = defaultdict(lambda: (ZERO, ZERO))
    amounts: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
    li = sales_invoice_lines.c
    for line_type, line_no, category, rate, quantity, net in conn.execute(
        select(
            li.line_type,
            li.line_no,
            li.vat_category,
            li.vat_rate,
            func.sum(li.quantity),
            func.sum(li.net_amount),
        )
        .where(li.sales_invoice_id.in_(notes))
        .group_by(li.line_type, li.line_no, li.vat_category, li.vat_rate)
    ):
        if line_type == AMOUNT_LINE:
            amounts[(category, Decimal(rate).quantize(RATE))] += Decimal(net)
        else:
            done_quantity, done_net = lines[line_no]
            lines[line_no] = (done_quantity + Decimal(quantity), done_net + Decimal(net))
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
    return _Credited(lines, taxes, amounts, Decimal(gross))


def _rate_words(key: tuple[str, Decimal], english: bool) -> str:
    """The rate as a line description says it: "19 %", "7 %", "0 %, AE" (German: "10,7 %")."""
    category, rate = key
    number = _quantity(rate) if english else _quantity(rate).replace(".", ",")
    return f"{number} %" + (f", {category}" if category != "S" else "")


def _amount_description(invoice_number: str, key: tuple[str, Decimal], english: bool) -> str:
    if english:
        return f"Price reduction/credit for {invoice_number} ({_rate_words(key, True)})"
    return f"Preisminderung/Gutschrift zu {invoice_number} ({_rate_words(key, False)})"


def _less_description(key: tuple[str, Decimal], english: bool) -> str:
    if english:
        return f"Less price reductions/credits before ({_rate_words(key, True)})"
    return f"Abzüglich bereits gutgeschriebener Beträge ({_rate_words(key, False)})"


def _amount_line(line_no: int, key: tuple[str, Decimal], net: Decimal, description: str) -> dict:
    return {
        "line_no": line_no,
        "line_type": AMOUNT_LINE,
        "item_id": None,
        "description": description,
        "quantity": Decimal(1),
        "unit_price": net,
        "net_amount": net,
        "vat_rate": key[1],
        "vat_category": key[0],
    }


def plausible_credit_note_date(day: date, today: date | None = None) -> date:
    """`day` when a credit note may carry it: from 2000-01-01 to `limits.CREDIT_NOTE_MAX_DAYS_AHEAD`
    days after `today` (default: today in UTC); else CreditNoteRefused in one sentence."""
    try:
        return check_plausible_day(
            day,
            today=today or organization_today("UTC"),
            days_ahead=CREDIT_NOTE_MAX_DAYS_AHEAD,
            what="credit note date",
        )
    except ImplausibleDay as exc:
        raise CreditNoteRefused(str(exc), "implausible_date") from None


def issue_credit_note(
    engine: Engine,
    organization: Organization,
    invoice_number: str,
    *,
    reason: str,
    lines: Mapping[int, Decimal] | None = None,
    amounts: Mapping[AmountKey, Decimal] | None = None,
    issue_date: date | None = None,
    created_by: str = "unknown",
) -> CreditNote:
    """Issue a credit note for one sales invoice in one transaction; CreditNoteRefused says why not.

    `lines` maps the invoice's line numbers to the quantity to credit; `amounts` maps VAT rates
    ((category or None, rate), see `parse_amounts`) to the NET amount to credit at that rate;
    neither credits everything that earlier credit notes left. Not both.
    """
    with tenant_transaction(engine, organization.id, write=True) as conn:
        return issue_credit_note_in(
            conn,
            organization,
            invoice_number,
            reason=reason,
            lines=lines,
            amounts=amounts,
            issue_date=issue_date,
            created_by=created_by,
        )


def issue_credit_note_in(
    conn: Connection,
    organization: Organization,
    invoice_number: str,
    *,
    reason: str,
    lines: Mapping[int, Decimal] | None = None,
    amounts: Mapping[AmountKey, Decimal] | None = None,
    issue_date: date | None = None,
    created_by: str = "unknown",
    batch_job_id: int | None = None,
) -> CreditNote:
    """`issue_credit_note` inside the caller's write transaction (scoped to the organization):
    a batch job records its item in the same transaction, so the credit note and the record that
    it was issued commit together or not at all. A refusal writes nothing."""
    reason = _checked_request(reason, lines, amounts)
    fmt = number_format(organization)
    organization_id = organization.id
    today = organization_today(organization.timezone or "Europe/Berlin")
    issue_date = plausible_credit_note_date(issue_date or today, today)
    last_value = lock_sequence(conn, organization_id, SEQUENCE_NAME)
    source = _invoice_to_credit(conn, organization_id, invoice_number, issue_date)
    credit = _credit(source, lines, amounts)
    counter = last_value + 1
    note = _Written(
        number=fmt.format(counter, issue_date),
        issue_date=issue_date,
        reason=reason,
        created_by=created_by,
        batch_job_id=batch_job_id,
        now=utcnow(),
    )
    credit_id = _insert_credit_note(conn, organization_id, source.invoice, credit, counter, note)
    amount_due = Decimal(source.invoice["amount_due"]) - credit.gross_total
    conn.execute(
        update(sales_invoices)
        .where(sales_invoices.c.id == source.invoice["id"])
        .values(amount_due=amount_due, updated_at=note.now)
    )
    set_sequence(conn, organization_id, SEQUENCE_NAME, counter, note.now)
    _audit_credit_note(conn, organization_id, credit_id, source, credit, note, amount_due)
    return CreditNote(
        id=credit_id,
        number=note.number,
        corrects=invoice_number,
        issue_date=issue_date,
        currency=source.invoice["currency"],
        net_total=credit.net_total,
        tax_total=credit.tax_total,
        gross_total=credit.gross_total,
        reason=reason,
        lines=credit.line_credits,
        invoice_amount_due=amount_due,
        amounts=credit.amount_credits,
    )


def _checked_request(reason: str, lines, amounts) -> str:
    """The reason, stripped; refused without one, or with both lines and amounts."""
    reason = (reason or "").strip()
    if not reason:
        raise CreditNoteRefused(
            "a credit note needs a reason (it is printed and audit-logged)", "no_reason"
        )
    if lines is not None and amounts is not None:
        raise CreditNoteRefused(
            "give lines or amounts per VAT rate, not both (two credit notes if you need both)",
            "lines_and_amounts",
        )
    return reason


@dataclass(frozen=True)
class _InvoiceToCredit:
    """The invoice as a credit note reads it: its row, lines and VAT breakdown, what earlier
    credit notes took of it, and the customer's language."""

    invoice: Mapping
    lines: dict
    taxes: dict
    credited: _Credited
    left_gross: Decimal
    english: bool


def _invoice_to_credit(
    conn: Connection, organization_id: int, invoice_number: str, issue_date: date
) -> _InvoiceToCredit:
    invoice = _invoice(conn, organization_id, invoice_number)
    if issue_date < invoice["issue_date"]:
        raise CreditNoteRefused(
            f"credit note date {issue_date} is before invoice {invoice_number}'s date "
            f"{invoice['issue_date']}",
            "date_before_invoice",
        )
    invoice_lines = {
        row["line_no"]: row
        for row in conn.execute(
            select(sales_invoice_lines).where(
                sales_invoice_lines.c.sales_invoice_id == invoice["id"]
            )
        ).mappings()
    }
    invoice_taxes = {
        (r.vat_category, Decimal(r.vat_rate).quantize(RATE)): (Decimal(r.basis), Decimal(r.amount))
        for r in conn.execute(
            select(sales_invoice_taxes).where(
                sales_invoice_taxes.c.sales_invoice_id == invoice["id"]
            )
        )
    }
    credited = _credited(conn, invoice["id"])
    language = conn.execute(
        select(customers.c.language).where(customers.c.id == invoice["customer_id"])
    ).scalar()
    return _InvoiceToCredit(
        invoice=invoice,
        lines=invoice_lines,
        taxes=invoice_taxes,
        credited=credited,
        left_gross=Decimal(invoice["gross_total"]) - credited.gross,
        english=(language or "de").startswith("en"),
    )


@dataclass(frozen=True)
class _Credit:
    """What a credit note credits: its lines, VAT breakdown and totals."""

    new_lines: list[dict]
    breakdown: dict
    full: bool
    net_total: Decimal
    tax_total: Decimal

    @property
    def gross_total(self) -> Decimal:
        return self.net_total + self.tax_total

    @property
    def line_credits(self) -> tuple:
        return tuple(
            (line["line_no"], line["quantity"])
            for line in self.new_lines
            if line["line_type"] != AMOUNT_LINE
        )

    @property
    def amount_credits(self) -> tuple:
        return tuple(
            (line["vat_category"], line["vat_rate"], line["net_amount"])
            for line in self.new_lines
            if line["line_type"] == AMOUNT_LINE
        )


def _credit(source: _InvoiceToCredit, lines, amounts) -> _Credit:
    """The credit asked for, held to what is left of the invoice."""
    invoice, number = source.invoice, source.invoice["invoice_number"]
    if (lines is None or amounts is not None) and source.left_gross <= 0:
        raise CreditNoteRefused(f"invoice {number} is credited in full already", "credited_in_full")
    if amounts is not None:
        new_lines, breakdown, full = _amount_credit(
            invoice, source.lines, source.taxes, source.credited, amounts, source.english
        )
    else:
        new_lines, breakdown, full = _line_credit(
            invoice, source.lines, source.taxes, source.credited, lines, source.english
        )
    credit = _Credit(
        new_lines=new_lines,
        breakdown=breakdown,
        full=full,
        net_total=sum((b for b, _ in breakdown.values()), ZERO),
        tax_total=sum((a for _, a in breakdown.values()), ZERO),
    )
    gross_total = credit.gross_total
    if gross_total <= 0:
        # e.g. a discount line alone: that would charge the customer, not credit them
        raise CreditNoteRefused(
            f"the chosen lines come to {gross_total} {invoice['currency']}; a credit note "
            "credits an amount above 0",
            "not_above_zero",
        )
    if gross_total > source.left_gross:
        raise CreditNoteRefused(
            f"credit of {gross_total} {invoice['currency']} is more than the "
            f"{source.left_gross} left to credit on invoice {number}",
            "more_than_left",
        )
    return credit


@dataclass(frozen=True)
class _Written:
    """The credit note's own facts: number, date, reason, who and when."""

    number: str
    issue_date: date
    reason: str
    created_by: str
    batch_job_id: int | None
    now: datetime


def _insert_credit_note(
    conn: Connection, organization_id: int, invoice, credit: _Credit, counter: int, note: _Written
) -> int:
    """The credit note's row, lines and VAT breakdown; its id."""
    credit_id = conn.execute(
        insert(sales_invoices)
        .values(
            organization_id=organization_id,
            invoice_number=note.number,
            sequence_number=-counter,  # the credit note series, negated (see the top)
            customer_id=invoice["customer_id"],
            batch_job_id=note.batch_job_id,
            type_code=CREDIT_NOTE,
            issue_date=note.issue_date,
            # nothing is due on a credit note; a due date is required by the table
            due_date=note.issue_date,
            currency=invoice["currency"],
            net_total=credit.net_total,
            tax_total=credit.tax_total,
            gross_total=credit.gross_total,
            amount_paid=ZERO,
            # settled by lowering the invoice's amount_due: it never appears as open itself
            amount_due=ZERO,
            status="paid",
            corrects_invoice_id=invoice["id"],
            credit_reason=note.reason,
            created_by=note.created_by,
            created_at=note.now,
            updated_at=note.now,
        )
        .returning(sales_invoices.c.id)
    ).scalar_one()
    conn.execute(
        insert(sales_invoice_lines),
        [
            {"organization_id": organization_id, "sales_invoice_id": credit_id, **line}
            for line in credit.new_lines
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
            for (category, rate), (basis, amount) in sorted(credit.breakdown.items())
        ],
    )
    return credit_id


def _audit_credit_note(
    conn: Connection,
    organization_id: int,
    credit_id: int,
    source: _InvoiceToCredit,
    credit: _Credit,
    note: _Written,
    amount_due: Decimal,
) -> None:
    details = {
        "credit_note": note.number,
        "corrects": source.invoice["invoice_number"],
        "reason": note.reason,
        "full": credit.full and source.credited.gross == 0,
        "lines": [{"line_no": n, "quantity": _quantity(q)} for n, q in credit.line_credits],
        **({"amounts": amounts_json(credit.amount_credits)} if credit.amount_credits else {}),
        "gross_total": str(credit.gross_total),
        "invoice_amount_due": str(amount_due),
        **({"batch_job_id": note.batch_job_id} if note.batch_job_id is not None else {}),
    }
    record_audit_entries(
        conn,
        organization_id,
        note.created_by,
        "credit_note.issue",
        "sales_invoice",
        [credit_id],
        details,
    )


Breakdown = dict[tuple[str, Decimal], tuple[Decimal, Decimal]]


def _line_credit(
    invoice, invoice_lines: dict, invoice_taxes: dict, credited: _Credited, lines, english: bool
) -> tuple[list[dict], Breakdown, bool]:
    """The lines and VAT breakdown of a credit of invoice lines (all that is left when `lines` is
    None); whether it credits everything that was left."""
    invoice_number = invoice["invoice_number"]
    left = {n: Decimal(row["quantity"]) - credited.lines[n][0] for n, row in invoice_lines.items()}
    if lines is None:
        chosen = {n: q for n, q in left.items() if q != 0}
        if not chosen:
            raise CreditNoteRefused(
                f"invoice {invoice_number} is credited in full already", "credited_in_full"
            )
    else:
        chosen = dict(lines)
        if not chosen:
            raise CreditNoteRefused("no lines to credit", "invalid_lines")
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
            raise CreditNoteRefused("; ".join(problems), "invalid_lines")
    everything = all(chosen.get(n, ZERO) == q for n, q in left.items() if q != 0) and all(
        q == left[n] for n, q in chosen.items()
    )

    new_lines: list[dict] = []
    bases: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
    for n, quantity in sorted(chosen.items()):
        row = invoice_lines[n]
        if quantity == left[n]:
            # the rest of the line: exactly what earlier credit notes left of its net
            net = Decimal(row["net_amount"]) - credited.lines[n][1]
        else:
            net = round_cents(quantity * Decimal(row["unit_price"]))
        key = (row["vat_category"], Decimal(row["vat_rate"]).quantize(RATE))
        bases[key] += net
        new_lines.append(
            {
                "line_no": n,
                "line_type": row["line_type"],
                "item_id": row["item_id"],
                "description": row["description"],
                "quantity": quantity,
                "unit_price": row["unit_price"],
                "net_amount": net,
                "vat_rate": row["vat_rate"],
                "vat_category": row["vat_category"],
            }
        )
    if everything:
        # amounts credited before are taken off per rate, so the lines add up to what is left
        line_no = max(invoice_lines) + 1
        for key, amount in sorted(credited.amounts.items(), key=lambda kv: (-kv[0][1], kv[0])):
            if amount:
                new_lines.append(
                    _amount_line(line_no, key, -amount, _less_description(key, english))
                )
                line_no += 1
        breakdown = {
            key: (basis - credited.taxes[key][0], amount - credited.taxes[key][1])
            for key, (basis, amount) in invoice_taxes.items()
        }
        # a rate whose lines are listed keeps its row, even at 0.00 (its lines net to zero)
        breakdown = {k: v for k, v in breakdown.items() if v != (ZERO, ZERO) or k in bases}
        return new_lines, breakdown, True
    problems = []
    for key, basis in sorted(bases.items()):
        left_basis = invoice_taxes.get(key, (ZERO, ZERO))[0] - credited.taxes[key][0]
        if basis > left_basis:
            problems.append(
                f"the chosen lines come to {basis} {invoice['currency']} net at "
                f"{_label(key)}, more than the {left_basis} left to credit at that rate"
            )
    if problems:
        raise CreditNoteRefused("; ".join(problems), "more_than_left")
    breakdown = {key: (basis, vat_amount(basis, key[1])) for key, basis in bases.items()}
    return new_lines, breakdown, False


def _amount_credit(
    invoice,
    invoice_lines: dict,
    invoice_taxes: dict,
    credited: _Credited,
    amounts: Mapping,
    english: bool,
) -> tuple[list[dict], Breakdown, bool]:
    """One line per VAT rate of a credit of net amounts, and its VAT breakdown; whether it credits
    the whole invoice."""
    invoice_number, currency = invoice["invoice_number"], invoice["currency"]
    if not amounts:
        raise CreditNoteRefused("no amounts to credit", "invalid_amounts")
    rates_there = ", ".join(_label(k) for k in sorted(invoice_taxes, key=lambda k: -k[1]))
    problems: list[tuple[str, str]] = []
    resolved: dict[tuple[str, Decimal], Decimal] = {}
    for given, amount in amounts.items():
        category, rate = given if isinstance(given, tuple) else amount_key(given)
        rate = Decimal(rate).quantize(RATE)
        label = _label((category, rate))
        matches = [k for k in invoice_taxes if k[1] == rate and category in (None, k[0])]
        if not matches:
            problems.append(
                (
                    "unknown_rate",
                    f"invoice {invoice_number} has no VAT rate {label} (its rates: {rates_there})",
                )
            )
            continue
        if len(matches) > 1:
            names = " and ".join(sorted(k[0] for k in matches))
            problems.append(
                (
                    "invalid_amounts",
                    f"invoice {invoice_number} has VAT rate {label} in categories {names}: "
                    f"name one, e.g. {sorted(matches)[0][0]}:{_quantity(rate)}={amount}",
                )
            )
            continue
        key = matches[0]
        label = _label(key)
        if key in resolved:
            problems.append(("invalid_amounts", f"VAT rate {label} is given twice"))
            continue
        amount = Decimal(amount)
        if amount != amount.quantize(CENT):
            problems.append(
                ("invalid_amounts", f"{label}: net {amount} has more than 2 decimals (cents)")
            )
            continue
        amount = amount.quantize(CENT)
        if amount <= 0:
            problems.append(("not_above_zero", f"{label}: net {amount} is not above 0"))
            continue
        left_basis = invoice_taxes[key][0] - credited.taxes[key][0]
        if amount > left_basis:
            problems.append(
                (
                    "more_than_left",
                    f"{label}: net {amount} {currency} is more than the {left_basis} {currency} "
                    f"net left to credit at {label} on invoice {invoice_number} "
                    f"(net {invoice_taxes[key][0]} at that rate, credited before "
                    f"{credited.taxes[key][0]})",
                )
            )
            continue
        resolved[key] = amount
    if problems:
        raise CreditNoteRefused("; ".join(m for _, m in problems), problems[0][0])
    new_lines, breakdown = [], {}
    line_no = max(invoice_lines, default=0) + 1
    for key, amount in resolved.items():
        basis, vat = invoice_taxes[key]
        done_basis, done_vat = credited.taxes[key]
        # the rest of a rate takes the rest of its VAT: invoice and credit notes net to zero
        tax = vat - done_vat if amount == basis - done_basis else vat_amount(amount, key[1])
        breakdown[key] = (amount, tax)
        description = _amount_description(invoice_number, key, english)
        new_lines.append(_amount_line(line_no, key, amount, description))
        line_no += 1
    full = all(resolved.get(k, ZERO) == basis for k, (basis, _) in invoice_taxes.items())
    return new_lines, breakdown, full
