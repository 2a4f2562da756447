"""XML on the wire, as QBO speaks it to the clients that use it: quickbooks-ruby sends and accepts
only XML (Content-Type and Accept application/xml), Intuit's PHP SDK by default (its queries go
out with Accept */* and it reads XML back), Intuit's .NET SDK sends XML request bodies by default.
QBO answers XML unless JSON is asked for; ?format=json chooses JSON (node-quickbooks)."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: N817
from decimal import Decimal

from invoice_pipelines_devtools.qbo_simulator.wire import loads
from invoice_pipelines_tests.devtools.qbo_simulator.conftest import customer, item

NS = {"q": "http://schema.intuit.com/finance/v3"}
XML = {"Content-Type": "application/xml", "Accept": "application/xml"}


def _xml(response) -> ET.Element:
    assert response.headers["Content-Type"].startswith("application/xml"), response.text
    root = ET.fromstring(response.content)
    assert root.tag == "{http://schema.intuit.com/finance/v3}IntuitResponse" and root.get("time")
    return root


def _post_xml(qbo, path: str, body: str, **params):
    return qbo.request("POST", path, content=body.encode(), headers=XML, params=params)


def test_ruby_style_customer_create_sparse_update_query_and_count_in_xml(qbo):
    created = _xml(
        _post_xml(
            qbo,
            "customer",
            '<Customer xmlns="http://schema.intuit.com/finance/v3">'
            "<DisplayName>Acme &amp; Söhne</DisplayName><Taxable>true</Taxable>"
            "<BillAddr><Line1>Hauptstr. 1</Line1><City>Köln</City></BillAddr></Customer>",
        )
    )
    entity = created.find("q:Customer", NS)
    assert (entity.get("domain"), entity.get("sparse")) == ("QBO", "false")
    assert entity.findtext("q:Id", namespaces=NS) == "1"
    assert entity.findtext("q:DisplayName", namespaces=NS) == "Acme & Söhne"
    assert entity.findtext("q:BillAddr/q:City", namespaces=NS) == "Köln"
    assert entity.findtext("q:Active", namespaces=NS) == "true"
    updated = _xml(
        _post_xml(
            qbo,
            "customer",
            '<Customer xmlns="http://schema.intuit.com/finance/v3" sparse="true">'
            "<Id>1</Id><SyncToken>0</SyncToken><Notes>true</Notes></Customer>",
        )
    ).find("q:Customer", NS)
    assert updated.findtext("q:SyncToken", namespaces=NS) == "1"
    assert updated.findtext("q:Notes", namespaces=NS) == "true"
    assert updated.findtext("q:BillAddr/q:Line1", namespaces=NS) == "Hauptstr. 1"
    # the JSON view of the same record: booleans are booleans, text stays text
    stored = qbo.ok(qbo.get("customer/1"))["Customer"]
    assert stored["Taxable"] is True and stored["Notes"] == "true"

    page = _xml(
        qbo.get(
            "query",
            params={"query": "SELECT * FROM Customer STARTPOSITION 1 MAXRESULTS 20"},
            accept="application/xml",
        )
    ).find("q:QueryResponse", NS)
    assert (page.get("startPosition"), page.get("maxResults")) == ("1", "1")
    assert [c.findtext("q:Id", namespaces=NS) for c in page.findall("q:Customer", NS)] == ["1"]
    count = _xml(qbo.get("query", params={"query": "select count(*) from customer"}, accept="*/*"))
    assert count.find("q:QueryResponse", NS).get("totalCount") == "1"


def test_an_xml_invoice_with_one_line_references_and_amounts_as_text(qbo):
    customer(qbo, "Acme")
    item(qbo, "Consulting")
    created = _xml(
        _post_xml(
            qbo,
            "invoice",
            '<Invoice xmlns="http://schema.intuit.com/finance/v3"><CustomerRef>1</CustomerRef>'
            "<Line><Amount>150.00</Amount><DetailType>SalesItemLineDetail</DetailType>"
            '<SalesItemLineDetail><ItemRef name="Consulting">1</ItemRef><Qty>1.5</Qty>'
            "<UnitPrice>100</UnitPrice></SalesItemLineDetail></Line></Invoice>",
        )
    ).find("q:Invoice", NS)
    assert Decimal(created.findtext("q:TotalAmt", namespaces=NS)) == Decimal("150.00")
    reference = created.find("q:CustomerRef", NS)
    assert (reference.text, reference.get("name")) == ("1", "Acme")
    lines = created.findall("q:Line", NS)
    assert lines[0].findtext("q:SalesItemLineDetail/q:ItemRef", namespaces=NS) == "1"


def test_xml_batch_and_faults_in_xml(qbo):
    customer(qbo, "Taken")
    answer = _xml(
        _post_xml(
            qbo,
            "batch",
            '<IntuitBatchRequest xmlns="http://schema.intuit.com/finance/v3">'
            '<BatchItemRequest bId="1" operation="create">'
            "<Customer><DisplayName>Fresh</DisplayName></Customer></BatchItemRequest>"
            '<BatchItemRequest bId="2" operation="create">'
            "<Customer><DisplayName>Taken</DisplayName></Customer></BatchItemRequest>"
            '<BatchItemRequest bId="3"><Query>select count(*) from customer</Query>'
            "</BatchItemRequest></IntuitBatchRequest>",
        )
    )
    items = {i.get("bId"): i for i in answer.findall("q:BatchItemResponse", NS)}
    assert items["1"].findtext("q:Customer/q:DisplayName", namespaces=NS) == "Fresh"
    assert items["2"].find("q:Fault/q:Error", NS).get("code") == "6240"
    assert items["3"].find("q:QueryResponse", NS).get("totalCount") == "1"
    duplicate = _post_xml(qbo, "customer", "<Customer><DisplayName>Taken</DisplayName></Customer>")
    assert duplicate.status_code == 400
    assert _xml(duplicate).find("q:Fault/q:Error", NS).get("code") == "6240"
    broken = _post_xml(qbo, "customer", "<Customer><DisplayName>x</Customer>")
    assert broken.status_code == 400
    assert _xml(broken).find("q:Fault/q:Error", NS).get("code") == "2010"


def test_php_sdk_query_with_accept_anything_gets_xml_and_format_json_gets_json(qbo):
    customer(qbo, "Acme")
    php = qbo.request(
        "POST",
        "query",
        content=b"select * from Customer startPosition 1 maxResults 500",
        headers={"Content-Type": "application/text", "Accept": "*/*"},
    )
    found = _xml(php).find("q:QueryResponse/q:Customer/q:DisplayName", NS)
    assert found.text == "Acme"
    node = qbo.get(
        "query", params={"query": "select * from customer", "format": "json"}, accept="*/*"
    )
    assert node.headers["Content-Type"].startswith("application/json")
    assert loads(node.content)["QueryResponse"]["Customer"][0]["DisplayName"] == "Acme"
