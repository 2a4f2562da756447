"""Properties over many cases: paging through any query in any page size gives every matching
record once and in order; payments keep every invoice's balance exact (total minus what was
applied, never below zero, over-application refused)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoice_pipelines_devtools.qbo_simulator import Limits, QboSimulator
from invoice_pipelines_tests.devtools.qbo_simulator.conftest import Qbo, fault_code, invoice_body

_settings = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(
    # letters without upper/lower pairs: the names stay distinct under QBO's case-insensitive rule
    names=st.lists(st.text("abcXYZ", min_size=1, max_size=4), min_size=1, max_size=40, unique=True),
    inactive=st.sets(st.integers(0, 39)),
    page=st.integers(1, 12),
    descending=st.booleans(),
)
def test_pages_of_any_size_give_each_matching_record_once_in_order(
    names, inactive, page, descending
):
    with QboSimulator(port=0, limits=Limits(enabled=False)) as sim:
        qbo = Qbo(sim, sim.create_company(realm_id="1"))
        for n, name in enumerate(names):
            sim.create_as_user("1", "Customer", {"DisplayName": name, "Active": n not in inactive})
        order = "DESC" if descending else "ASC"
        seen: list[str] = []
        start = 1
        while True:
            result = qbo.query(
                f"select * from Customer where DisplayName LIKE '%' order by DisplayName {order} "
                f"startposition {start} maxresults {page}"
            )
            if not result:
                break
            seen += [c["DisplayName"] for c in result["Customer"]]
            start += page
        active = [name for n, name in enumerate(names) if n not in inactive]
        assert sorted(seen) == sorted(active)
        keys = [s.casefold() for s in seen]
        assert keys == sorted(keys, reverse=descending)
        qbo.close()


cents = st.integers(1, 50_000).map(lambda c: Decimal(c) / 100)


@_settings
@given(total=cents, payments=st.lists(cents, min_size=1, max_size=6))
def test_payments_keep_the_invoice_balance_exact(total, payments):
    with QboSimulator(port=0, limits=Limits(enabled=False)) as sim:
        qbo = Qbo(sim, sim.create_company(realm_id="1"))
        sim.create_as_user("1", "Customer", {"DisplayName": "Acme"})
        sim.create_as_user("1", "Item", {"Name": "Work", "IncomeAccountRef": {"value": "1"}})
        invoice = qbo.create("Invoice", invoice_body("1", "1", str(total)))
        open_balance = total
        for amount in payments:
            body = {
                "CustomerRef": {"value": "1"},
                "TotalAmt": str(amount),
                "Line": [
                    {
                        "Amount": str(amount),
                        "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                    }
                ],
            }
            response = qbo.post("payment", body)
            if amount > open_balance:
                assert fault_code(response) == "6000"
            else:
                assert response.status_code == 200
                open_balance -= amount
            stored = qbo.ok(qbo.get(f"invoice/{invoice['Id']}"))["Invoice"]
            assert stored["Balance"] == open_balance >= 0
            assert stored["TotalAmt"] == total
        paid = sum(Decimal(str(p["TotalAmt"])) for p in sim.records("1", "Payment"))
        assert paid + open_balance == total
        qbo.close()
