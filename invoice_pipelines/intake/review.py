"""The review step: a person confirms, corrects or rejects a document in NEEDS_REVIEW.

A correction names fields and their new values (text, as typed on the command line or in the
launchpad); each changed field is recorded in `incoming_reviews` (who, when, old, new) and in
the audit log, and the document's own columns take the new value. Before a document leaves
review as VALIDATED, its values as corrected must hold: the mandatory values are there, net +
VAT = gross, the VAT breakdown adds up to the totals and each rate's VAT matches its basis, the
amount due is not above the total, our own rules hold (core.rules.check_invoice: e.g. an issue
date not in the future, IP-DATE-01), and the same number from the same supplier is not booked
already (IP-DUP-01). A correction that
still fails is recorded and the document stays in review, with the reasons. A rejection moves it
to FAILED with the reviewer's reason. Every move goes through `change_status` (optimistic lock:
a document that changed meanwhile is refused, never overwritten).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from invoice_pipelines.core.invoice import Invoice, VatBreakdown
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.money import ZERO, round_cents
from invoice_pipelines.core.rules import check_invoice, invoice_number_key, seller_key
from invoice_pipelines.db.locks import Lock, xact_lock
from invoice_pipelines.db.tables import (
    audit_log,
    incoming_invoice_taxes,
    incoming_invoices,
    incoming_reviews,
)
from invoice_pipelines.db.tenancy import resolve_organization, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.intake.discounts import recompute as recompute_discounts
from invoice_pipelines.intake.incoming_invoices import (
    DocumentRef,
    ErrorRecord,
    StaleDocument,
    change_status,
)
from invoice_pipelines.intake.plausibility import breakdown_problems

TEXT_FIELDS = {
    "number": ("invoice_number", 128),
    "type_code": ("type_code", 3),
    "currency": ("currency", 3),
    "seller_name": ("seller_name", 255),
    "seller_vat_id": ("seller_vat_id", 64),
}
DATE_FIELDS = {"issue_date": "issue_date", "due_date": "due_date"}
AMOUNT_FIELDS = {
    "net_total": "net_total",
    "tax_total": "tax_total",
    "gross_total": "gross_total",
    "amount_due": "amount_due",
}
# "breakdown": the VAT breakdown as "rate:basis:vat" entries separated by ";" (19:100.00:19.00)
FIELDS = (*TEXT_FIELDS, *DATE_FIELDS, *AMOUNT_FIELDS, "breakdown")


class ReviewError(ValueError):
    """A review that cannot be done as asked: one sentence for the person."""


@dataclass
class ReviewResult:
    document_id: int
    status: str
    corrected: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _amount(name: str, text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise ReviewError(f"{name}: {text!r} is not an amount") from None
    if not value.is_finite() or abs(value) >= Decimal(10) ** 16:
        raise ReviewError(f"{name}: {text!r} is not an amount")
    return round_cents(value)


def _date(name: str, text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ReviewError(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None


def parse_breakdown(text: str) -> list[tuple[Decimal, Decimal, Decimal]]:
    """'19:100.00:19.00;7:50:3.50' -> [(rate, basis, vat), ...]."""
    entries = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        pieces = part.split(":")
        if len(pieces) != 3:
            raise ReviewError(f"breakdown: {part!r} is not rate:basis:vat")
        rate = _amount("breakdown rate", pieces[0])
        if not ZERO <= rate <= 100:
            raise ReviewError(f"breakdown: the rate {pieces[0]!r} is not a percentage")
        entries.append(
            (rate, _amount("breakdown basis", pieces[1]), _amount("breakdown vat", pieces[2]))
        )
    if not entries:
        raise ReviewError("breakdown: no rate:basis:vat entry")
    return entries


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def parse_corrections(pairs: dict[str, str]) -> tuple[dict, list | None]:
    """Typed column values of the corrections, and the breakdown if one is given."""
    values: dict = {}
    breakdown = None
    for name, text in pairs.items():
        if name not in FIELDS:
            raise ReviewError(f"{name!r} is not a field a review can set ({', '.join(FIELDS)})")
        if name in TEXT_FIELDS:
            column, length = TEXT_FIELDS[name]
            cleaned = " ".join(text.split())
            if not cleaned or len(cleaned) > length:
                raise ReviewError(f"{name}: {text!r} must have 1 to {length} characters")
            if name in ("currency", "type_code") and not cleaned.isalnum():
                raise ReviewError(f"{name}: {text!r} is not a code")
            values[column] = cleaned.upper() if name == "currency" else cleaned
        elif name in DATE_FIELDS:
            values[DATE_FIELDS[name]] = _date(name, text)
        elif name in AMOUNT_FIELDS:
            values[AMOUNT_FIELDS[name]] = _amount(name, text)
        else:
            breakdown = parse_breakdown(text)
    return values, breakdown


def problems_of(row: dict, breakdown: list[tuple[Decimal, Decimal, Decimal]]) -> list[str]:
    """What keeps a document's values (as corrected) from being booked, in plain words."""
    problems = []
    for column, label in (
        ("invoice_number", "the invoice number"),
        ("issue_date", "the issue date"),
        ("currency", "the currency"),
        ("gross_total", "the total with VAT"),
    ):
        if row.get(column) in (None, ""):
            problems.append(f"{label} is missing")
    net, tax, gross = row.get("net_total"), row.get("tax_total"), row.get("gross_total")
    if None not in (net, tax, gross) and net + tax != gross:
        problems.append(f"net {net} + VAT {tax} is not the total {gross}")
    due = row.get("amount_due")
    if due is not None and gross is not None and gross >= ZERO and due > gross:
        # what was paid before lowers the amount due; nothing raises it above the total
        problems.append(f"the amount due {due} is more than the total {gross}")
    if breakdown:
        problems += breakdown_problems(net, tax, breakdown)
    elif tax not in (None, ZERO):
        problems.append("there is VAT but no VAT breakdown (give breakdown=rate:basis:vat)")
    return problems


# what problems_of says in plain words already (check_invoice's rule ids for the same)
_SAID = frozenset({"BR-02", "BR-03", "BR-05", "BR-13", "BR-14", "BR-CO-14", "BR-CO-15", "BR-CO-17"})


def rule_problems(
    row: dict, breakdown: list[tuple[Decimal, Decimal, Decimal]], *, today: date | None = None
) -> list[str]:
    """Our own rules (core.rules.check_invoice) on the values as corrected: the invoice a booking
    would be made of, as a page-read invoice carries it (the structure of its XML, if it had one,
    was judged on arrival). Errors only, with their rule ids; a due date before the issue date is
    a warning there (EN 16931 allows it) and does not hold a document."""
    invoice = Invoice(
        number=row.get("invoice_number"),
        type_code=row.get("type_code"),
        issue_date=row.get("issue_date"),
        due_date=row.get("due_date"),
        currency=row.get("currency"),
        seller_name=row.get("seller_name"),
        seller_vat_id=row.get("seller_vat_id"),
        net_total=row.get("net_total"),
        tax_total=row.get("tax_total"),
        gross_total=row.get("gross_total"),
        vat_breakdown=tuple(
            VatBreakdown(category="S" if rate > 0 else "Z", rate=rate, basis=basis, amount=vat)
            for rate, basis, vat in breakdown
        ),
        origin="text",
    )
    return [
        f"{f.rule}: {f.message}"
        for f in check_invoice(invoice, today=today)
        if f.severity == "error" and f.rule not in _SAID
    ]


def _update_in_review(conn, ref: DocumentRef, values: dict) -> None:
    """Corrected values of a document that stays in review, under the optimistic lock."""
    t = incoming_invoices.c
    now = utcnow()
    result = conn.execute(
        update(incoming_invoices)
        .where(
            t.id == ref.id,
            t.processing_version == ref.processing_version,
            t.status == Status.NEEDS_REVIEW.value,
        )
        .values(processing_version=ref.processing_version + 1, updated_at=now, **values)
    )
    if result.rowcount != 1:
        raise StaleDocument(f"incoming invoice {ref.id} changed meanwhile; review it again")


def _duplicate_of(conn, row: dict) -> int | None:
    key = invoice_number_key(row.get("invoice_number"))
    if key is None:
        return None
    seller = seller_key(row.get("seller_vat_id"), row.get("seller_name"))
    t = incoming_invoices.c
    for other in conn.execute(
        select(t.id, t.seller_vat_id, t.seller_name).where(
            t.organization_id == row["organization_id"],
            t.invoice_number_key == key[: t.invoice_number_key.type.length],
            t.id != row["id"],
            t.status.in_([Status.VALIDATED.value, Status.EXPORTED.value]),
        )
    ):
        if seller_key(other.seller_vat_id, other.seller_name) == seller:
            return other.id
    return None


def review_document(
    engine: Engine,
    organization: str | int,
    document_id: int,
    *,
    reviewed_by: str,
    corrections: dict[str, str] | None = None,
    confirm: bool = False,
    reject: str | None = None,
    expected_version: int | None = None,
) -> ReviewResult:
    """Correct, confirm or reject one document in review (see the module's docstring).
    `expected_version`: the processing_version the reviewer looked at; a document that changed
    since is refused (ReviewError) instead of being judged on values nobody saw."""
    # an unknown organization is said first, as by every command (UnknownOrganization)
    org = resolve_organization(engine, organization)
    reviewed_by, reject = _checked_request(reviewed_by, corrections, confirm, reject)
    values, breakdown = parse_corrections(corrections or {})
    with tenant_transaction(engine, org["id"], write=True) as conn:
        # the duplicate check reads, then writes: as the intake run, one writer per organization
        xact_lock(conn, Lock.INTAKE, org["id"])
        row = _document_in_review(conn, org, document_id, expected_version)
        ref = DocumentRef(row["id"], org["id"], Status(row["status"]), row["processing_version"])
        result = ReviewResult(row["id"], row["status"])
        log = _ReviewLog(org["id"], row["id"], reviewed_by)
        if reject is not None:
            change_status(
                conn,
                ref,
                Status.FAILED,
                errors=[ErrorRecord("review", f"rejected by {reviewed_by}: {reject}", "IP-REV-00")],
            )
            log.note("rejected", new=reject)
            result.status = Status.FAILED.value
        else:
            _correct(conn, ref, row, values, breakdown, corrections or {}, confirm, result, log)
        if log.rows:
            conn.execute(insert(incoming_reviews), log.rows)
        conn.execute(
            insert(audit_log).values(
                organization_id=org["id"],
                created_by=reviewed_by,
                action="intake.review",
                entity_type="incoming_invoice",
                entity_id=str(row["id"]),
                details={
                    "status": result.status,
                    "corrected": {k: list(v) for k, v in result.corrected.items()},
                    "problems": result.problems,
                    "rejected": reject,
                },
            )
        )
    return result


def _checked_request(
    reviewed_by: str, corrections: dict | None, confirm: bool, reject: str | None
) -> tuple[str, str | None]:
    """The reviewer's name and the rejection reason, whitespace collapsed; ReviewError when the
    request names nobody, asks for nothing or for a rejection with anything else."""
    reviewed_by = " ".join((reviewed_by or "").split())
    if not reviewed_by:
        raise ReviewError("say who reviews (--by NAME / reviewed_by)")
    if reject is not None and (confirm or corrections):
        raise ReviewError("a rejection takes no corrections and no confirmation")
    reject = None if reject is None else " ".join(reject.split())
    if reject == "":
        raise ReviewError("a rejection needs a reason")
    if reject is None and not confirm and not corrections:
        raise ReviewError(
            "nothing to do: give corrections (--set FIELD=VALUE), a confirmation (--confirm) or a "
            "rejection (--reject REASON)"
        )
    return reviewed_by, reject


def _document_in_review(conn, org: dict, document_id: int, expected_version: int | None) -> dict:
    """The document's row; ReviewError when it is not this organization's, not in review, or not
    at the version the reviewer looked at."""
    row = (
        conn.execute(
            select(incoming_invoices).where(
                incoming_invoices.c.organization_id == org["id"],
                incoming_invoices.c.id == int(document_id),
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ReviewError(f"no incoming invoice {document_id} in {org['slug']}")
    if row["status"] != Status.NEEDS_REVIEW.value:
        raise ReviewError(
            f"incoming invoice {document_id} is {row['status']}; only documents in "
            "NEEDS_REVIEW are reviewed"
        )
    if expected_version is not None and row["processing_version"] != expected_version:
        raise ReviewError(
            f"incoming invoice {document_id} changed since version {expected_version} "
            f"(it is at version {row['processing_version']}); look at it again"
        )
    return dict(row)


@dataclass
class _ReviewLog:
    """The incoming_reviews rows one review writes: what was corrected, confirmed or rejected."""

    organization_id: int
    incoming_invoice_id: int
    reviewed_by: str
    rows: list[dict] = field(default_factory=list)

    def note(self, action: str, name: str | None = None, old=None, new=None) -> None:
        self.rows.append(
            {
                "organization_id": self.organization_id,
                "incoming_invoice_id": self.incoming_invoice_id,
                "action": action,
                "field": name,
                "old_value": _as_text(old),
                "new_value": _as_text(new),
                "reviewed_by": self.reviewed_by,
            }
        )


def _correct(
    conn,
    ref: DocumentRef,
    row: dict,
    values: dict,
    breakdown: list | None,
    corrections: dict[str, str],
    confirm: bool,
    result: ReviewResult,
    log: _ReviewLog,
) -> None:
    """The corrections noted, the document held to the reading's rules with them, then confirmed
    (no problem left) or kept in review with the corrected values."""
    current = dict(row)
    for column, value in values.items():
        if current.get(column) != value:
            name = next(n for n, c in _COLUMNS.items() if c == column)
            result.corrected[name] = (_as_text(current.get(column)), _as_text(value))
            log.note("corrected", name, current.get(column), value)
            current[column] = value
    if "invoice_number" in values:
        values["invoice_number_key"] = invoice_number_key(values["invoice_number"])
    before = _stored_breakdown(conn, row["id"])
    if breakdown is not None and breakdown != before:
        text = "; ".join(f"{r}:{b}:{v}" for r, b, v in before) or None
        result.corrected["breakdown"] = (text, corrections["breakdown"])
        log.note("corrected", "breakdown", text, corrections["breakdown"])
    taxes = breakdown if breakdown is not None else before
    complete = [(r, b, v) for r, b, v in taxes if None not in (r, b, v)]
    result.problems = problems_of(current, complete) + rule_problems(current, complete)
    duplicate = _duplicate_of(conn, current)
    if duplicate is not None:
        result.problems.append(
            f"the same invoice number from the same supplier is booked already "
            f"(incoming invoice {duplicate}, IP-DUP-01)"
        )
    if confirm and not result.problems:
        log.note("confirmed")
        change_status(conn, ref, Status.VALIDATED, fields=values or None)
        result.status = Status.VALIDATED.value
    elif values or breakdown is not None:
        # recorded, still in review: the version moves on (a reviewer working from the
        # version before is refused, never overwrites this)
        _update_in_review(conn, ref, values)
    if breakdown is not None:
        _replace_breakdown(conn, ref, breakdown)
    if values and {"issue_date", "amount_due"} & set(values):
        # a discount's last day and worth follow the corrected issue date and amount due
        recompute_discounts(conn, ref.organization_id, ref.id)


def _stored_breakdown(conn, incoming_invoice_id: int) -> list[tuple]:
    t = incoming_invoice_taxes.c
    stored = conn.execute(
        select(t.vat_rate, t.basis, t.amount).where(t.incoming_invoice_id == incoming_invoice_id)
    ).all()
    return [(r.vat_rate, r.basis, r.amount) for r in stored]


def _replace_breakdown(conn, ref: DocumentRef, breakdown: list) -> None:
    conn.execute(
        delete(incoming_invoice_taxes).where(incoming_invoice_taxes.c.incoming_invoice_id == ref.id)
    )
    conn.execute(
        insert(incoming_invoice_taxes),
        [
            {
                "organization_id": ref.organization_id,
                "incoming_invoice_id": ref.id,
                "vat_category": "S" if rate > 0 else None,
                "vat_rate": rate,
                "basis": basis,
                "amount": vat,
            }
            for rate, basis, vat in breakdown
        ],
    )


_COLUMNS = {
    **{name: column for name, (column, _) in TEXT_FIELDS.items()},
    **DATE_FIELDS,
    **AMOUNT_FIELDS,
}
