"""The cases of issue 46 for `bench hostile`: one bad document among good ones, rejection notices
whose documents name hostile addresses, look-alike duplicate numbers, and hostile review
corrections. Generated from `--seed`, scaled with `--n`, each category in an organization of its
own, through the product's functions (`scan_uploads`, `process_documents` with the parse workers,
`redispatch_batches`, `send_supplier_notices` to the SMTP stand-in, `review_document` and the
`incoming review` command).

What each category counts (`categories` in the JSON; every violation is a crash of the run):
- `poison_batch`: poison e-invoices (dates at the calendar's end, discount periods no integer
  holds, bases above the amount due) dropped among good ones in the same batches. Good documents
  must end VALIDATED, every document in a state of its own with a recorded reason; a batch whose
  run raises is a crash, its documents sent again one by one (as the failure sensor does), and
  whatever still waits (UPLOADED, CREATED, PARSED) is `stuck`.
- `notices`: rejected documents of a known supplier and of strangers whose XML names IP literals,
  `%` and `!` relays, quoted and listed addresses, 100,000-character numbers, links and HTML;
  uploads whose sender is a plain mailbox or not. Each notice must go to the address the
  supplier register holds for its supplier (a person set it) or to the upload's sender: `to_unknown_addresses`,
  at most one a day per address (`max_per_address_day`), no link in a mail (`links`),
  `max_mail_bytes` reported.
- `lookalike`: accepted invoices, then copies whose number differs by one look-alike class each
  (other dashes, Cyrillic and Greek letters, `/`, `_`, none, zero-width, full-width): copies
  VALIDATED must be 0; a control with a really different number must be VALIDATED.
- `review`: documents held for review corrected with hostile values (dates at the calendar's
  ends, digits of other scripts, XXX, sign games, 10,000-row breakdowns, a 300-character --by,
  no or a stale version), half through `review_document`, half through `incoming review`:
  tracebacks and unexpected exceptions must be 0, wrongly VALIDATED must be 0; the sane
  correction must VALIDATE and the reopening must work (the controls).
"""

from __future__ import annotations

import os
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

D = Decimal
CII_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
CII_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
CII_UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
_NS = {"ram": CII_RAM, "rsm": CII_RSM, "udt": CII_UDT}
WAITING = ("UPLOADED", "CREATED", "PARSED")
# a later issue date than the synthetic 2025 ones, far enough back never to be "in the future"
ISSUED = date(2025, 6, 2)


@dataclass
class Category:
    """What one category of issue 46 counted; `crashes` are the violations of what it checks."""

    name: str
    inputs: int = 0
    passed: int = 0
    clean_failures: int = 0
    crashes: int = 0
    stuck: int = 0
    numbers: dict = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def crash(self, where: str, what: BaseException | str) -> None:
        self.crashes += 1
        if len(self.examples) < 10:
            text = what if isinstance(what, str) else f"{type(what).__name__}: {what}"
            self.examples.append(f"{where}: {str(text).splitlines()[0][:300] if text else ''}")

    def outcome(self, outcome: str, where: str = "", what: str = "") -> None:
        """One input's outcome: passed, clean_failures or crashes (with where and what)."""
        self.inputs += 1
        if outcome == "crashes":
            self.crash(where, what)
        else:
            setattr(self, outcome, getattr(self, outcome) + 1)

    def as_json(self) -> dict:
        return {
            "inputs": self.inputs,
            "passed": self.passed,
            "clean_failures": self.clean_failures,
            "crashes": self.crashes,
            "stuck": self.stuck,
            **self.numbers,
            "crash_examples": self.examples,
        }


# --- documents ---------------------------------------------------------------------------------


def _company(index: int, *, email: str, name: str | None = None):
    from invoice_pipelines_devtools.demo.invoices import Company, german_iban, german_vat_id

    return Company(
        name=name or f"Bench Lieferant {index} GmbH",
        street=f"Hauptstraße {index % 180 + 1}",
        postcode="10115",
        city="Berlin",
        vat_id=german_vat_id(f"{31_000_000 + index:08d}"),
        iban=german_iban("10010010", f"{1_000_000_000 + index}"),
        email=email,
        contact_name="Anna Beispiel",
        contact_phone="+49 30 1234567",
    )


BUYER_INDEX = 999


def einvoice(
    number: str,
    seller,
    *,
    issue: date = ISSUED,
    due: date | None = None,
    quantity: int = 8,
    discount: bool = False,
) -> bytes:
    """A valid XRechnung CII of `seller` to the bench's buyer: `quantity` x 120.00 at 19 %,
    with a #SKONTO# step (7 days, 3 %) when `discount`."""
    from invoice_pipelines.core.skonto import DiscountTerm
    from invoice_pipelines.einvoice.cii import XRECHNUNG_GUIDELINE, write_cii
    from invoice_pipelines_devtools.demo.invoices import (
        LineItem,
        document_extras,
        invoice_from_lines,
    )

    buyer = _company(BUYER_INDEX, email="eingang@bench-buyer.example", name="Bench Käufer AG")
    invoice = invoice_from_lines(
        number=number,
        issue_date=issue,
        due_date=due,
        seller=seller,
        buyer=buyer,
        lines=[LineItem("Beratung", D(quantity), D("120.00"))],
        guideline_id=XRECHNUNG_GUIDELINE,
    )
    if discount:
        invoice = replace(invoice, discount_terms=(DiscountTerm(7, D("3.00")),))
    extras = document_extras(
        seller, buyer, buyer_reference=f"PO-{number[:20]}", delivery_date=issue
    )
    if not discount:
        extras["payment_terms"] = "Zahlbar innerhalb von 14 Tagen ohne Abzug."
    return write_cii(invoice, guideline_id=XRECHNUNG_GUIDELINE, extra=extras)


def totals(quantity: int) -> tuple[Decimal, Decimal, Decimal]:
    """Net, VAT and gross of `einvoice(..., quantity=quantity)`."""
    net = D(quantity) * D("120.00")
    tax = (net * D("0.19")).quantize(D("0.01"))
    return net, tax, net + tax


def edit(
    xml: bytes,
    *,
    number: str | None = None,
    seller_name: str | None = None,
    seller_email: str | None = None,
    gross: str | None = None,
    terms: str | None = None,
    structured: str | None = None,
) -> bytes:
    """The CII with the values given set as text (lxml escapes them): the number (and payment
    reference), the seller's name and both of its e-mail addresses, the stated total (BR-CO-15
    when it does not add up), the payment terms' text, or a structured discount block added."""
    from lxml import etree

    root = etree.fromstring(xml)

    def set_all(path: str, value: str | None) -> None:
        if value is not None:
            for element in root.iterfind(path, _NS):
                element.text = value

    seller = ".//ram:SellerTradeParty"
    set_all("./rsm:ExchangedDocument/ram:ID", number)
    set_all(".//ram:PaymentReference", number)
    set_all(f"{seller}/ram:Name", seller_name)
    set_all(f"{seller}//ram:EmailURIUniversalCommunication/ram:URIID", seller_email)
    set_all(f"{seller}/ram:URIUniversalCommunication/ram:URIID", seller_email)
    set_all(".//ram:GrandTotalAmount", gross)
    set_all(".//ram:DuePayableAmount", gross)
    set_all(".//ram:SpecifiedTradePaymentTerms/ram:Description", terms)
    if structured is not None:
        for terms_element in root.iterfind(".//ram:SpecifiedTradePaymentTerms", _NS):
            terms_element.append(etree.fromstring(structured))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def discount_block(start: str, period: str, base: str = "200.00", percent: str = "2.50") -> str:
    """CII's structured discount terms: from `start` (YYYYMMDD), `period` days, on `base`."""
    return (
        f'<ram:ApplicableTradePaymentDiscountTerms xmlns:ram="{CII_RAM}" xmlns:udt="{CII_UDT}">'
        f'<ram:BasisDateTime><udt:DateTimeString format="102">{start}</udt:DateTimeString>'
        f'</ram:BasisDateTime><ram:BasisPeriodMeasure unitCode="DAY">{period}'
        f'</ram:BasisPeriodMeasure><ram:BasisAmount currencyID="EUR">{base}</ram:BasisAmount>'
        f"<ram:CalculationPercent>{percent}</ram:CalculationPercent>"
        "</ram:ApplicableTradePaymentDiscountTerms>"
    )


# --- running documents through the intake --------------------------------------------------------


@dataclass
class Stage:
    """What the categories share: the engine, the work folder, the parse workers, the sizes."""

    engine: object
    work: Path
    parser: object
    n: int
    seed: int
    batch_size: int
    keep: bool
    organizations: list[int] = field(default_factory=list)

    def organization(self, label: str, settings: dict | None = None) -> tuple[int, str]:
        from invoice_pipelines.db.tables import organizations
        from invoice_pipelines.db.tenancy import system_transaction

        slug = f"bench-{label}-{uuid.uuid4().hex[:8]}"
        with system_transaction(self.engine, write=True) as conn:
            org_id = conn.execute(
                organizations.insert()
                .values(slug=slug, name=f"Bench {label.title()} GmbH", settings=settings or {})
                .returning(organizations.c.id)
            ).scalar_one()
        self.organizations.append(org_id)
        return org_id, slug

    def register(self, slug: str, files: dict[str, bytes]) -> tuple[dict[str, int], list]:
        """Drop the files as an upload channel does and register them as the upload sensor
        does: each file's document id by name, and the batches the sensor formed."""
        from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
        from invoice_pipelines.resources.files.uploads import LocalUploads

        store = LocalUploads(str(self.work / "uploads-46"))
        old = time.time() - 600
        for name, data in files.items():
            store.put(slug, name, data)
            os.utime(Path(store.root) / slug / name, (old, old))
        scan = scan_uploads(
            self.engine,
            store,
            ScanState(),
            system=self.engine,
            batch_size=self.batch_size,
            max_files_per_tick=len(files) + 10,
            only_organizations={slug},
            time_budget_s=600,
        )
        batches = [b.document_ids for b in scan.batches if b.organization_slug == slug]
        ids = {}
        for doc_id, (name, _, _) in self.documents(slug, [i for b in batches for i in b]).items():
            ids[name] = doc_id
        return ids, batches

    def documents(self, slug: str, ids: list[int]) -> dict[int, tuple[str, str, str | None]]:
        """(file name, status, first recorded reason) of each document."""
        from sqlalchemy import func, select

        from invoice_pipelines.db.tables import incoming_invoices, processing_errors, uploads
        from invoice_pipelines.db.tenancy import find_organization, tenant_transaction

        org_id = find_organization(self.engine, slug).id
        i = incoming_invoices.c
        with tenant_transaction(self.engine, org_id) as conn:
            rows = conn.execute(
                select(i.id, uploads.c.filename, i.status)
                .outerjoin(uploads, uploads.c.id == i.upload_id)
                .where(i.organization_id == org_id, i.id.in_(ids))
            ).all()
            reasons = dict(
                conn.execute(
                    select(processing_errors.c.incoming_invoice_id, func.min(processing_errors.c.rule_id))
                    .where(processing_errors.c.incoming_invoice_id.in_(ids))
                    .group_by(processing_errors.c.incoming_invoice_id)
                ).all()
            )  # fmt: skip
        return {row.id: (row.filename, row.status, reasons.get(row.id)) for row in rows}

    def process(self, org_id: int, slug: str, batches: list, category: Category) -> None:
        """Each batch as an intake run reads it; a run that raises is a crash, and its documents
        are sent again one by one at growing depth, as the failure sensor asks, until none waits
        or the attempt limit ends them."""
        from invoice_pipelines.db.tenancy import find_organization
        from invoice_pipelines.intake.domain.pipeline import process_documents
        from invoice_pipelines.intake.domain.redispatch import redispatch_batches
        from invoice_pipelines.resources.files.uploads import LocalUploads

        store = LocalUploads(str(self.work / "uploads-46"))
        limit = self.parser.max_upload_bytes
        organization = find_organization(self.engine, slug)

        def run(ids: list[int]) -> bool:
            try:
                process_documents(
                    self.engine,
                    store,
                    organization,
                    ids,
                    parser=self.parser,
                    ocr=None,
                    max_bytes=limit,
                )
                return True
            except Exception as exc:  # noqa: BLE001 - what the bench counts
                category.crash(f"intake run of {len(ids)} documents", exc)
                return False

        again = []
        for number, ids in enumerate(batches):
            if not run(list(ids)):
                again += redispatch_batches(
                    self.engine,
                    organization,
                    list(ids),
                    failed_run_id=f"bench-{number}",
                    depth=0,
                )
        category.numbers["redispatched"] = category.numbers.get("redispatched", 0) + len(again)
        runs = 0
        while again and runs < 20 * len(batches) + 100:
            item = again.pop(0)
            runs += 1
            if not run([item.document_id]):
                again += redispatch_batches(
                    self.engine,
                    organization,
                    [item.document_id],
                    failed_run_id=f"bench-again-{runs}",
                    depth=item.depth,
                )


def _held_or_failed(status: str, reason: str | None) -> bool:
    return status in ("FAILED", "NEEDS_REVIEW") and bool(reason)


# --- 1. poison documents among good ones ---------------------------------------------------------

POISON_KINDS = (
    "issue-date-far",
    "due-date-far",
    "discount-start-far",
    "period-huge",
    "period-not-a-number",
    "days-digits",
    "percent-digits",
    "base-above-due",
)


def poison(kind: str, rng: random.Random, index: int) -> bytes:
    """One poison e-invoice of its kind, its values drawn from `rng`: a general shape (a date at
    the calendar's end, a period no number type holds, a base larger than the invoice)."""
    seller = _company(7, email="rechnung@poison-lieferant.example")
    number = f"POISON-{index:05d}"
    far = date(9999, 12, rng.randint(1, 31))
    if kind == "issue-date-far":
        return einvoice(number, seller, issue=far, discount=True)
    if kind == "due-date-far":
        return einvoice(number, seller, due=far, discount=True)
    xml = einvoice(number, seller, discount=True)
    if kind == "discount-start-far":
        return edit(
            xml, structured=discount_block(far.strftime("%Y%m%d"), str(rng.randint(1, 10**5)))
        )
    if kind == "period-huge":
        period = rng.choice((f"1E+{rng.randint(1000, 200_000_000)}", "9" * rng.randint(20, 5000)))
        return edit(xml, structured=discount_block("20250610", period))
    if kind == "period-not-a-number":
        period = rng.choice(("NaN", "sNaN", "-NaN", "Infinity", "-Infinity", "1E-999999"))
        return edit(xml, structured=discount_block("20250610", period))
    if kind == "days-digits":
        days = "9" * rng.randint(500, 5000)
        return edit(xml, terms=f"#SKONTO#TAGE={days}#PROZENT=2.00#\n")
    if kind == "percent-digits":
        percent = rng.choice(("9" * rng.randint(20, 5000) + ".00", "250.00", "1E+999999"))
        return edit(xml, terms=f"#SKONTO#TAGE=10#PROZENT={percent}#\n")
    if kind == "base-above-due":
        base = D(rng.randint(2, 10**6)) * totals(8)[2]
        return edit(xml, terms=f"#SKONTO#TAGE=10#PROZENT=2.00#BASISBETRAG={base:.2f}#\n")
    raise AssertionError(kind)  # pragma: no cover - the kinds are those above


def poison_batch_inputs(n: int, seed: int) -> dict[str, tuple[str, bytes]]:
    """Good and poison e-invoices by file name (kind, bytes), in the order they are dropped: at
    least one poison of each kind, about one in five a poison, mixed at random."""
    from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices

    rng = random.Random(seed * 4649 + 46)
    poisons = max(len(POISON_KINDS), n // 40)
    good = max(4 * poisons, n // 10)
    plan = list(POISON_KINDS) + [
        rng.choice(POISON_KINDS) for _ in range(poisons - len(POISON_KINDS))
    ]
    plan += ["good"] * good
    rng.shuffle(plan)
    valid = synthetic_xml_invoices(good, seed=seed + 4600, kinds=("xrechnung-cii", "xrechnung-ubl"))
    files = {}
    for index, kind in enumerate(plan):
        data = next(valid)[1] if kind == "good" else poison(kind, rng, index)
        files[f"{index:05d}-{kind}.xml"] = (kind, data)
    return files


def run_poison_batch(stage: Stage) -> Category:
    category = Category("poison_batch")
    org_id, slug = stage.organization("poison")
    files = poison_batch_inputs(stage.n, stage.seed)
    ids, batches = stage.register(slug, {name: data for name, (_, data) in files.items()})
    stage.process(org_id, slug, batches, category)
    states = stage.documents(slug, list(ids.values()))
    by_status: Counter = Counter()
    by_kind: dict[str, Counter] = {}
    good = Counter()
    for name, (kind, _) in files.items():
        doc_id = ids.get(name)
        if doc_id is None:
            category.outcome("crashes", name, "never registered")
            continue
        _, status, reason = states[doc_id]
        if status in WAITING:
            category.stuck += 1
            category.outcome("crashes", f"document {doc_id} ({kind})", f"left {status}")
        elif kind == "good":
            good[status] += 1
            if status == "VALIDATED":
                category.outcome("passed")
            else:
                category.outcome("crashes", f"good document {doc_id}", f"{status} ({reason})")
        else:
            by_status[status] += 1
            by_kind.setdefault(kind, Counter())[status] += 1
            if status == "VALIDATED":
                category.outcome("passed")  # read with the impossible part set aside
            elif _held_or_failed(status, reason):
                category.outcome("clean_failures")
            else:
                category.outcome("crashes", f"poison {doc_id} ({kind})", f"{status}, no reason")
    category.numbers.update(
        good=sum(good.values()),
        good_validated=good["VALIDATED"],
        poisons=sum(by_status.values()),
        poisons_by_status=dict(by_status),
        poisons_by_kind={k: dict(v) for k, v in sorted(by_kind.items())},
        batches=len(batches),
    )
    return category


# --- 2. rejection notices ----------------------------------------------------------------------

# what a rejected document claims as its seller's address
CLAIMED_ADDRESSES = (
    "postmaster@[127.0.0.1]",
    "a%b@relay",
    "a%b@relay.example",
    "relay!user@evil.example",
    '"x y"@evil.example',
    "@relay.example:user@evil.example",
    "user@127.0.0.1",
    "user@localhost",
    "buchhaltung@evil.example, victim@evil.example",
    "attacker{i}@evil.example",
)
HOSTILE_NAMES = (
    '<a href="https://evil.example/pay">Zahlung hier</a> GmbH',
    "Lieferant https://evil.example/login GmbH",
    "www.evil.example Handel KG",
    "Lieferant \u202egpj.exe\u202c GmbH",
    "<img src=x onerror=alert(1)> AG",
)
HOSTILE_NUMBERS = (
    "RE-{i}-<a href='http://evil.example'>x</a>",
    "https://evil.example/rechnung/{i}",
    "RE-{i}\r\nBcc: victim@evil.example",
    "www.evil.example/{i}",
)
# the upload's sender as a channel records it: a plain mailbox is an address, the rest is not
SENDERS = ("ap{i}@sender.example", "postmaster@[127.0.0.1]", "a%b@relay", "user@127.0.0.1")
KNOWN_SUPPLIERS = 3
# what a mail program makes a link of in plain text: a scheme, www., the attacker's host name (the
# notices break them: hxxps[:]//, www[.], evil[.]example); `<a href` in plain text is only text
_LINK = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*\s*:\s*//|\bwww\.|\bevil\.example\b")


def notice_inputs(n: int, seed: int) -> tuple[dict[str, bytes], dict[str, bytes], dict[str, str]]:
    """Accepted invoices of the known suppliers (their addresses), the rejected documents in two
    rounds of one day by file name (round 1 and 2 in the name), and the upload sender of those
    that have one."""
    rng = random.Random(seed * 7331 + 46)
    accepted = {
        f"known-{k}.xml": einvoice(
            f"OK-{k}", _company(100 + k, email=f"rechnung@lieferant{k}.example"), quantity=2 + k
        )
        for k in range(KNOWN_SUPPLIERS)
    }
    rejected: dict[str, bytes] = {}
    senders: dict[str, str] = {}
    for i in range(max(16, n // 25)):
        # a known supplier (the same VAT id), or a stranger
        index = 100 + rng.randrange(KNOWN_SUPPLIERS) if rng.random() < 0.6 else 500 + i
        seller = _company(index, email="rechnung@irrelevant.example")
        number = f"NOTICE-{i:05d}"
        if rng.random() < 0.3:
            number = rng.choice(HOSTILE_NUMBERS).format(i=i)
        elif i % 8 == 0:
            number = f"{i}-" + "".join(rng.choice("ABC123") for _ in range(100_000))
        xml = einvoice(f"N-{i}", seller, quantity=3)
        xml = edit(
            xml,
            number=number,
            seller_name=rng.choice(HOSTILE_NAMES) if rng.random() < 0.5 else None,
            seller_email=rng.choice(CLAIMED_ADDRESSES).format(i=i),
            gross=f"{totals(3)[2] + D(rng.randint(1, 900)):.2f}",  # BR-CO-15: rejected
        )
        name = f"r{1 + i % 2}-{i:05d}.xml"
        rejected[name] = xml
        if rng.random() < 0.4:
            senders[name] = rng.choice(SENDERS).format(i=i)
    return accepted, rejected, senders


def _set_senders(stage: Stage, org_id: int, ids: dict[str, int], senders: dict[str, str]) -> None:
    from sqlalchemy import select, update

    from invoice_pipelines.db.tables import incoming_invoices, uploads
    from invoice_pipelines.db.tenancy import tenant_transaction

    with tenant_transaction(stage.engine, org_id, write=True) as conn:
        for name, sender in senders.items():
            if name not in ids:
                continue
            upload_id = conn.execute(
                select(incoming_invoices.c.upload_id).where(incoming_invoices.c.id == ids[name])
            ).scalar_one()
            conn.execute(update(uploads).where(uploads.c.id == upload_id).values(created_by=sender))


def _confirm_addresses(stage: Stage, org_id: int, known: dict[str, str]) -> None:
    """A person gives the known suppliers (registered by their accepted invoices under the
    first-invoice policy) their notice addresses: only the register's address is a supplier's
    (issue 54), never one a document names."""
    from invoice_pipelines.core.suppliers import vat_id_key
    from invoice_pipelines.db.tenancy import tenant_transaction
    from invoice_pipelines.supplier_register import Change, change_supplier, supplier_rows

    by_vat = {vat_id_key(vat): address for vat, address in known.items()}
    with tenant_transaction(stage.engine, org_id, write=True) as conn:
        for supplier in supplier_rows(conn, org_id):
            address = by_vat.get(supplier["vat_id"] or "")
            if address:
                change_supplier(
                    conn,
                    org_id,
                    supplier["id"],
                    Change(notice_email=address),
                    changed_by="bench",
                    reason="the supplier's accounts address, confirmed",
                )


def _expected_recipient(xml: bytes, sender: str | None, known: dict[str, str]) -> str | None:
    """Where the notice of this rejected document may go: its supplier's known address, else
    the upload's sender if that is a plain mailbox, else nowhere."""
    from lxml import etree

    from invoice_pipelines.intake.domain.notices import mailbox

    root = etree.fromstring(xml)
    vat = root.findtext(".//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID", None, _NS)
    return known.get(vat or "") or mailbox(sender)


def run_notices(stage: Stage) -> Category:
    from invoice_pipelines.intake.domain.notices import send_supplier_notices
    from invoice_pipelines.resources.messaging.smtp import Smtp
    from invoice_pipelines_devtools.standins.smtp import SmtpSink

    category = Category("notices")
    org_id, slug = stage.organization("notices")
    accepted, rejected, senders = notice_inputs(stage.n, stage.seed)
    known_ids, batches = stage.register(slug, accepted)
    stage.process(org_id, slug, batches, Category("setup"))
    known = {
        _company(100 + k, email="").vat_id: f"rechnung@lieferant{k}.example"
        for k in range(KNOWN_SUPPLIERS)
    }
    _confirm_addresses(stage, org_id, known)
    ids: dict[str, int] = {}
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="eingang@bench-notices.example")
        for round_ in ("r1-", "r2-"):
            files = {name: data for name, data in rejected.items() if name.startswith(round_)}
            round_ids, batches = stage.register(slug, files)
            ids.update(round_ids)
            _set_senders(stage, org_id, round_ids, senders)
            stage.process(org_id, slug, batches, category)
            for _ in range(2):  # sent twice: the second finds nothing new
                try:
                    send_supplier_notices(stage.engine, mailer, org_id)
                except Exception as exc:  # noqa: BLE001 - what the bench counts
                    category.crash("send_supplier_notices", exc)
        raw = list(sink.mailbox.raw)
        messages = sink.mailbox.messages
    expected = {
        name: _expected_recipient(data, senders.get(name), known) for name, data in rejected.items()
    }
    _notice_outcomes(stage, slug, category, ids, expected)
    allowed = {address for address in expected.values() if address}
    per_address = Counter((str(m["To"]).lower(), str(m["Date"])[:16]) for m in messages)
    unknown = [str(m["To"]) for m in messages if str(m["To"]).lower() not in allowed]
    links = sum(1 for m in messages if _links(m))
    for address in unknown:
        category.crash("notice", f"sent to {address[:80]!r}, not an address known for the supplier")
    for (address, _), count in per_address.items():
        if count > 1:
            category.crash("notices", f"{count} notices to {address[:80]!r} in one day")
    if links:
        category.crash("notices", f"{links} mails carry a link")
    category.numbers.update(
        rejected=len(rejected),
        mails_sent=len(messages),
        to_unknown_addresses=len(unknown),
        max_per_address_day=max(per_address.values(), default=0),
        max_mail_bytes=max((len(r) for r in raw), default=0),
        links=links,
        known_suppliers_accepted=sum(
            1 for _, status, _ in stage.documents(slug, list(known_ids.values())).values()
            if status == "VALIDATED"
        ),
    )  # fmt: skip
    return category


def _links(message) -> bool:
    """Whether a notice could show a link: a part other than text/plain (HTML would render one
    whatever its text), or a link in its text or subject."""
    parts = [p for p in message.walk() if not p.is_multipart()]
    if any(p.get_content_type() != "text/plain" for p in parts):
        return True
    return any(_LINK.search(p.get_content()) for p in parts) or bool(
        _LINK.search(str(message["Subject"]))
    )


def _notice_outcomes(stage: Stage, slug: str, category: Category, ids, expected) -> None:
    """Each rejected document: FAILED with its reason, its notice recorded for the address
    expected (or refused for want of one)."""
    from sqlalchemy import select

    from invoice_pipelines.db.tables import supplier_notices
    from invoice_pipelines.db.tenancy import find_organization, tenant_transaction

    org_id = find_organization(stage.engine, slug).id
    states = stage.documents(slug, list(ids.values()))
    with tenant_transaction(stage.engine, org_id) as conn:
        recorded = dict(
            conn.execute(
                select(supplier_notices.c.incoming_invoice_id, supplier_notices.c.recipient).where(
                    supplier_notices.c.organization_id == org_id
                )
            ).all()
        )
    statuses: Counter = Counter()
    for name, address in expected.items():
        doc_id = ids.get(name)
        if doc_id is None:
            category.outcome("crashes", name, "never registered")
            continue
        _, status, reason = states[doc_id]
        if status in WAITING:
            category.stuck += 1
            category.outcome("crashes", f"document {doc_id}", f"left {status}")
        elif doc_id in recorded and recorded[doc_id] not in (None, address):
            category.outcome(
                "crashes", f"document {doc_id}", f"notice for {recorded[doc_id]!r}, not {address!r}"
            )
        elif _held_or_failed(status, reason):
            category.outcome("clean_failures")
            statuses["noticed" if doc_id in recorded else "no notice"] += 1
        else:
            category.outcome("crashes", f"document {doc_id}", f"{status} ({reason})")
    category.numbers["notices_recorded"] = statuses["noticed"]


# --- 3. look-alike duplicates ------------------------------------------------------------------

_CYRILLIC = dict(
    zip(
        "ABCEHKMOPTX",
        "\u0410\u0412\u0421\u0415\u041d\u041a\u041c\u041e\u0420\u0422\u0425",
        strict=True,
    )
)
_CYRILLIC_SMALL = dict(zip("aceopx", "\u0430\u0441\u0435\u043e\u0440\u0445", strict=True))
# C's Greek look-alike is the lunate sigma (U+03F9), which NFKC alone would make a sigma: the key
# maps look-alikes before NFKC as well
_GREEK = dict(
    zip(
        "ABCEHKMOPTX",
        "\u0391\u0392\u03f9\u0395\u0397\u039a\u039c\u039f\u03a1\u03a4\u03a7",
        strict=True,
    )
)


def _letters(text: str, table: dict[str, str]) -> str:
    return "".join(table.get(c, c) for c in text)


LOOKALIKES: dict[str, Callable[[str], str]] = {
    "hyphen": lambda n: n.replace("-", "\u2010"),
    "non-breaking-hyphen": lambda n: n.replace("-", "\u2011"),
    "en-dash": lambda n: n.replace("-", "\u2013"),
    "minus": lambda n: n.replace("-", "\u2212"),
    "cyrillic": lambda n: _letters(n, _CYRILLIC),
    "greek": lambda n: _letters(n, _GREEK),
    "slash": lambda n: n.replace("-", "/"),
    "underscore": lambda n: n.replace("-", "_"),
    "no-separator": lambda n: n.replace("-", ""),
    "space": lambda n: n.replace("-", " "),
    "zero-width": lambda n: "\u200b".join(n),
    "full-width": lambda n: "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in n),
    # lower case, Cyrillic small letters for the Latin ones they look like, a minus and a space
    "mixed": lambda n: (
        _letters(n.lower(), _CYRILLIC_SMALL).replace("-", "\u2212", 1).replace("-", " ")
    ),
}


def lookalike_inputs(n: int, seed: int) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Originals and controls (round a), and the copies (half in the originals' round, half in
    a later one) by file name: `{round}-{original}-{0 original | 1 copy | 2 control}-{class}`."""
    rng = random.Random(seed * 1129 + 46)
    seller = _company(46, email="rechnung@lookalike-lieferant.example")
    first: dict[str, bytes] = {}
    later: dict[str, bytes] = {}
    for j in range(max(2, n // 300)):
        prefix = "".join(rng.choice("ABCEHKMOPTX") for _ in range(rng.randint(2, 4)))
        number = f"{prefix}-2025-{j:03d}{rng.randint(10, 99)}"
        quantity = 1 + j % 9
        first[f"a-{j:03d}-0-original.xml"] = einvoice(number, seller, quantity=quantity)
        first[f"a-{j:03d}-2-control.xml"] = einvoice(
            number.replace("-2025-", "-2026-"), seller, quantity=quantity
        )
        for kind, change in LOOKALIKES.items():
            target = first if j % 2 == 0 else later
            target[f"{'a' if j % 2 == 0 else 'b'}-{j:03d}-1-{kind}.xml"] = einvoice(
                change(number), seller, quantity=quantity
            )
    return first, later


def run_lookalike(stage: Stage) -> Category:
    category = Category("lookalike")
    org_id, slug = stage.organization("lookalike")
    first, later = lookalike_inputs(stage.n, stage.seed)
    ids: dict[str, int] = {}
    for files in (first, later):
        round_ids, batches = stage.register(slug, files)
        ids.update(round_ids)
        stage.process(org_id, slug, batches, category)
    states = stage.documents(slug, list(ids.values()))
    counts: Counter = Counter()
    for name in [*first, *later]:
        doc_id = ids.get(name)
        if doc_id is None:
            category.outcome("crashes", name, "never registered")
            continue
        _, status, reason = states[doc_id]
        kind = name.split("-", 3)[3].removesuffix(".xml")
        if status in WAITING:
            category.stuck += 1
            category.outcome("crashes", f"document {doc_id} ({kind})", f"left {status}")
        elif kind in ("original", "control"):
            counts[f"{kind}s"] += 1
            counts[f"{kind}s_validated"] += status == "VALIDATED"
            if status == "VALIDATED":
                category.outcome("passed")
            else:
                category.outcome("crashes", f"{kind} {doc_id}", f"{status} ({reason}), not booked")
        else:
            counts["copies"] += 1
            if status == "VALIDATED":
                counts["copies_validated"] += 1
                category.outcome("crashes", f"copy {doc_id} ({kind})", "VALIDATED: booked twice")
            elif _held_or_failed(status, reason):
                counts["copies_caught_ip_dup_01"] += reason == "IP-DUP-01"
                category.outcome("clean_failures")
            else:
                category.outcome("crashes", f"copy {doc_id} ({kind})", f"{status}, no reason")
    category.numbers.update({"classes": len(LOOKALIKES), "copies_validated": 0, **counts})
    return category


# --- 4. hostile review corrections -------------------------------------------------------------

REVIEW_POLICY = {"intake_policy": {"einvoice_with_errors": "review"}}


def _script(text: str, zero: int) -> str:
    """`text` with its digits 0-9 written in the script whose zero is `zero` (U+0660 ...)."""
    return "".join(chr(zero + int(c)) if c.isascii() and c.isdigit() else c for c in text)


def sane(quantity: int) -> dict[str, str]:
    """The corrections that make a review document right (as a person would type them)."""
    net, tax, gross = totals(quantity)
    return {
        "type_code": "380",
        "currency": "EUR",
        "issue_date": ISSUED.isoformat(),
        "due_date": (ISSUED + timedelta(days=14)).isoformat(),
        "net_total": f"{net}",
        "tax_total": f"{tax}",
        "gross_total": f"{gross}",
        "amount_due": f"{gross}",
        "breakdown": f"19:{net}:{tax}",
    }


def review_attacks(rng: random.Random, quantity: int) -> list[tuple[str, dict, dict]]:
    """(label, corrections over the sane ones, other arguments) of each hostile review: each one
    asks to confirm, and nothing of it may book the document."""
    net, tax, gross = totals(quantity)
    half = (net / 2).quantize(D("0.01"))
    half_tax = (half * D("0.19")).quantize(D("0.01"))
    negative = {
        "net_total": f"-{net}",
        "tax_total": f"-{tax}",
        "gross_total": f"-{gross}",
        "amount_due": f"-{gross}",
        "breakdown": f"19:-{net}:-{tax}",
    }
    rows = 10_000 + rng.randrange(2_000)
    attacks = [
        ("issue-date-9999", {"issue_date": f"9999-12-{rng.randint(20, 31)}"}, {}),
        ("issue-date-0001", {"issue_date": "0001-01-01"}, {}),
        ("due-date-9999", {"due_date": "9999-12-31"}, {}),
        ("arabic-indic-digits", {"gross_total": _script(f"{gross}", 0x660)}, {}),
        ("extended-arabic-digits", {"net_total": _script(f"{net}", 0x6F0)}, {}),
        ("devanagari-date", {"issue_date": _script(ISSUED.isoformat(), 0x966)}, {}),
        ("currency-xxx", {"currency": rng.choice(("XXX", "XTS", "xxx"))}, {}),
        ("type-999", {"type_code": rng.choice(("999", "0", "380380")), "currency": "XXX"}, {}),
        ("negative-380", {**negative, "type_code": "380"}, {}),
        ("negative-381", {**negative, "type_code": "381"}, {}),
        ("gross-negative", {"gross_total": f"-{gross}", "amount_due": f"-{gross}"}, {}),
        ("amount-due-above-total", {"amount_due": f"{gross + rng.randint(1, 999)}"}, {}),
        (
            "breakdown-10000-rows",
            {"breakdown": ";".join(f"{k % 10_000 // 100}.{k % 100:02d}:0:0" for k in range(rows))},
            {},
        ),
        (
            "breakdown-rate-twice",
            {"breakdown": f"19:{half}:{half_tax};19:{net - half}:{tax - half_tax}"},
            {},
        ),
        ("breakdown-wrong-rate", {"breakdown": f"7:{net}:{tax}"}, {}),
        ("amount-huge", {"gross_total": "9" * rng.randint(17, 400)}, {}),
        ("amount-not-a-number", {"net_total": rng.choice(("NaN", "-Infinity", "1e999999"))}, {}),
        ("number-100000", {"number": "R" * 100_000}, {}),
        ("number-escape", {"number": "RE-\x1b]8;;http://evil.example\x07x"}, {}),
        ("unknown-field", {"status": "VALIDATED"}, {}),
        ("by-300", {}, {"by": "R" * rng.randint(256, 400)}),
        ("by-control", {}, {"by": "Prüfer\x1b[31m"}),
        ("version-missing", {}, {"version": None}),
        ("version-stale", {}, {"version_offset": rng.randint(1, 5)}),
        ("confirm-and-reject", {}, {"reject": "falsch"}),
    ]
    rng.shuffle(attacks)
    return attacks


def _cli(argv: list[str], url: str) -> tuple[int, str]:
    """The console script's exit code and its stderr, run as a user runs it on the database `url`."""
    from invoice_pipelines_devtools.bench.console import run_console

    return run_console(argv, {"INVOICE_PIPELINES_DB_URL": url})


@dataclass
class _Review:
    """One review request as the function takes it and as the command line says it."""

    slug: str
    document_id: int
    by: str
    corrections: dict[str, str]
    version: int | None
    confirm: bool = True
    reject: str | None = None
    reopen: bool = False
    reason: str | None = None

    def argv(self) -> list[str]:
        argv = ["incoming", "review", "--org", self.slug, "--id", str(self.document_id)]
        argv += ["--by", self.by]
        for name, value in self.corrections.items():
            argv += ["--set", f"{name}={value}"]
        argv += ["--confirm"] if self.confirm else []
        argv += ["--version", str(self.version)] if self.version is not None else []
        argv += ["--reject", self.reject] if self.reject is not None else []
        argv += ["--reopen", "--reason", self.reason] if self.reopen else []
        return argv

    def call(self, engine, url: str, cli: bool) -> str | None:
        """None when it was done or refused in one sentence, else what went wrong."""
        from invoice_pipelines.db.incoming_status import StaleDocument
        from invoice_pipelines.db.tenancy import find_organization
        from invoice_pipelines.intake.domain.review import ReviewError, review_document

        if cli:
            code, err = _cli(self.argv(), url)
            if "Traceback" in err or code not in (0, 1, 2):
                return f"exit {code}: {err.strip().splitlines()[-1:] or 'no message'}"
            if code == 2 and not err.strip():
                return "exit 2 without a sentence"
            return None
        try:
            review_document(
                engine,
                find_organization(engine, self.slug),
                self.document_id,
                reviewed_by=self.by,
                corrections=self.corrections or None,
                confirm=self.confirm,
                reject=self.reject,
                expected_version=self.version,
                reopen=self.reopen,
                reason=self.reason,
            )
        except (ReviewError, StaleDocument):
            return None
        except Exception as exc:  # noqa: BLE001 - what the bench counts
            return f"{type(exc).__name__}: {exc}"
        return None


def _state(engine, org_id: int, document_id: int) -> tuple[str, int]:
    from sqlalchemy import select

    from invoice_pipelines.db.tables import incoming_invoices
    from invoice_pipelines.db.tenancy import tenant_transaction

    t = incoming_invoices.c
    with tenant_transaction(engine, org_id) as conn:
        row = conn.execute(select(t.status, t.processing_version).where(t.id == document_id)).one()
    return row.status, row.processing_version


def _review_one(stage: Stage, url: str, org_id, slug, doc_id, quantity, rng, category, numbers):
    """Every hostile review on one document, alternating the function and the command; then the
    sane correction (it must book the document), a reopening, and one more hostile review."""
    engine = stage.engine
    attacks = review_attacks(rng, quantity)
    attacks.append(("issue-date-9999-after-reopening", {"issue_date": "9999-12-25"}, {}))
    for number, (label, changes, other) in enumerate(attacks):
        if number == len(attacks) - 1:  # the controls, then the last attack
            status, version = _state(engine, org_id, doc_id)
            request = _Review(slug, doc_id, "bench", sane(quantity), version)
            problem = request.call(engine, url, cli=False)
            booked = _state(engine, org_id, doc_id)[0] == "VALIDATED"
            numbers["controls_validated"] += booked
            if problem or not booked:
                category.crash(
                    f"document {doc_id}", problem or "the sane correction was not booked"
                )
            version = _state(engine, org_id, doc_id)[1]
            request = _Review(slug, doc_id, "bench", {}, version, confirm=False, reopen=True)
            request.reason = "Lieferant nachgetragen (USt-IdNr.)"
            problem = request.call(engine, url, cli=True)
            reopened = _state(engine, org_id, doc_id)[0] == "NEEDS_REVIEW"
            numbers["reopened"] += reopened
            if problem or not reopened:
                category.crash(f"reopening {doc_id}", problem or "not back in review")
        status, version = _state(engine, org_id, doc_id)
        if "version_offset" in other:
            version += other["version_offset"]
        request = _Review(
            slug,
            doc_id,
            other.get("by", "bench"),
            {**sane(quantity), **changes},
            other["version"] if "version" in other else version,
            reject=other.get("reject"),
        )
        cli = number % 2 == 1
        problem = request.call(engine, url, cli=cli)
        numbers["via_command" if cli else "via_function"] += 1
        after = _state(engine, org_id, doc_id)[0]
        if problem:
            numbers["tracebacks"] += 1
            category.outcome("crashes", f"review {label} of {doc_id}", problem)
        elif after == "VALIDATED":
            numbers["wrongly_validated"] += 1
            category.outcome("crashes", f"review {label} of {doc_id}", "VALIDATED")
            reopen = _Review(slug, doc_id, "bench", {}, _state(engine, org_id, doc_id)[1], False)
            reopen.reopen, reopen.reason = True, "the bench: booked by a hostile review"
            reopen.call(engine, url, cli=False)
        else:
            category.outcome("clean_failures")


def run_review(stage: Stage, url: str) -> Category:
    category = Category("review")
    org_id, slug = stage.organization("review", REVIEW_POLICY)
    rng = random.Random(stage.seed * 3571 + 46)
    seller = _company(47, email="rechnung@review-lieferant.example")
    quantities = {f"review-{k:03d}.xml": 1 + k % 9 for k in range(max(2, stage.n // 500))}
    files = {
        name: edit(
            einvoice(f"REVIEW-{name[7:10]}", seller, quantity=q, discount=True),
            gross=f"{totals(q)[2] + D(rng.randint(1, 99)):.2f}",  # BR-CO-15: held for review
        )
        for name, q in quantities.items()
    }
    ids, batches = stage.register(slug, files)
    stage.process(org_id, slug, batches, category)
    numbers = Counter(
        {k: 0 for k in ("tracebacks", "wrongly_validated", "controls_validated", "reopened")}
    )
    for name, quantity in quantities.items():
        doc_id = ids.get(name)
        status = _state(stage.engine, org_id, doc_id)[0] if doc_id else "never registered"
        if status != "NEEDS_REVIEW":
            if status in WAITING:
                category.stuck += 1
            category.crash(f"review document {name}", f"{status}, not held for review")
            continue
        numbers["documents"] += 1
        _review_one(stage, url, org_id, slug, doc_id, quantity, rng, category, numbers)
    category.numbers.update(numbers)
    return category


# --- the run -----------------------------------------------------------------------------------


def run_categories(
    engine, url: str, work: Path, *, n: int, seed: int, workers: int, batch_size: int, keep: bool
) -> dict[str, Category]:
    """The four categories, each in an organization of its own (dropped unless `keep`), with one
    set of parse workers; a category whose own setup raises is a crash, the others go on."""
    from invoice_pipelines.intake.parser_resource import DocumentParser

    parser = DocumentParser(workers=workers)
    stage = Stage(engine, work, parser, n, seed, batch_size, keep)
    results: dict[str, Category] = {}
    runners: dict[str, Callable[[], Category]] = {
        "poison_batch": lambda: run_poison_batch(stage),
        "notices": lambda: run_notices(stage),
        "lookalike": lambda: run_lookalike(stage),
        "review": lambda: run_review(stage, url),
    }
    try:
        for name, runner in runners.items():
            started = time.perf_counter()
            try:
                category = runner()
            except Exception as exc:  # noqa: BLE001 - what the bench counts
                category = Category(name)
                category.crash(f"the {name} category", exc)
            category.numbers["seconds"] = round(time.perf_counter() - started, 3)
            results[name] = category
    finally:
        parser.close()
        if not keep:
            _drop(engine, stage.organizations)
    return results


def _drop(engine, organization_ids: list[int]) -> None:
    from invoice_pipelines.db.tables import organizations
    from invoice_pipelines.db.tenancy import system_transaction

    for org_id in organization_ids:
        try:
            with system_transaction(engine, write=True) as conn:
                conn.execute(organizations.delete().where(organizations.c.id == org_id))
        except Exception:  # noqa: BLE001,S110 - a scratch database is dropped anyway
            pass
