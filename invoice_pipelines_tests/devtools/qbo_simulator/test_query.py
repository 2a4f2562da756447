"""The query language subset QBO has, with its limits: paging at 1000, inactive records hidden
unless asked for, parse errors as 4000, GET and POST forms."""

from __future__ import annotations

from invoice_pipelines_devtools.qbo_simulator.wire import loads
from invoice_pipelines_tests.devtools.qbo_simulator.conftest import customer, fault_code


def _names(response: dict, entity: str = "Customer") -> list[str]:
    return [r.get("DisplayName") or r.get("Name") for r in response.get(entity, [])]


def test_where_with_equals_in_like_comparisons_and_and(qbo, sim):
    for name in ("Alpha", "Beta", "Gamma", "alphabet soup"):
        customer(qbo, name)
        sim.advance(60)
    assert _names(qbo.query("select * from Customer where DisplayName = 'beta'")) == ["Beta"]
    assert _names(qbo.query("SELECT * FROM Customer WHERE Id IN ('1', '3')")) == ["Alpha", "Gamma"]
    assert _names(qbo.query("select * from Customer where DisplayName like 'alpha%'")) == [
        "Alpha",
        "alphabet soup",
    ]
    assert _names(qbo.query("select * from Customer where DisplayName LIKE '%mm%'")) == ["Gamma"]
    second = sim.records(qbo.realm, "Customer")[1]["MetaData"]["LastUpdatedTime"]
    assert _names(
        qbo.query(
            f"select * from Customer where Metadata.LastUpdatedTime > '{second}' "
            "and DisplayName > 'B'"
        )
    ) == ["Gamma"]
    # the same instant written in UTC compares equal: offsets are respected
    first = sim.records(qbo.realm, "Customer")[0]["MetaData"]["LastUpdatedTime"]
    from datetime import UTC, datetime

    utc = datetime.fromisoformat(first).astimezone(UTC).isoformat()
    assert _names(
        qbo.query(f"select * from Customer where MetaData.LastUpdatedTime <= '{utc}'")
    ) == ["Alpha"]


def test_order_by_and_orderby_with_desc(qbo):
    for name in ("b", "c", "a"):
        customer(qbo, name)
    assert _names(qbo.query("select * from Customer order by DisplayName desc")) == ["c", "b", "a"]
    assert _names(qbo.query("select * from Customer ORDERBY DisplayName")) == ["a", "b", "c"]


def test_paging_beyond_1000_with_startposition_and_maxresults(qbo, sim):
    for n in range(1, 1206):
        sim.create_as_user(qbo.realm, "Customer", {"DisplayName": f"C{n:05d}"})
    assert len(qbo.query("select * from Customer")["Customer"]) == 100  # the default page
    page1 = qbo.query("select * from Customer orderby Id startposition 1 maxresults 1000")
    page2 = qbo.query("select * from Customer orderby Id startposition 1001 maxresults 1000")
    assert (page1["startPosition"], page1["maxResults"]) == (1, 1000)
    assert (page2["startPosition"], page2["maxResults"]) == (1001, 205)
    ids = [c["Id"] for c in page1["Customer"] + page2["Customer"]]
    assert len(set(ids)) == 1205
    assert qbo.query("select * from Customer startposition 1206 maxresults 1000") == {}
    assert qbo.query("select count(*) from Customer") == {"totalCount": 1205}
    too_many = qbo.get("query", params={"query": "select * from Customer maxresults 1001"})
    error = loads(too_many.content)["Fault"]["Error"][0]
    assert too_many.status_code == 400
    assert "Max allowed value is 1000" in error["Detail"]


def test_inactive_records_are_hidden_unless_the_query_asks_for_them(qbo):
    customer(qbo, "Active one")
    customer(qbo, "Gone", Active=False)
    assert _names(qbo.query("select * from Customer")) == ["Active one"]
    assert _names(qbo.query("select * from Customer where Active = false")) == ["Gone"]
    assert _names(qbo.query("select * from Customer where Active IN (true, false)")) == [
        "Active one",
        "Gone",
    ]
    assert qbo.query("select count(*) from Customer") == {"totalCount": 1}


def test_get_form_field_list_and_parse_errors(qbo):
    customer(qbo, "Acme", CompanyName="Acme Corp")
    response = qbo.get("query", params={"query": "select DisplayName from Customer"})
    row = qbo.ok(response)["QueryResponse"]["Customer"][0]
    assert row["DisplayName"] == "Acme" and "CompanyName" not in row and row["Id"] == "1"
    for bad in (
        "select * from Customer where DisplayName = 'a' or Id = '1'",
        "select * form Customer",
        "select * from Customer where DisplayName != 'a'",
        "select * from Customer where",
        "select * from Customer where DisplayName = 'Cutlery 'R Us'",
    ):
        broken = qbo.get("query", params={"query": bad})
        assert broken.status_code == 400 and fault_code(broken) == "4000", bad
        assert loads(broken.content)["Fault"]["Error"][0]["Message"] == "Error parsing query"


def test_entity_names_and_keywords_in_any_case_as_real_clients_send_them(qbo, sim):
    """node-quickbooks writes `select * from customer ... startposition 1 maxresults 1000` and
    `select count(*) from customer`, Intuit's PHP and .NET SDKs `select * from Customer
    startPosition 1 maxResults 500`, Intuit's own batch example `select * from estimate`."""
    customer(qbo, "Acme")
    customer(qbo, "O'Brien Ltd")
    node = qbo.get(
        "query",
        params={
            "query": "select * from customer where DisplayName = 'Acme' "
            "startposition 1 maxresults 1000",
            "format": "json",
        },
    )
    answer = qbo.ok(node)["QueryResponse"]
    assert [c["DisplayName"] for c in answer["Customer"]] == ["Acme"]
    assert (answer["startPosition"], answer["maxResults"]) == (1, 1)
    assert qbo.query("select count(*) from customer") == {"totalCount": 2}
    assert qbo.query("SELECT COUNT(*) FROM Customer WHERE DisplayName LIKE '%brien%'") == {
        "totalCount": 1
    }
    sdk = qbo.query(
        "Select * From CUSTOMER Where DisplayName = 'O\\'Brien Ltd' OrderBy Id Desc "
        "startPosition 1 maxResults 500"
    )
    assert [c["DisplayName"] for c in sdk["Customer"]] == ["O'Brien Ltd"]
    # an entity QBO has and this company has none of: an empty answer, as in QBO
    assert qbo.query("select * from estimate") == {}
    assert qbo.query("select count(*) from Vendor") == {"totalCount": 0}
    unknown = qbo.get("query", params={"query": "select * from Customers"})
    error = loads(unknown.content)["Fault"]["Error"][0]
    assert unknown.status_code == 400 and error["code"] == "4001"
    assert error["Message"] == "Invalid query"
    assert error["Detail"] == "QueryValidationError: Metadata not found for Entity: Customers"


def test_query_urls_with_plus_or_percent_20_for_spaces(qbo):
    """Faraday (quickbooks-ruby) and requests encode a space as '+', axios (node-quickbooks) and
    Intuit's Java SDK as %20 or '+'; both are the same query."""
    customer(qbo, "Acme GmbH")
    for raw in (
        "select+*+from+Customer+where+DisplayName+%3D+%27Acme+GmbH%27+STARTPOSITION+1+MAXRESULTS+20",
        "select%20*%20from%20customer%20where%20DisplayName%20%3D%20%27Acme%20GmbH%27",
    ):
        response = qbo.http.get(
            f"{qbo.url}/query?query={raw}&minorversion=75", headers=qbo.headers()
        )
        assert [c["Id"] for c in qbo.ok(response)["QueryResponse"]["Customer"]] == ["1"], raw


def test_node_style_fetch_all_pages_past_1000_in_lower_case(qbo, sim):
    """node-quickbooks' fetchAll: `startposition N maxresults 1000` while a page comes back full."""
    for n in range(1, 2051):
        sim.create_as_user(qbo.realm, "Customer", {"DisplayName": f"c{n:05d}"})
    seen, position = [], 1
    while True:
        page = qbo.query(f"select * from customer startposition {position} maxresults 1000")
        seen += [c["DisplayName"] for c in page.get("Customer", [])]
        if page.get("maxResults") != 1000:
            break
        position += 1000
    assert len(seen) == 2050 and len(set(seen)) == 2050
    assert seen[0] == "c00001" and seen[-1] == "c02050"
    assert qbo.query("select count(*) from customer startposition 1 maxresults 1000") == {
        "totalCount": 2050
    }
