"""The intake step: read, parse and validate a batch of incoming invoices, and record the outcome.

Called by the intake and retry jobs (and by the benchmark). One bad document never stops the rest:
parsing runs in worker processes (`intake/domain/workers.py`) with a time limit; OCR failures, oversized and missing files
become FAILED documents with a recorded reason; a concurrent writer on one document
(StaleDocument) costs only that document; any error while deciding one document's outcome or
building its rows makes that document FAILED (IP-PROC-01), and if some document's values cannot be
stored, its group is recorded again with one savepoint per document, so only that one fails. Each
run counts the documents it takes up (`intake_attempts`): one that runs keep dying on is FAILED
(IP-PROC-02) at `MAX_INTAKE_ATTEMPTS` instead of being taken up forever (redispatch.py).

Recording overlaps parsing: each read-ahead group's outcomes are recorded (status changes in one
statement per kind, `change_statuses`, then findings, VAT rows and lines in one statement per
kind) in a transaction of its own by a recording thread while the parse workers read the next
group.

Parsing overlaps the parent's own work too: through a parse server (`DocumentParser.parse_stream`)
the next read-ahead group is read and sent before the outcomes of the current one are collected,
so the server's workers have it queued while the last documents of a group are parsed and while
the parent runs OCR, hands a group to the recorder and reads the next files.

Originals are read through the upload store's bounded reader (a file over the upload limit is
refused without being read whole) and only a few at a time (`limits.INTAKE_READ_AHEAD_DOCUMENTS`
and `INTAKE_READ_AHEAD_BYTES`): a group is read just before it is sent to the parser and dropped
once its outcomes are back (and through OCR); at most two groups are held at once, each at most
half of `INTAKE_READ_AHEAD_BYTES`, so a batch of 200 large scans never sits in memory at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Protocol

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.core.chunks import chunked
from invoice_pipelines.core.lifecycle import Status, can_process
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.rules import (
    Finding,
    duplicate_number_finding,
    invoice_number_key,
    seller_key,
)
from invoice_pipelines.db.incoming_status import (
    DocumentRef,
    ErrorRecord,
    StaleDocument,
    change_chosen,
    change_status,
    error_rows,
    in_intake,
    load_refs,
    upload_sources,
)
from invoice_pipelines.db.locks import Lock, xact_lock
from invoice_pipelines.db.tables import (
    audit_log,
    incoming_discounts,
    incoming_invoice_lines,
    incoming_invoice_taxes,
    incoming_invoices,
    processing_errors,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.einvoice.classes import (
    POLICY_SETTING,
    PolicyError,
    action_for,
    checked_policy,
    decide,
    holds,
)
from invoice_pipelines.einvoice.read import ParseOutcome, failed
from invoice_pipelines.intake.domain.breakdown import breakdown_rows, line_rows
from invoice_pipelines.intake.domain.discounts import discount_rows
from invoice_pipelines.intake.domain.incoming_invoices import StatusChange, change_statuses
from invoice_pipelines.intake.domain.layout_reading import read_with_learned_layouts
from invoice_pipelines.intake.domain.mail_senders import mail_sender_doubts
from invoice_pipelines.intake.domain.notices import Notice, compose, record_notices
from invoice_pipelines.intake.domain.parse import parse_ocr_pages, unfinished_scan
from invoice_pipelines.intake.domain.peppol_inbound import sender_doubts
from invoice_pipelines.intake.domain.plausibility import payment_account_doubts
from invoice_pipelines.intake.domain.supplier_checks import check_suppliers, register_first_invoices
from invoice_pipelines.limits import (
    INTAKE_READ_AHEAD_BYTES,
    INTAKE_READ_AHEAD_DOCUMENTS,
    MAX_INTAKE_ATTEMPTS,
)
from invoice_pipelines.resources.files.uploads import (
    Uploads,
    UploadTooLarge,
    limit_or_setting,
)
from invoice_pipelines.resources.ocr.readers import OcrError, OcrReader, PageOverBudget

log = logging.getLogger(__name__)


class Parser(Protocol):
    """What intake needs from a parser: SafeParser, the DocumentParser resource, a test double.
    A parser may also have `parse_stream(batches)` (the DocumentParser resource), used when it
    does: see `parse_stream` below."""

    def parse_many(self, items: Sequence[tuple[bytes, str]]) -> list[ParseOutcome]: ...


def parse_stream(
    parser: Parser, batches: Iterable[Sequence[tuple[bytes, str]]]
) -> Iterator[list[ParseOutcome]]:
    """Each batch's outcomes in input order, batch after batch: the parser's own `parse_stream`
    when it has one (the DocumentParser resource: through a parse server, the next batch is sent
    before the outcomes of one are collected), else `parse_many` batch by batch, taking the next
    batch only once the outcomes of the one before it have been handed out (an empty batch gets
    [] without a call)."""
    streaming = getattr(parser, "parse_stream", None)
    if streaming is not None:
        return streaming(batches)
    return _batch_by_batch(parser, batches)


def _batch_by_batch(
    parser: Parser, batches: Iterable[Sequence[tuple[bytes, str]]]
) -> Iterator[list[ParseOutcome]]:
    for items in batches:
        outcomes = parser.parse_many(items) if items else []
        del items  # (not held while the caller reads the next batch)
        yield outcomes


@dataclass
class IntakeSummary:
    organization_id: int
    requested: int = 0
    processed: int = 0
    outcomes: Counter = field(default_factory=Counter)  # VALIDATED / FAILED
    formats: Counter = field(default_factory=Counter)
    skipped: dict[int, str] = field(default_factory=dict)  # document id -> why it was not processed
    stale: list[int] = field(default_factory=list)
    ocr_pages: int = 0
    seconds: float = 0.0
    failures: dict[int, str] = field(default_factory=dict)  # document id -> first error
    reviews: dict[int, str] = field(default_factory=dict)  # document id -> why it waits
    rejected: list[int] = field(default_factory=list)  # FAILED by the policy's "reject"
    # suppliers the organization's first-invoice policy registered from these documents
    registered: list[int] = field(default_factory=list)
    # the intake policy the documents were judged by (None: no document was judged), and why the
    # stored one was set aside for the defaults (None: it applied)
    policy: dict[str, str] | None = None
    policy_error: str | None = None

    def as_metadata(self) -> dict:
        return {
            "requested": self.requested,
            "processed": self.processed,
            "validated": self.outcomes.get("VALIDATED", 0),
            "needs_review": self.outcomes.get("NEEDS_REVIEW", 0),
            "failed": self.outcomes.get("FAILED", 0),
            "skipped": len(self.skipped),
            "stale": len(self.stale),
            "ocr_pages": self.ocr_pages,
            "seconds": round(self.seconds, 3),
            "formats": dict(self.formats),
        }


def _run_ocr(ocr: OcrReader | None, outcome: ParseOutcome, data: bytes) -> tuple[ParseOutcome, int]:
    if ocr is None:
        return failed(
            outcome.format, "ocr", "no OCR engine configured", digest=outcome.content_hash
        ), 0
    try:
        pages = (
            ocr.ocr_pdf(data) if outcome.format == "image-pdf" else ocr.ocr_images([lambda: data])
        )
    except PageOverBudget as exc:
        unfinished = unfinished_scan(
            outcome.format, str(exc), content_hash=outcome.content_hash, raw=outcome.raw
        )
        return unfinished, 0
    except OcrError as exc:
        return failed(outcome.format, "ocr", f"OCR failed: {exc}", digest=outcome.content_hash), 0
    result = parse_ocr_pages(pages, source_format=outcome.format, content_hash=outcome.content_hash)
    result.raw = {**outcome.raw, **result.raw, "ocr_engine": pages[0].engine if pages else None}
    return result, len(pages)


def _fields(outcome: ParseOutcome, seconds: float) -> dict:
    values: dict = {
        "format": outcome.format,
        "raw_json": outcome.raw,
        "processing_seconds": seconds,
    }
    invoice = outcome.invoice
    if invoice is not None:
        values.update(
            invoice_number=invoice.number,
            invoice_number_key=_number_key(invoice.number),
            type_code=invoice.type_code,
            seller_name=invoice.seller_name,
            seller_vat_id=invoice.seller_vat_id,
            issue_date=invoice.issue_date,
            due_date=invoice.due_date,
            service_date=invoice.service_date,
            currency=invoice.currency,
            net_total=invoice.net_total,
            tax_total=invoice.tax_total,
            gross_total=invoice.gross_total,
            amount_due=invoice.amount_due,
        )
        values["raw_json"] = {**outcome.raw, "invoice": invoice.to_json_dict()}
    return _fit(values)


def _fit(values: dict) -> dict:
    """Fit values to their columns so an odd document cannot fail the batch's transaction: long names
    are shortened, over-long codes and amounts too large for NUMERIC(18,2) are left out (raw_json
    keeps what the document says)."""
    for name, value in list(values.items()):
        column = incoming_invoices.c[name]
        length = getattr(column.type, "length", None)
        if isinstance(value, str) and length and len(value) > length:
            # names may be shortened for the column; a code (currency, type) must not be, or
            # "EURO" would turn into a valid-looking "EUR": leave it out, raw_json has it
            values[name] = value[:length] if length > 8 else None
        elif isinstance(value, Decimal) and (not value.is_finite() or abs(value) >= MAX_AMOUNT):
            values[name] = None
    return values


MAX_AMOUNT = Decimal(10) ** 16
UNPROCESSABLE_RULE = "IP-PROC-01"


# The rule id of a finding that names none (what stopped the reading is no rule of the standard):
# by the stage that found it, so every recorded finding has one (docs/intake.md lists them).
STAGE_RULES = {
    "read": "IP-READ-01",  # the file itself: empty, not a document we read, unreadable, too large
    "parse": "IP-PARSE-01",  # its XML or one of its values could not be read
    "xsd": "IP-XSD-01",
    "ocr": "IP-OCR-01",
    "extract": "IP-TEXT-01",
    "memory": "IP-PROC-03",  # the parse worker's memory limit
    "internal": UNPROCESSABLE_RULE,  # an error of ours while reading it
    "review": "IP-REV-00",
    "verdict": "IP-VERDICT-01",
}


def _rule_of(finding: Finding) -> str:
    if finding.rule:
        return finding.rule
    stage = finding.stage or "rules"
    return STAGE_RULES.get(stage) or f"IP-{stage.upper()[:16]}-00"


def _records(findings: Sequence[Finding]) -> list[ErrorRecord]:
    return [ErrorRecord(f.stage or "rules", f.message, _rule_of(f), f.severity) for f in findings]


def _number_key(number: str | None) -> str | None:
    """The stored `invoice_number_key` of a document's number (cut to the column, like _fit)."""
    key = invoice_number_key(number)
    return None if key is None else key[: incoming_invoices.c.invoice_number_key.type.length]


def _seller_key(key: str, vat_id: str | None, name: str | None) -> tuple[str, str]:
    """IP-DUP-01: the same invoice number key from the same seller (core.rules.seller_key)."""
    return (key, seller_key(vat_id, name))


def _duplicates(conn, organization_id: int, batch: dict[int, ParseOutcome]) -> dict[int, Finding]:
    """Same invoice number from the same supplier as an earlier document (or an earlier one in
    this batch): one indexed query per 500 numbers, by the stored `invoice_number_key`."""
    wanted = {
        doc_id: _seller_key(key, o.invoice.seller_vat_id, o.invoice.seller_name)
        for doc_id, o in batch.items()
        if o.status in ("VALIDATED", "NEEDS_REVIEW")
        and o.invoice is not None
        and (key := _number_key(o.invoice.number)) is not None
    }
    if not wanted:
        return {}
    seen: dict[tuple[str, str], int] = {}
    for key_chunk in chunked(sorted({k[0] for k in wanted.values()}), 500):
        rows = conn.execute(
            select(
                incoming_invoices.c.id,
                incoming_invoices.c.invoice_number_key,
                incoming_invoices.c.seller_vat_id,
                incoming_invoices.c.seller_name,
            ).where(
                incoming_invoices.c.organization_id == organization_id,
                incoming_invoices.c.invoice_number_key.in_(key_chunk),
                incoming_invoices.c.status.in_(
                    [
                        Status.PARSED.value,
                        Status.NEEDS_REVIEW.value,
                        Status.VALIDATED.value,
                        Status.EXPORTED.value,
                    ]
                ),
            )
        )
        for row in rows:
            key = _seller_key(row.invoice_number_key, row.seller_vat_id, row.seller_name)
            seen[key] = min(seen.get(key, row.id), row.id)
    found: dict[int, Finding] = {}
    for doc_id in sorted(wanted):
        key = wanted[doc_id]
        earlier = seen.get(key)
        if earlier is not None and earlier != doc_id:
            invoice = batch[doc_id].invoice
            found[doc_id] = duplicate_number_finding(
                invoice.number, invoice.seller_name or invoice.seller_vat_id, earlier
            )
        else:
            seen[key] = doc_id
    return found


def process_documents(
    engine: Engine,
    store: Uploads,
    organization: Organization,
    document_ids: Sequence[int],
    *,
    parser: Parser,
    ocr: OcrReader | None,
    max_bytes: int | None = None,
) -> IntakeSummary:
    """Parse, validate and record the given documents of one organization; `max_bytes` is the
    upload limit (default INVOICE_PIPELINES_MAX_UPLOAD_BYTES).

    The documents go through the parser a read-ahead group at a time; each group's outcomes are
    recorded in a transaction of its own by a recording thread while the next group is parsed,
    so the parse workers do not wait for the database (nor the database for them)."""
    started = time.perf_counter()
    limit = limit_or_setting(max_bytes)
    summary = IntakeSummary(organization.id, requested=len(set(document_ids)))
    # made before the documents are taken up: what records their outcomes holds the organization
    # (its policy, its name for the notices), and the steps below need only its rows
    recorder = _Recorder(engine, organization, summary)
    with tenant_transaction(engine, organization, write=True) as conn:
        refs = load_refs(conn, organization.id, document_ids)
        for doc_id in sorted(set(int(i) for i in document_ids)):
            ref = refs.get(doc_id)
            if ref is None:
                summary.skipped[doc_id] = "no such document in this organization"
            elif not can_process(ref.status):
                summary.skipped[doc_id] = (
                    f"status is {ref.status}; only UPLOADED or CREATED documents are processed"
                )
        work = _take_up(conn, [refs[i] for i in sorted(refs) if i not in summary.skipped], summary)
        sources = upload_sources(conn, organization.id, [ref.id for ref in work])

    with recorder:
        # groups read (lazily, as the parser takes them) and not yet recorded: at most two
        pending: deque[_Group] = deque()

        def batches() -> Iterator[list[tuple[bytes, str]]]:
            for refs in _read_ahead_groups(work, sources):
                group = _read_group(store, refs, sources, limit)
                pending.append(group)
                group.sent_at = time.perf_counter()
                yield group.items

        stream = parse_stream(parser, batches())
        try:
            handled = 0.0  # when the previous group's outcomes had been handled
            for parsed in stream:
                collected = time.perf_counter()
                group = pending.popleft()
                # the group's share of the parse's wall time: from its sending (or, when it was
                # sent before, from the end of the previous group's OCR and hand-over) to its
                # outcomes; OCR counts apart (ocr_seconds), as before
                per_doc = (
                    (collected - max(group.sent_at, handled)) / len(group.items)
                    if group.items
                    else 0.0
                )
                _take_outcomes(group, parsed, ocr, summary)  # drops the group's originals
                recorder.record(group.refs, group.outcomes, per_doc)
                del group, parsed
                handled = time.perf_counter()
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # (given up early: the parser is free for the next caller at once)
    summary.seconds = time.perf_counter() - started
    return summary


ATTEMPTS_RULE = "IP-PROC-02"


def _take_up(conn, waiting: list[DocumentRef], summary: IntakeSummary) -> list[DocumentRef]:
    """This run's attempt on each waiting document, counted and committed before any is read (so
    a run that dies still counted it); a document earlier runs took up MAX_INTAKE_ATTEMPTS times
    without recording an outcome is FAILED (IP-PROC-02) instead. The documents to read."""
    if not waiting:
        return []
    t = incoming_invoices.c
    attempts: dict[int, int] = {}
    for chunk in chunked([ref.id for ref in waiting], 1000):
        attempts.update(conn.execute(select(t.id, t.intake_attempts).where(t.id.in_(chunk))).all())
    spent = [ref for ref in waiting if attempts.get(ref.id, 0) >= MAX_INTAKE_ATTEMPTS]
    work = [ref for ref in waiting if attempts.get(ref.id, 0) < MAX_INTAKE_ATTEMPTS]
    for chunk in chunked([ref.id for ref in work], 1000):
        conn.execute(
            update(incoming_invoices)
            .where(t.organization_id == waiting[0].organization_id, t.id.in_(chunk))
            .values(intake_attempts=t.intake_attempts + 1)
        )
    message = (
        f"{MAX_INTAKE_ATTEMPTS} intake runs took this document up and ended before its outcome "
        "was recorded; it is not taken up again on its own (retry_failed_invoices_job with its id "
        "tries it once more)"
    )
    moved, _ = change_statuses(
        conn,
        [
            StatusChange(ref, Status.FAILED, errors=[ErrorRecord("intake", message, ATTEMPTS_RULE)])
            for ref in spent
        ],
    )
    for doc_id in moved:
        log.warning("document %s FAILED (%s): %s", doc_id, ATTEMPTS_RULE, message)
        summary.processed += 1
        summary.outcomes["FAILED"] += 1
        summary.failures[doc_id] = message
    return work


class _Recorder:
    """Records groups of outcomes in a thread of its own, in the order given, each group in one
    transaction (`_record_group`), while the caller parses the next group. What was recorded
    stays recorded if a later group fails; the first error is raised in the caller's thread (at
    its next `record`, or when the block ends) and no further group is recorded."""

    def __init__(self, engine: Engine, organization: Organization, summary: IntakeSummary) -> None:
        self.engine = engine
        self.organization = organization
        self.summary = summary
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="intake-recorder", daemon=True)

    def __enter__(self) -> _Recorder:
        self._thread.start()
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is not None:
            self._error = self._error or exc  # the caller failed: record nothing more
        self._queue.put(None)
        self._thread.join()
        if kind is None and self._error is not None:
            raise self._error

    def record(self, group: list[DocumentRef], outcomes: dict, per_doc: float) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((group, outcomes, per_doc))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue
            try:
                self._record_group(*item)
            except BaseException as exc:  # raised again in the caller's thread
                self._error = exc

    def _record_group(
        self, work: list[DocumentRef], outcomes: dict[int, ParseOutcome], per_doc: float
    ) -> None:
        write = partial(
            _write_outcomes,
            self.engine,
            self.organization,
            work,
            outcomes,
            per_doc,
            self.summary,
        )
        try:
            write(savepoints=False)
        except Exception as exc:
            # some document's values do not fit the database (or recording them raised anything
            # else): redo the group with one savepoint per document, so that document fails with
            # the reason and the others are recorded
            log.warning(
                "recording the batch failed (%s); recording document by document",
                getattr(exc, "orig", None) or f"{type(exc).__name__}: {exc}",
            )
            write(savepoints=True)


def _read_ahead_groups(work: list[DocumentRef], sources: dict[int, tuple]) -> list[list]:
    """The documents in read-ahead groups: at most INTAKE_READ_AHEAD_DOCUMENTS each, and by their
    recorded sizes at most half of INTAKE_READ_AHEAD_BYTES, because two groups are in memory at
    once (the one whose outcomes are collected and the next one, already sent to the parser):
    together they stay within INTAKE_READ_AHEAD_BYTES. A single file larger than half goes alone
    (two of those, possible only with an upload limit above half the read-ahead, may pass it)."""
    group_bytes = INTAKE_READ_AHEAD_BYTES // 2
    groups: list[list[DocumentRef]] = []
    group: list[DocumentRef] = []
    held = 0
    for ref in work:
        size = sources.get(ref.id, (None, None, None))[2] or 0
        if group and (len(group) >= INTAKE_READ_AHEAD_DOCUMENTS or held + size > group_bytes):
            groups.append(group)
            group, held = [], 0
        group.append(ref)
        held += size
    if group:
        groups.append(group)
    return groups


@dataclass
class _Group:
    """A read-ahead group on its way through the parser: its documents, the originals of those
    that could be read (dropped once its outcomes are back) and the outcomes so far."""

    refs: list[DocumentRef]
    readable: list[DocumentRef]
    items: list[tuple[bytes, str]]
    outcomes: dict[int, ParseOutcome]  # by document id; first those that could not be read
    sent_at: float = 0.0


def _read_group(
    store: Uploads, refs: list[DocumentRef], sources: dict[int, tuple], limit: int
) -> _Group:
    """Read the originals of a group; a file that cannot be read is FAILED with the reason."""
    group = _Group(refs, [], [], {})
    for ref in refs:
        key, filename, size = sources.get(ref.id, (None, None, None))
        try:
            data = _read_original(store, key, size, limit)
        except Exception as exc:  # OSError and whatever else a store raises: this file's
            group.outcomes[ref.id] = failed("unknown", "read", _unread_reason(exc), digest="")
            continue
        group.items.append((data, filename or key))
        group.readable.append(ref)
    return group


def _take_outcomes(
    group: _Group, parsed: list[ParseOutcome], ocr: OcrReader | None, summary: IntakeSummary
) -> None:
    """The parser's outcomes of a group (OCR for those that need it) into `group.outcomes`;
    the group's originals go."""
    for ref, (data, _), outcome in zip(group.readable, group.items, parsed, strict=True):
        if outcome.status == "NEEDS_OCR":
            t0 = time.perf_counter()
            try:
                outcome, pages = _run_ocr(ocr, outcome, data)
            except Exception as exc:  # a page the reader of OCR text trips over: this one's
                log.warning("OCR of document %s raised %s: %s", ref.id, type(exc).__name__, exc)
                outcome = failed(
                    outcome.format,
                    "ocr",
                    f"the OCR text could not be read ({type(exc).__name__}: {str(exc)[:200]})",
                    digest=outcome.content_hash,
                )
                pages = 0
            summary.ocr_pages += pages
            outcome.raw["ocr_seconds"] = round(time.perf_counter() - t0, 3)
        group.outcomes[ref.id] = outcome
    group.items = []


class OriginalChanged(OSError):
    """The archived original is not the file that was registered: other size, other bytes."""


def _read_original(store: Uploads, key: str | None, size: int | None, limit: int) -> bytes:
    """The archived original, read within what was recorded at registration: the read-ahead
    groups are sized by the recorded sizes, so a file swapped for a larger one afterwards is
    refused after reading at most one byte more than recorded, never read whole."""
    if key is None:
        raise FileNotFoundError("no upload is linked to this document")
    if size is not None and size > limit:
        # the size recorded at registration already says no: the file is not even opened
        raise UploadTooLarge(size, limit)
    if size is None:
        return store.read(key, max_bytes=limit)
    try:
        data = store.read(key, max_bytes=size)
    except UploadTooLarge:
        raise OriginalChanged(
            f"the archived original is larger than the {size} bytes registered; it changed "
            "after it was received and was not read"
        ) from None
    if len(data) != size:
        raise OriginalChanged(
            f"the archived original has {len(data)} bytes, not the {size} bytes registered; it "
            "changed after it was received"
        )
    return data


def _unread_reason(exc: Exception) -> str:
    if isinstance(exc, UploadTooLarge | OriginalChanged):
        return f"{exc}; the original is kept"
    if not isinstance(exc, OSError):
        return f"original upload could not be read: {type(exc).__name__}: {str(exc)[:200]}"
    return f"original upload could not be read: {exc}"


def _write_outcomes(
    engine: Engine,
    organization: Organization,
    work: list[DocumentRef],
    outcomes: dict[int, ParseOutcome],
    per_doc: float,
    summary: IntakeSummary,
    *,
    savepoints: bool,
) -> None:
    organization_id = organization.id
    attempt = IntakeSummary(organization_id)
    with tenant_transaction(engine, organization, write=True) as conn:
        # the duplicate-number check reads, then writes: two runs of one organization must not
        # interleave there, or both copies of a supplier invoice could end VALIDATED
        xact_lock(conn, Lock.INTAKE, organization_id)
        # a registered supplier's page read with the layout a person confirmed for it, first
        outcomes = read_with_learned_layouts(conn, organization, outcomes)
        duplicates = _duplicates(conn, organization_id, {ref.id: outcomes[ref.id] for ref in work})
        policy, summary.policy_error = organization_policy(organization)
        summary.policy = policy
        # a Peppol envelope's sender that is not the seller holds it too (peppol_inbound.py)
        outcomes = sender_doubts(conn, {ref.id: outcomes[ref.id] for ref in work})
        # an IBAN or BIC that fails its form holds it (plausibility.py, IP-PAY-01/02)
        outcomes = payment_account_doubts(outcomes)
        # who sent each document, by the supplier register: what differs holds it for a person
        outcomes, suppliers = check_suppliers(conn, organization, outcomes)
        # an e-mailed document's From, by the register: unknown or another address holds it
        outcomes = mail_sender_doubts(conn, outcomes, suppliers)
        accepted: set[int] = set()
        if savepoints:
            for ref in work:
                outcome = outcomes[ref.id]
                seconds = per_doc + float(outcome.raw.get("ocr_seconds", 0.0))
                try:
                    try:
                        with conn.begin_nested():
                            decision = _record(
                                conn, ref, outcome, seconds, duplicates.get(ref.id), attempt, policy
                            )
                            if decision.target[-1] == Status.VALIDATED:
                                accepted.add(ref.id)
                                attempt.registered += register_first_invoices(
                                    conn, organization_id, suppliers, {ref.id}, accepted
                                )
                            record_notices(
                                conn,
                                organization_id,
                                _notices(organization.name, [ref], outcomes, {ref.id: decision}),
                            )
                    except StaleDocument:
                        raise
                    except Exception as exc:
                        with conn.begin_nested():
                            _record_unstorable(conn, ref, outcome, exc, attempt)
                except StaleDocument as exc:
                    log.warning("document %s: %s", ref.id, exc)
                    attempt.stale.append(ref.id)
        else:
            # the status changes of the whole group in one statement per kind, then the rows
            # beside them (findings, VAT breakdown, lines) in one statement per kind, in
            # document order; a stale document writes nothing
            decisions = {
                ref.id: _decide_safely(
                    ref, outcomes[ref.id], per_doc, duplicates.get(ref.id), policy
                )
                for ref in work
            }
            moved, stale = change_statuses(
                conn,
                [
                    StatusChange(ref, decisions[ref.id].target, fields=decisions[ref.id].fields)
                    for ref in work
                ],
            )
            rows = _BatchRows()
            for ref in work:
                decision = decisions[ref.id]
                if ref.id in stale:
                    log.warning("document %s: %s", ref.id, stale[ref.id])
                    attempt.stale.append(ref.id)
                    continue
                rows.add(moved[ref.id], decision.findings, decision.beside)
                _count(attempt, ref, outcomes[ref.id], decision)
                if decision.target[-1] == Status.VALIDATED:
                    accepted.add(ref.id)
            rows.write(conn)
            attempt.registered += register_first_invoices(
                conn, organization_id, suppliers, accepted
            )
            record_notices(
                conn,
                organization_id,
                _notices(organization.name, work, outcomes, decisions, stale),
            )
    summary.processed += attempt.processed
    summary.outcomes.update(attempt.outcomes)
    summary.formats.update(attempt.formats)
    summary.failures.update(attempt.failures)
    summary.reviews.update(attempt.reviews)
    summary.rejected.extend(attempt.rejected)
    summary.stale.extend(attempt.stale)
    summary.registered.extend(attempt.registered)


def _unprocessable_message(exc: BaseException) -> str:
    """One line on why a document's outcome could not be written: the database's refusal, or
    the error met on the way (bounded: an exception may quote the document)."""
    if isinstance(exc, DBAPIError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"the values read from this document cannot be stored: {reason}"[:500]
    lines = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
    return f"this document could not be processed ({detail}); the others were not affected"


def _record_unstorable(
    conn, ref: DocumentRef, outcome: ParseOutcome, exc: BaseException, summary
) -> None:
    decision = _unprocessable(ref, outcome, exc)
    change_status(conn, ref, decision.target, fields=decision.fields, errors=decision.findings)
    _count(summary, ref, outcome, decision)


def _unprocessable(ref: DocumentRef, outcome: ParseOutcome, exc: BaseException) -> _Decision:
    """FAILED with IP-PROC-01 and the error in one line. What was refused or raised is somewhere
    in the extracted values: none of them are kept."""
    message = _unprocessable_message(exc)
    log.warning("document %s FAILED (%s): %s", ref.id, UNPROCESSABLE_RULE, message)
    fields = {
        "format": str(outcome.format)[:32],
        "raw_json": {"filename": outcome.raw.get("filename"), "not_stored": message},
    }
    return _Decision(
        [Status.FAILED], fields, [ErrorRecord("record", message, UNPROCESSABLE_RULE)], message
    )


@dataclass
class _Decision:
    """What a document's outcome becomes: its status path, fields, findings and first error."""

    target: list[Status]
    fields: dict
    findings: list[ErrorRecord]
    failure: str | None
    # why it waits for a person (None: it does not); the rejection's reasons for the supplier
    review: str | None = None
    rejected: bool = False
    # the rows written beside the document (VAT breakdown, lines, discount steps), built with the
    # decision so that a value that cannot become a row fails this document, not its batch
    beside: tuple[list[dict], list[dict], list[dict]] = field(default_factory=lambda: ([], [], []))


def organization_policy(organization: Organization) -> tuple[dict[str, str], str | None]:
    """The organization's intake policy (`settings["intake_policy"]`) over the defaults, and why
    its stored policy was set aside (None: it applies): a policy that names an unknown class or
    action counts as the defaults, with a warning in the log (the command that sets it refuses
    such a policy). Taken from the value the run was given, once per group of documents, it is
    what the run's summary reports (`IntakeSummary.policy`), so nothing checks it a second time."""
    try:
        return checked_policy(organization.settings.get(POLICY_SETTING)), None
    except PolicyError as exc:
        log.warning("organization %s: %s; the default policy applies", organization.slug, exc)
        return checked_policy(None), str(exc)


def _notices(
    organization: str, work: Sequence[DocumentRef], outcomes, decisions, stale=()
) -> dict[int, Notice]:
    """The supplier notice of each document the policy rejected (not of a stale one)."""
    notices = {}
    for ref in work:
        decision = decisions.get(ref.id)
        if decision is None or not decision.rejected or ref.id in stale:
            continue
        outcome = outcomes[ref.id]
        invoice = outcome.invoice
        label = outcome.verdict.label if outcome.verdict is not None else "not readable"
        try:
            notices[ref.id] = compose(
                organization,
                None if invoice is None else invoice.number,
                outcome.raw.get("filename"),
                label,
                outcome.errors,
                None if invoice is None else invoice.seller_email,
                () if outcome.verdict is None else outcome.verdict.rules,
            )
        except Exception as exc:  # the document stays FAILED; only its notice is not written
            log.warning("document %s: no supplier notice (%s: %s)", ref.id, type(exc).__name__, exc)
    return notices


def _beside_rows(ref: DocumentRef, raw: dict | None) -> tuple[list[dict], list[dict], list[dict]]:
    invoice = (raw or {}).get("invoice")
    if not isinstance(invoice, dict):
        return [], [], []
    return (
        breakdown_rows(ref.organization_id, ref.id, invoice),
        line_rows(ref.organization_id, ref.id, invoice),
        discount_rows(ref.organization_id, ref.id, invoice),
    )


def _decide_safely(
    ref: DocumentRef,
    outcome: ParseOutcome,
    per_doc: float,
    duplicate: Finding | None,
    policy: dict[str, str],
) -> _Decision:
    """`_decide` with the rows beside the document built, for a group: whatever one document's
    values raise on the way (a date past the calendar, a number no column holds) makes that
    document FAILED with IP-PROC-01 and the reason; the group goes on."""
    try:
        seconds = per_doc + float(outcome.raw.get("ocr_seconds", 0.0))
        decision = _decide(ref, outcome, seconds, duplicate, policy)
        decision.beside = _beside_rows(ref, decision.fields.get("raw_json"))
        return decision
    except Exception as exc:
        return _unprocessable(ref, outcome, exc)


def _decide(
    ref: DocumentRef,
    outcome: ParseOutcome,
    seconds: float,
    duplicate: Finding | None,
    policy: dict[str, str] | None = None,
) -> _Decision:
    """The organization's policy applied to one outcome: accepted (VALIDATED, its errors kept
    as findings), held for review (NEEDS_REVIEW) or rejected (FAILED)."""
    policy = policy or checked_policy(None)
    fields = _fields(outcome, seconds)
    judged = outcome.verdict
    if judged is not None:
        fields["einvoice_class"] = judged.klass.value
        fields["einvoice_reason"] = None if judged.reason is None else judged.reason.value
    everything = [*outcome.errors, *outcome.warnings, *outcome.review]
    if outcome.invoice is None or (judged is None and outcome.status == "FAILED"):
        errors = outcome.errors or [
            Finding(None, "the document could not be read", "error", "parse")
        ]
        rejected = judged is not None and action_for(judged, policy) == "reject"
        return _Decision(
            [Status.FAILED], fields, _records(errors), errors[0].message, None, rejected
        )
    if duplicate is not None:
        # read fine, but the same invoice was received before: keep the fields, fail the check
        return _Decision(
            [Status.PARSED, Status.FAILED], fields, _records([duplicate]), duplicate.message
        )
    doubts = [f for f in outcome.review if holds(policy, f.stage)]
    if not outcome.review and outcome.status == "NEEDS_REVIEW":
        # the parser holds it without saying why in a finding: still never booked unseen
        doubts = [Finding(None, "the reading needs a person's look", "warning", "review")]
    if judged is None:
        # an outcome from before the verdict: no class to decide by, but a doubt still holds it
        if doubts:
            return _Decision(
                [Status.PARSED, Status.NEEDS_REVIEW], fields, _records(everything), None,
                doubts[0].message,
            )  # fmt: skip
        return _Decision([Status.PARSED, Status.VALIDATED], fields, _records(everything), None)
    action = decide(
        judged,
        policy,
        own_errors=any(f.stage == "rules" for f in outcome.errors),
        doubt_stages=[f.stage for f in doubts],
    )
    if action == "reject":
        errors = outcome.errors or [Finding(None, judged.label, "error", "verdict")]
        return _Decision(
            [Status.PARSED, Status.FAILED], fields, _records(everything), errors[0].message,
            None, True,
        )  # fmt: skip
    if action == "review":
        why = doubts[0].message if doubts else f"held for review: {judged.label}"
        return _Decision(
            [Status.PARSED, Status.NEEDS_REVIEW], fields, _records(everything), None, why
        )
    return _Decision([Status.PARSED, Status.VALIDATED], fields, _records(everything), None)


def _count(summary: IntakeSummary, ref: DocumentRef, outcome: ParseOutcome, decision) -> None:
    if decision.failure is not None:
        summary.failures[ref.id] = decision.failure
    if decision.review is not None:
        summary.reviews[ref.id] = decision.review
    if decision.rejected:
        summary.rejected.append(ref.id)
    summary.processed += 1
    summary.formats[outcome.format] += 1
    if ref.id in summary.failures:
        summary.outcomes["FAILED"] += 1
    elif decision.review is not None:
        summary.outcomes["NEEDS_REVIEW"] += 1
    else:
        summary.outcomes["VALIDATED"] += 1


def _record(
    conn,
    ref: DocumentRef,
    outcome: ParseOutcome,
    seconds: float,
    duplicate: Finding | None,
    summary: IntakeSummary,
    policy: dict[str, str] | None = None,
) -> _Decision:
    """Record one document's outcome with its findings, VAT breakdown and lines (document by
    document, each in a savepoint: after a group could not be recorded at once)."""
    decision = _decide(ref, outcome, seconds, duplicate, policy)
    decision.beside = _beside_rows(ref, decision.fields.get("raw_json"))
    moved = change_status(conn, ref, decision.target, fields=decision.fields)
    rows = _BatchRows()
    rows.add(moved, decision.findings, decision.beside)
    rows.write(conn)
    _count(summary, ref, outcome, decision)
    return decision


class _BatchRows:
    """The rows a batch writes beside its documents' status changes: the findings of each change,
    and each document's VAT breakdown, lines and discount steps, replacing those of an earlier
    reading. Written in one statement per kind (a batch of 200 would otherwise cost about a
    thousand)."""

    def __init__(self) -> None:
        self.documents: list[int] = []
        self.findings: list[dict] = []
        self.taxes: list[dict] = []
        self.lines: list[dict] = []
        self.discounts: list[dict] = []

    def add(self, ref: DocumentRef, findings: Sequence[ErrorRecord], beside: tuple) -> None:
        """`ref` as it is after its status change (its version numbers the findings); `beside`
        its VAT breakdown, lines and discount steps (`_beside_rows`)."""
        self.documents.append(ref.id)
        if findings:
            self.findings.extend(error_rows(ref, ref.processing_version, findings))
        taxes, lines, discounts = beside
        self.taxes.extend(taxes)
        self.lines.extend(lines)
        self.discounts.extend(discounts)

    def write(self, conn) -> None:
        for chunk in chunked(self.documents, 1000):
            for table in (
                incoming_invoice_taxes,
                incoming_invoice_lines,
                incoming_discounts,
            ):
                conn.execute(delete(table).where(table.c.incoming_invoice_id.in_(chunk)))
        for table, rows in (
            (processing_errors, self.findings),
            (incoming_invoice_taxes, self.taxes),
            (incoming_invoice_lines, self.lines),
            (incoming_discounts, self.discounts),
        ):
            if rows:
                conn.execute(insert(table), rows)


def retry_documents(
    engine: Engine,
    organization_id: int,
    document_ids: Sequence[int] | None,
    *,
    requested_by: str = "unknown",
) -> tuple[list[int], dict[int, str]]:
    """FAILED -> CREATED for the given documents, or for every FAILED one when ids is None.

    The audit log records who asked for it and which documents it moved.
    """
    with tenant_transaction(engine, organization_id, write=True) as conn:
        if document_ids is None:
            document_ids = list(
                conn.execute(
                    select(incoming_invoices.c.id).where(
                        incoming_invoices.c.organization_id == organization_id,
                        in_intake([Status.FAILED]),
                    )
                ).scalars()
            )
        retried, refused = change_chosen(
            conn, organization_id, document_ids, Status.FAILED, Status.CREATED, verb="retried"
        )
        for chunk in chunked(retried, 1000):
            conn.execute(
                update(incoming_invoices)
                .where(
                    incoming_invoices.c.organization_id == organization_id,
                    incoming_invoices.c.id.in_(chunk),
                )
                .values(intake_attempts=0)
            )
        conn.execute(
            insert(audit_log).values(
                organization_id=organization_id,
                created_by=requested_by,
                action="intake.retry",
                entity_type="incoming_invoice",
                details={"retried": retried, "refused": {str(k): v for k, v in refused.items()}},
            )
        )
    return retried, refused
