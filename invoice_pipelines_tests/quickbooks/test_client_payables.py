"""The production client's payables calls over real HTTP against the simulator: vendors, terms,
accounts, bills, vendor credits, bill payments and attachments created, read, updated and queried
with Decimal money; QBO's errors as typed errors; a bill paid down to Balance 0; an upload linked
to a bill whose download is the same bytes; and 429, 5xx, timeouts and lost answers retried with
the same requestid, so every write happens exactly once."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import pytest

from invoice_pipelines.quickbooks.domain.client import quote, request_id
from invoice_pipelines.quickbooks.domain.errors import (
    BusinessValidation,
    DuplicateName,
    InvalidReference,
    QboError,
    StaleObject,
)
from invoice_pipelines.quickbooks.domain.payables import (
    AccountDraft,
    Applied,
    AttachmentLink,
    BillDraft,
    BillPaymentDraft,
    ExpenseLine,
    TermDraft,
    VendorCreditDraft,
    VendorDraft,
)

D = Decimal
# a file with what breaks careless multipart handling: CR LF, NUL bytes, a dash line
DOCUMENT = b"%PDF-1.7\r\n%\xe2\xe3\xcf\xd3\n--\r\n\x00\x01\xff" * 500


class Payables:
    """One connected organization's client and a counter for distinct requestids."""

    def __init__(self, qbo, client) -> None:
        self.qbo = qbo
        self.client = client
        self.n = 0

    def rid(self) -> str:
        self.n += 1
        return request_id("payables-test", self.qbo.realm, self.n)

    def account(self, name: str) -> str:
        [found] = self.client.find_accounts(f"Name = {quote(name)}")
        return found.id

    def vendor(self, name: str, **fields):
        return self.client.create_vendor(
            VendorDraft(display_name=name, **fields), requestid=self.rid()
        )

    def bill(self, vendor_id: str, *amounts: str, **fields):
        office = self.account("Office Expenses")
        lines = tuple(ExpenseLine(D(a), account_id=office) for a in amounts)
        draft = BillDraft(vendor_id=vendor_id, lines=lines, **fields)
        return self.client.create_bill(draft, requestid=self.rid())

    def pay(self, vendor_id: str, total: str, bills=(), credits=()):
        draft = BillPaymentDraft(
            vendor_id=vendor_id,
            total=D(total),
            account_id=self.account("Checking"),
            bills=tuple(Applied(i, D(a)) for i, a in bills),
            credits=tuple(Applied(i, D(a)) for i, a in credits),
        )
        return self.client.create_bill_payment(draft, requestid=self.rid())


@pytest.fixture
def payables(qbo):
    with qbo.client() as client:
        yield Payables(qbo, client)


def test_vendors_terms_and_accounts_created_read_updated_and_queried(payables):
    client = payables.client
    term = client.create_term(
        TermDraft(name="3% 14, Net 30", due_days=30, discount_percent=D("3"), discount_days=14),
        requestid=payables.rid(),
    )
    assert (term.type, term.due_days, term.discount_percent, term.discount_days) == (
        "STANDARD",
        30,
        D("3"),
        14,
    )
    assert client.get_term(term.id) == term
    assert {"Net 30", "3% 14, Net 30"} <= {t.name for t in client.find_terms()}

    freight = client.create_account(
        AccountDraft(name="Freight", account_type="Expense", account_number="6740"),
        requestid=payables.rid(),
    )
    assert (freight.classification, freight.current_balance) == ("Expense", D("0.00"))
    expenses = {a.name for a in client.find_accounts("AccountType = 'Expense'")}
    assert {"Freight", "Office Expenses", "Utilities"} <= expenses
    renamed = client.update_account(
        freight.id, freight.sync_token, AccountDraft(name="Freight In"), requestid=payables.rid()
    )
    assert (renamed.name, renamed.account_number, renamed.sync_token) == ("Freight In", "6740", "1")

    vendor = payables.vendor(
        "Papier Schulz GmbH",
        email="ap@schulz.example",
        tax_identifier="DE123456789",
        term_id=term.id,
    )
    assert (vendor.sync_token, vendor.term_id, vendor.balance) == ("0", term.id, D("0.00"))
    assert vendor.tax_identifier == "XXXXXX56789"
    assert client.get_vendor(vendor.id) == vendor
    changed = client.update_vendor(
        vendor.id, vendor.sync_token, VendorDraft(account_number="K-4711"), requestid=payables.rid()
    )
    assert (changed.account_number, changed.email, changed.sync_token) == (
        "K-4711",
        "ap@schulz.example",
        "1",
    )
    with pytest.raises(StaleObject):
        client.update_vendor(
            vendor.id, vendor.sync_token, VendorDraft(account_number="x"), requestid=payables.rid()
        )
    full = client.update_vendor(
        vendor.id,
        changed.sync_token,
        VendorDraft(display_name="Papier Schulz"),
        requestid=payables.rid(),
        sparse=False,
    )
    assert (full.display_name, full.email) == ("Papier Schulz", None)
    found = client.find_vendors(f"DisplayName = {quote('Papier Schulz')}")
    assert [v.id for v in found] == [vendor.id]

    client.create("Customer", {"DisplayName": "Kunde und Lieferant"}, requestid=payables.rid())
    with pytest.raises(DuplicateName):
        payables.vendor("Kunde und Lieferant")


def test_a_bill_created_read_updated_and_queried_with_decimal_money(payables):
    client = payables.client
    vendor = payables.vendor("Schulz", term_id=client.find_terms("Name = 'Net 30'")[0].id)
    rent, office = payables.account("Rent or Lease"), payables.account("Office Expenses")
    draft = BillDraft(
        vendor_id=vendor.id,
        lines=(
            ExpenseLine(D("1200.00"), account_id=rent, description="Miete Dezember"),
            ExpenseLine(D("19.99"), account_id=office, tax_code_id="NON"),
        ),
        doc_number="RE-2026-117",
        txn_date=date(2026, 11, 2),
        private_note="from incoming invoice 17",
    )
    bill = client.create_bill(draft, requestid=payables.rid())
    assert (bill.total, bill.balance) == (D("1219.99"), D("1219.99"))
    assert bill.due_date == date(2026, 12, 2)  # the vendor's Net 30
    assert [(line.amount, line.account_id) for line in bill.lines] == [
        (D("1200.00"), rent),
        (D("19.99"), office),
    ]
    assert bill.lines[0].description == "Miete Dezember" and bill.lines[1].tax_code_id == "NON"
    assert client.get_bill(bill.id) == bill
    assert [b.id for b in client.find_bills(f"DocNumber = {quote('RE-2026-117')}")] == [bill.id]

    changed = client.update_bill(
        bill.id,
        bill.sync_token,
        BillDraft(lines=(ExpenseLine(D("1250.50"), account_id=rent),), due_date=date(2026, 12, 15)),
        requestid=payables.rid(),
    )
    assert (changed.total, changed.due_date, changed.doc_number) == (
        D("1250.50"),
        date(2026, 12, 15),
        "RE-2026-117",
    )
    with pytest.raises(StaleObject):
        client.update_bill(
            bill.id, bill.sync_token, BillDraft(private_note="x"), requestid=payables.rid()
        )


def test_a_bill_qbo_refuses_raises_its_typed_error(payables):
    client = payables.client
    office = payables.account("Office Expenses")
    vendor = payables.vendor("Schulz")
    with pytest.raises(QboError) as missing:
        client.create_bill(
            BillDraft(lines=(ExpenseLine(D("1.00"), account_id=office),)),
            requestid=payables.rid(),
        )
    assert (missing.value.code, missing.value.element) == ("2020", "VendorRef")
    with pytest.raises(InvalidReference):
        payables.bill("424242", "1.00")
    with pytest.raises(InvalidReference):
        client.create_bill(
            BillDraft(vendor_id=vendor.id, lines=(ExpenseLine(D("1.00"), account_id="9999"),)),
            requestid=payables.rid(),
        )
    with pytest.raises(BusinessValidation):
        client.create_bill(BillDraft(vendor_id=vendor.id, lines=()), requestid=payables.rid())
    with pytest.raises(TypeError, match="Decimal"):
        ExpenseLine(1.5, account_id=office)  # type: ignore[arg-type]  # never a float
    assert client.find_bills() == []


def test_bill_payments_bring_a_bill_to_balance_zero_and_a_vendor_credit_counts(payables):
    client = payables.client
    vendor = payables.vendor("Schulz")
    bill = payables.bill(vendor.id, "300.00", "50.50")
    first = payables.pay(vendor.id, "100.00", bills=[(bill.id, "100.00")])
    assert client.get_bill(bill.id).balance == D("250.50")
    second = payables.pay(vendor.id, "250.50", bills=[(bill.id, "250.50")])
    paid = client.get_bill(bill.id)
    assert (paid.balance, paid.total, paid.payment_ids) == (
        D("0.00"),
        D("350.50"),
        (first.id, second.id),
    )
    assert second.bills == (Applied(bill.id, D("250.50")),)
    assert second.account_id == payables.account("Checking") and second.pay_type == "Check"
    assert client.get_bill_payment(second.id) == second
    assert {p.id for p in client.find_bill_payments(f"VendorRef = {quote(vendor.id)}")} == {
        first.id,
        second.id,
    }
    with pytest.raises(BusinessValidation):  # more than it has open
        payables.pay(vendor.id, "0.01", bills=[(bill.id, "0.01")])

    voided = client.void_bill_payment(second.id, second.sync_token, requestid=payables.rid())
    assert voided.total == D("0.00")
    assert client.get_bill(bill.id).balance == D("250.50")
    client.delete_bill_payment(first.id, first.sync_token, requestid=payables.rid())
    assert client.get_bill(bill.id).balance == D("350.50")

    credit = client.create_vendor_credit(
        VendorCreditDraft(
            vendor_id=vendor.id,
            lines=(ExpenseLine(D("50.50"), account_id=payables.account("Office Expenses")),),
            doc_number="GS-4",
        ),
        requestid=payables.rid(),
    )
    assert (credit.total, credit.balance) == (D("50.50"), D("50.50"))
    payables.pay(vendor.id, "300.00", bills=[(bill.id, "350.50")], credits=[(credit.id, "50.50")])
    assert client.get_bill(bill.id).balance == D("0.00")
    assert client.get_vendor_credit(credit.id).balance == D("0.00")
    assert client.get_vendor(vendor.id).balance == D("0.00")


def test_a_document_uploaded_to_a_bill_downloads_as_the_same_bytes(payables):
    client = payables.client
    bill = payables.bill(payables.vendor("Schulz").id, "10.00")
    attachable = client.upload_attachment(
        DOCUMENT,
        file_name="RE-2026-117 Schulz.pdf",
        content_type="application/pdf",
        links=[AttachmentLink("Bill", bill.id)],
        note="the supplier's original",
        requestid=payables.rid(),
    )
    assert (attachable.file_name, attachable.content_type, attachable.size) == (
        "RE-2026-117 Schulz.pdf",
        "application/pdf",
        len(DOCUMENT),
    )
    assert attachable.links == (AttachmentLink("Bill", bill.id),)
    assert attachable.note == "the supplier's original"
    assert [a.id for a in client.find_attachables("Bill", bill.id)] == [attachable.id]
    assert client.download_attachment(attachable.id) == DOCUMENT
    assert client.get_attachable(attachable.id).download_url

    note = client.create_note(
        "Skonto 2 % bis 12.11.", links=[AttachmentLink("Bill", bill.id)], requestid=payables.rid()
    )
    assert note.note == "Skonto 2 % bis 12.11." and note.file_name is None
    client.delete_attachable(attachable.id, attachable.sync_token, requestid=payables.rid())
    assert [a.id for a in client.find_attachables("Bill", bill.id)] == [note.id]


def test_an_upload_qbo_refuses_raises_and_keeps_nothing(payables):
    client, sim = payables.client, payables.qbo.sim
    bill = payables.bill(payables.vendor("Schulz").id, "10.00")
    link = [AttachmentLink("Bill", bill.id)]
    with pytest.raises(BusinessValidation, match="application/x-msdownload"):
        client.upload_attachment(
            b"MZ",
            file_name="tool.exe",
            content_type="application/x-msdownload",
            links=link,
            requestid=payables.rid(),
        )
    with pytest.raises(BusinessValidation, match="does not exist"):
        client.upload_attachment(
            DOCUMENT,
            file_name="a.pdf",
            content_type="application/pdf",
            links=[AttachmentLink("Bill", "424242")],
            requestid=payables.rid(),
        )
    sim.configure(upload_max_bytes=len(DOCUMENT) - 1)
    try:
        with pytest.raises(BusinessValidation, match=f"{len(DOCUMENT)} bytes"):
            client.upload_attachment(
                DOCUMENT,
                file_name="a.pdf",
                content_type="application/pdf",
                links=link,
                requestid=payables.rid(),
            )
    finally:
        sim.configure(upload_max_bytes=100 * 1024 * 1024)
    assert sim.records(payables.qbo.realm, "Attachable") == []


def test_429_5xx_timeouts_and_lost_answers_are_retried_and_write_once(payables):
    client, sim, realm = payables.client, payables.qbo.sim, payables.qbo.realm
    vendor = payables.vendor("Schulz")
    sim.inject(realm, "429", path_contains="/bill?")
    sim.inject(realm, "503", path_contains="/bill?")
    sim.inject(realm, "drop_after_commit", path_contains="/bill?")
    bill = payables.bill(vendor.id, "80.00", doc_number="R-1")
    sim.inject(realm, "500", count=2, path_contains="/billpayment?")
    sim.inject(realm, "drop_after_commit", path_contains="/billpayment?")
    payables.pay(vendor.id, "80.00", bills=[(bill.id, "80.00")])
    sim.inject(realm, "drop_after_commit", path_contains="/upload?")
    sim.inject(realm, "timeout", path_contains="/upload?", seconds=1)
    client.upload_attachment(
        DOCUMENT,
        file_name="r.pdf",
        content_type="application/pdf",
        links=[AttachmentLink("Bill", bill.id)],
        requestid=payables.rid(),
    )
    # 3 retries of the bill, 3 of the payment, 2 of the upload
    assert client.stats["throttled"] == 1 and client.stats["retries"] == 8

    assert len(sim.records(realm, "Bill")) == 1
    assert len(sim.records(realm, "BillPayment")) == 1
    assert len(sim.records(realm, "Attachable")) == 1
    assert client.get_bill(bill.id).balance == D("0.00")
    # every attempt of one write carried the same requestid
    writes = [e for e in sim.requests(realm) if e["method"] == "POST" and e["requestid"]]
    by_path: dict[str, set] = {}
    for entry in writes:
        by_path.setdefault(entry["path"].rsplit("/", 1)[-1], set()).add(entry["requestid"])
    assert {
        path: len(ids) for path, ids in by_path.items() if path in ("bill", "billpayment", "upload")
    } == {
        "bill": 1,
        "billpayment": 1,
        "upload": 1,
    }


def test_a_write_the_client_gave_up_waiting_for_is_not_made_twice(payables):
    """The first attempt is held past the client's timeout and done after the retry: QBO answers
    the held one from the retry's requestid, so there is still one bill."""
    client, sim, realm = payables.client, payables.qbo.sim, payables.qbo.realm
    vendor = payables.vendor("Schulz")
    client.timeout = 0.5
    sim.inject(realm, "delay", path_contains="/bill?", seconds=120)  # 2 s on the 60x clock
    bill = payables.bill(vendor.id, "5.00")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the held attempt has been answered too
        answered = [e for e in sim.requests(realm) if e["path"].endswith("/bill")]
        if len(answered) >= 2:
            break
        time.sleep(0.05)
    assert [e.get("injected") for e in answered] == ["delay", None] or [
        e.get("injected") for e in answered
    ] == [None, "delay"]
    assert client.stats["retries"] == 1  # it gave up on the held attempt once
    assert [b["Id"] for b in sim.records(realm, "Bill")] == [bill.id]
