"""Sales payments in the DATEV Buchungsstapel (issue 40, "DATEV gets the payment with its Skonto
amount"): payments pulled from QuickBooks (the simulator over real HTTP) are booked in the month of
their day on the bank account against the customer's debtor account, Belegfeld 1 the invoice
number; the payment that settles an invoice within its discount period is split per VAT rate with
the rate's discount in Skonto (column 13) and its "Gewährte Skonti" account (column 125). Read
back with our own EXTF reader, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import update

from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import find_organization, system_transaction
from invoice_pipelines.exports.domain.documents import DocumentStores
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.datev_reader import read_extf
from invoice_pipelines_tests.exports.test_document_package import (
    assert_links_resolve,
    read_package,
)
from invoice_pipelines_tests.quickbooks.test_payments import void_payment
from invoice_pipelines_tests.quickbooks.test_skonto_payments import (
    DUE,
    LAST_DAY,
    TWO_PERCENT,
    _pay,
    _pull,
    _push,
    _two_rate_invoice,
)

D = Decimal
# the columns of a booking line (0-based): Umsatz, Soll/Haben, Konto, Gegenkonto, BU-Schlüssel,
# Belegdatum, Belegfeld 1, Skonto, Buchungstext, Beleglink; Abw. Skontokonto
UMSATZ, SIDE, KONTO, GEGENKONTO, BU, BELEGDATUM, BELEGFELD1, SKONTO, TEXT, BELEGLINK = (
    0, 1, 6, 7, 8, 9, 10, 12, 13, 19,
)  # fmt: skip
SKONTOKONTO = 124


@pytest.fixture
def documents(tmp_path) -> LocalFiles:
    return LocalFiles(str(tmp_path / "documents"))


def _books(qbo, chart: str = "SKR03", exports: dict | None = None) -> None:
    """The organization offers 2 % within 10 days and books in DATEV with `chart`."""
    settings = {"seller": SELLER, "skonto": TWO_PERCENT}
    if exports:
        settings["exports"] = exports
    with system_transaction(qbo.engine, write=True) as conn:
        conn.execute(
            update(organizations)
            .where(organizations.c.id == qbo.org_id)
            .values(
                settings=settings,
                datev_berater_nr=29098,
                datev_mandant_nr=55003,
                datev_chart=chart,
            )
        )


def _two_rate_invoice_paid(qbo, documents, *payments, chart="SKR03", exports=None) -> None:
    """RE-2026-0700 (1190.00 at 19 %, 535.00 at 7 %) of a customer of an organization that offers
    2 % within 10 days, pushed to QuickBooks, paid there with `payments` ((amount, day) each) and
    pulled back."""
    _books(qbo, chart, exports)
    customer = qbo.add_customer("Skonto GmbH", email="ap@skonto.example")
    invoice_id = _two_rate_invoice(qbo, customer)
    _push(qbo, documents)
    for amount, day in payments:
        _pay(qbo, invoice_id, customer, amount, day)
    _pull(qbo)


def _export(qbo, tmp_path, period: str = "2026-11"):
    store = LocalFiles(str(tmp_path / "exports"))
    result = run_export(
        qbo.engine, store, find_organization(qbo.engine, qbo.org_id), period, "sales"
    )
    return result


def _bookings(result) -> list[list[str]]:
    """The booking lines of the version's Buchungsstapel, as field values."""
    if not result.files:
        return []
    with open(result.files["datev"], "rb") as f:
        lines = read_extf(f.read())
    return [[field.value for field in line] for line in lines[2:]]


def _payments(rows: list[list[str]], number: str) -> list[list[str]]:
    """The payment bookings of invoice `number`: those on the bank side (text "Zahlung ...")."""
    return [r for r in rows if r[BELEGFELD1] == number and r[TEXT].startswith("Zahlung")]


def _debtor(rows: list[list[str]], number: str) -> str:
    """The debtor account the invoice's own booking uses."""
    (invoice,) = {
        r[KONTO] for r in rows if r[BELEGFELD1] == number and not r[TEXT].startswith("Zahlung")
    }
    return invoice


@pytest.mark.parametrize(
    ("chart", "bank", "skonti"),
    [("SKR03", "1200", ("8736", "8731")), ("SKR04", "1800", ("4736", "4731"))],
)
def test_a_discounted_payment_is_booked_per_vat_rate_with_its_skonto(
    qbo, documents, tmp_path, chart, bank, skonti
):
    _two_rate_invoice_paid(qbo, documents, ("1690.50", LAST_DAY), chart=chart)  # 1725.00 less 2 %
    result = _export(qbo, tmp_path)
    rows = _bookings(result)
    paid = _payments(rows, "RE-2026-0700")
    debtor = _debtor(rows, "RE-2026-0700")
    assert sorted(
        (
            r[UMSATZ],
            r[SIDE],
            r[KONTO],
            r[GEGENKONTO],
            r[BU],
            r[BELEGDATUM],
            r[SKONTO],
            r[SKONTOKONTO],
        )
        for r in paid
    ) == [
        # 1190.00 at 19 %: 23.80 discount, 1166.20 paid; 535.00 at 7 %: 10.70 and 524.30
        ("1166,20", "S", bank, debtor, "", "1211", "23,80", skonti[0]),
        ("524,30", "S", bank, debtor, "", "1211", "10,70", skonti[1]),
    ]
    # the money and the discount together settle the invoice's gross, per rate and in all
    money = sum(D(r[UMSATZ].replace(",", ".")) for r in paid)
    discount = sum(D(r[SKONTO].replace(",", ".")) for r in paid)
    assert (money, money + discount) == (D("1690.50"), D("1725.00"))
    assert result.notes["payments"] == {
        "booked": 1,
        "money": {"EUR": "1690.50"},
        "discount": {"EUR": "34.50"},
    }


def test_payments_without_discount_are_booked_once_each_in_the_month_of_their_day(
    qbo, documents, tmp_path
):
    _books(qbo)
    customer = qbo.add_customer("Teilzahler AG")
    item = qbo.add_item("HOUR", "500.00")
    invoice_id = qbo.add_invoice("RE-2026-0702", customer, [(item, "2", "500.00")], due=DUE)
    _push(qbo, documents)
    # 500.00 in time, the rest after the discount period: no discount, two plain bookings
    _pay(qbo, invoice_id, customer, "500.00", date(2026, 11, 5))
    _pay(qbo, invoice_id, customer, "690.00", date(2026, 12, 3))
    _pull(qbo)
    november = _bookings(_export(qbo, tmp_path, "2026-11"))
    december = _bookings(_export(qbo, tmp_path, "2026-12"))
    assert [
        (r[UMSATZ], r[BELEGDATUM], r[SKONTO], r[SKONTOKONTO])
        for r in _payments(november, "RE-2026-0702")
    ] == [("500,00", "0511", "", "")]
    # December has no invoice of its own, only the payment, on the same debtor as November's invoice
    assert [(r[UMSATZ], r[KONTO], r[GEGENKONTO], r[BELEGDATUM], r[SKONTO]) for r in december] == [
        ("690,00", "1200", _debtor(november, "RE-2026-0702"), "0312", "")
    ]


def test_a_payment_voided_in_quickbooks_leaves_the_next_version_with_a_warning(
    qbo, documents, tmp_path
):
    _books(qbo)
    customer = qbo.add_customer("Storno Zahler GmbH")
    item = qbo.add_item("HOUR", "500.00")
    invoice_id = qbo.add_invoice("RE-2026-0707", customer, [(item, "2", "500.00")], due=DUE)
    _push(qbo, documents)
    payment = _pay(qbo, invoice_id, customer, "1166.20", date(2026, 11, 10))
    _pull(qbo)
    first = _export(qbo, tmp_path)
    assert [(r[UMSATZ], r[SKONTO]) for r in _payments(_bookings(first), "RE-2026-0707")] == [
        ("1166,20", "23,80")
    ]
    # nothing changed: the month writes nothing new
    again = _export(qbo, tmp_path)
    assert (again.unchanged, again.version) == (True, first.version)
    with qbo.client() as client:
        void_payment(client, qbo, payment["Id"])
    _pull(qbo)
    second = _export(qbo, tmp_path)
    assert second.version == first.version + 1
    assert _payments(_bookings(second), "RE-2026-0707") == []
    assert second.notes["payments_no_longer_booked"] == first.notes["payment_refs"]
    assert "reverse their bookings" in second.notes["payments_warning"]


def test_the_organizations_own_bank_and_discount_accounts_are_used(qbo, documents, tmp_path):
    """exports.bank_account and exports.discount_accounts (per VAT key) win over the chart's
    defaults; a VAT key not named keeps its default."""
    exports = {"bank_account": 1210, "discount_accounts": {"S:19": 8735}}
    _two_rate_invoice_paid(qbo, documents, ("1690.50", LAST_DAY), exports=exports)
    paid = _payments(_bookings(_export(qbo, tmp_path)), "RE-2026-0700")
    assert sorted((r[KONTO], r[SKONTO], r[SKONTOKONTO]) for r in paid) == [
        ("1210", "10,70", "8731"),
        ("1210", "23,80", "8735"),
    ]


def test_a_payment_links_the_document_of_the_invoice_it_paid_where_the_package_has_it(
    qbo, documents, tmp_path
):
    """The payment booking of an invoice of the same month carries that invoice's Beleglink (the
    sales PDF we wrote, in the month's DATEV document package); a payment of an earlier month's
    invoice carries none (its document travelled with that month)."""
    _two_rate_invoice_paid(
        qbo, documents, ("1000.00", date(2026, 11, 6)), ("725.00", date(2026, 12, 1))
    )
    stores = DocumentStores(LocalUploads(str(tmp_path / "uploads")), documents)
    out = LocalFiles(str(tmp_path / "exports"))
    november = run_export(
        qbo.engine,
        out,
        find_organization(qbo.engine, qbo.org_id),
        "2026-11",
        "sales",
        documents=stores,
    )
    links = assert_links_resolve(november, read_package(november.files["datev_documents"]))
    rows = _bookings(november)
    assert len(links) == len(rows) and None not in links
    by_text = {r[TEXT].startswith("Zahlung"): r[BELEGLINK] for r in rows}
    assert by_text[True] == by_text[False]
    december = run_export(
        qbo.engine,
        out,
        find_organization(qbo.engine, qbo.org_id),
        "2026-12",
        "sales",
        documents=stores,
    )
    assert [(r[UMSATZ], r[BELEGLINK]) for r in _bookings(december)] == [("725,00", "")]
