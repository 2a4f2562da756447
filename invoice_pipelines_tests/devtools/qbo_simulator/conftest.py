"""A simulator per test (in a thread, on 127.0.0.1) and a bare HTTP client that speaks to it the way
QBO clients do: bearer token, minorversion, JSON. Deliberately not our production client: these
tests pin the simulator to the documented QBO behaviour, whoever calls it."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from invoice_pipelines_devtools.qbo_simulator import CompanyHandle, Limits, QboSimulator
from invoice_pipelines_devtools.qbo_simulator.wire import loads

REALM = "9130350000000001"


class Qbo:
    """Raw calls to one realm; answers are parsed with Decimal amounts."""

    def __init__(self, sim: QboSimulator, company: CompanyHandle) -> None:
        self.sim = sim
        self.company = company
        self.realm = company.realm_id
        self.http = httpx.Client(timeout=10)
        self.token = company.access_token

    @property
    def url(self) -> str:
        return f"{self.sim.base_url}/v3/company/{self.realm}"

    def headers(self, accept: str = "application/json") -> dict:
        return {"Authorization": f"Bearer {self.token}", "Accept": accept}

    def request(
        self, method: str, path: str, *, params=None, accept="application/json", headers=None, **kw
    ) -> httpx.Response:
        params = {"minorversion": "75", **(params or {})}
        headers = {**self.headers(accept), **(headers or {})}
        return self.http.request(method, f"{self.url}/{path}", params=params, headers=headers, **kw)

    def get(self, path: str, **kw) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: dict, **kw) -> httpx.Response:
        return self.request("POST", path, json=_plain(body), **kw)

    def ok(self, response: httpx.Response) -> dict:
        assert response.status_code == 200, response.text
        return loads(response.content)

    def create(self, entity: str, body: dict, **params) -> dict:
        return self.ok(self.post(entity.lower(), body, params=params))[entity]

    def query(self, text: str) -> dict:
        response = self.request(
            "POST", "query", content=text, headers={"Content-Type": "application/text"}
        )
        return self.ok(response)["QueryResponse"]

    def renew(self) -> None:
        """A new access token through the refresh grant (after the clock moved past expiry)."""
        response = httpx.post(
            self.sim.token_url,
            data={"grant_type": "refresh_token", "refresh_token": self.company.refresh_token},
            auth=(self.company.client_id, self.company.client_secret),
        )
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]
        self.company.refresh_token = response.json()["refresh_token"]

    def close(self) -> None:
        self.http.close()


def _plain(value):
    """JSON-able: Decimal as its string (as python-quickbooks sends amounts)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def fault_code(response: httpx.Response) -> str:
    body = loads(response.content)
    return body["Fault"]["Error"][0]["code"]


@pytest.fixture
def sim() -> Iterator[QboSimulator]:
    """Rate limits off (their own tests switch them on); the clock frozen, moved by advance()."""
    with QboSimulator(port=0, limits=Limits(enabled=False)) as simulator:
        simulator.sim.clock.freeze()
        yield simulator


@pytest.fixture
def qbo(sim: QboSimulator) -> Iterator[Qbo]:
    client = Qbo(sim, sim.create_company(realm_id=REALM))
    yield client
    client.close()


def customer(qbo: Qbo, name: str, **fields) -> dict:
    return qbo.create("Customer", {"DisplayName": name, **fields})


def item(qbo: Qbo, name: str, price: str = "100.00", **fields) -> dict:
    body = {"Name": name, "UnitPrice": price, "IncomeAccountRef": {"value": "1"}, **fields}
    return qbo.create("Item", body)


def invoice_body(customer_id: str, item_id: str, *amounts: str, **fields) -> dict:
    lines = [
        {
            "Amount": amount,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item_id}},
        }
        for amount in amounts
    ]
    return {"CustomerRef": {"value": customer_id}, "Line": lines, **fields}
