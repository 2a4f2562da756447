"""Demo data for `make run`: three organizations with customers, items and sales orders.

Deterministic and idempotent: an organization that already exists is left as it is (it only gets
the top-level settings it lacks, such as the seller block an older seed did not write), and each
organization is written in one transaction, so a crash never leaves half a tenant behind.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, insert, select, update

from invoice_pipelines.db.tables import (
    customers,
    items,
    organizations,
    sales_order_lines,
    sales_orders,
)
from invoice_pipelines.db.tenancy import scope_to_organization, system_transaction

D = Decimal

# The German demo organizations' dunning: the default levels, with one base rate (§ 247 BGB) for
# every day. The demo runs on any date, also past the last half-year whose rate is published
# (core/base_rates.py), where a notice could charge default interest only in part; a real
# organization records each new rate with `invoice-pipelines dunning-base-rate`. The notices are
# delivered: the German default levels, each by e-mail (the default is in-app), so the demo's
# customers get their reminder, first dunning and final notice as an e-mail with its PDF letter
# (`make run`: in `.data/mail/`).
DEMO_DUNNING = {
    "interest": {"base_rate_percent": "1.27"},
    "deliver": True,
    "levels": [
        {"name": "reminder", "days": 1, "fee_fixed": "0.00", "channel": "email"},
        {"name": "first_dunning", "days": 14, "fee_fixed": "2.50", "channel": "email"},
        {"name": "final_notice", "days": 30, "fee_fixed": "2.50", "channel": "email"},
    ],
}

DEMO_ORGANIZATIONS: list[dict] = [
    {
        "org": {
            "slug": "mueller-werkzeugbau",
            "name": "Müller Werkzeugbau GmbH",
            "country": "DE",
            "currency": "EUR",
            "timezone": "Europe/Berlin",
            "invoice_number_format": "RE-{year}-{counter:06d}",
            "vat_id": "DE123456789",
            "datev_berater_nr": 29098,
            "datev_mandant_nr": 55003,
            "datev_chart": "SKR03",
            # the seller block of its invoices and e-mails: address, tax number, the bank account
            # the invoice asks to pay to (printed, in the EPC QR code and in the e-mail)
            "settings": {
                "seller": {
                    "street": "Gewerbestraße 21",
                    "postal_code": "73037",
                    "city": "Göppingen",
                    "tax_number": "52/123/45678",
                    "iban": "DE89370400440532013000",
                    "bic": "COBADEFFXXX",
                    "email": "rechnung@mueller-werkzeugbau.example",
                    "phone": "+49 7161 123450",
                    "contact_name": "Buchhaltung",
                },
                "payment_terms_days": 30,
                "dunning": DEMO_DUNNING,
            },
        },
        "customers": [
            (
                "K-10001",
                "Schneider Maschinenbau AG",
                "einkauf@schneider-mb.de",
                "Industriestraße 12",
                "70565",
                "Stuttgart",
                "DE",
                "DE811907980",
            ),
            (
                "K-10002",
                "Bäckerei Hoffmann e.K.",
                "info@baeckerei-hoffmann.de",
                "Marktplatz 3",
                "80331",
                "München",
                "DE",
                None,
            ),
            (
                "K-10003",
                "Weber & Söhne KG",
                "buchhaltung@weber-soehne.de",
                "Hafenweg 45",
                "20457",
                "Hamburg",
                "DE",
                "DE274501283",
            ),
            (
                "K-10004",
                "Fischer Elektrotechnik GmbH",
                "rechnung@fischer-et.de",
                "Am Bahnhof 7",
                "04109",
                "Leipzig",
                "DE",
                "DE199887766",
            ),
            (
                "K-10005",
                "Oostende Staal B.V.",
                "ap@oostende-staal.nl",
                "Havenstraat 88",
                "3011",
                "Rotterdam",
                "NL",
                "NL859412367B01",
            ),
        ],
        "items": [
            ("WZ-100", "Fräser HSS 10 mm", D("24.90"), D("19.00"), "S", True, D("500")),
            ("WZ-200", "Spannzange ER32 Satz", D("189.00"), D("19.00"), "S", True, D("40")),
            ("DL-001", "Montagestunde Techniker", D("78.50"), D("19.00"), "S", False, D("0")),
            ("DL-002", "Anfahrtspauschale", D("45.00"), D("19.00"), "S", False, D("0")),
            ("LIT-01", "Fachbuch Zerspanungstechnik", D("39.95"), D("7.00"), "S", True, D("25")),
            ("WZ-300", "Messschieber digital 150 mm", D("64.00"), D("19.00"), "S", True, D("60")),
        ],
    },
    {
        "org": {
            "slug": "acme-office-supplies",
            "name": "Acme Office Supplies Inc.",
            "country": "US",
            "currency": "USD",
            "timezone": "America/New_York",
            "invoice_number_format": "INV-{counter:05d}",
            "vat_id": None,
            "datev_berater_nr": None,
            "datev_mandant_nr": None,
            "datev_chart": "SKR03",
            # a US company books in QuickBooks, not DATEV: its export partitions say so. Its
            # invoices are plain PDFs with sales tax (documents/domain/formats.py `auto`: a seller
            # outside the EU); the seller block gives them the sender's address
            "settings": {
                "exports": {"directions": []},
                "seller": {
                    "street": "1200 Commerce Dr",
                    "postal_code": "10017",
                    "city": "New York",
                    "email": "billing@acme-office.example",
                    "phone": "+1 212 555 0100",
                    "contact_name": "Accounts Receivable",
                    # the US employer identification number, where a German seller's
                    # Steuernummer would be
                    "tax_number": "12-3456789",
                },
                "payment_terms_days": 30,
            },
        },
        "customers": [
            (
                "C-2001",
                "Riverside Dental Group LLC",
                "billing@riversidedental.com",
                "410 Main St",
                "10001",
                "New York",
                "US",
                None,
            ),
            (
                "C-2002",
                "Brightline Architects",
                "ap@brightline-arch.com",
                "22 Harbor Blvd",
                "02110",
                "Boston",
                "US",
                None,
            ),
            (
                "C-2003",
                "Greenfield Public Library",
                "accounts@greenfieldlib.org",
                "5 Elm Ave",
                "01301",
                "Greenfield",
                "US",
                None,
            ),
            (
                "C-2004",
                "Hudson Valley Realty",
                "office@hvrealty.com",
                "900 Route 9",
                "12601",
                "Poughkeepsie",
                "US",
                None,
            ),
        ],
        "items": [
            ("PAP-A4", "Copy paper, case of 10 reams", D("42.99"), D("8.88"), "S", True, D("300")),
            (
                "PEN-BL",
                "Ballpoint pens, blue, box of 50",
                D("11.49"),
                D("8.88"),
                "S",
                True,
                D("800"),
            ),
            ("TON-HP", "Toner cartridge HP 58A", D("129.00"), D("8.88"), "S", True, D("45")),
            ("CHR-ERG", "Ergonomic office chair", D("349.00"), D("8.88"), "S", True, D("12")),
            ("SRV-DEL", "Next-day delivery", D("15.00"), D("0.00"), "Z", False, D("0")),
        ],
    },
    {
        "org": {
            "slug": "brandt-it-service",
            "name": "Brandt IT-Service OHG",
            "country": "DE",
            "currency": "EUR",
            "timezone": "Europe/Berlin",
            "invoice_number_format": "{year}/{counter:05d}",
            "vat_id": "DE987654321",
            "datev_berater_nr": 41234,
            "datev_mandant_nr": 1020,
            "datev_chart": "SKR04",
            "settings": {
                "seller": {
                    "street": "Rheinuferstraße 7",
                    "postal_code": "50668",
                    "city": "Köln",
                    "tax_number": "215/5802/1234",
                    "iban": "DE02120300000000202051",
                    "bic": "BYLADEM1001",
                    "email": "buchhaltung@brandt-it.example",
                    "phone": "+49 221 987650",
                    "contact_name": "Petra Brandt",
                },
                "payment_terms_days": 14,
                "dunning": DEMO_DUNNING,
            },
        },
        "customers": [
            (
                "D-301",
                "Kanzlei Dr. Wagner & Partner",
                "kanzlei@wagner-partner.de",
                "Königsallee 60",
                "40212",
                "Düsseldorf",
                "DE",
                "DE145236987",
            ),
            (
                "D-302",
                "Praxis für Physiotherapie Klein",
                "praxis@physio-klein.de",
                "Lindenstraße 9",
                "50674",
                "Köln",
                "DE",
                None,
            ),
            (
                "D-303",
                "Autohaus Becker GmbH",
                "verwaltung@autohaus-becker.de",
                "Gewerbepark 14",
                "44137",
                "Dortmund",
                "DE",
                "DE301928374",
            ),
            (
                "D-304",
                "Wiener Softwarehaus GmbH",
                "office@wiener-softwarehaus.at",
                "Mariahilfer Str. 101",
                "1060",
                "Wien",
                "AT",
                "ATU12345678",
            ),
        ],
        "items": [
            ("IT-SUP-H", "IT-Support pro Stunde", D("95.00"), D("19.00"), "S", False, D("0")),
            ("IT-WART", "Wartungsvertrag monatlich", D("249.00"), D("19.00"), "S", False, D("0")),
            (
                "HW-NB14",
                "Notebook 14 Zoll, vorinstalliert",
                D("1099.00"),
                D("19.00"),
                "S",
                True,
                D("8"),
            ),
            ("HW-SSD1", "SSD 1 TB", D("89.90"), D("19.00"), "S", True, D("30")),
            ("SW-LIZ", "Office-Lizenz (1 Jahr)", D("129.00"), D("19.00"), "S", False, D("0")),
        ],
    },
]

DEMO_BATCH_ORGANIZATION = "brandt-it-service"
# The demo on Peppol (demo/peppol.py, the access point stand-in `make run` starts):
# brandt-it-service's participant id (its VAT number, scheme 9930) and one customer's, an Austrian
# VAT number (9914): its invoices to Wiener Softwarehaus go over Peppol, and it receives an
# official Peppol example (its intake, not mueller-werkzeugbau's four supplier invoices)
DEMO_PEPPOL_ORGANIZATIONS = {"brandt-it-service": "9930:DE987654321"}
DEMO_PEPPOL_CUSTOMERS = {("brandt-it-service", "D-304"): "9914:ATU12345678"}
ORDER_STATUS_MIX = ["reviewed"] * 6 + ["pending"] * 2 + ["draft", "cancelled"]
# Invoices of mueller-werkzeugbau issued weeks before the seeding and never paid, so dunning has
# work to show: (days before the seeding, customer number, [(sku, quantity)]), 14 days to pay:
# 6, 26 and 61 days overdue, due for a reminder, a first dunning and a final notice (the default
# German levels: 1, 14 and 30 days). Invoiced through batch invoicing like any other invoice.
# Issued 20, 40 and 75 days before the seeding, at least one of them lies in the last closed month
# on every day of the year (the month a newcomer can export from the UI; docs/demo.md).
DEMO_OVERDUE_ORGANIZATION = "mueller-werkzeugbau"
DEMO_OVERDUE_DUE_DAYS = 14
DEMO_OVERDUE = [
    (20, "K-10001", [("WZ-200", 2), ("DL-001", 3)]),
    (40, "K-10003", [("WZ-100", 10), ("DL-002", 1)]),
    (75, "K-10004", [("WZ-300", 4)]),
]


def seed_demo(
    engine: Engine, *, system: Engine, orders_per_org: int = 24, today: date | None = None
) -> dict:
    """Create the demo organizations that are missing (on the system engine `system`); returns
    what exists afterwards.

    `today` (default: today where the organization is) dates the overdue invoices."""
    from invoice_pipelines.db.tenancy import find_organization

    created: list[str] = []
    completed: list[str] = []
    for spec in DEMO_ORGANIZATIONS:
        with system_transaction(system, write=True) as conn:
            exists = conn.execute(
                select(organizations.c.id, organizations.c.settings).where(
                    organizations.c.slug == spec["org"]["slug"]
                )
            ).first()
            if exists is not None:
                # seeded by an older version: the settings it lacks (the seller block, payment
                # terms) are added; what is there stays as it is
                settings = dict(exists.settings or {})
                missing = {
                    k: v for k, v in spec["org"].get("settings", {}).items() if k not in settings
                }
                if missing:
                    conn.execute(
                        update(organizations)
                        .where(organizations.c.id == exists.id)
                        .values(settings={**settings, **missing})
                    )
                    completed.append(spec["org"]["slug"])
                peppol = _complete_peppol(conn, exists.id, spec["org"]["slug"])
                if peppol and spec["org"]["slug"] not in completed:
                    completed.append(spec["org"]["slug"])
                continue
            org_id = conn.execute(
                insert(organizations)
                .values(
                    **spec["org"],
                    peppol_participant=DEMO_PEPPOL_ORGANIZATIONS.get(spec["org"]["slug"]),
                )
                .returning(organizations.c.id)
            ).scalar_one()
            scope_to_organization(conn, org_id)
            _seed_organization(conn, org_id, spec, orders_per_org)
            created.append(spec["org"]["slug"])
    jobs = []
    if DEMO_BATCH_ORGANIZATION in created:
        # one queued batch job, so the batch_jobs_sensor has work on the first `make run`
        from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders

        jobs.append(
            enqueue_sales_orders(
                engine,
                find_organization(system, DEMO_BATCH_ORGANIZATION),
                all_reviewed=True,
                due_days=14,
                created_by="seed-demo",
            )
        )
    overdue = (
        _seed_overdue_invoices(engine, system, today)
        if DEMO_OVERDUE_ORGANIZATION in created
        else []
    )
    return {
        "created": created,
        "settings_completed": completed,
        "overdue_invoices": overdue,
        "organizations": [s["org"]["slug"] for s in DEMO_ORGANIZATIONS],
        "batch_jobs": jobs,
    }


def _seed_overdue_invoices(engine: Engine, system: Engine, today: date | None) -> list[str]:
    """Invoice DEMO_OVERDUE now, dated in the past (one completed batch job per date, processed
    here); returns their numbers."""
    from invoice_pipelines.billing.domain.invoicing import process_batch_job
    from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_customer_lines
    from invoice_pipelines.db.tables import sales_invoices
    from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
    from invoice_pipelines.queue.domain.requests import organization_today

    org = find_organization(system, DEMO_OVERDUE_ORGANIZATION)
    today = today or organization_today(org.timezone)
    with tenant_transaction(engine, org.id) as conn:
        customer_ids = dict(
            conn.execute(
                select(customers.c.customer_number, customers.c.id).where(
                    customers.c.organization_id == org.id
                )
            ).all()
        )
        item_ids = dict(
            conn.execute(
                select(items.c.sku, items.c.id).where(items.c.organization_id == org.id)
            ).all()
        )
    jobs = []
    for days_ago, customer_number, lines in sorted(DEMO_OVERDUE, reverse=True):
        job_id = enqueue_customer_lines(
            engine,
            org,
            [
                {
                    "customer_id": customer_ids[customer_number],
                    "lines": [{"item_id": item_ids[sku], "quantity": q} for sku, q in lines],
                }
            ],
            invoice_date=today - timedelta(days=days_ago),
            due_days=DEMO_OVERDUE_DUE_DAYS,
            created_by="seed-demo",
        )
        process_batch_job(engine, job_id, system=system, runner="seed-demo")
        jobs.append(job_id)
    with tenant_transaction(engine, org.id) as conn:
        return list(
            conn.execute(
                select(sales_invoices.c.invoice_number)
                .where(
                    sales_invoices.c.organization_id == org.id,
                    sales_invoices.c.batch_job_id.in_(jobs),
                )
                .order_by(sales_invoices.c.issue_date)
            ).scalars()
        )


def _complete_peppol(conn, org_id: int, slug: str) -> bool:
    """An organization seeded before the demo was on Peppol gets its participant id and its
    customers' where they have none; True when something was set."""
    changed = False
    wanted = DEMO_PEPPOL_ORGANIZATIONS.get(slug)
    if wanted is not None:
        changed |= bool(
            conn.execute(
                update(organizations)
                .where(organizations.c.id == org_id, organizations.c.peppol_participant.is_(None))
                .values(peppol_participant=wanted)
            ).rowcount
        )
    scope_to_organization(conn, org_id)
    for (owner, number), participant in DEMO_PEPPOL_CUSTOMERS.items():
        if owner == slug:
            changed |= bool(
                conn.execute(
                    update(customers)
                    .where(
                        customers.c.organization_id == org_id,
                        customers.c.customer_number == number,
                        customers.c.peppol_participant.is_(None),
                    )
                    .values(peppol_participant=participant)
                ).rowcount
            )
    return changed


def _seed_organization(conn, org_id: int, spec: dict, orders_per_org: int) -> None:
    rng = random.Random(spec["org"]["slug"])
    customer_ids = []
    for number, name, email, street, postal, city, country, vat_id in spec["customers"]:
        customer_ids.append(
            conn.execute(
                insert(customers)
                .values(
                    organization_id=org_id,
                    customer_number=number,
                    name=name,
                    email=email,
                    # a mobile number in E.164 form, so send_text_messages_job has someone to
                    # text (the demo's SMS stand-in); not drawn from rng, which the orders use
                    phone=f"+49 151 {20000000 + len(customer_ids):08d}",
                    street=street,
                    postal_code=postal,
                    city=city,
                    country=country,
                    vat_id=vat_id,
                    # documents and messages in the seller's language: English for the US
                    # company (its invoices are plain PDFs with sales tax, documents/domain/formats.py)
                    language="de" if spec["org"]["country"] == "DE" else "en",
                    payment_terms_days=rng.choice([0, 14, 30]),
                    peppol_participant=DEMO_PEPPOL_CUSTOMERS.get((spec["org"]["slug"], number)),
                )
                .returning(customers.c.id)
            ).scalar_one()
        )
    item_rows = []
    for sku, name, price, rate, category, stock, qty in spec["items"]:
        item_id = conn.execute(
            insert(items)
            .values(
                organization_id=org_id,
                sku=sku,
                name=name,
                unit_price=price,
                vat_rate=rate,
                vat_category=category,
                is_stock_item=stock,
                inventory_quantity=qty,
            )
            .returning(items.c.id)
        ).scalar_one()
        item_rows.append((item_id, name, price, rate, category))
    start = date(2026, 10, 1)
    for n in range(1, orders_per_org + 1):
        order_id = conn.execute(
            insert(sales_orders)
            .values(
                organization_id=org_id,
                order_number=f"SO-{n:05d}",
                customer_id=rng.choice(customer_ids),
                order_date=start + timedelta(days=rng.randrange(0, 45)),
                status=rng.choice(ORDER_STATUS_MIX),
                currency=spec["org"]["currency"],
                created_by="seed-demo",
            )
            .returning(sales_orders.c.id)
        ).scalar_one()
        lines = []
        for line_no, (item_id, name, price, rate, category) in enumerate(
            rng.sample(item_rows, k=rng.randint(1, min(4, len(item_rows)))), start=1
        ):
            lines.append(
                {
                    "organization_id": org_id,
                    "sales_order_id": order_id,
                    "line_no": line_no,
                    "line_type": "item",
                    "item_id": item_id,
                    "description": name,
                    "quantity": D(rng.randint(1, 12)),
                    "unit_price": price,
                    "vat_rate": rate,
                    "vat_category": category,
                }
            )
        if n % 7 == 0:
            # a goodwill discount line, as real orders have
            lines.append(
                {
                    "organization_id": org_id,
                    "sales_order_id": order_id,
                    "line_no": len(lines) + 1,
                    "line_type": "discount",
                    "item_id": None,
                    "description": "Treuerabatt"
                    if spec["org"]["country"] == "DE"
                    else "Loyalty discount",
                    "quantity": D(1),
                    "unit_price": D("-10.00"),
                    "vat_rate": lines[0]["vat_rate"],
                    "vat_category": lines[0]["vat_category"],
                }
            )
        conn.execute(insert(sales_order_lines), lines)


DEMO_UPLOAD_ORGANIZATION = "mueller-werkzeugbau"
_SEEDED_MARKER = ".demo-uploads-seeded"


def seed_demo_uploads(store_root: Path, *, today: date | None = None) -> list[str]:
    """Give every demo organization its upload folder and drop the demo supplier invoices (CII,
    UBL, text PDF, scan) into one of them, once.

    A marker file remembers that it happened, so processed (archived) files are not dropped again.
    """
    from invoice_pipelines.resources.files.uploads import LocalUploads
    from invoice_pipelines_devtools.demo.invoices import demo_supplier_invoices

    for spec in DEMO_ORGANIZATIONS:
        (store_root / spec["org"]["slug"]).mkdir(parents=True, exist_ok=True)
    marker = store_root / DEMO_UPLOAD_ORGANIZATION / _SEEDED_MARKER
    if marker.exists():
        return []
    store = LocalUploads(str(store_root))
    keys = [
        store.put(DEMO_UPLOAD_ORGANIZATION, name, data)
        for name, data in demo_supplier_invoices(today or date.today())
    ]
    marker.write_text("\n".join(keys) + "\n")
    return keys
