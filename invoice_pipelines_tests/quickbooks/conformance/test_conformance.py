"""The same QBO scenarios through three clients: node-quickbooks + intuit-oauth (npm),
python-quickbooks + intuit-oauth (PyPI), and our own client. The third-party clients are widely
used against the real QBO; where they fail against the simulator, the simulator is wrong (gaps go
to the simulator's owners), and our client is held to the same answers from the other side.

Each test runs one scenario group per client (`client` is parametrized) and compares the report
with what QBO answers; the simulator's request log shows what went over the wire. Where our client
differs by design (it paces itself under QBO's limits, retries 429/5xx, refreshes on a 401), the
expectation says so."""

from __future__ import annotations

from invoice_pipelines_tests.quickbooks.conformance.scenarios import DOCUMENT, Scenarios, money

THIRD_PARTY = ("node-quickbooks", "python-quickbooks")


def assert_fault(outcome, code: str, message: str, status: int) -> None:
    """QBO's fault as the client's user sees it: the code and message (and the HTTP status where
    the client exposes one; python-quickbooks does only for a 401)."""
    assert isinstance(outcome, dict), (
        f"expected QBO's {code} {message!r}, the client got {outcome!r}"
    )
    assert outcome["code"] == code, outcome
    assert message in outcome["message"], outcome
    if outcome["status"] is not None:
        assert outcome["status"] == status, outcome


def wire_statuses(client: Scenarios) -> list:
    return [entry["status"] for entry in client.sim.requests(client.realm)]


def test_queries_in_lower_case_count_and_paging_past_1000(client):
    for n in range(1205):
        client.sim.create_as_user(
            client.realm, "Customer", {"DisplayName": f"Kunde {n:04d}", "Active": n % 250 != 0}
        )
    client.sim.create_as_user(client.realm, "Customer", {"DisplayName": "O'Brien & Söhne"})

    report = client.run("queries")

    assert report == {
        "found": ["Kunde 0007"],
        "quoted": ["O'Brien & Söhne"],
        "count": 1201,  # the 5 inactive ones only when the query names Active
        "count_with_inactive": 1206,
        "all": 1201,
        "all_distinct": 1201,
        "second_page": 201,
        "ordered": ["Kunde 0099", "Kunde 0098", "Kunde 0097"],
    }
    assert set(wire_statuses(client)) == {200}


def test_crud_with_sync_token_stale_duplicate_and_unknown(client):
    report = client.run("crud")

    assert report["created"] == {"SyncToken": "0"}
    assert report["replayed_same_id"] is True  # the same requestid answered from QBO's memory
    assert report["updated"] == {"SyncToken": "1", "Notes": "synced", "CompanyName": "Conformance"}
    assert_fault(report["stale"], "5010", "Stale Object Error", 400)
    assert_fault(report["duplicate"], "6240", "Duplicate Name Exists Error", 400)
    assert_fault(report["unknown"], "610", "Object Not Found", 400)
    assert report["stored"] == {"SyncToken": "1", "Notes": "synced"}
    stored = [c["DisplayName"] for c in client.sim.records(client.realm, "Customer")]
    assert stored == ["Conformance GmbH"]


def test_batch_with_a_faulting_item(client):
    report = client.run("batch")

    assert report == {
        "items": {"Batch A": "created", "Batch Existing": "6240", "Batch B": "created"}
    }
    names = sorted(c["DisplayName"] for c in client.sim.records(client.realm, "Customer"))
    assert names == ["Batch A", "Batch B", "Batch Existing"]
    batch = [e for e in client.sim.requests(client.realm) if e["path"].endswith("/batch")]
    assert [e["status"] for e in batch] == [200]  # one item's fault does not fail the request


def test_change_data_capture_with_a_deleted_invoice(client):
    report = client.run("cdc")

    assert report == {
        "delete_status": "Deleted",
        "customers": ["CDC Kunde"],
        "invoices": ["CDC-1"],
        "deleted": ["CDC-2"],
    }
    assert [i["DocNumber"] for i in client.sim.records(client.realm, "Invoice")] == ["CDC-1"]


def test_payments_lower_the_balance_and_a_void_zeroes_the_invoice(client):
    report = client.run("payments")

    amounts = {
        key: money(report[key])
        for key in ("total", "balance", "balance_after_first", "balance_after_second")
    }
    assert amounts == {
        "total": "350.50",
        "balance": "350.50",
        "balance_after_first": "250.50",
        "balance_after_second": "0.00",
    }
    assert money(report["second_unapplied"]) == "0.00"
    assert report["linked_payments"] == 2
    voided = report["voided"]
    assert (money(voided["TotalAmt"]), money(voided["Balance"])) == ("0.00", "0.00")
    assert voided["PrivateNote"].startswith("Voided")


def test_token_rotation_and_access_token_expiry(client):
    report = client.run("tokens")

    assert report["first"] == "ok"
    if client.name in THIRD_PARTY:
        assert_fault(report["expired"], "3200", "AuthenticationFailed", 401)
    else:
        assert report["expired"] == "ok"  # our client refreshed on the 401 and repeated the call
    assert report["rotated"] is True  # the refresh answered a new refresh token
    assert report["after_refresh"] == "ok"
    assert report["old_refresh_token"] == "invalid_grant"  # a day after it was superseded
    assert report["current_refresh_token"] == "ok"
    assert report["rotated_again"] is True
    assert 401 in wire_statuses(client)


def test_throttling_429_and_injected_server_faults(client):
    client.sim.configure(enabled=True)  # QBO's real limits: 10 requests a second per realm

    report = client.run("throttling")

    if client.name in THIRD_PARTY:
        # these clients send as fast as asked and do not retry: the user sees QBO's answers
        assert report["burst"][:10] == ["ok"] * 10
        assert_fault(report["burst"][10], "3001", "ThrottleExceeded", 429)
        assert_fault(report["429"], "3001", "ThrottleExceeded", 429)
        assert_fault(report["500"], "10000", "An application error has occurred", 500)
        assert_fault(report["503"], "10000", "Service Unavailable", 503)
        assert wire_statuses(client) == [200] * 10 + [429, 200, 429, 200, 500, 200, 503, 200]
        assert client.sim.stats(client.realm)["throttled"] == 1
    else:
        # ours stays under the limit by itself and retries 429 and 5xx (after waiting on QBO's
        # clock): its user sees every call succeed
        assert report["burst"] == ["ok"] * 11
        assert [report[f] for f in ("429", "500", "503")] == ["ok"] * 3
        assert report["retries"] == 3
        assert wire_statuses(client) == [200] * 12 + [429, 200, 200, 500, 200, 200, 503, 200, 200]
        assert client.sim.stats(client.realm)["throttled"] == 0
    assert report["after_wait"] == "ok"
    assert [report[f"after_{f}"] for f in ("429", "500", "503")] == ["ok"] * 3


def test_vendors_bills_attachments_and_bill_payments(client):
    """createVendor, createBill, upload (a file linked to the bill), createAttachable (a note),
    createVendorCredit and createBillPayment as each client offers them: the bill is paid to
    Balance 0 with the vendor credit, the uploaded file comes back byte for byte."""
    report = client.run("payables")

    assert report["vendor"] == {"DisplayName": "Lieferant Schulz", "SyncToken": "0"}
    assert_fault(report["duplicate_vendor"], "6240", "Duplicate Name Exists Error", 400)
    bill = report["bill"]
    assert (money(bill["TotalAmt"]), money(bill["Balance"]), bill["DocNumber"]) == (
        "350.50",
        "350.50",
        "RE-1",
    )
    assert_fault(report["no_vendor"], "2020", "Required param missing", 400)
    assert report["attachable"] == {
        "FileName": "RE-1.pdf",
        "ContentType": "application/pdf",
        "Size": len(DOCUMENT),
        "linked_to_bill": True,
    }
    assert report["downloaded_same"] is True
    assert report["note"] == "Skonto 2 % bis 12.11."
    assert [money(report["credit"][k]) for k in ("TotalAmt", "Balance")] == ["20.00", "0.00"]
    assert money(report["balance_after_payment"]) == "0.00"
    assert (report["bill_payments"], report["found_bills"]) == (1, 1)
    assert [a.get("FileName") for a in client.sim.records(client.realm, "Attachable")] == [
        "RE-1.pdf",
        None,
    ]
    uploads = [e for e in client.sim.requests(client.realm) if e["path"].endswith("/upload")]
    assert [e["status"] for e in uploads] == [200]
