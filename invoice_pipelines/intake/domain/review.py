"""The review step: a person confirms, corrects or rejects a document in NEEDS_REVIEW, or reopens
a VALIDATED one that is not exported yet.

A correction names fields and their new values (text, as typed on the command line or in the
launchpad); each changed field is recorded in `incoming_reviews` (who, when, old, new) and in
the audit log, and the document's own columns take the new value. A value that cannot be one is
refused before anything is written, in one sentence naming the field: digits other than 0-9, a
control character, text longer than its column, an amount with more than cents, a date outside
the plausible range, a document type EN 16931 does not allow, a currency that is no money, a VAT
breakdown with a rate twice or more than 50 rows; so is a review without the version the
reviewer looked at (`expected_version`). Before a document leaves review as VALIDATED, its values
as corrected must hold as a reading's must (intake/domain/plausibility.py and core.rules.check_invoice):
the mandatory values are there, net + VAT = gross, the VAT breakdown adds up to the totals with
one row per category and rate and each rate's VAT matches its basis, the amount due is not above
the total, the signs fit the document type (a credit note states positive amounts), the dates
are plausible (a due date not before the issue date), our own rules hold (e.g. an issue date not
in the future, IP-DATE-01), and the same number from the same supplier is not booked already
(IP-DUP-01), and the seller is neither the organization itself nor a name and a VAT id of two
registered suppliers (core/suppliers.py). A confirmation teaches the supplier register what the
person confirmed of the seller (a new supplier, another name, a new IBAN), audited with the
reviewer's name, and resolves the review findings that no longer hold (the reading's doubts, a
reopening's IP-REV-11, a refused confirmation's IP-REV-13): kept, marked resolved with who and
when. A correction without a confirmation that still fails is recorded and the document stays in
review, with the reasons. A confirmation the rules refuse changes nothing (the values, the VAT
breakdown and the version stay as they were; a correction that came with it is not kept) and
records a finding, IP-REV-13, saying what was refused and why. A rejection moves it to FAILED with the reviewer's reason; a reopening moves a
VALIDATED document back to NEEDS_REVIEW with the reviewer's reason (an EXPORTED one is corrected
through the export's correction path first). Every move goes through `change_status`
(optimistic lock: a document that changed meanwhile is refused, never overwritten).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError

from invoice_pipelines.core.invoice import Invoice, PaymentAccount, VatBreakdown
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.money import ZERO, round_cents
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.rules import check_invoice, invoice_number_key, seller_key
from invoice_pipelines.core.suppliers import NEVER_CONFIRMED, Claim, Comparison, compare
from invoice_pipelines.db.audit_log import record_audit_entries
from invoice_pipelines.db.incoming_status import (
    DocumentRef,
    ErrorRecord,
    StaleDocument,
    change_status,
    error_rows,
)
from invoice_pipelines.db.locks import Lock, xact_lock
from invoice_pipelines.db.tables import (
    incoming_invoice_taxes,
    incoming_invoices,
    incoming_reviews,
    processing_errors,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.intake.domain.discounts import recompute as recompute_discounts
from invoice_pipelines.intake.domain.plausibility import (
    MAX_BREAKDOWN_ROWS,
    breakdown_problems,
    breakdown_row_problems,
    code_problems,
    date_problems,
    due_date_bounds,
    issue_date_bounds,
    payment_account_problems,
    sign_problems,
)
from invoice_pipelines.intake.domain.supplier_checks import claim_of
from invoice_pipelines.intake.domain.supplier_layouts import learn_layout
from invoice_pipelines.supplier_register import RegisterError, learn, load_register, own_party

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
    # a refused confirmation: the corrections that came with it, none of them kept
    refused: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


def _shown(text: str) -> str:
    """A value in a sentence: quoted, at most 40 characters of it."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _plain(name: str, text: str, limit: int) -> str:
    """The text as typed, whitespace collapsed; ReviewError naming the field when it is empty or
    longer than `limit`, or has a control character or a digit other than 0-9 (a digit of another
    script is refused, never read as another number)."""
    if not isinstance(text, str):
        raise ReviewError(f"{name}: give it as text")
    cleaned = " ".join(text.split()) if len(text) <= 4 * limit else text
    if not cleaned or len(cleaned) > limit:
        raise ReviewError(f"{name}: {_shown(text)} must have 1 to {limit} characters")
    for char in cleaned:
        if char.isdigit() and not char.isascii():
            raise ReviewError(
                f"{name}: {_shown(text)} has the digit {char!r} (U+{ord(char):04X}); type "
                "digits as 0-9"
            )
        if unicodedata.category(char) == "Cc":
            raise ReviewError(f"{name}: {_shown(text)} has a control character (U+{ord(char):04X})")
    return cleaned


_AMOUNT = re.compile(r"[+-]?[0-9]{1,16}(?:[.,][0-9]{1,2})?")


def _amount(name: str, text: str) -> Decimal:
    """An amount typed with 0-9 and at most two decimals (comma or point), below 10^16."""
    cleaned = _plain(name, text, 40).replace(" ", "")
    if not _AMOUNT.fullmatch(cleaned):
        raise ReviewError(
            f"{name}: {_shown(text)} is not an amount (digits 0-9, at most two decimals: 1234.50)"
        )
    value = Decimal(cleaned.replace(",", "."))
    if abs(value) >= Decimal(10) ** 16:
        raise ReviewError(f"{name}: {_shown(text)} is not an amount")
    return round_cents(value)


def _date(name: str, text: str, today: date) -> date:
    """A date typed YYYY-MM-DD with 0-9, within what plausibility lets anything book (an issue
    date up to a year from today, a due date up to ten years after that)."""
    cleaned = _plain(name, text, 40)
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", cleaned):
            raise ValueError
        value = date.fromisoformat(cleaned)
    except ValueError:
        raise ReviewError(f"{name}: {_shown(text)} is not a date (YYYY-MM-DD)") from None
    first, last = issue_date_bounds(today)
    if name == "due_date":
        last = due_date_bounds(last, today)[1]
    if not first <= value <= last:
        raise ReviewError(f"{name}: {value} is not a plausible date ({first} to {last})")
    return value


def _code(name: str, text: str) -> str:
    """A document type EN 16931 allows, or an ISO 4217 currency (upper case)."""
    cleaned = _plain(name, text, 3 if name == "currency" else 8)
    if name == "currency":
        cleaned = cleaned.upper()
        problems = code_problems(None, cleaned)
    else:
        problems = code_problems(cleaned, None)
    if problems:
        raise ReviewError(f"{name}: {problems[0]}")
    return cleaned


def parse_breakdown(text: str) -> list[tuple[Decimal, Decimal, Decimal]]:
    """'19:100.00:19.00;7:50:3.50' -> [(rate, basis, vat), ...]: one entry per rate, at most
    MAX_BREAKDOWN_ROWS."""
    if isinstance(text, str) and text.count(";") >= MAX_BREAKDOWN_ROWS:
        count = sum(1 for p in text.split(";") if p.strip())
        if count > MAX_BREAKDOWN_ROWS:
            raise ReviewError(
                f"breakdown: {count} entries; at most {MAX_BREAKDOWN_ROWS}, one per VAT rate"
            )
    text = _plain("breakdown", text, MAX_BREAKDOWN_ROWS * 64)
    parts = [p for p in (p.strip() for p in text.split(";")) if p]
    entries = []
    for part in parts:
        pieces = part.split(":")
        if len(pieces) != 3:
            raise ReviewError(f"breakdown: {_shown(part)} is not rate:basis:vat")
        rate = _amount("breakdown rate", pieces[0])
        if not ZERO <= rate <= 100:
            raise ReviewError(f"breakdown: the rate {_shown(pieces[0])} is not a percentage")
        entries.append(
            (rate, _amount("breakdown basis", pieces[1]), _amount("breakdown vat", pieces[2]))
        )
    if not entries:
        raise ReviewError("breakdown: no rate:basis:vat entry")
    twice = breakdown_row_problems([(_category(rate), rate) for rate, _, _ in entries])
    if twice:
        raise ReviewError(f"breakdown: {twice[0]}")
    return entries


def _category(rate: Decimal) -> str | None:
    """The VAT category a corrected breakdown row is stored with (standard rate, or none said)."""
    return "S" if rate > 0 else None


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def parse_corrections(
    pairs: dict[str, str], *, today: date | None = None
) -> tuple[dict, list | None]:
    """Typed column values of the corrections, and the breakdown if one is given; ReviewError
    naming the field of the first value that cannot be one (nothing is written then)."""
    today = today or date.today()
    values: dict = {}
    breakdown = None
    for name, text in pairs.items():
        if name not in FIELDS:
            raise ReviewError(
                f"{_shown(str(name))} is not a field a review can set ({', '.join(FIELDS)})"
            )
        if name in ("currency", "type_code"):
            values[name] = _code(name, text)
        elif name in TEXT_FIELDS:
            column, length = TEXT_FIELDS[name]
            values[column] = _plain(name, text, length)
        elif name in DATE_FIELDS:
            values[DATE_FIELDS[name]] = _date(name, text, today)
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


def value_problems(
    row: dict, rows: list[tuple[str | None, Decimal | None]], *, today: date
) -> list[str]:
    """What a reading is held to and nobody may book either (intake/domain/plausibility.py), on the
    values as corrected and the breakdown's (category, rate) rows: a document type EN 16931 does
    not allow or a currency that is no money, totals whose sign contradicts the type, an
    implausible date or a due date before the issue date, a category and rate twice."""
    return [
        *code_problems(row.get("type_code"), row.get("currency")),
        *sign_problems(row.get("type_code"), row.get("net_total"), row.get("gross_total")),
        *date_problems(row.get("issue_date"), row.get("due_date"), today),
        *breakdown_row_problems(rows),
    ]


# what problems_of says in plain words already (check_invoice's rule ids for the same)
_SAID = frozenset({"BR-02", "BR-03", "BR-05", "BR-13", "BR-14", "BR-CO-14", "BR-CO-15", "BR-CO-17"})


def rule_problems(
    row: dict, breakdown: list[tuple[Decimal, Decimal, Decimal]], *, today: date | None = None
) -> list[str]:
    """Our own rules (core.rules.check_invoice) on the values as corrected: the invoice a booking
    would be made of, as a page-read invoice carries it (the structure of its XML, if it had one,
    was judged on arrival). Errors only, with their rule ids (a due date before the issue date is
    a warning there, EN 16931 allows it; value_problems holds a confirmation to it)."""
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
    # the key stored with the number (its intake, a correction: `_correct`) is what
    # invoice_number_key gives; computed here only for a row without one. The look-alike table
    # behind the keys loads only when another booked document has the number (a review's
    # confirmation, a person waiting, does not pay for it otherwise).
    key = row.get("invoice_number_key") or invoice_number_key(row.get("invoice_number"))
    if key is None:
        return None
    seller = None
    t = incoming_invoices.c
    for other in conn.execute(
        select(t.id, t.seller_vat_id, t.seller_name).where(
            t.organization_id == row["organization_id"],
            t.invoice_number_key == key[: t.invoice_number_key.type.length],
            t.id != row["id"],
            t.status.in_([Status.VALIDATED.value, Status.EXPORTED.value]),
        )
    ):
        if seller is None:
            seller = seller_key(row.get("seller_vat_id"), row.get("seller_name"))
        if seller_key(other.seller_vat_id, other.seller_name) == seller:
            return other.id
    return None


REFUSED_RULE = "IP-REV-13"  # a confirmation the rules refused (nothing changed)
REASON_LENGTH = 1000  # a rejection's or a reopening's reason
REVIEWER_LENGTH = incoming_reviews.c.reviewed_by.type.length  # and audit_log.created_by's
_LARGEST_ID = 2**63 - 1


def review_document(
    engine: Engine,
    org: Organization,
    document_id: int,
    *,
    reviewed_by: str,
    corrections: dict[str, str] | None = None,
    confirm: bool = False,
    reject: str | None = None,
    expected_version: int | None = None,
    reopen: bool = False,
    reason: str | None = None,
) -> ReviewResult:
    """Correct, confirm or reject one document in review, or reopen a VALIDATED one with a reason
    (see the module's docstring). `expected_version`: the processing_version the reviewer looked
    at (required); a document that changed since is refused (ReviewError) instead of being judged
    on values nobody saw. Nothing is written when a ReviewError is raised."""
    # an unknown organization is said first, as by every command (UnknownOrganization)
    reviewed_by, reject, reason = _checked_request(
        reviewed_by, corrections, confirm, reject, reopen, reason
    )
    _checked_version(document_id, expected_version)
    today = date.today()
    values, breakdown = parse_corrections(corrections or {}, today=today)
    try:
        with tenant_transaction(engine, org.id, write=True) as conn:
            # the duplicate check reads, then writes: as the intake run, one writer per
            # organization; a reopening waits for a running export (it may be booking the document)
            xact_lock(conn, Lock.INTAKE, org.id)
            if reopen:
                xact_lock(conn, Lock.EXPORT, org.id)
            row = _document(conn, org, document_id, expected_version, reopen=reopen)
            ref = DocumentRef(row["id"], org.id, Status(row["status"]), row["processing_version"])
            result = ReviewResult(row["id"], row["status"])
            log = _ReviewLog(org.id, row["id"], reviewed_by)
            if reopen:
                change_status(
                    conn,
                    ref,
                    Status.NEEDS_REVIEW,
                    errors=[_reopened(reviewed_by, reason or "")],
                )
                # who and why: the audit row below and the finding (incoming_reviews' actions are
                # a person's verdicts on values: corrected, confirmed, rejected)
                result.status = Status.NEEDS_REVIEW.value
            elif reject is not None:
                change_status(
                    conn,
                    ref,
                    Status.FAILED,
                    errors=[
                        ErrorRecord("review", f"rejected by {reviewed_by}: {reject}", "IP-REV-00")
                    ],
                )
                log.note("rejected", new=reject)
                result.status = Status.FAILED.value
            else:
                _correct(
                    conn,
                    org,
                    ref,
                    row,
                    values,
                    breakdown,
                    corrections or {},
                    confirm,
                    result,
                    log,
                    today,
                )
            if log.rows:
                conn.execute(insert(incoming_reviews), log.rows)
            record_audit_entries(
                conn,
                org.id,
                reviewed_by,
                "intake.reopen" if reopen else "intake.review",
                "incoming_invoice",
                [row["id"]],
                {
                    "status": result.status,
                    "corrected": {k: list(v) for k, v in result.corrected.items()},
                    **_refused_details(result),
                    "problems": result.problems,
                    "rejected": reject,
                    **({"reopened_from": row["status"], "reason": reason} if reopen else {}),
                },
            )
    except DataError:
        # every value is bounded above; should one still not fit its column, the person gets a
        # sentence and the transaction is gone (nothing written), never the database's traceback
        raise ReviewError(
            f"a value of the review of incoming invoice {document_id} does not fit where it is "
            "stored; nothing was changed"
        ) from None
    return result


def _reopened(reviewed_by: str, reason: str) -> ErrorRecord:
    """Why a reopened document waits in review (what `incoming list` and the run show)."""
    return ErrorRecord(
        "review", f"reopened by {reviewed_by}: {reason}", "IP-REV-11", severity="warning"
    )


def _checked_request(
    reviewed_by: str,
    corrections: dict | None,
    confirm: bool,
    reject: str | None,
    reopen: bool = False,
    reason: str | None = None,
) -> tuple[str, str | None, str | None]:
    """The reviewer's name, the rejection reason and the reopening's reason, whitespace collapsed
    and bounded; ReviewError when the request names nobody, asks for nothing, or for a rejection
    or a reopening with anything else."""
    if reviewed_by is None or (isinstance(reviewed_by, str) and not reviewed_by.strip()):
        raise ReviewError("say who reviews (--by NAME / reviewed_by)")
    reviewed_by = _plain("reviewed_by (--by)", reviewed_by, REVIEWER_LENGTH)
    if reject is not None and (confirm or corrections or reopen):
        raise ReviewError("a rejection takes no corrections, no confirmation and no reopening")
    if reject is not None:
        if not reject.strip():
            raise ReviewError("a rejection needs a reason")
        reject = _plain("the rejection's reason", reject, REASON_LENGTH)
    if reopen:
        if confirm or corrections:
            raise ReviewError(
                "a reopening takes no corrections and no confirmation: reopen it, then review "
                "the version it is at then"
            )
        if reason is None or not reason.strip():
            raise ReviewError("a reopening needs a reason (--reason TEXT / reason)")
        reason = _plain("the reason (--reason)", reason, REASON_LENGTH)
    elif reason is not None and reason.strip():
        raise ReviewError(
            "a reason (--reason) goes with a reopening (--reopen); a rejection's is --reject REASON"
        )
    else:
        reason = None
    if reject is None and not reopen and not confirm and not corrections:
        raise ReviewError(
            "nothing to do: give corrections (--set FIELD=VALUE), a confirmation (--confirm), a "
            "rejection (--reject REASON) or a reopening (--reopen --reason TEXT)"
        )
    return reviewed_by, reject, reason


def _checked_version(document_id: int, expected_version: int | None) -> None:
    """ReviewError unless the request names the version the reviewer looked at."""
    if expected_version is None:
        raise ReviewError(
            f"say which version of incoming invoice {document_id} you looked at (--version N / "
            "expected_version): the processing_version that `invoice-pipelines incoming show "
            f"--org ORG --id {document_id}` prints"
        )
    if not isinstance(expected_version, int) or not 1 <= expected_version <= 2**31 - 1:
        raise ReviewError(f"the version {expected_version!r} is not a version (1 or more)")


def _document(
    conn, org: Organization, document_id: int, expected_version: int | None, *, reopen: bool
) -> dict:
    """The document's row; ReviewError when it is not this organization's, not in review (to
    reopen: not VALIDATED, or EXPORTED already), or not at the version the reviewer looked at."""
    row = None
    if isinstance(document_id, int) and 1 <= document_id <= _LARGEST_ID:
        row = (
            conn.execute(
                select(incoming_invoices).where(
                    incoming_invoices.c.organization_id == org.id,
                    incoming_invoices.c.id == document_id,
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise ReviewError(f"no incoming invoice {document_id} in {org.slug}")
    status = row["status"]
    if reopen and status == Status.EXPORTED.value:
        raise ReviewError(
            f"incoming invoice {document_id} is EXPORTED: it is booked in an export, so it is "
            "corrected through the export's correction path: `invoice-pipelines export-reopen "
            f"--org {org.slug} --documents {document_id} --reason WHY` takes it back to "
            "VALIDATED, then reopen it for review"
        )
    if reopen and status != Status.VALIDATED.value:
        raise ReviewError(
            f"incoming invoice {document_id} is {status}; only a VALIDATED document that is not "
            "exported yet is reopened for review"
        )
    if not reopen and status != Status.NEEDS_REVIEW.value:
        hint = " (reopen it first: --reopen --reason WHY)" if status == Status.VALIDATED else ""
        raise ReviewError(
            f"incoming invoice {document_id} is {status}; only documents in NEEDS_REVIEW are "
            f"reviewed{hint}"
        )
    if row["processing_version"] != expected_version:
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
    org: Organization,
    ref: DocumentRef,
    row: dict,
    values: dict,
    breakdown: list | None,
    corrections: dict[str, str],
    confirm: bool,
    result: ReviewResult,
    log: _ReviewLog,
    today: date,
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
        current["invoice_number_key"] = values["invoice_number_key"]
    stored = _stored_breakdown(conn, row["id"])
    before = [(r, b, v) for _, r, b, v in stored]
    if breakdown is not None and breakdown != before:
        text = "; ".join(f"{r}:{b}:{v}" for r, b, v in before) or None
        result.corrected["breakdown"] = (text, corrections["breakdown"])
        log.note("corrected", "breakdown", text, corrections["breakdown"])
    taxes = breakdown if breakdown is not None else before
    rows = (
        [(_category(r), r) for r, _, _ in breakdown]
        if breakdown is not None
        else [(c, r) for c, r, _, _ in stored]
    )
    complete = [(r, b, v) for r, b, v in taxes if None not in (r, b, v)]
    result.problems = (
        problems_of(current, complete)
        + value_problems(current, rows, today=today)
        + rule_problems(current, complete, today=today)
    )
    duplicate = _duplicate_of(conn, current)
    if duplicate is not None:
        result.problems.append(
            f"the same invoice number from the same supplier is booked already "
            f"(incoming invoice {duplicate}, IP-DUP-01)"
        )
    claim, comparison = _supplier_of(conn, org, current)
    result.problems.extend(
        f"{f.message} ({f.rule})" for f in comparison.findings if f.rule in NEVER_CONFIRMED
    )
    # an account nothing may be paid to is not confirmed away either: the supplier corrects the
    # document, or it is rejected
    result.problems.extend(f"{f.message} ({f.rule})" for f in _account_findings(current))
    if confirm and result.problems:
        _refuse(conn, ref, result, log)
        return
    if confirm:
        log.note("confirmed")
        validated = change_status(conn, ref, Status.VALIDATED, fields=values or None)
        result.status = Status.VALIDATED.value
        _resolve_review_findings(conn, validated, log.reviewed_by)
        # what the person confirmed of the seller, the register learns (audited)
        try:
            supplier_id = learn(
                conn,
                ref.organization_id,
                claim,
                comparison,
                changed_by=log.reviewed_by,
                reason=f"confirmed incoming invoice {ref.id} in review",
                document_id=ref.id,
            )
        except RegisterError as exc:
            raise ReviewError(f"the supplier register refuses the seller: {exc}") from None
        # and where the confirmed values stand on its page, the supplier's layout (audited)
        learn_layout(conn, ref.organization_id, supplier_id, current, by=log.reviewed_by)
    elif values or breakdown is not None:
        # recorded, still in review: the version moves on (a reviewer working from the
        # version before is refused, never overwrites this)
        _update_in_review(conn, ref, values)
    if breakdown is not None:
        _replace_breakdown(conn, ref, breakdown)
    if {"issue_date", "amount_due"} & set(values) and not date_problems(
        current.get("issue_date"), None, today
    ):
        # a discount's last day and worth follow the corrected issue date and amount due (not an
        # implausible issue date a reading stored: the discount follows once it is corrected)
        recompute_discounts(conn, ref.organization_id, ref.id)


def _refuse(conn, ref: DocumentRef, result: ReviewResult, log: _ReviewLog) -> None:
    """A confirmation the rules refuse: nothing of the document changes (its values, breakdown and
    version stay; no correction is recorded as made), and a finding of the version the reviewer
    looked at says what was refused and why (IP-REV-13, what `incoming list` and `show` print)."""
    result.refused, result.corrected = result.corrected, {}
    log.rows.clear()
    asked = ", ".join(f"{name} {new} (stored {old})" for name, (old, new) in result.refused.items())
    what = f"the corrections {asked}" if asked else "the values as stored"
    message = (
        f"confirmation by {log.reviewed_by} refused, nothing changed: {what} do not hold: "
        + "; ".join(result.problems)
    )
    record = ErrorRecord("review", message, REFUSED_RULE, severity="warning")
    conn.execute(insert(processing_errors), error_rows(ref, ref.processing_version, [record]))


def _refused_details(result: ReviewResult) -> dict:
    """The audit row's account of a refused confirmation (nothing of it kept)."""
    if not result.refused:
        return {}
    return {"refused": {k: list(v) for k, v in result.refused.items()}}


def _resolve_review_findings(conn, ref: DocumentRef, resolved_by: str) -> int:
    """The document's review findings (stage review, warnings: the reading's doubts, a reopening's
    IP-REV-11, a refused confirmation's IP-REV-13) marked resolved by a confirmation that booked it:
    they no longer hold, and are kept for the audit trail. Findings about the file itself (its
    format, the official rules, a mismatch of its XML and its page) still hold and stay. How many."""
    e = processing_errors.c
    return conn.execute(
        update(processing_errors)
        .where(
            e.organization_id == ref.organization_id,
            e.incoming_invoice_id == ref.id,
            e.stage == "review",
            e.severity == "warning",
            e.resolved_at.is_(None),
        )
        .values(resolved_at=utcnow(), resolved_by=resolved_by)
    ).rowcount


def _account_findings(current: dict) -> list:
    """IP-PAY-01/02 of the document's payment accounts as its reading stored them."""
    return payment_account_problems(_stored_invoice(current))


# what a review takes of a document's stored reading, not of its corrected columns
_STORED_READING = ("seller_email", "seller_tax_number", "iban", "payment_means_code")


def _stored_invoice(current: dict) -> Invoice:
    """What a review judges of the document beside its amounts: its seller as the document stands
    (with the person's corrections) and its payment accounts as its reading stored them."""
    read = ((current.get("raw_json") or {}).get("invoice")) or {}
    accounts = tuple(
        PaymentAccount(str(a["iban"]), a.get("bic"))
        for a in read.get("payment_accounts") or ()
        if a.get("iban")
    )
    as_read = {name: read.get(name) for name in _STORED_READING}
    corrected = {name: current.get(name) for name in ("seller_name", "seller_vat_id")}
    return Invoice(
        **as_read, **corrected, payment_accounts=accounts, origin=read.get("origin") or "xml"
    )


def _supplier_of(conn, org: Organization, current: dict) -> tuple[Claim, Comparison]:
    """The seller as the document stands (with the person's corrections) and the register's view
    of it, the claim made as the intake makes it (`claim_of`): a seller that is the organization
    itself, or a name and a VAT id of two registered suppliers, is never confirmed
    (NEVER_CONFIRMED)."""
    claim = claim_of(_stored_invoice(current))
    register = load_register(conn, org.id)
    return claim, compare(register, claim, own_party(org))


def _stored_breakdown(conn, incoming_invoice_id: int) -> list[tuple]:
    """The document's VAT breakdown rows: (category, rate, basis, VAT)."""
    t = incoming_invoice_taxes.c
    stored = conn.execute(
        select(t.vat_category, t.vat_rate, t.basis, t.amount)
        .where(t.incoming_invoice_id == incoming_invoice_id)
        .order_by(t.id)
    ).all()
    return [(r.vat_category, r.vat_rate, r.basis, r.amount) for r in stored]


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
                "vat_category": _category(rate),
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
