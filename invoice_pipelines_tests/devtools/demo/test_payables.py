"""The demo's supplier invoices in QuickBooks, as `make run` does it without Dagster: seed-demo
drops the US organization's supplier invoices, the intake reads them, the simulator's start-up
sets the organization's payables up, the bill push sends them as bills with their documents, the
demo pays them in the simulator and the pull brings them back paid (one with its Skonto)."""

from __future__ import annotations

import os
import time
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.tables import (
    incoming_invoice_settlements,
    incoming_invoices,
    qbo_connections,
)
from invoice_pipelines.db.tenancy import (
    find_organization,
    system_transaction,
    tenant_transaction,
)
from invoice_pipelines.documents.domain.letters import PdfaLetters
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.quickbooks.domain.sync.bills import letter_pdf, push_bills
from invoice_pipelines.quickbooks.domain.sync.common import QboSettings, open_client, realm_lease
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.supplier_register import supplier_rows
from invoice_pipelines_devtools.demo.payables import (
    DEMO_PAYABLES_ORGANIZATION,
    pay_demo_bills,
    prepare_demo_payables,
    register_demo_suppliers,
    seed_payables_uploads,
)
from invoice_pipelines_devtools.demo.quickbooks import (
    connect_demo_organizations,
    create_demo_companies,
    demo_key,
    demo_realms,
    first_sync,
)
from invoice_pipelines_devtools.demo.seed import DEMO_ORGANIZATIONS, seed_demo
from invoice_pipelines_devtools.qbo_simulator import QboSimulator
from invoice_pipelines_tests.quickbooks.payables_books import InProcess

D = Decimal
SLUGS = [spec["org"]["slug"] for spec in DEMO_ORGANIZATIONS]


def _read(engine, store, organization: Organization) -> None:
    scan = scan_uploads(
        engine,
        store,
        ScanState(),
        system=engine,
        max_files_per_tick=10,
        only_organizations={organization.slug},
    )
    ids = [i for batch in scan.batches for i in batch.document_ids]
    process_documents(engine, store, organization, ids, parser=InProcess(), ocr=None)


def test_the_us_organizations_supplier_invoices_reach_qbo_as_bills_and_come_back_paid(
    tmp_path, sqlite_migrated_factory
):
    url = sqlite_migrated_factory(tmp_path / "demo.sqlite3")
    engine = make_engine(url)
    data_dir, uploads = tmp_path / "data", tmp_path / "uploads"
    seed_demo(engine, system=engine, orders_per_org=2)
    connect_demo_organizations(engine, data_dir, SLUGS, system=engine)
    # dated as the demo dates them, before the day it pays (the simulator's clock is today's): a
    # fixed day let the Skonto's ten days run out from 2026-11-27 on, and it was paid in full
    dropped = seed_payables_uploads(uploads, today=date.today())
    assert len(dropped) == 3 and seed_payables_uploads(uploads) == []  # once
    # their suppliers confirmed by the seed, once: their bills need no person on the first run
    assert (
        len(register_demo_suppliers(engine, engine)) == 3
        and register_demo_suppliers(engine, engine) == []
    )
    store = LocalUploads(str(uploads))
    acme = find_organization(engine, DEMO_PAYABLES_ORGANIZATION)
    # the drop zone takes files a minute old: as if seed-demo ran a while ago
    for path in (uploads / DEMO_PAYABLES_ORGANIZATION).glob("*.xml"):
        past = time.time() - 120
        os.utime(path, (past, past))
    _read(engine, store, acme)
    with tenant_transaction(engine, acme.id) as conn:
        statuses = conn.execute(select(incoming_invoices.c.status)).scalars().all()
    assert statuses == ["VALIDATED"] * 3
    with tenant_transaction(engine, acme.id) as conn:
        register = supplier_rows(conn, acme.id)
    assert [(s["confirmed_by"], s["origin"]) for s in register] == [("seed-demo", "person")] * 3

    realms = demo_realms(data_dir)
    with QboSimulator(port=0, data_dir=data_dir / "qbo") as sim:
        create_demo_companies(sim, data_dir)
        first_sync(engine, data_dir, sim.base_url, sim.token_url)
        assert prepare_demo_payables(engine, sim, realms) == [DEMO_PAYABLES_ORGANIZATION]
        assert prepare_demo_payables(engine, sim, realms) == []  # once
        settings = QboSettings(
            base_url=sim.base_url, token_url=sim.token_url, token_key=demo_key(data_dir)
        )
        with open_client(engine, acme.id, settings) as client:
            counts = push_bills(
                engine,
                acme,
                client,
                read_upload=store.read,
                write_letter=letter_pdf(PdfaLetters()),
            )
        assert (counts.held, counts.failed) == (0, 0), counts.errors
        with system_transaction(engine) as conn:
            realm = conn.execute(
                select(qbo_connections.c.realm_id).where(
                    qbo_connections.c.organization_id == acme.id
                )
            ).scalar_one()
        bills = sim.records(realm, "Bill")
        assert len(bills) == 3
        files = sorted(a["FileName"].rsplit(".", 1)[1] for a in sim.records(realm, "Attachable"))
        assert files == ["pdf"] * 3 + ["xml"] * 3
        assert {v["DisplayName"] for v in sim.records(realm, "Vendor")} >= {
            "Northwind Paper Co.",
            "Harbor Freight Lines LLC",
            "Summit Ergonomics Inc.",
        }

        # a run syncing the organization holds its lease: the pull waits for the next round,
        # which pulls although it pays nothing new (before, that pull never came)
        owed: set[str] = set()
        with realm_lease(engine, acme.id, "a-sync-run"):
            done = pay_demo_bills(engine, sim, realms, settings, owed=owed)
        assert done[DEMO_PAYABLES_ORGANIZATION].startswith("3 bills paid in QBO; pulled next time")
        done = pay_demo_bills(engine, sim, realms, settings, owed=owed)
        assert done == {
            DEMO_PAYABLES_ORGANIZATION: "bills paid in QBO before, 3 invoices marked paid"
        }
        assert pay_demo_bills(engine, sim, realms, settings, owed=owed) == {}  # paid once
    with tenant_transaction(engine, acme.id) as conn:
        statuses = conn.execute(select(incoming_invoices.c.status)).scalars().all()
        settled = conn.execute(
            select(
                incoming_invoice_settlements.c.status,
                incoming_invoice_settlements.c.discount_percent,
            )
        ).all()
    assert statuses == ["EXPORTED"] * 3
    assert sorted(s.status for s in settled) == ["paid"] * 3
    # Harbor Freight's 2 % for paying within 10 days was taken
    assert sorted(str(s.discount_percent) for s in settled) == ["2.00", "None", "None"]
    engine.dispose()
