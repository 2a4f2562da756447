"""The demo's supplier invoices in QuickBooks (`make run`): the US organization's suppliers send
it invoices, which the intake reads, the bill push sends to its simulated QuickBooks as bills
with their documents attached, the demo pays there "as a QBO user", and the bill-payment pull
brings back paid.

- `register_demo_suppliers` (seed-demo) registers their three suppliers, confirmed, as a person
  would before their first bill (docs/intake.md, "Suppliers a person confirms").
- `seed_payables_uploads` (seed-demo) drops three supplier invoices (EN 16931 CII, US dollars,
  sales tax 8.88 % like the organization's own items; one offers 2 % for paying within 10 days)
  into the organization's upload folder, once.
- `prepare_demo_payables` (the demo simulator's start-up, `quickbooks.serve`) lets that
  organization's push create vendors, books its bills on the company's "Office Expenses"
  account, and maps the sales tax rate to a tax code: what a person sets with `qbo-payables`.
- `pay_demo_bills` then pays, every little while, each bill the push made that is still open:
  in full, or, where the bill's term offers a discount, the discounted amount on the term's last
  discount day; and pulls the bill payments back (qbo_bill_payments, recorded as a
  materialization as the first sync is).

The German demo organizations are connected to QuickBooks too but keep their supplier invoices
for DATEV: they set no expense account, so they book no bills in QuickBooks, their documents
start no bill run and the `qbo_bills:bills_waiting` check leaves them out.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, select

from invoice_pipelines.core.skonto import DiscountTerm
from invoice_pipelines.db.tables import organizations, qbo_connections
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.einvoice.cii import EN16931_GUIDELINE, write_cii
from invoice_pipelines_devtools.demo.invoices import Company, LineItem, invoice_from_lines

D = Decimal
DEMO_PAYABLES_ORGANIZATION = "acme-office-supplies"
_SEEDED_MARKER = ".demo-supplier-invoices-seeded"
SALES_TAX = "8.88"  # the US demo organization's rate (demo/seed.py items), QBO code TAX
EXPENSE_ACCOUNT = "Office Expenses"
PAYING_ACCOUNT = "Checking"
# how often `serve` looks for open bills to pay (real seconds)
PAY_EVERY_SECONDS = 20.0
MARKER = "invoice-pipelines incoming invoice "

ACME = Company(
    name="Acme Office Supplies Inc.",
    street="1200 Commerce Dr",
    postcode="10017",
    city="New York",
    email="billing@acme-office.example",
    country_code="US",
)
SUPPLIERS = (
    Company(
        name="Northwind Paper Co.",
        street="400 Industrial Pkwy",
        postcode="07102",
        city="Newark",
        email="ar@northwind-paper.example",
        country_code="US",
    ),
    Company(
        name="Harbor Freight Lines LLC",
        street="77 Terminal Rd",
        postcode="11231",
        city="Brooklyn",
        email="billing@harbor-freight.example",
        country_code="US",
    ),
    Company(
        name="Summit Ergonomics Inc.",
        street="9 Summit Ave",
        postcode="07901",
        city="Summit",
        email="invoices@summit-ergo.example",
        country_code="US",
    ),
)
# the suppliers' federal tax ids (EIN, BT-32), made up
TAX_NUMBERS = ("12-3456701", "12-3456702", "12-3456703")


def demo_supplier_invoices_us(today: date) -> list[tuple[str, bytes]]:
    """(file name, CII XML) of the US organization's three supplier invoices, dated before
    `today`; the same `today` gives the same bytes."""
    rate = D(SALES_TAX)
    specs = (
        (
            0,
            f"NW-{today:%y%m}41",
            6,
            (),
            [
                LineItem("Copy paper, case of 10 reams", D("20"), D("31.50"), rate, "XCS"),
                LineItem("Toner cartridge HP 58A, wholesale", D("6"), D("88.00"), rate),
            ],
        ),
        (
            1,
            f"HFL-{today:%m%d}-7",
            4,
            ((10, "2"),),
            [LineItem("Truckload New Jersey - Brooklyn", D("2"), D("415.00"), rate, "C62")],
        ),
        (
            2,
            f"SE{today:%y%m%d}",
            2,
            (),
            [LineItem("Ergonomic office chair, wholesale", D("8"), D("219.00"), rate)],
        ),
    )
    files = []
    for index, number, days_ago, skonto, lines in specs:
        seller = SUPPLIERS[index]
        issued = today - timedelta(days=days_ago)
        invoice = invoice_from_lines(
            number=number,
            issue_date=issued,
            due_date=issued + timedelta(days=30),
            seller=seller,
            buyer=ACME,
            lines=lines,
            currency="USD",
            guideline_id=EN16931_GUIDELINE,
        )
        terms = tuple(DiscountTerm(days, D(percent)) for days, percent in skonto)
        invoice = dataclasses.replace(invoice, discount_terms=terms)
        # BT-72, the day the goods came: without it the CII's ApplicableHeaderTradeDelivery, which
        # the schema requires, would be empty (PEPPOL-EN16931-R008)
        # BT-20 as US suppliers word it ("2/10, net 30": 2 % off within 10 days, due in 30); the
        # writer adds the discount's #SKONTO# line, which the readers take the step from
        steps = ", ".join(f"{percent}/{days}" for days, percent in skonto)
        extra = {
            "seller_tax_number": TAX_NUMBERS[index],
            "delivery_date": issued - timedelta(days=1),
            "payment_terms": f"{steps}, net 30" if steps else "Net 30 days",
        }
        slug = seller.email.rsplit("@", 1)[1].split(".", 1)[0]
        files.append(
            (
                f"{slug}_{number}.xml",
                write_cii(invoice, guideline_id=EN16931_GUIDELINE, extra=extra),
            )
        )
    return files


def seed_payables_uploads(store_root: Path, *, today: date | None = None) -> list[str]:
    """Drop the US organization's supplier invoices into its upload folder, once (a marker file
    remembers it, so archived files are not dropped again); their keys."""
    from invoice_pipelines.resources.files.uploads import LocalUploads

    folder = store_root / DEMO_PAYABLES_ORGANIZATION
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / _SEEDED_MARKER
    if marker.exists():
        return []
    store = LocalUploads(str(store_root))
    keys = [
        store.put(DEMO_PAYABLES_ORGANIZATION, name, data)
        for name, data in demo_supplier_invoices_us(today or date.today())
    ]
    marker.write_text("\n".join(keys) + "\n")
    return keys


def register_demo_suppliers(engine: Engine, system: Engine) -> list[str]:
    """The US organization's three suppliers in its register, confirmed by the seed (what a
    person does once per supplier with `suppliers add` or `suppliers confirm`): so their bills
    reach QuickBooks on the first `make run`. Those the register has already are left as they
    are; the names registered now."""
    from invoice_pipelines.db.tenancy import tenant_transaction
    from invoice_pipelines.supplier_register import add_supplier, load_register

    with system_transaction(system) as conn:  # the organization of the slug
        org_id = conn.execute(
            select(organizations.c.id).where(organizations.c.slug == DEMO_PAYABLES_ORGANIZATION)
        ).scalar()
    if org_id is None:
        return []
    registered = []
    with tenant_transaction(engine, org_id, write=True) as conn:
        known = {n for s in load_register(conn, org_id).suppliers for n in s.names}
        for company, tax_number in zip(SUPPLIERS, TAX_NUMBERS, strict=True):
            if company.name in known:
                continue
            add_supplier(
                conn,
                org_id,
                name=company.name,
                tax_number=tax_number,
                changed_by="seed-demo",
                reason="the demo's suppliers, confirmed by the seed",
            )
            registered.append(company.name)
    return registered


def _connected(system: Engine, realms: set[str]) -> list[tuple[str, int, str]]:
    """(slug, organization id, realm) of the demo organizations connected to a demo company,
    found on the system engine `system`."""
    with system_transaction(system) as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(organizations.c.slug, organizations.c.id, qbo_connections.c.realm_id)
                .join(qbo_connections, qbo_connections.c.organization_id == organizations.c.id)
                .where(qbo_connections.c.realm_id.in_(realms))
                .order_by(organizations.c.slug)
            ).all()
        ]


def _account_id(sim, realm: str, name: str) -> str | None:
    found = [r for r in sim.records(realm, "Account") if r.get("Name") == name]
    return str(found[0]["Id"]) if found else None


def prepare_demo_payables(
    engine: Engine, sim, realms: set[str], system: Engine | None = None
) -> list[str]:
    """The US organization's payables settings where it has none yet (what a person sets with
    `qbo-payables`): vendors created by the push, the expense account, the sales tax code. The
    slugs prepared now."""
    from invoice_pipelines.quickbooks.domain.payables_settings import (
        CREATE_VENDORS,
        DEFAULT_KEY,
        change_connection_settings,
        read_settings,
        set_expense_account,
    )

    prepared = []
    for slug, organization_id, realm in _connected(system or engine, realms):
        if slug != DEMO_PAYABLES_ORGANIZATION:
            continue
        settings = read_settings(engine, organization_id)
        if DEFAULT_KEY in settings.accounts:
            continue
        account = _account_id(sim, realm, EXPENSE_ACCOUNT)
        if account is None:
            continue
        codes = {**settings.tax_codes, f"{D(SALES_TAX):.2f}": "TAX"}
        change_connection_settings(
            engine, organization_id, **{CREATE_VENDORS: True, "tax_codes": codes}
        )
        set_expense_account(engine, organization_id, account, by="seed-demo")
        prepared.append(slug)
    return prepared


def _discounted(sim, realm: str, bill: dict) -> tuple[Decimal, date]:
    """What the demo pays on an open bill, and the day: the discounted amount on the term's last
    discount day where the bill's term offers one, else the balance today."""
    total, balance = D(str(bill["TotalAmt"])), D(str(bill["Balance"]))
    today = date.fromtimestamp(sim.now())
    term_id = (bill.get("SalesTermRef") or {}).get("value")
    term = next((t for t in sim.records(realm, "Term") if str(t["Id"]) == str(term_id)), None)
    if term is None or not term.get("DiscountPercent") or balance != total:
        return balance, today
    percent, days = D(str(term["DiscountPercent"])), int(term.get("DiscountDays") or 0)
    last = date.fromisoformat(bill["TxnDate"]) + timedelta(days=days)
    if last < today:
        return balance, today  # the discount's period is over: paid in full
    discount = (total * percent / 100).quantize(D("0.01"))
    return total - discount, today


def pay_open_bills(sim, realm: str) -> list[str]:
    """Pay, as a QBO user, every open bill our push made in `realm`; the bills' ids."""
    account = _account_id(sim, realm, PAYING_ACCOUNT)
    if account is None:
        return []
    paid = []
    for bill in sim.records(realm, "Bill"):
        open_amount = D(str(bill.get("Balance") or 0))
        if open_amount <= 0 or not str(bill.get("PrivateNote") or "").startswith(MARKER):
            continue
        if any(
            str(x.get("TxnType", "")).startswith("BillPayment") for x in bill.get("LinkedTxn") or []
        ):
            continue  # paid once already (a discount taken leaves its rest open: it stays so)
        amount, day = _discounted(sim, realm, bill)
        sim.create_as_user(
            realm,
            "BillPayment",
            {
                "VendorRef": {"value": bill["VendorRef"]["value"]},
                "PayType": "Check",
                "CheckPayment": {"BankAccountRef": {"value": account}},
                "TotalAmt": str(amount),
                "TxnDate": day.isoformat(),
                "PrivateNote": "paid by the invoice-pipelines demo",
                "Line": [
                    {"Amount": str(amount), "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}]}
                ],
            },
        )
        paid.append(str(bill["Id"]))
    return paid


def record_pull(instance, slug: str, counts) -> None:
    """The pull as what it is to the UI: a materialization of the organization's
    qbo_bill_payments partition (runless), with its counts."""
    from dagster import AssetMaterialization, MetadataValue

    from invoice_pipelines.quickbooks.assets import paid_cells, paid_metadata

    metadata = {name: MetadataValue.int(value) for name, value in counts.as_dict().items()}
    # what was paid, as the asset's own runs list it
    metadata.update(paid_metadata([(slug, *paid_cells(row)) for row in counts.paid]))
    metadata["recorded_by"] = MetadataValue.text(
        "the demo, which paid the bills in the QBO simulator and pulled the payments back"
    )
    instance.report_runless_asset_event(
        AssetMaterialization(asset_key="qbo_bill_payments", partition=slug, metadata=metadata)
    )


def pay_demo_bills(
    engine: Engine,
    sim,
    realms: set[str],
    settings,
    instance=None,
    owed: set | None = None,
    system: Engine | None = None,
) -> dict:
    """One round: each demo organization's open bills paid in QBO and the payments pulled back
    under its lease (a run syncing it now: next round). What happened, per organization.

    `owed` (kept by the caller across rounds) holds the organizations whose pull a busy lease put
    off: the next round pulls them although it paid nothing new (before, it pulled only after a
    payment of its own, so a put-off pull never came, and the bills stayed unpaid here)."""
    owed = set() if owed is None else owed
    from datetime import timedelta as span

    from invoice_pipelines.db.tenancy import find_organization
    from invoice_pipelines.quickbooks.domain.errors import QboError
    from invoice_pipelines.quickbooks.domain.sync.bill_payments import pull_bill_payments
    from invoice_pipelines.quickbooks.domain.sync.common import RealmBusy, open_client, realm_lease

    outcome = {}
    for slug, organization_id, realm in _connected(system or engine, realms):
        paid = pay_open_bills(sim, realm)
        if not paid and slug not in owed:
            continue
        said = f"{len(paid)} bills paid in QBO" if paid else "bills paid in QBO before"
        try:
            with (
                realm_lease(engine, organization_id, "demo-bill-payments", wait=span(0)),
                open_client(engine, organization_id, settings) as client,
            ):
                organization = find_organization(system or engine, organization_id)
                counts = pull_bill_payments(engine, organization, client)
        except (QboError, RealmBusy) as exc:
            owed.add(slug)
            outcome[slug] = f"{said}; pulled next time ({exc})"
            continue
        owed.discard(slug)
        outcome[slug] = f"{said}, {counts.pulled} invoices marked paid"
        if instance is not None:
            record_pull(instance, slug, counts)
    return outcome


def pay_while_serving(
    engine_factory, sim, realms: set[str], settings, stop, instance=None, system_factory=None
):
    """`serve`'s loop: a round of `pay_demo_bills` every PAY_EVERY_SECONDS until `stop` is set
    (`system_factory` makes the system login's engine; without one the runtime engine serves).
    A round that fails (the database away, say) is said on stderr and tried again."""
    owed: set[str] = set()  # pulls a busy lease put off
    while not stop.wait(PAY_EVERY_SECONDS):
        engine = engine_factory()
        system = system_factory() if system_factory is not None else engine
        try:
            done = pay_demo_bills(engine, sim, realms, settings, instance, owed, system=system)
            for slug, what in done.items():
                print(f"QuickBooks demo: {slug}: {what}", file=sys.stderr, flush=True)
        except Exception as exc:  # the demo goes on; the next round tries again
            print(f"QuickBooks demo: bills not paid: {exc}", file=sys.stderr, flush=True)
        finally:
            engine.dispose()
            if system is not engine:
                system.dispose()
