"""The demo's QuickBooks: `make run` connects the demo organizations to the local QBO simulator.

`seed-demo` calls `connect_demo_organizations`: the first time, it writes into `<data dir>/qbo/`
a Fernet key of the demo's own (`token.key`) and one simulated company per demo organization
with made-up app credentials (`demo-companies.json`), both readable by the owner only and never
part of the repository; then it saves each organization's connection (tokens encrypted with that
key). `scripts/run-dagster.sh` starts the simulator with those companies (`python -m
invoice_pipelines_devtools.demo.quickbooks serve`), its state kept in the same folder, and gives the
Dagster processes the key and the simulator's URLs. Once the simulator answers, `serve` makes each
organization's first customers and items sync itself, under the organization's sync lease (a
handful of requests; as Dagster runs they would take each organization's one run slot from the
demo's invoicing and documents for minutes); from then on the qbo_* sensors, schedules and jobs
do the syncing. `serve` also sets the US organization up to send its supplier invoices to QBO as
bills, then pays the bills the push makes there and pulls the payments back (demo/payables.py).

An organization that is connected already is left alone: its refresh token has rotated since and
the database, not the file, holds the current one.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import Engine, select

from invoice_pipelines.db.tables import organizations, qbo_connections
from invoice_pipelines.db.tenancy import find_organization, system_transaction
from invoice_pipelines.quickbooks.domain.errors import QboError
from invoice_pipelines.resources.workers import stop_deadline

KEY_FILE = "token.key"
COMPANIES_FILE = "demo-companies.json"
# every VAT rate the demo's items carry; the US organization's untaxed services are NON
DEMO_TAX_CODES = {"19.00": "TAX", "7.00": "TAX", "0.00": "NON"}
DEMO_INCOME_ACCOUNT = "1"  # the simulator's sales income account
# lines without an item (the demo orders' loyalty discounts) are booked on this QBO item, which
# `serve` creates first in every new demo company
DEMO_DEFAULT_ITEM_ID = "1"
DEMO_DEFAULT_ITEM = {
    "Name": "Rabatte und Sonstiges",
    "Type": "Service",
    "UnitPrice": "0",
    "Description": "Discounts and other lines without an item",
    "IncomeAccountRef": {"value": DEMO_INCOME_ACCOUNT},
}


def demo_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "qbo"


def _write_private(path: Path, text: str) -> None:
    """Create `path` readable by the owner only (never world-readable, even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)


def demo_key(data_dir: Path) -> str:
    """The demo's Fernet key for tokens at rest, generated once into the data dir."""
    path = demo_dir(data_dir) / KEY_FILE
    if not path.exists():
        _write_private(path, Fernet.generate_key().decode() + "\n")
    return path.read_text().strip()


def write_command_settings(data_dir: Path, base_url: str, token_url: str) -> Path:
    """Tell the commands where the demo's QuickBooks is (quickbooks/domain/sync/common.LOCAL_QBO_FILE):
    its URLs and the key file beside it, so `qbo-sync` from a shell works against the running
    demo without variables. Written (owner-only) each time the simulator starts, as its port
    may differ from the last time; it holds no secret."""
    from invoice_pipelines.quickbooks.domain.sync.common import LOCAL_QBO_FILE

    path = Path(data_dir) / LOCAL_QBO_FILE
    written = {"base_url": base_url, "token_url": token_url, "token_key_file": KEY_FILE}
    _write_private(path, json.dumps(written, indent=2) + "\n")
    return path


def demo_companies(data_dir: Path, slugs: list[str]) -> dict[str, dict]:
    """One simulated company per organization slug (realm id and made-up app credentials),
    generated once; slugs added later get theirs on the next call."""
    path = demo_dir(data_dir) / COMPANIES_FILE
    companies = json.loads(path.read_text()) if path.exists() else {}
    missing = [slug for slug in slugs if slug not in companies]
    from invoice_pipelines_devtools.demo.seed import DEMO_ORGANIZATIONS

    homes = {spec["org"]["slug"]: spec["org"] for spec in DEMO_ORGANIZATIONS}
    for slug in missing:
        home = homes.get(slug, {})
        companies[slug] = {
            "realm_id": str(9130355000000000 + len(companies) + 1),
            "client_id": f"DemoApp{secrets.token_hex(8)}",
            "client_secret": secrets.token_urlsafe(24),
            "refresh_token": f"DEMO{secrets.token_urlsafe(32)}",
            # a company's home currency is its organization's (QBO: set once, at sign-up)
            "country": home.get("country", "US"),
            "currency": home.get("currency", "USD"),
        }
    if missing:
        _write_private(path, json.dumps(companies, indent=2) + "\n")
    return companies


def connect_demo_organizations(
    engine: Engine, data_dir: Path, slugs: list[str], *, system: Engine
) -> list[str]:
    """Connect the organizations `slugs` that exist and are not connected yet to their simulated
    company (found on the system engine `system`); returns the slugs connected now."""
    from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher

    with system_transaction(system) as conn:
        found = dict(
            conn.execute(
                select(organizations.c.slug, organizations.c.id).where(
                    organizations.c.slug.in_(slugs)
                )
            ).all()
        )
        connected = set(conn.execute(select(qbo_connections.c.organization_id)).scalars())
    todo = [slug for slug in slugs if slug in found and found[slug] not in connected]
    if not todo:
        return []
    cipher = token_cipher(demo_key(data_dir))
    companies = demo_companies(data_dir, slugs)
    for slug in todo:
        company = companies[slug]
        save_connection(
            engine,
            found[slug],
            system=system,
            realm_id=company["realm_id"],
            client_id=company["client_id"],
            client_secret=company["client_secret"],
            refresh_token=company["refresh_token"],
            cipher=cipher,
            settings={
                "tax_codes": DEMO_TAX_CODES,
                "income_account_id": DEMO_INCOME_ACCOUNT,
                "default_item_id": DEMO_DEFAULT_ITEM_ID,
            },
        )
    return todo


def create_demo_companies(sim, data_dir: Path) -> list[str]:
    """Create in `sim` (a QboSimulator) the demo companies it does not have yet, each with the
    item for item-less lines as its Item 1; returns their realm ids."""
    path = demo_dir(data_dir) / COMPANIES_FILE
    companies = json.loads(path.read_text()) if path.exists() else {}
    created = []
    for company in companies.values():
        if company["realm_id"] in sim.sim.companies:
            continue
        sim.create_company(
            company["realm_id"],
            client_id=company["client_id"],
            client_secret=company["client_secret"],
            refresh_token=company["refresh_token"],
            country=company.get("country", "US"),  # files written before they were kept
            currency=company.get("currency", "USD"),
        )
        record = sim.create_as_user(company["realm_id"], "Item", DEMO_DEFAULT_ITEM)
        if str(record["Id"]) != DEMO_DEFAULT_ITEM_ID:
            raise RuntimeError(f"the demo's default item got Id {record['Id']}, not 1")
        created.append(company["realm_id"])
    return created


def record_first_sync(instance, slug: str, customers, items, system: Engine | None = None) -> None:
    """The first sync as what it is to the UI: a materialization of the organization's
    qbo_customers and qbo_items partitions (runless: no Dagster run did it), with the counts a
    sync run records, so the assets do not show "never materialized" after the demo synced them.
    The organization's partition is added if organizations_sensor has not added it yet."""
    from dagster import AssetMaterialization, MetadataValue

    from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME

    if not instance.has_dynamic_partition(ORGANIZATIONS_PARTITIONS_NAME, slug):
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
        if system is not None:
            # the partition added here, not by organizations_sensor: its `organizations` partition
            # recorded as the sensor records the ones it adds (issue 85: the demo's showed Missing)
            from invoice_pipelines.db.tenancy import find_organizations
            from invoice_pipelines.tenants.sensors import organization_events

            for event in organization_events(system, find_organizations(system, [slug])[0]):
                instance.report_runless_asset_event(event)
    for asset, counts in (("qbo_customers", customers), ("qbo_items", items)):
        metadata = {name: MetadataValue.int(value) for name, value in counts.as_dict().items()}
        metadata["recorded_by"] = MetadataValue.text(
            "the demo's first sync, done by make run's QuickBooks demo as the simulator started"
        )
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=asset, partition=slug, metadata=metadata)
        )


def first_sync(
    engine: Engine,
    data_dir: Path,
    base_url: str,
    token_url: str,
    *,
    instance=None,
    system: Engine | None = None,
) -> dict[str, str]:
    """The first customers and items sync of each demo organization that has not had one
    (connected to a demo company, its customers' initial import not done); what happened, per
    organization. One organization's failure never stops the others. With a Dagster `instance`,
    each organization's sync is recorded there (`record_first_sync`)."""
    from invoice_pipelines.quickbooks.domain.sync.common import (
        QboSettings,
        RealmBusy,
        open_client,
        read_cursor,
        realm_lease,
    )
    from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
    from invoice_pipelines.quickbooks.domain.sync.items import sync_items

    realms = demo_realms(data_dir)
    system = system or engine  # the system login's engine where `make run` has one
    with system_transaction(system) as conn:
        connected = conn.execute(
            select(organizations.c.slug, organizations.c.id)
            .join(qbo_connections, qbo_connections.c.organization_id == organizations.c.id)
            .where(qbo_connections.c.realm_id.in_(realms))
            .order_by(organizations.c.slug)
        ).all()
    settings = QboSettings(base_url=base_url, token_url=token_url, token_key=demo_key(data_dir))
    outcome = {}
    for slug, organization_id in connected:
        if read_cursor(engine, organization_id, "customer")["import_done"]:
            continue
        try:
            with (
                realm_lease(engine, organization_id, "demo-first-sync", wait=timedelta(0)),
                open_client(engine, organization_id, settings) as client,
            ):
                organization = find_organization(system, organization_id)
                customers = sync_customers(engine, organization, client)
                items = sync_items(engine, organization, client)
            outcome[slug] = f"{customers.pushed} customers and {items.pushed} items created in QBO"
        except (QboError, RealmBusy) as exc:
            outcome[slug] = f"first sync not done: {exc}"
            continue
        if instance is not None:
            record_first_sync(instance, slug, customers, items, system)
            record_customer_checks(instance, engine, system)
    return outcome


def record_customer_checks(instance, engine: Engine, system: Engine | None = None) -> None:
    """qbo_customers' checks (tokens_not_expiring, company_switch) evaluated on the first sync's
    materialization, as a run of qbo_customers_job evaluates them: the UI shows them evaluated,
    not "Not evaluated" until the next hourly sync."""
    from dagster import AssetKey

    from invoice_pipelines.quickbooks.checks import check_evaluations

    for event in check_evaluations(engine, system or engine, AssetKey("qbo_customers")):
        instance.report_runless_asset_event(event)


def _dagster_instance():
    """The Dagster instance of `make run` (DAGSTER_HOME), where the first sync is recorded; None
    without one (the simulator alone), or when it cannot be opened (said on stderr)."""
    if not os.environ.get("DAGSTER_HOME"):
        return None
    from dagster import DagsterInstance

    try:
        return DagsterInstance.get()
    except Exception as exc:  # the demo still syncs; the UI then shows no materialization
        print(f"QuickBooks demo: first sync not recorded in Dagster: {exc}", file=sys.stderr)
        return None


def serve(data_dir: Path, port: int) -> int:
    """Run the simulator with the demo's companies until SIGTERM or Ctrl-C (state saved in
    `<data dir>/qbo`). A company new to the simulator first gets the item QBO books item-less
    lines (discounts) on, so it is the company's Item 1, the connections' `default_item_id`."""
    import signal

    from invoice_pipelines_devtools.qbo_simulator import QboSimulator

    stop_deadline.watch("QuickBooks simulator")
    sim = QboSimulator(port=port, data_dir=demo_dir(data_dir))
    create_demo_companies(sim, data_dir)
    write_command_settings(data_dir, sim.base_url, sim.token_url)
    stop = threading.Event()

    def sync_once() -> None:
        from invoice_pipelines.db.engine import make_engine, make_system_engine
        from invoice_pipelines.quickbooks.domain.sync.common import QboSettings
        from invoice_pipelines_devtools.demo.payables import (
            pay_while_serving,
            prepare_demo_payables,
        )

        engine, system = make_engine(), make_system_engine()
        instance = _dagster_instance()
        realms = demo_realms(data_dir)
        try:
            synced = first_sync(
                engine, data_dir, sim.base_url, sim.token_url, instance=instance, system=system
            )
            for slug, what in synced.items():
                print(f"QuickBooks demo: {slug}: {what}", file=sys.stderr, flush=True)
            for slug in prepare_demo_payables(engine, sim, realms, system=system):
                print(f"QuickBooks demo: {slug}: bills go to QBO", file=sys.stderr, flush=True)
        except Exception as exc:  # the demo's database may not be there: the simulator stays up
            print(f"QuickBooks demo: first sync not done: {exc}", file=sys.stderr, flush=True)
        finally:
            engine.dispose()
            system.dispose()
        # then, while it serves: the bills the push makes are paid in QBO and pulled back
        settings = QboSettings(
            base_url=sim.base_url, token_url=sim.token_url, token_key=demo_key(data_dir)
        )
        try:
            pay_while_serving(
                make_engine,
                sim,
                realms,
                settings,
                stop,
                instance,
                system_factory=make_system_engine,
            )
        finally:
            if instance is not None:
                instance.dispose()

    threading.Thread(target=sync_once, name="qbo-demo-first-sync", daemon=True).start()

    def _stop(signum, frame):  # SIGTERM saves the state like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        sim.serve_forever()
    finally:
        stop.set()
    return 0


def demo_realms(data_dir: Path) -> set[str]:
    """The realm ids of the demo's companies (`demo-companies.json`)."""
    path = demo_dir(data_dir) / COMPANIES_FILE
    return (
        {c["realm_id"] for c in json.loads(path.read_text()).values()} if path.exists() else set()
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m invoice_pipelines_devtools.demo.quickbooks serve|key --data-dir D`: what
    scripts/run-dagster.sh needs (the simulator with the demo's companies; the demo's key)."""
    parser = argparse.ArgumentParser(prog="python -m invoice_pipelines_devtools.demo.quickbooks")
    parser.add_argument("what", choices=("serve", "key"))
    parser.add_argument("--data-dir", required=True, help="the demo's data dir (.data)")
    parser.add_argument("--port", type=int, default=8765, help="the simulator's port (serve)")
    args = parser.parse_args(argv)
    if args.what == "key":
        print(demo_key(Path(args.data_dir)))
        return 0
    return serve(Path(args.data_dir), args.port)


if __name__ == "__main__":
    # no interpreter teardown after the state is saved: with Dagster imported (the first sync
    # records itself) it took seconds of the stop's grace on a busy machine
    stop_deadline.end(main())
