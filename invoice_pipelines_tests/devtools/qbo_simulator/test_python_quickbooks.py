"""Wire compatibility: python-quickbooks with intuit-oauth, unchanged, against the simulator.

The library has no constructor argument for the API host: `api_url_v3` is a class attribute, so a
subclass names the simulator's (no module constant is patched). intuit-oauth takes the discovery
document's URL as its `environment`. requests-oauthlib refuses plain http unless oauthlib's
documented OAUTHLIB_INSECURE_TRANSPORT is set, which this test does (loopback only)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from intuitlib.client import AuthClient
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.base import Ref
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item

from invoice_pipelines_tests.devtools.qbo_simulator.conftest import REALM


@pytest.fixture
def qb(sim, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    company = sim.create_company(realm_id=REALM)
    auth = AuthClient(
        client_id=company.client_id,
        client_secret=company.client_secret,
        redirect_uri="http://127.0.0.1:9/callback",
        environment=sim.discovery_url,
    )
    simulated = type("SimulatedQuickBooks", (QuickBooks,), {"api_url_v3": sim.api_url})
    client = simulated(
        auth_client=auth,
        refresh_token=company.refresh_token,
        company_id=company.realm_id,
        minorversion=75,
        use_decimal=True,
    )
    # the library refreshed on construction: the rotated refresh token is on the auth client
    assert auth.refresh_token != company.refresh_token
    return client


def test_create_query_sparse_update_and_invoice(qb, sim):
    customer = Customer()
    customer.DisplayName = "Müller GmbH"
    customer.CompanyName = "Müller"
    customer = customer.save(qb=qb, request_id="cust-1")
    assert customer.Id == "1" and customer.SyncToken == "0"

    found = Customer.filter(DisplayName="Müller GmbH", qb=qb)
    assert [c.Id for c in found] == ["1"]
    assert Customer.count(qb=qb) == 1
    assert [c.Id for c in Customer.where("Active IN (true, false)", qb=qb)] == ["1"]

    sim.edit_as_user(REALM, "Customer", "1", {"PrimaryPhone": {"FreeFormNumber": "030 1234"}})
    stale = Customer.get(customer.Id, qb=qb)
    stale.SyncToken = "0"
    stale.sparse = True
    with pytest.raises(QuickbooksException) as conflict:
        stale.save(qb=qb)
    assert conflict.value.error_code == 5010

    current = Customer.get(customer.Id, qb=qb)
    current.sparse = True
    current.Notes = "synced"
    updated = current.save(qb=qb)
    assert updated.SyncToken == "2" and updated.Notes == "synced"
    assert updated.PrimaryPhone.FreeFormNumber == "030 1234"

    item = Item()
    item.Name, item.Type, item.UnitPrice = "Consulting", "Service", Decimal("120.00")
    item.IncomeAccountRef = Ref()
    item.IncomeAccountRef.value = "1"
    item = item.save(qb=qb)

    line = SalesItemLine()
    line.Amount = Decimal("240.00")
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    line.SalesItemLineDetail.Qty = 2
    line.SalesItemLineDetail.UnitPrice = Decimal("120.00")
    invoice = Invoice()
    invoice.CustomerRef = updated.to_ref()
    invoice.DocNumber = "RE-1"
    invoice.Line = [line]
    invoice = invoice.save(qb=qb, request_id="inv-RE-1")
    assert invoice.TotalAmt == Decimal("240.00") and invoice.Balance == Decimal("240.00")
    stored = sim.records(REALM, "Invoice")
    assert [(i["DocNumber"], str(i["TotalAmt"])) for i in stored] == [("RE-1", "240.00")]

    # the library's own error mapping understands the simulator's faults
    again = Invoice()
    again.CustomerRef, again.DocNumber, again.Line = updated.to_ref(), "RE-1", [line]
    with pytest.raises(QuickbooksException) as refused:
        again.save(qb=qb)
    assert refused.value.error_code == 6140

    voided = Invoice.get(invoice.Id, qb=qb)
    voided.void(qb=qb)
    assert Invoice.get(invoice.Id, qb=qb).TotalAmt == 0


def test_batch_and_change_data_capture(qb, sim):
    customers = []
    for name in ("A", "B", "C"):
        customer = Customer()
        customer.DisplayName = name
        customers.append(customer)
    result = batch_create(customers, qb=qb)
    assert len(result.successes) == 3 and not result.faults
    # the library writes changedSince without an offset: company-local time, as QBO reads it
    since = datetime.fromtimestamp(sim.now() - 60, timezone(timedelta(hours=-7)))
    changes = change_data_capture([Customer, Invoice], since, qb=qb)
    assert sorted(c.DisplayName for c in changes.Customer) == ["A", "B", "C"]
