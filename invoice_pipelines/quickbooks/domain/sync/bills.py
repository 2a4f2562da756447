"""Incoming invoices pushed to QBO as bills, exactly once, with their documents attached.

`push_bills` works the organization's bill queue (bill_queue.py):

1. Rows a dead run left `sending` are pending again, marked `unknown` (under the organization's
   lease at once, else once SENDING_STALE_AFTER old): before anything of theirs is sent again,
   QBO is asked what the dead run did (the bill by DocNumber, vendor and our private note; the
   attachments by the bill and file name), and what it finds is linked.
2. Each row is checked first, in order: still the document's (else `failed`, superseded), its
   supplier's vendor (vendors.py: the one the supplier register links, or whose full VAT id is
   the registered supplier's, or created for a registered supplier where the organization
   allows; a name match only waits for a person to link it), the body
   (bill_body.py: account, tax codes, rate, dates); a row that cannot go waits (`failed` with
   the finding and its code, taken again each run), the others go on.
3. The rows that can go are claimed (`pending` -> `sending`, committed before the request; a row
   another run claimed first is left to it) and sent by a few workers at once, each in three
   steps, each committed on its own, so a run that dies between them resumes where it stopped:
   the bill (created with a requestid per document version, or updated when the document was
   pushed at another version and its body changed: the mapping `qbo_bills` records QBO's id,
   SyncToken, total, the version and a fingerprint of the body), its files (bill_documents.py,
   each uploaded once with its own requestid, the Attachable's id recorded), and the end: the
   document VALIDATED -> EXPORTED (lifecycle, optimistic lock) and the row `pushed`, in one
   transaction. `qbo_bills` is where the document went (QuickBooks, the bill's id and when).
4. A 6140 (a company that refuses a vendor's bill number twice) links our document to the bill
   QBO names when it is the same bill (vendor and total), otherwise it is a conflict for a person.
5. `delete` rows: a document back in review (a person reopened it) or FAILED (a reprocessing
   that failed, a person's rejection) after its bill was pushed holds its bill: the bill is read
   from QBO first (gone already: recorded; what a dead run did is seen there too), then deleted
   when nothing is paid of it (QBO has no void for bills); the document confirmed again is
   VALIDATED at a new version and its push creates the bill anew, with that version's requestid.
   A bill QBO shows paid or partly paid (Balance below TotalAmt, or a BillPayment in LinkedTxn)
   is never deleted: the row is a `conflict` (code `paid`) with a sentence saying what a person
   does, and a `sync_conflicts` row; one QBO refuses to delete is held the same way.
6. Caps: a document with more lines than a bill takes here (bill_body.MAX_BILL_LINES) waits
   (`lines`) before its vendor is looked for, never booked in part; a file over the size QBO
   takes (bill_documents.MAX_ATTACHMENT_BYTES) is not uploaded, and the bill's record
   (`qbo_bills.attachments`) says which file was skipped and why, as for a readable PDF that
   could not be written.

429, 5xx and timeouts are retried by the client with the same requestid; one that outlasts the
retries leaves its row `sending` for step 1 of the next run (the unknown outcome of this queue).
Anything else that breaks a claimed row's work off (our database refusing what QBO answered, a
bug) leaves it `failed` with the code `unknown` and the error: never `sending`, never sent again
on its own, and looked up in QBO first when a person retries it. While the organization's new
QuickBooks company is not imported (company.py), no row is sent: each waits (`company`).
Every move of a row is a transition of the shared outbox (`invoice_pipelines.outbox`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, insert, select, update

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.incoming_status import DocumentRef, StaleDocument, change_status
from invoice_pipelines.db.tables import incoming_invoices, qbo_bill_queue, qbo_bills
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.outbox import claim, finish, refuse
from invoice_pipelines.quickbooks.domain.client import QboClient, quote, request_id
from invoice_pipelines.quickbooks.domain.company import import_pending
from invoice_pipelines.quickbooks.domain.errors import (
    DuplicateDocNumber,
    DuplicateName,
    ObjectNotFound,
    QboError,
    StaleObject,
)
from invoice_pipelines.quickbooks.domain.payables import AttachmentLink, QboExpense, TermDraft
from invoice_pipelines.quickbooks.domain.payables_settings import PayablesSettings, read_settings
from invoice_pipelines.quickbooks.domain.sync.bill_body import (
    MAX_BILL_LINES,
    BillBody,
    Waits,
    build_bill,
    marker,
    over_line_cap,
    term_of,
)
from invoice_pipelines.quickbooks.domain.sync.bill_documents import (
    MAX_ATTACHMENT_BYTES,
    Attachment,
    attachments_of,
    kinds_for,
)
from invoice_pipelines.quickbooks.domain.sync.bill_queue import (
    BILLS,
    COMPANY,
    DELETE,
    PAID,
    SENDING_STALE_AFTER,
    SUPERSEDED,
    UNKNOWN,
    WAITING,
    Candidate,
    enqueue_bills,
    load_candidates,
    skipped_files,
)
from invoice_pipelines.quickbooks.domain.sync.common import (
    SyncCounts,
    held_lease,
    mark_dead_sending,
    record_conflict,
)
from invoice_pipelines.quickbooks.domain.sync.vendors import (
    VendorResolver,
    home_currency,
    supplier_of,
)
from invoice_pipelines.resources.workers import stop_signal
from invoice_pipelines.resources.workers.thread_pools import stopping_pool


def letter_pdf(writer) -> Callable | None:
    """`write_letter(author, head, title, body, language) -> PDF bytes` through a `letter_writer`
    (the plain `Letters` a run gets, or a function that makes one, as the console script hands
    it), made at its first use."""
    if writer is None:
        return None
    made: list = []

    def write(author: str, head: tuple, title: str, body: tuple, language: str) -> bytes:
        from invoice_pipelines.resources.messaging.letters import Letter

        if not made:
            made.append(writer() if callable(writer) and not hasattr(writer, "write") else writer)
        letter = Letter(author=author, title=title, head=head, body=body, language=language)
        return made[0].write(letter).pdf

    return write


class Terms:
    """The QBO Terms of the suppliers' discounts: found by name, created once when missing."""

    def __init__(self, client: QboClient, organization_id: int) -> None:
        self.client = client
        self.organization_id = organization_id
        self.known: dict[str, str] = {}
        self._lock = threading.Lock()

    def id_of(self, draft: TermDraft) -> str:
        with self._lock:
            if draft.name not in self.known:
                self.known[str(draft.name)] = self._find_or_create(draft)
            return self.known[str(draft.name)]

    def _find(self, draft: TermDraft) -> str | None:
        for term in self.client.find_terms(f"Name = {quote(str(draft.name))}"):
            same = (term.due_days, term.discount_percent, term.discount_days) == (
                draft.due_days,
                draft.discount_percent,
                draft.discount_days,
            )
            if same and term.active:
                return term.id
        return None

    def _find_or_create(self, draft: TermDraft) -> str:
        found = self._find(draft)
        if found is not None:
            return found
        rid = request_id("term", self.organization_id, draft.name, draft.discount_percent)
        try:
            return self.client.create_term(draft, requestid=rid).id
        except DuplicateName:
            # another term has the name with other days: ours is that name, marked as ours
            renamed = TermDraft(
                name=f"{draft.name} ip"[:31],
                due_days=draft.due_days,
                discount_percent=draft.discount_percent,
                discount_days=draft.discount_days,
            )
            found = self._find(renamed)
            if found is not None:
                return found
            return self.client.create_term(renamed, requestid=request_id(rid, "renamed")).id


class BillPusher:
    """Pushes one organization's bill queue through one client."""

    def __init__(
        self,
        engine: Engine,
        organization: Organization,
        client: QboClient,
        *,
        read_upload: Callable[[str], bytes] | None = None,
        write_letter: Callable | None = None,
        workers: int = 4,
        documents: list[int] | None = None,
        retry_failed: bool = False,
        max_lines: int = MAX_BILL_LINES,
        max_attachment_bytes: int = MAX_ATTACHMENT_BYTES,
    ) -> None:
        self.engine = engine
        self.organization = organization
        self.organization_id = organization.id
        self.client = client
        self.read_upload = read_upload
        self.write_letter = write_letter
        self.workers = workers
        self.documents = documents
        self.retry_failed = retry_failed
        self.max_lines = max_lines
        self.max_attachment_bytes = max_attachment_bytes
        self.counts = SyncCounts()
        self._lock = threading.Lock()
        self.lease = None
        self.language = "en"  # of the readable PDFs: the organization's (German or English)

    # -- the run --------------------------------------------------------------------------

    def run(self) -> SyncCounts:
        self.lease = held_lease(self.organization_id)
        enqueue_bills(self.engine, self.organization_id, self.documents)
        self.reconcile_dead()
        wanted = BILLS.claimable(retry_failed=self.retry_failed)
        if self.documents is not None:
            wanted = and_(wanted, qbo_bill_queue.c.incoming_invoice_id.in_(self.documents))
        waits = import_pending(self.engine, self.organization_id)
        if waits is not None:
            self._wait_for_import(wanted, waits)
            return self.counts
        candidates = load_candidates(self.engine, self.organization_id, wanted)
        if not candidates:
            return self.counts
        org = self.organization
        settings = read_settings(self.engine, self.organization_id)
        self.language = "de" if org.country == "DE" else "en"
        home = home_currency(self.client, org.currency)
        resolver = VendorResolver(
            self.engine,
            self.organization,
            self.client,
            self.counts.of("vendors"),  # the vendors it creates are not bills
            create=settings.create_vendors,
            home=home,
        )
        terms = Terms(self.client, self.organization_id)
        pushes: list[tuple[Candidate, BillBody]] = []
        deletes: list[Candidate] = []
        for candidate in candidates:
            stale = candidate.superseded()
            if stale is not None:
                if candidate.action == DELETE and not self._asked_after_dead_run(candidate):
                    continue  # QBO could not be asked: the row stays for the next run
                self._refuse(candidate, f"not sent: {stale}", SUPERSEDED, count=None)
            elif candidate.action == DELETE:
                deletes.append(candidate)
            elif (too_long := over_line_cap(candidate, self.max_lines)) is not None:
                # before the vendor is looked for: no vendor is created for a bill that waits
                self._refuse(candidate, too_long, "lines")
            else:
                body = self._prepare(candidate, resolver, terms, settings, home)
                if body is not None:
                    pushes.append((candidate, body))
        if pushes:
            # interrupted (SIGTERM), the bills not yet started are given up (still pending)
            with stopping_pool(max(1, self.workers)) as pool:
                for _ in pool.map(lambda pair: self._send(*pair), pushes):
                    pass
                # a SIGTERM Dagster's handler lost (stop_signal.py): the bills not started
                # stayed pending (`_send`); the run ends as Dagster's interrupt
                stop_signal.raise_if_received()
        for candidate in deletes:
            stop_signal.raise_if_received()
            self._delete(candidate)
        return self.counts

    def _wait_for_import(self, wanted, reason: str) -> None:
        """The company was switched and the new one is not imported yet: every row that could go
        waits (`company`), nothing is sent."""
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            refused = refuse(
                conn,
                BILLS,
                and_(qbo_bill_queue.c.organization_id == self.organization_id, wanted),
                reason,
                retry_failed=True,
                error_code=COMPANY,
            )
        self.counts.held += len(refused)
        self.counts.errors.append(reason)

    def _count(self, name: str, message: str | None = None) -> None:
        with self._lock:
            setattr(self.counts, name, getattr(self.counts, name) + 1)
            if message:
                self.counts.errors.append(message)

    def _prepare(
        self,
        candidate: Candidate,
        resolver: VendorResolver,
        terms: Terms,
        settings: PayablesSettings,
        home: str | None,
    ) -> BillBody | None:
        """The body of a push row, or None after refusing it (it waits) or counting a failure."""
        resolved = resolver.resolve(supplier_of(candidate.document))
        if resolved.retry is not None:
            self._count("failed", f"{candidate.number}: {resolved.retry}")
            return None
        if resolved.vendor is None:
            self._refuse(candidate, resolved.problem or "no vendor", resolved.code)
            return None
        try:
            term = term_of(candidate)
            term_id = terms.id_of(term) if term is not None else None
            return build_bill(candidate, resolved.vendor, settings, home, term_id)
        except Waits as waits:
            self._refuse(candidate, waits.message, waits.code)
        except QboError as exc:
            self._count("failed", f"{candidate.number}: the discount's term: {exc}")
        return None

    def _refuse(self, candidate: Candidate, problem: str, code: str, count="held") -> None:
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            refused = refuse(
                conn,
                BILLS,
                qbo_bill_queue.c.id == candidate.queue_id,
                problem,
                retry_failed=True,
                error_code=code,
                attempts=qbo_bill_queue.c.attempts + 1,
            )
        if refused and count:
            self._count(count, f"{candidate.number}: {problem}")

    def _claim(self, candidate: Candidate) -> bool:
        if self.lease is not None and self.lease.lost.is_set():
            return False  # another run has the organization now: the row stays for it
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            return bool(
                claim(
                    conn,
                    BILLS,
                    qbo_bill_queue.c.id == candidate.queue_id,
                    retry_failed=True,
                    attempts=qbo_bill_queue.c.attempts + 1,
                )
            )

    def _send(self, candidate: Candidate, body: BillBody) -> None:
        if stop_signal.received() or not self._claim(candidate):
            return  # (a lost SIGTERM: the row stays pending, unclaimed, for the next run)
        try:
            bill = self._bill(candidate, body)
            if bill is None:
                return
            self._attach(candidate, bill)
            self._finish(candidate, bill)
        except QboError as exc:
            if exc.temporary:
                # unknown outcome, or QBO kept failing: the row stays `sending` (the outbox's
                # unknown for this queue); the next run under the organization's lease asks QBO
                # what happened before it sends anything again
                self._count("failed", f"{candidate.number}: {exc}")
                return
            self._fail(candidate, str(exc), exc.code)
        except Exception as exc:
            self._broke_off(candidate, exc)

    def _broke_off(self, candidate: Candidate, exc: Exception) -> None:
        """Anything but QBO's answer broke a claimed row's work off (our database refusing what
        QBO answered, a bug): its request may have reached QBO, so the row is `failed` as
        `unknown`, never `sending` and never sent again on its own; a retry (--retry-failed)
        asks QBO for what it has before it sends (`may_have_sent`)."""
        self._fail(candidate, f"the push broke off: {type(exc).__name__}: {exc}"[:2000], UNKNOWN)

    def _settle(self, candidate: Candidate, status: str, conn=None, **values) -> None:
        """The row's outcome (outbox `finish`), in `conn` or a transaction of its own."""
        if conn is None:
            with tenant_transaction(self.engine, self.organization_id, write=True) as own:
                self._settle(candidate, status, own, **values)
            return
        finish(conn, BILLS, qbo_bill_queue.c.id == candidate.queue_id, status, **values)

    def _fail(self, candidate: Candidate, message: str, code: str | None) -> None:
        self._settle(candidate, "failed", error=message, error_code=(code or "error")[:16])
        self._count("failed", f"{candidate.number}: {message}")

    # -- step 1: the bill -----------------------------------------------------------------

    def _rid(self, candidate: Candidate, *parts: object) -> str:
        return request_id(candidate.request_id, *parts)

    def _bill(self, candidate: Candidate, body: BillBody) -> dict | None:
        bill = self._current_bill(candidate.document_id)
        if bill is not None and bill["state"] == "active" and bill["entity"] == body.entity:
            if bill["fingerprint"] == body.fingerprint:
                self._count("unchanged")
                return bill
            record = self._update(candidate, bill, body)
            self._count("pushed")
            return self._save(candidate, body, record, bill)
        if bill is not None and bill["state"] == "active":
            # an invoice read again as a credit note, or the other way round: the old record goes
            self._remove(candidate, bill)
        record = None
        if candidate.may_have_sent:
            record = self._find(candidate, body)
        if record is None:
            try:
                record = self._create(candidate, body)
            except DuplicateDocNumber:
                record = self._same_number(candidate, body)
                if record is None:
                    return None
                self._count("linked")
            else:
                self._count("pushed")
        else:
            self._count("linked")
        return self._save(candidate, body, record, bill)

    def _create(self, candidate: Candidate, body: BillBody) -> QboExpense:
        rid = self._rid(candidate, "create")
        if body.entity == "VendorCredit":
            return self.client.create_vendor_credit(body.draft, requestid=rid)
        return self.client.create_bill(body.draft, requestid=rid)

    def _update(self, candidate: Candidate, bill: dict, body: BillBody) -> QboExpense:
        """The bill's fields replaced by the document's new version's (lines too); a SyncToken
        someone moved meanwhile is read again, once: the document is what the bill says."""
        token = str(bill["sync_token"])
        for attempt in range(2):
            rid = self._rid(candidate, "update", token)
            try:
                if body.entity == "VendorCredit":
                    return self.client.update_vendor_credit(
                        bill["qbo_id"], token, body.draft, requestid=rid
                    )
                return self.client.update_bill(bill["qbo_id"], token, body.draft, requestid=rid)
            except StaleObject:
                if attempt:
                    raise
                token = str(self.client.get(body.entity, bill["qbo_id"])["SyncToken"])
        raise AssertionError("unreachable")

    def _find(self, candidate: Candidate, body: BillBody) -> QboExpense | None:
        """The bill a dead run created (DocNumber, vendor and our private note), if QBO has it."""
        for record in self._with_number(body):
            if marker(candidate.document_id) in str(record.private_note or ""):
                return record
        return None

    def _with_number(self, body: BillBody) -> list[QboExpense]:
        number = body.draft.doc_number
        if not number:
            return []
        where = f"DocNumber = {quote(number)}"
        found = (
            self.client.find_vendor_credits(where)
            if body.entity == "VendorCredit"
            else self.client.find_bills(where)
        )
        return [r for r in found if r.vendor_id == body.draft.vendor_id]

    def _same_number(self, candidate: Candidate, body: BillBody) -> QboExpense | None:
        """6140: the vendor's bill with this number is ours when its total is the document's;
        otherwise a person decides (a conflict), never a second bill."""
        gross = candidate.document.get("gross_total")
        existing = self._with_number(body)
        match = next((r for r in existing if gross is not None and r.total == gross), None)
        if match is not None:
            return match
        number = body.draft.doc_number
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            record_conflict(
                conn,
                self.organization_id,
                "bill",
                local_id=candidate.document_id,
                qbo_id=existing[0].id if existing else None,
                reason=f"the vendor's bill {number} exists in QuickBooks with another amount",
                decision="manual_review",
                local_version={
                    "invoice_number": candidate.number,
                    "supplier": candidate.document.get("seller_name"),
                    "gross_total": gross,
                },
                qbo_version=existing[0].raw if existing else None,
            )
            self._settle(
                candidate,
                "conflict",
                conn,
                error=f"bill {number} of this vendor exists in QuickBooks with another amount",
                error_code="6140",
            )
        self._count("conflicts")
        return None

    def _current_bill(self, document_id: int) -> dict | None:
        with tenant_transaction(self.engine, self.organization_id) as conn:
            row = (
                conn.execute(
                    select(qbo_bills).where(qbo_bills.c.incoming_invoice_id == document_id)
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def _save(
        self, candidate: Candidate, body: BillBody, record: QboExpense, old: dict | None
    ) -> dict:
        """The document's bill as QBO answered it (a recreated bill starts without files)."""
        same = old is not None and old["qbo_id"] == record.id and old["entity"] == body.entity
        values = dict(
            entity=body.entity,
            qbo_id=record.id,
            sync_token=record.sync_token,
            vendor_qbo_id=record.vendor_id,
            document_version=candidate.version,
            fingerprint=body.fingerprint,
            currency=record.currency,
            total=record.total,
            balance=record.balance,
            attachments=dict(old["attachments"] or {}) if same else {},
            state="active",
            pushed_at=datetime.now(UTC),
        )
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            if old is None:
                conn.execute(
                    insert(qbo_bills).values(
                        organization_id=self.organization_id,
                        incoming_invoice_id=candidate.document_id,
                        **values,
                    )
                )
            else:
                conn.execute(update(qbo_bills).where(qbo_bills.c.id == old["id"]).values(**values))
            row = conn.execute(
                select(qbo_bills).where(qbo_bills.c.incoming_invoice_id == candidate.document_id)
            )
            return dict(row.mappings().one())

    # -- step 2: the files ----------------------------------------------------------------

    def _attach(self, candidate: Candidate, bill: dict) -> None:
        done = dict(bill.get("attachments") or {})
        wanted = tuple(kind for kind in kinds_for(candidate.document) if kind not in done)
        if not wanted:
            return
        if candidate.may_have_sent:
            for found in self.client.find_attachables(bill["entity"], bill["qbo_id"]):
                for kind in wanted:
                    if found.note == self._note(candidate, kind) and kind not in done:
                        done[kind] = {"id": found.id, "file": found.file_name}
            wanted = tuple(kind for kind in wanted if kind not in done)
        files, missing = attachments_of(
            candidate.document,
            wanted,
            self.read_upload,
            self.write_letter,
            self.language,
            max_bytes=self.max_attachment_bytes,
        )
        for gone in missing:
            done[gone.kind] = {"skipped": gone.reason, "file": gone.file_name}
        for attachment in files:
            done[attachment.kind] = self._upload(candidate, bill, attachment)
        self._save_files(bill, done)
        bill["attachments"] = done

    def _note(self, candidate: Candidate, kind: str) -> str:
        what = "the supplier's original" if kind == "original" else "the invoice, readable"
        return f"invoice-pipelines incoming invoice {candidate.document_id}: {what}"

    def _upload(self, candidate: Candidate, bill: dict, attachment: Attachment) -> dict:
        rid = request_id(
            "attach", self.organization_id, candidate.document_id, bill["qbo_id"], attachment.kind
        )
        try:
            uploaded = self.client.upload_attachment(
                attachment.content,
                file_name=attachment.file_name,
                content_type=attachment.content_type,
                links=[AttachmentLink(bill["entity"], bill["qbo_id"])],
                note=self._note(candidate, attachment.kind),
                requestid=rid,
            )
        except QboError as exc:
            if exc.temporary:
                raise
            skipped = f"QuickBooks refused {attachment.file_name!r}: {exc}"
            return {"skipped": skipped, "file": attachment.file_name}
        return {"id": uploaded.id, "file": uploaded.file_name}

    def _save_files(self, bill: dict, done: dict) -> None:
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            conn.execute(
                update(qbo_bills).where(qbo_bills.c.id == bill["id"]).values(attachments=done)
            )

    # -- step 3: the document is booked ---------------------------------------------------

    def _finish(self, candidate: Candidate, bill: dict) -> None:
        """VALIDATED -> EXPORTED at the row's version, and the row `pushed`, together. A document
        an export booked first stays as it is; one changed since keeps its status (its new
        version has a row of its own)."""
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            ref = DocumentRef(
                candidate.document_id,
                self.organization_id,
                Status.VALIDATED,
                candidate.version,
            )
            try:
                change_status(conn, ref, Status.EXPORTED)
            except StaleDocument:
                pass  # booked by an export first, or changed since: it stays as it is
            self._settle(
                candidate, "pushed", conn, qbo_id=bill["qbo_id"], error=None, error_code=None
            )

    # -- deletes --------------------------------------------------------------------------

    def _remove(self, candidate: Candidate, bill: dict, token: str | None = None) -> None:
        """Delete the document's bill in QBO (gone already is fine) and mark it deleted."""
        token = str(token if token is not None else bill["sync_token"])
        for attempt in range(2):
            rid = self._rid(candidate, "delete", bill["qbo_id"], token)
            try:
                if bill["entity"] == "VendorCredit":
                    self.client.delete_vendor_credit(bill["qbo_id"], token, requestid=rid)
                else:
                    self.client.delete_bill(bill["qbo_id"], token, requestid=rid)
                break
            except ObjectNotFound:
                break
            except StaleObject:
                if attempt:
                    raise
                token = str(self.client.get(bill["entity"], bill["qbo_id"])["SyncToken"])
        self._mark_deleted(bill)

    def _mark_deleted(self, bill: dict) -> None:
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            conn.execute(
                update(qbo_bills).where(qbo_bills.c.id == bill["id"]).values(state="deleted")
            )

    def _read(self, bill: dict) -> QboExpense | None:
        """The bill as QBO has it now; None when QBO has it no more."""
        try:
            if bill["entity"] == "VendorCredit":
                return self.client.get_vendor_credit(bill["qbo_id"])
            return self.client.get_bill(bill["qbo_id"])
        except ObjectNotFound:
            return None

    def _delete(self, candidate: Candidate) -> None:
        """A held document's bill (module docstring, 5): read first, then deleted unless paid."""
        bill = self._current_bill(candidate.document_id)
        if not self._claim(candidate):
            return
        try:
            self._delete_claimed(candidate, bill)
        except Exception as exc:
            self._broke_off(candidate, exc)

    def _delete_claimed(self, candidate: Candidate, bill: dict | None) -> None:
        if bill is None or bill["state"] != "active":
            self._settle(candidate, "pushed")
            return
        try:
            record = self._read(bill)
            if record is None:
                self._mark_deleted(bill)  # deleted by a dead run of ours, or by a QBO user
            elif paid(record):
                self._paid_conflict(candidate, bill, record)
                return
            else:
                self._remove(candidate, bill, record.sync_token)
        except QboError as exc:
            if exc.temporary:
                # unknown outcome: the row stays `sending`; the next run reads the bill first
                self._count("failed", f"{candidate.number}: deleting its bill: {exc}")
                return
            self._held_delete(candidate, bill, exc)
            return
        self._settle(candidate, "pushed", qbo_id=bill["qbo_id"])
        self._count("pushed")

    def _asked_after_dead_run(self, candidate: Candidate) -> bool:
        """A superseded `delete` a dead run may have sent (`unknown`): whether QBO could be
        asked what it did. Its bill gone is recorded deleted, so the document's next push
        creates the bill again instead of updating one QBO no longer has."""
        if candidate.error_code != UNKNOWN:
            return True
        bill = self._current_bill(candidate.document_id)
        if bill is None or bill["state"] != "active":
            return True
        try:
            if self._read(bill) is None:
                self._mark_deleted(bill)
        except QboError as exc:
            self._count("failed", f"{candidate.number}: looking for its deleted bill: {exc}")
            return False
        return True

    def _why_held(self, candidate: Candidate) -> str:
        status = candidate.document["status"]
        if status == Status.NEEDS_REVIEW.value:
            return f"the document is back in review (version {candidate.version})"
        return f"the document is {status} (version {candidate.version})"

    def _paid_conflict(self, candidate: Candidate, bill: dict, record: QboExpense) -> None:
        """The bill is paid or partly paid in QBO: it stays; a person decides."""
        payments = ", ".join(record.payment_ids) or "not listed"
        if candidate.document["status"] == Status.NEEDS_REVIEW.value:
            todo = (
                "If the bill is right, confirm the document in review; if not, void or delete "
                "the payment in QuickBooks, then reject the document (the next push deletes the "
                "bill) or correct and confirm it (the next push updates the bill)"
            )
        else:
            todo = (
                "If the document failed by mistake, process it again (the next push updates the "
                "bill); if not, void or delete the payment in QuickBooks and delete the bill there"
            )
        reason = (
            f"{self._why_held(candidate)}, but its {bill['entity']} {bill['qbo_id']} in "
            f"QuickBooks is paid ({record.total - record.balance} of {record.total}; bill "
            f"payments: {payments}), so it was not deleted. {todo}"
        )
        self._hold(candidate, bill, reason, PAID, record)

    def _held_delete(self, candidate: Candidate, bill: dict, exc: QboError) -> None:
        """QBO refused to delete the bill (a payment made meanwhile, say): a person decides."""
        reason = (
            f"{self._why_held(candidate)} after its {bill['entity']} {bill['qbo_id']} was "
            f"pushed, and QuickBooks refused to delete it: {exc}"
        )
        self._hold(candidate, bill, reason, (exc.code or "error")[:16])

    def _hold(
        self,
        candidate: Candidate,
        bill: dict,
        reason: str,
        code: str,
        record: QboExpense | None = None,
    ) -> None:
        """The `delete` row a `conflict` with `reason`, an open conflict for a person, and what
        QBO answered of the bill (`record`) onto our record of it, in one transaction."""
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            if record is not None:
                conn.execute(
                    update(qbo_bills)
                    .where(qbo_bills.c.id == bill["id"])
                    .values(
                        sync_token=record.sync_token, total=record.total, balance=record.balance
                    )
                )
            record_conflict(
                conn,
                self.organization_id,
                "bill",
                local_id=candidate.document_id,
                qbo_id=bill["qbo_id"],
                reason=reason,
                decision="manual_review",
                local_version={
                    "invoice_number": candidate.number,
                    "status": candidate.document["status"],
                    "version": candidate.version,
                },
                qbo_version=record.raw if record is not None else None,
            )
            self._settle(candidate, "conflict", conn, error=reason, error_code=code)
        self._count("conflicts", f"{candidate.number}: {reason}")

    # -- rows a dead run left `sending` ---------------------------------------------------

    def reconcile_dead(self) -> None:
        """Pending again, marked `unknown`: their steps ask QBO first (module docstring, 1)."""
        dead = mark_dead_sending(
            self.engine, BILLS, self.organization_id, self.lease, SENDING_STALE_AFTER
        )
        if not dead:
            return
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            finish(
                conn,
                BILLS,
                qbo_bill_queue.c.id.in_([row[0] for row in dead]),
                "pending",
                error_code=UNKNOWN,
            )


def paid(record: QboExpense) -> bool:
    """Whether QBO shows anything paid of the bill (or taken of the vendor credit): a
    BillPayment in its LinkedTxn, or a Balance below its TotalAmt."""
    if record.payment_ids:
        return True
    return record.raw.get("Balance") is not None and record.balance < record.total


def push_bills(
    engine: Engine, organization: Organization, client: QboClient, **options
) -> SyncCounts:
    """`options`: read_upload (the upload store's `read`), write_letter (`letter_pdf`), workers,
    documents (only these), retry_failed, max_lines and max_attachment_bytes (the caps; tests
    lower them)."""
    return BillPusher(engine, organization, client, **options).run()


def describe_documents(engine: Engine, organization_id: int, ids: list[int]) -> dict[int, str]:
    """Where each of the chosen documents stands after a push: its bill in QBO, or why none."""
    t, q, b = incoming_invoices.c, qbo_bill_queue.c, qbo_bills.c
    wanted = sorted(set(int(i) for i in ids))
    with tenant_transaction(engine, organization_id) as conn:
        status = dict(
            conn.execute(
                select(t.id, t.status).where(t.organization_id == organization_id, t.id.in_(wanted))
            ).all()
        )
        rows = {
            r.incoming_invoice_id: r
            for r in conn.execute(
                select(q.incoming_invoice_id, q.action, q.status, q.error_code, q.error_message)
                .where(q.organization_id == organization_id, q.incoming_invoice_id.in_(wanted))
                .order_by(q.id)
            )
        }
        bills = {
            r.incoming_invoice_id: r
            for r in conn.execute(
                select(b.incoming_invoice_id, b.entity, b.qbo_id, b.state, b.attachments).where(
                    b.organization_id == organization_id, b.incoming_invoice_id.in_(wanted)
                )
            )
        }
    said: dict[int, str] = {}
    for document_id in wanted:
        row, bill = rows.get(document_id), bills.get(document_id)
        if document_id not in status:
            said[document_id] = "no such incoming invoice in this organization"
        elif row is None:
            said[document_id] = (
                f"is {status[document_id]}: only VALIDATED documents become bills (and ones "
                "back in review or FAILED lose theirs)"
            )
        elif row.status == "pushed" and bill is not None:
            what = "deleted" if bill.state == "deleted" else "in QuickBooks"
            said[document_id] = (
                f"{bill.entity} {bill.qbo_id} {what}; the document is {status[document_id]}"
                + "".join(f"; {line}" for line in skipped_files(bill.attachments))
            )
        elif row.status == "failed" and row.error_code in WAITING:
            said[document_id] = f"waits: {row.error_message}"
        else:
            detail = f": {row.error_message}" if row.error_message else ""
            said[document_id] = f"{row.action} {row.status}{detail}"
    return said
