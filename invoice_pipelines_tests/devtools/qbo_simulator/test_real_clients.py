"""What real QBO clients put on the wire, read from their source, and the simulator answering it as
QBO does: gzip request bodies (Intuit's Java and .NET SDKs by default), revocation with a
form-encoded token (node-quickbooks), CDC over the entity list singer-io/tap-quickbooks asks for, a
CDC query inside a batch (Java SDK), requestid + bId over 50 characters (Java SDK issue #180), a
`changedSince` whose '+' was not encoded (node-quickbooks, the Java SDK) and the Java SDK's URL
with a trailing '&' and a requestid on every call."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import UTC, datetime, timedelta, timezone

import httpx

from invoice_pipelines_tests.devtools.qbo_simulator.conftest import customer, fault_code

# the entities tap-quickbooks' deleted_objects stream sends to /cdc in one call
SINGER_CDC = (
    "Account,BillPayment,Bill,Budget,Class,CreditMemo,Customer,Department,Deposit,Employee,"
    "Estimate,Invoice,Item,JournalEntry,PaymentMethod,Payment,PurchaseOrder,Purchase,"
    "RefundReceipt,SalesReceipt,Term,Transfer,VendorCredit,Vendor"
)


def _since(sim, seconds: float = 60) -> str:
    return datetime.fromtimestamp(sim.now() - seconds, UTC).isoformat()


def test_intuit_sdk_requests_gzip_bodies_trailing_ampersand_and_requestid_everywhere(qbo):
    """Intuit's Java SDK (intuit-default-config.xml) and .NET SDK compress request bodies with gzip
    unless configured otherwise and say so in Content-Encoding; the Java SDK ends every query
    string with '&', sends a requestid with GETs and queries too and, unconfigured, minorversion
    73 (below the floor of 75, which QBO then applies)."""
    body = json.dumps({"DisplayName": "Gzip GmbH"}).encode()
    created = qbo.request(
        "POST",
        "customer",
        content=gzip.compress(body),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert qbo.ok(created)["Customer"]["DisplayName"] == "Gzip GmbH"
    query = qbo.request(
        "POST",
        "query",
        content=zlib.compress(b"select * from customer where DisplayName = 'Gzip GmbH'"),
        headers={"Content-Type": "application/text", "Content-Encoding": "deflate"},
    )
    assert [c["Id"] for c in qbo.ok(query)["QueryResponse"]["Customer"]] == ["1"]
    broken = qbo.request(
        "POST",
        "customer",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert broken.status_code == 400 and fault_code(broken) == "2010"
    assert qbo.query("select count(*) from Customer") == {"totalCount": 1}
    read = qbo.http.get(
        f"{qbo.url}/customer/1?requestid=a1b2c3&minorversion=73&", headers=qbo.headers()
    )
    assert qbo.ok(read)["Customer"]["DisplayName"] == "Gzip GmbH"
    for _ in range(2):  # the same requestid again is another query, not a replay of a write
        java = qbo.http.post(
            f"{qbo.url}/query?requestid=q1&minorversion=73&",
            content=gzip.compress(b"SELECT * FROM Customer STARTPOSITION 1 MAXRESULTS 10"),
            headers={
                **qbo.headers(),
                "Content-Type": "application/text",
                "Content-Encoding": "gzip",
            },
        )
        assert [c["Id"] for c in qbo.ok(java)["QueryResponse"]["Customer"]] == ["1"]
    assert qbo.sim.requests(qbo.realm)[-1]["minorversion"] == 75


def test_node_quickbooks_revokes_with_a_form_encoded_token_at_intuits_v2_path(qbo, sim):
    company = qbo.company
    revoked = httpx.post(
        f"{sim.base_url}/v2/oauth2/tokens/revoke",
        content=f"token={company.refresh_token}",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        auth=(company.client_id, company.client_secret),
    )
    assert revoked.status_code == 200, revoked.text
    refused = qbo.get("companyinfo/1")
    assert refused.status_code == 401
    again = httpx.post(
        sim.token_url,
        data={"grant_type": "refresh_token", "refresh_token": company.refresh_token},
        auth=(company.client_id, company.client_secret),
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_cdc_takes_every_entity_qbo_tracks_and_refuses_the_ones_it_does_not(qbo, sim):
    customer(qbo, "Tracked")
    response = qbo.get("cdc", params={"entities": SINGER_CDC, "changedSince": _since(sim)})
    parts = qbo.ok(response)["CDCResponse"][0]["QueryResponse"]
    assert len(parts) == 24  # one answer per entity asked for, as Intuit's PHP SDK checks
    found = {key: value for part in parts for key, value in part.items() if key != "startPosition"}
    assert [c["DisplayName"] for c in found["Customer"]] == ["Tracked"]
    lower = qbo.get("cdc", params={"entities": "customer", "changedSince": _since(sim)})
    assert qbo.ok(lower)["CDCResponse"][0]["QueryResponse"][0]["Customer"][0]["Id"] == "1"
    for untracked in ("TimeActivity", "TaxRate", "Customers"):
        refused = qbo.get("cdc", params={"entities": untracked, "changedSince": _since(sim)})
        assert refused.status_code == 400 and fault_code(refused) == "2010", untracked
    # node-quickbooks and the Java SDK append changedSince to the URL unencoded: east of UTC the
    # '+' of the offset arrives as a space, and QBO answers that the date cannot be parsed
    text = datetime.fromtimestamp(sim.now() - 60, timezone(timedelta(hours=2))).isoformat()
    raw = qbo.http.get(
        f"{qbo.url}/cdc?entities=Customer&changedSince={text}&minorversion=75",
        headers=qbo.headers(),
    )
    assert "+02:00" in text and raw.status_code == 400 and fault_code(raw) == "2010"
    encoded = qbo.get("cdc", params={"entities": "Customer", "changedSince": text})
    assert qbo.ok(encoded)["CDCResponse"][0]["QueryResponse"][0]["Customer"][0]["Id"] == "1"


def test_batch_with_a_cdc_query_item_and_the_requestid_plus_bid_limit(qbo, sim):
    customer(qbo, "Before")
    items = [
        {"bId": "cdc", "CDCQuery": {"Entities": "Customer,Invoice", "ChangedSince": _since(sim)}},
        {"bId": "q", "Query": "select count(*) from customer"},
    ]
    answers = qbo.ok(qbo.post("batch", {"BatchItemRequest": items}))["BatchItemResponse"]
    cdc = answers[0]["CDCResponse"]["QueryResponse"]
    assert [c["DisplayName"] for c in cdc[0]["Customer"]] == ["Before"] and cdc[1] == {}
    assert answers[1]["QueryResponse"] == {"totalCount": 1}
    # a 32-character requestid with UUID bIds (68 characters together): each item is faulted,
    # the batch itself is answered 200 and nothing is created
    uuid_bid = "0b9f0d7e-57a4-4c3c-8d6e-2f4f4b3a8a11"
    request = {
        "BatchItemRequest": [
            {"bId": uuid_bid, "operation": "create", "Customer": {"DisplayName": "Long"}},
            {"bId": "short", "operation": "create", "Customer": {"DisplayName": "Short"}},
        ]
    }
    response = qbo.post("batch", request, params={"requestid": "86e1e8438fd9413587c2bd17f4185b13"})
    long_item, short_item = qbo.ok(response)["BatchItemResponse"]
    error = long_item["Fault"]["Error"][0]
    assert error["code"] == "6000" and "which is 68 characters" in error["Detail"]
    assert short_item["Customer"]["DisplayName"] == "Short"
    assert [c["DisplayName"] for c in sim.records(qbo.realm, "Customer")] == ["Before", "Short"]
