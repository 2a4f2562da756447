"""Vendors, both ways: QBO's vendors pulled into `qbo_vendors`, our suppliers matched to them, and
a supplier without one created in QBO where the organization allows it.

Pulled like customers (sync/common.py `TwoWaySync`): the first sync is the paged, resumable
initial import, then the changes since the cursor (CDC), and a webhook notice about a vendor asks
for that pull. QBO keeps a vendor's fields: a pull overwrites ours (name, TaxIdentifier as QBO
shows it, masked but for its last five characters, e-mail, currency, active); QBO never deletes a
vendor, it deactivates it.

A supplier is what the intake read of the seller of an incoming invoice: its name, VAT id,
e-mail and the invoice's currency. It is matched to an active vendor
- by VAT id: a vendor we created for it or matched before (`qbo_vendors.vat_id`), else a vendor
  whose TaxIdentifier shows the end of that VAT id with the same length;
- else by normalized name (`payables_settings.name_key`: "ACME, Inc." is "acmeinc"), display or
  company name, when exactly one vendor has it and no VAT id we know for it says it is another
  party.
A vendor matched by its TaxIdentifier or name learns the supplier's VAT id, so the next match is
by VAT id. No match: with `create_vendors` on, the vendor is created (DisplayName and CompanyName
the supplier's name as QBO takes it, names.py; TaxIdentifier its VAT id; the invoice's currency
when it is not the company's), with a requestid per supplier, so a retry never creates it twice;
a name QBO has for another vendor (6240) is linked to that vendor when it is not another party.
Without it, the supplier's bills wait with a finding that names the vendor to create. The intake
does not keep a seller's tax number (BT-32), so the tax id compared is the VAT id (BT-31).

The `vendors` sync pulls, then makes sure every supplier of a VALIDATED document without a bill
has a vendor (or says why not); the bill push (bills.py) resolves its own documents' suppliers
the same way, so it never waits for a vendors run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.tables import incoming_invoices, organizations, qbo_bills, qbo_vendors
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.client import QboClient, parse_qbo_time, quote, request_id
from invoice_pipelines.quickbooks.errors import DuplicateName, QboError
from invoice_pipelines.quickbooks.names import qbo_display_name
from invoice_pipelines.quickbooks.payables import QboVendor, VendorDraft
from invoice_pipelines.quickbooks.payables_settings import name_key, read_settings, vat_key
from invoice_pipelines.quickbooks.sync.common import SyncCounts, TwoWaySync
from invoice_pipelines.quickbooks.sync.customers import same_vat_id

TAX_IDENTIFIER_MAX = 20  # QBO's Vendor.TaxIdentifier


@dataclass(frozen=True)
class Supplier:
    """The seller of incoming invoices as the intake read it."""

    name: str
    vat_id: str = ""  # vat_key form; '' when the documents state none
    email: str | None = None
    currency: str | None = None

    @property
    def key(self) -> str:
        return f"vat:{self.vat_id}" if self.vat_id else f"name:{name_key(self.name)}"

    def described(self) -> str:
        return f"{self.name!r}" + (f" (VAT id {self.vat_id})" if self.vat_id else "")


@dataclass(frozen=True)
class Resolved:
    """A supplier's vendor (a `qbo_vendors` row) and how it was found; or the finding that keeps
    its bills waiting; or a temporary QBO failure (`retry`: try again next run)."""

    vendor: dict | None = None
    how: str = ""  # vat | tax_identifier | name | created | linked
    problem: str | None = None
    retry: str | None = None


def supplier_of(document: dict) -> Supplier:
    """`document`: an incoming invoice's seller_name, seller_vat_id, currency and seller_email
    (raw_json's invoice.seller_email, `SELLER_EMAIL`)."""
    email = str(document.get("seller_email") or "").strip()
    return Supplier(
        name=str(document.get("seller_name") or "").strip(),
        vat_id=vat_key(document.get("seller_vat_id")),
        email=email[:100] or None,
        currency=(document.get("currency") or None),
    )


# the seller's e-mail as the intake read it (incoming_invoices.raw_json)
SELLER_EMAIL = incoming_invoices.c.raw_json[("invoice", "seller_email")].as_string()


def organization_currency(engine: Engine, organization_id: int) -> str | None:
    with tenant_transaction(engine, organization_id) as conn:
        return conn.execute(
            select(organizations.c.currency).where(organizations.c.id == organization_id)
        ).scalar()


def home_currency(client: QboClient, fallback: str | None) -> str | None:
    """The company's home currency (Preferences.CurrencyPrefs.HomeCurrency), else `fallback`."""
    try:
        prefs = client.request("GET", "preferences").get("Preferences") or {}
    except QboError:
        return fallback
    home = ((prefs.get("CurrencyPrefs") or {}).get("HomeCurrency") or {}).get("value")
    return str(home) if home else fallback


def _may_be(vendor: dict, supplier: Supplier) -> bool:
    """A vendor found by name is not this supplier when the VAT id we know for it is another."""
    return not (vendor["vat_id"] and supplier.vat_id and vendor["vat_id"] != supplier.vat_id)


def match_vendor(vendors: list[dict], supplier: Supplier) -> tuple[dict | None, str, str | None]:
    """(the vendor, how it was matched, None) or (None, "", the finding) or (None, "", None) when
    nothing matches (see the module docstring for the order)."""
    for active in (True, False):
        pool = [v for v in vendors if bool(v["active"]) is active]
        found, how = _match_in(pool, supplier)
        if isinstance(found, list):
            names = ", ".join(f"{v['display_name']!r} (Id {v['qbo_id']})" for v in found[:5])
            return (
                None,
                "",
                (
                    f"{len(found)} QuickBooks vendors are named like supplier {supplier.described()}: "
                    f"{names}; give the right one the supplier's VAT id as its Tax ID, or make the "
                    "others inactive"
                ),
            )
        if found is not None and active:
            return found, how, None
        if found is not None:
            return (
                None,
                "",
                (
                    f"the QuickBooks vendor {found['display_name']!r} (Id {found['qbo_id']}) of "
                    f"supplier {supplier.described()} is inactive: make it active in QuickBooks"
                ),
            )
    return None, "", None


def _match_in(pool: list[dict], supplier: Supplier):
    if supplier.vat_id:
        ours = sorted((v for v in pool if v["vat_id"] == supplier.vat_id), key=lambda v: v["id"])
        if ours:
            return ours[0], "vat"
        shown = sorted(
            (v for v in pool if same_vat_id(supplier.vat_id, v["tax_identifier"])),
            key=lambda v: v["id"],
        )
        if shown:
            return shown[0], "tax_identifier"
    key = name_key(supplier.name)
    if not key:
        return None, ""
    named = [
        v
        for v in pool
        if key in (v["name_key"], name_key(v["company_name"])) and _may_be(v, supplier)
    ]
    if len(named) > 1:
        return named, "name"
    return (named[0], "name") if named else (None, "")


def _vendor_values(record: dict) -> dict:
    vendor = QboVendor.from_qbo(record)
    return {
        "sync_token": vendor.sync_token,
        "display_name": vendor.display_name[:500],
        "company_name": (vendor.company_name or None) and str(vendor.company_name)[:500],
        "name_key": name_key(vendor.display_name),
        "tax_identifier": (vendor.tax_identifier or None) and str(vendor.tax_identifier)[:32],
        "email": (vendor.email or None) and str(vendor.email)[:255],
        "currency": vendor.currency,
        "active": vendor.active,
        "qbo_updated_at": parse_qbo_time((record.get("MetaData") or {}).get("LastUpdatedTime")),
    }


def save_vendor(
    conn, organization_id: int, record: dict, *, origin: str, vat_id: str | None = None
) -> dict:
    """Insert or refresh our copy of a QBO vendor (the VAT id we know is kept unless given);
    the row as stored."""
    values = _vendor_values(record)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # to the microsecond: the bill sensor's run key moves with every change
    changes = {**values, "updated_at": datetime.now(UTC)}
    if vat_id:
        changes["vat_id"] = vat_id
    conn.execute(
        dialect.insert(qbo_vendors)
        .values(
            organization_id=organization_id,
            qbo_id=str(record["Id"]),
            origin=origin,
            vat_id=vat_id or None,
            updated_at=changes["updated_at"],
            **values,
        )
        .on_conflict_do_update(index_elements=["organization_id", "qbo_id"], set_=changes)
    )
    return dict(
        conn.execute(
            select(qbo_vendors).where(
                qbo_vendors.c.organization_id == organization_id,
                qbo_vendors.c.qbo_id == str(record["Id"]),
            )
        )
        .mappings()
        .one()
    )


def load_vendors(conn, organization_id: int) -> list[dict]:
    return [
        dict(r)
        for r in conn.execute(
            select(qbo_vendors).where(qbo_vendors.c.organization_id == organization_id)
        ).mappings()
    ]


class VendorResolver:
    """Finds (or, where allowed, creates) the vendor of each supplier for one organization."""

    def __init__(
        self,
        engine: Engine,
        organization_id: int,
        client: QboClient,
        counts: SyncCounts,
        *,
        create: bool,
        home: str | None,
    ) -> None:
        self.engine = engine
        self.organization_id = organization_id
        self.client = client
        self.counts = counts
        self.create = create
        self.home = home
        with tenant_transaction(engine, organization_id) as conn:
            self.vendors = load_vendors(conn, organization_id)

    def resolve(self, supplier: Supplier) -> Resolved:
        vendor, how, problem = match_vendor(self.vendors, supplier)
        if problem is not None:
            return Resolved(problem=problem)
        if vendor is not None:
            if how in ("tax_identifier", "name") and supplier.vat_id and not vendor["vat_id"]:
                self._learn(vendor, supplier.vat_id)
            return Resolved(vendor=vendor, how=how)
        if not self.create:
            name = qbo_display_name(supplier.name) or supplier.name
            return Resolved(
                problem=f"no QuickBooks vendor for supplier {supplier.described()}: create the "
                f"vendor {name!r} in QuickBooks"
                + (f" with Tax ID {supplier.vat_id}" if supplier.vat_id else "")
                + ", or let the organization create vendors (invoice-pipelines qbo-payables "
                "--create-vendors yes)"
            )
        return self._create(supplier)

    def _learn(self, vendor: dict, vat_id: str) -> None:
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            conn.execute(
                update(qbo_vendors)
                .where(qbo_vendors.c.id == vendor["id"], qbo_vendors.c.vat_id.is_(None))
                .values(vat_id=vat_id)
            )
        vendor["vat_id"] = vat_id

    def _remember(self, row: dict) -> dict:
        self.vendors = [v for v in self.vendors if v["qbo_id"] != row["qbo_id"]] + [row]
        return row

    def _create(self, supplier: Supplier) -> Resolved:
        name = qbo_display_name(supplier.name)
        if not name:
            return Resolved(problem="the supplier has no name to create a QuickBooks vendor with")
        currency = (
            supplier.currency if supplier.currency and supplier.currency != self.home else None
        )
        draft = VendorDraft(
            display_name=name,
            company_name=name,
            email=supplier.email,
            tax_identifier=supplier.vat_id[:TAX_IDENTIFIER_MAX] or None,
            currency=currency,
        )
        rid = request_id("vendor", self.organization_id, supplier.key, currency or "")
        try:
            created = self.client.create_vendor(draft, requestid=rid)
        except DuplicateName:
            return self._link_named(supplier, name)
        except QboError as exc:
            if exc.temporary:
                return Resolved(retry=f"creating vendor {name!r}: {exc}")
            return Resolved(problem=f"QuickBooks refused vendor {name!r}: {exc}")
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            row = save_vendor(
                conn, self.organization_id, created.raw, origin="created", vat_id=supplier.vat_id
            )
        self.counts.pushed += 1
        return Resolved(vendor=self._remember(row), how="created")

    def _link_named(self, supplier: Supplier, name: str) -> Resolved:
        """6240: QBO has the name. A vendor of that name that is not another party is ours."""
        try:
            found = self.client.find_vendors(f"DisplayName = {quote(name)}")
        except QboError as exc:
            return Resolved(retry=f"looking up vendor {name!r}: {exc}")
        for vendor in found:
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                row = save_vendor(conn, self.organization_id, vendor.raw, origin="pulled")
            self._remember(row)
            if row["active"] and _may_be(row, supplier):
                if supplier.vat_id and not row["vat_id"]:
                    self._learn(row, supplier.vat_id)
                self.counts.linked += 1
                return Resolved(vendor=row, how="linked")
        return Resolved(
            problem=f"the name {name!r} of supplier {supplier.described()} is taken in "
            "QuickBooks by a customer, employee or another vendor: create the vendor under "
            "another name and give it the supplier's VAT id as its Tax ID"
        )


class VendorSync(TwoWaySync):
    """QBO's vendors pulled into qbo_vendors; then every waiting supplier resolved."""

    ENTITY = "vendor"
    QBO_ENTITY = "Vendor"

    def _apply_records(self, conn, records: list[dict]) -> list:
        known = {v["qbo_id"]: v["sync_token"] for v in load_vendors(conn, self.organization_id)}
        for record in records:
            if known.get(str(record["Id"])) == str(record.get("SyncToken")):
                self.counts.unchanged += 1
                continue
            save_vendor(conn, self.organization_id, record, origin="pulled")
            self.counts.pulled += 1
        return []

    def _push_update(self, row: dict, sync_token: str) -> None:  # QBO keeps the vendors' fields
        return None

    def push(self) -> None:
        settings = read_settings(self.engine, self.organization_id)
        suppliers = waiting_suppliers(self.engine, self.organization_id)
        if not suppliers:
            return
        resolver = VendorResolver(
            self.engine,
            self.organization_id,
            self.client,
            self.counts,
            create=settings.create_vendors,
            home=home_currency(
                self.client, organization_currency(self.engine, self.organization_id)
            ),
        )
        for supplier in suppliers:
            resolved = resolver.resolve(supplier)
            if resolved.problem or resolved.retry:
                self.counts.held += 1
                self.counts.errors.append(resolved.problem or resolved.retry or "")


def waiting_suppliers(engine: Engine, organization_id: int) -> list[Supplier]:
    """The suppliers of the organization's VALIDATED documents that have no active bill yet, one
    per supplier key and currency."""
    t = incoming_invoices.c
    with tenant_transaction(engine, organization_id) as conn:
        rows = conn.execute(
            select(t.seller_name, t.seller_vat_id, t.currency, SELLER_EMAIL.label("seller_email"))
            .where(
                t.organization_id == organization_id,
                t.status == Status.VALIDATED.value,
                ~exists().where(
                    and_(
                        qbo_bills.c.incoming_invoice_id == t.id,
                        qbo_bills.c.state == "active",
                    )
                ),
            )
            .order_by(t.id)
        ).mappings()
        found: dict[tuple[str, str | None], Supplier] = {}
        for row in rows:
            supplier = supplier_of(dict(row))
            if supplier.name or supplier.vat_id:
                found.setdefault((supplier.key, supplier.currency), supplier)
    return list(found.values())


def sync_vendors(engine: Engine, organization_id: int, client: QboClient, **kwargs) -> SyncCounts:
    return VendorSync(engine, organization_id, client, kwargs.get("progress")).run()
