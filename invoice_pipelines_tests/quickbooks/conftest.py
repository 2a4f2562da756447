"""QBO fixtures: the local simulator over real HTTP on loopback, and organizations connected to it.

Every test talks to the simulator through the production client (`open_client`), with the
organization's tokens stored encrypted in the test database exactly as in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert, select

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import (
    customers,
    items,
    qbo_mappings,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.quickbooks.domain.client import QboClient
from invoice_pipelines.quickbooks.domain.sync.common import QboSettings, open_client
from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher

try:
    from invoice_pipelines_devtools.qbo_simulator import QboSimulator
except ImportError:  # the package's export may land after its server module
    from invoice_pipelines_devtools.qbo_simulator.server import QboSimulator

D = Decimal
TOKEN_KEY = Fernet.generate_key().decode()
# the simulator's minute passes in one real second: per-minute limits and token lifetimes are
# real QBO numbers on a compressed clock
TIME_SCALE = 60.0
TAX_CODES = {"19.00": "TAX", "7.00": "TAX", "0.00": "NON"}


@pytest.fixture(scope="session")
def simulator() -> Iterator[QboSimulator]:
    with QboSimulator(port=0, time_scale=TIME_SCALE) as sim:
        yield sim


@dataclass
class Connected:
    """One organization of a test database connected to its own simulated QBO company."""

    db: object  # TestDatabase
    sim: QboSimulator
    org: dict
    company: object

    @property
    def engine(self):
        return self.db.engine

    @property
    def org_id(self) -> int:
        return self.org["id"]

    @property
    def organization(self) -> Organization:
        """The organization as its entry points hand it down (read now: a test may change it)."""
        return find_organization(self.db.system_engine, self.org_id)

    @property
    def realm(self) -> str:
        return self.company.realm_id

    def settings(self) -> QboSettings:
        return QboSettings(
            base_url=self.sim.base_url,
            token_url=self.sim.token_url,
            token_key=TOKEN_KEY,
            time_scale=TIME_SCALE,
        )

    def client(self) -> QboClient:
        return open_client(self.engine, self.org_id, self.settings())

    # -- our side's data ----------------------------------------------------------------------

    def add_customer(self, name: str, **values) -> int:
        with tenant_transaction(self.engine, self.org_id, write=True) as conn:
            return conn.execute(
                insert(customers)
                .values(
                    organization_id=self.org_id,
                    customer_number=values.pop("customer_number", f"C-{name[:20]}"),
                    name=name,
                    **values,
                )
                .returning(customers.c.id)
            ).scalar_one()

    def add_item(self, sku: str, price: str, description: str = "", rate: str = "19.00") -> int:
        with tenant_transaction(self.engine, self.org_id, write=True) as conn:
            return conn.execute(
                insert(items)
                .values(
                    organization_id=self.org_id,
                    sku=sku,
                    name=f"Item {sku}",
                    description=description or None,
                    unit_price=D(price),
                    vat_rate=D(rate),
                )
                .returning(items.c.id)
            ).scalar_one()

    def add_invoice(
        self,
        number: str,
        customer_id: int,
        lines: list[tuple[int, str, str]],  # (item id, quantity, unit price) at 19 %
        *,
        due: date = date(2026, 12, 1),
    ) -> int:
        net = sum((D(q) * D(p)).quantize(D("0.01")) for _, q, p in lines)
        tax = (net * D("0.19")).quantize(D("0.01"))
        with tenant_transaction(self.engine, self.org_id, write=True) as conn:
            sequence = (
                conn.execute(
                    select(sales_invoices.c.sequence_number)
                    .where(sales_invoices.c.organization_id == self.org_id)
                    .order_by(sales_invoices.c.sequence_number.desc())
                ).scalar()
                or 0
            ) + 1
            invoice_id = conn.execute(
                insert(sales_invoices)
                .values(
                    organization_id=self.org_id,
                    invoice_number=number,
                    sequence_number=sequence,
                    customer_id=customer_id,
                    issue_date=date(2026, 11, 2),
                    due_date=due,
                    currency="EUR",
                    net_total=net,
                    tax_total=tax,
                    gross_total=net + tax,
                    amount_due=net + tax,
                )
                .returning(sales_invoices.c.id)
            ).scalar_one()
            conn.execute(
                insert(sales_invoice_lines),
                [
                    {
                        "organization_id": self.org_id,
                        "sales_invoice_id": invoice_id,
                        "line_no": n,
                        "item_id": item_id,
                        "description": f"line {n}",
                        "quantity": D(q),
                        "unit_price": D(p),
                        "net_amount": (D(q) * D(p)).quantize(D("0.01")),
                        "vat_rate": D("19.00"),
                    }
                    for n, (item_id, q, p) in enumerate(lines, start=1)
                ],
            )
            # the VAT breakdown an issued invoice has (credit notes are computed from it)
            conn.execute(
                insert(sales_invoice_taxes).values(
                    organization_id=self.org_id,
                    sales_invoice_id=invoice_id,
                    vat_category="S",
                    vat_rate=D("19.00"),
                    basis=net,
                    amount=tax,
                )
            )
        return invoice_id

    def invoice(self, invoice_id: int) -> dict:
        with tenant_transaction(self.engine, self.org_id) as conn:
            return dict(
                conn.execute(select(sales_invoices).where(sales_invoices.c.id == invoice_id))
                .mappings()
                .one()
            )

    def mapping(self, entity: str, local_id: int) -> dict | None:
        with tenant_transaction(self.engine, self.org_id) as conn:
            row = (
                conn.execute(
                    select(qbo_mappings).where(
                        qbo_mappings.c.organization_id == self.org_id,
                        qbo_mappings.c.entity == entity,
                        qbo_mappings.c.local_id == local_id,
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None


def connect(db, sim, **company_options) -> Connected:
    org = db.new_organization()
    company = sim.create_company(**company_options)
    save_connection(
        db.engine,
        org["id"],
        system=db.system_engine,
        realm_id=company.realm_id,
        client_id=company.client_id,
        client_secret=company.client_secret,
        refresh_token=company.refresh_token,
        cipher=token_cipher(TOKEN_KEY),
        settings={"tax_codes": TAX_CODES, "income_account_id": "1"},
    )
    return Connected(db, sim, org, company)


@pytest.fixture
def qbo(db, simulator) -> Connected:
    return connect(db, simulator)
