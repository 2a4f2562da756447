"""Vendors, both ways: QBO's vendors pulled into `qbo_vendors`, each supplier's vendor found
through the organization's supplier register (supplier_register.py), and a registered supplier
without one created in QBO where the organization allows it.

Pulled like customers (sync/common.py `TwoWaySync`): the first sync is the paged, resumable
initial import, then the changes since the cursor (CDC), and a webhook notice about a vendor asks
for that pull. QBO keeps a vendor's fields: a pull overwrites ours (name, TaxIdentifier as QBO
shows it, masked but for its last five characters, e-mail, currency, active); QBO never deletes a
vendor, it deactivates it.

A document's seller (name and VAT id as the intake read them) is a claim; its vendor comes from
the register. The registered supplier is the one the claim agrees with (core.suppliers.compare:
its full VAT id, else its name's confusables skeleton); the intake VALIDATES only such documents
(or registers the seller by the organization's first-invoice policy), so a document without one
was VALIDATED before the register existed and waits for a person to register or confirm it.
A supplier no person has confirmed (`suppliers.confirmed_at` NULL: the first-invoice policy
registered it) gets no vendor: its bills wait with the finding `supplier`, naming it and the
command that confirms it, before anything below is looked for. Then, in this order:
1. the vendor the register links (`suppliers.qbo_vendor_id`): it must be in QBO and active;
2. else a vendor whose full VAT id is the supplier's: `qbo_vendors.vat_id` of a vendor we created
   with it as its TaxIdentifier (origin `created`), or a TaxIdentifier that is not masked
   (`full_tax_id`) and equals it whole. A masked TaxIdentifier (`XXXXXX39207`) is never an
   identity: its visible end is five characters anyone can copy. The vendor found is linked in
   the register, audited;
3. else a vendor whose display or company name has the skeleton of one of the supplier's names
   is a suggestion: the bills wait with a finding naming it and the command that links it. A
   name is never a booking and never teaches a vendor a VAT id;
4. else, with `create_vendors` on, the vendor is created (DisplayName and CompanyName the
   registered name as QBO takes it, names.py; TaxIdentifier its VAT id; the invoice's currency
   when it is not the company's) with a requestid per supplier, so a retry never creates it
   twice, and linked in the register. QBO's vendors are pulled first, so a vendor a person made
   since the last pull is seen: one with the skeleton of the new name (the same name, or a
   look-alike in another script) is a suggestion as in 3, never a second vendor. A name QBO has
   for another party (6240) waits the same way. Without `create_vendors`, the bills wait with a
   finding naming the vendor to create.

The `vendors` sync pulls, then makes sure every supplier of a VALIDATED document without a bill
has a vendor (or says why not); the bill push (bills.py) resolves its own documents' suppliers
the same way, so it never waits for a vendors run.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, exists, select

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.suppliers import (
    Claim,
    Register,
    RegisteredSupplier,
    compare,
    name_skeleton,
    vat_id_key,
)
from invoice_pipelines.db.incoming_status import validated
from invoice_pipelines.db.inserts import insert_into
from invoice_pipelines.db.tables import (
    incoming_invoices,
    qbo_bills,
    qbo_vendors,
    suppliers,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.client import QboClient, parse_qbo_time, quote, request_id
from invoice_pipelines.quickbooks.domain.company import import_pending
from invoice_pipelines.quickbooks.domain.errors import DuplicateName, ObjectNotFound, QboError
from invoice_pipelines.quickbooks.domain.names import qbo_display_name
from invoice_pipelines.quickbooks.domain.payables import QboVendor, VendorDraft
from invoice_pipelines.quickbooks.domain.payables_settings import name_key, read_settings, vat_key
from invoice_pipelines.quickbooks.domain.sync.bill_queue import SELLER_EMAIL
from invoice_pipelines.quickbooks.domain.sync.common import (
    CURSOR_OVERLAP,
    SyncCounts,
    TwoWaySync,
    read_cursor,
    storable,
)
from invoice_pipelines.supplier_register import (
    Change,
    RegisterError,
    change_supplier,
    load_register,
)

TAX_IDENTIFIER_MAX = 20  # QBO's Vendor.TaxIdentifier
# the finding of a bill whose supplier no person has confirmed (bill_queue.WAITING)
UNCONFIRMED = "supplier"
LINKED_BY = "qbo-bill-push"
# a tax id as written in full: letters, digits and the separators people put between them
_WRITTEN_OUT = re.compile(r"[A-Za-z0-9\s.\-/]+")


def full_tax_id(value: object) -> str:
    """A vendor's TaxIdentifier as a full VAT id (`vat_id_key`), or '' when QBO answered it
    masked: any character that is not a letter, digit or separator (`•`, `*`), or a run of `X`
    (QBO's `XXXXXX56789`; no country code is XX, and a real id with one is rare enough to wait
    for a person instead)."""
    text = str(value or "").strip()
    if not text or not _WRITTEN_OUT.fullmatch(text) or "XX" in text.upper():
        return ""
    return vat_id_key(text)


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
    how: str = ""  # register | vat_id | created
    problem: str | None = None
    retry: str | None = None
    code: str = (
        "vendor"  # what the problem waits for: vendor, or supplier (a person's confirmation)
    )


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


def home_currency(client: QboClient, fallback: str | None) -> str | None:
    """The company's home currency (Preferences.CurrencyPrefs.HomeCurrency), else `fallback`."""
    try:
        prefs = client.request("GET", "preferences").get("Preferences") or {}
    except QboError:
        return fallback
    home = ((prefs.get("CurrencyPrefs") or {}).get("HomeCurrency") or {}).get("value")
    return str(home) if home else fallback


def registered_supplier(register: Register, supplier: Supplier) -> RegisteredSupplier | None:
    """The register's supplier a document's seller agrees with in full (VAT id and name), or
    None. Any difference (a known VAT id under another name, a look-alike name, ...) is a
    question for a person, not a vendor."""
    comparison = compare(register, Claim(name=supplier.name, vat_id=supplier.vat_id))
    return comparison.supplier if comparison.agrees else None


def _created_with(vendor: dict, vat_id: str) -> bool:
    """A vendor we created with `vat_id` as its TaxIdentifier. Before issue 54 a name match wrote
    `vat_id` onto a vendor too (a vendor we had created without one among them): such a vendor
    shows no TaxIdentifier ending like it, and is not taken."""
    shown = vat_id_key(vendor["tax_identifier"])
    written = vat_id[:TAX_IDENTIFIER_MAX]
    return (
        vendor["origin"] == "created"
        and vendor["vat_id"] == vat_id
        and len(written) >= 5
        and shown[-5:] == written[-5:]
    )


def with_full_vat_id(vendors: list[dict], vat_id: str | None) -> list[dict]:
    """The vendors whose full VAT id is `vat_id`: one we created with it, or one whose
    TaxIdentifier is written out (not masked) and equal to it whole."""
    if not vat_id:
        return []
    return sorted(
        (
            v
            for v in vendors
            if _created_with(v, vat_id) or full_tax_id(v["tax_identifier"]) == vat_id
        ),
        key=lambda v: v["id"],
    )


def named_like(vendors: list[dict], names: tuple[str, ...]) -> list[dict]:
    """The vendors whose display or company name has the skeleton of one of `names` (the same
    name by what a person sees, look-alike letters of other scripts included)."""
    keys = {name_skeleton(n) for n in names} - {""}
    return sorted(
        (
            v
            for v in vendors
            if keys & {name_skeleton(v["display_name"]), name_skeleton(v["company_name"])}
        ),
        key=lambda v: v["id"],
    )


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
    """Insert or refresh our copy of a QBO vendor; the row as stored. `vat_id` is given only for
    a vendor we create (the registered supplier's full VAT id); a pull keeps the one we have."""
    values = _vendor_values(record)
    # to the microsecond: the bill sensor's run key moves with every change
    changes = {**values, "updated_at": datetime.now(UTC)}
    if vat_id:
        changes["vat_id"] = vat_id
    conn.execute(
        insert_into(conn, qbo_vendors)
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


def _vendor_named(vendor: dict) -> str:
    return f"{vendor['display_name']!r} (Id {vendor['qbo_id']})"


class VendorResolver:
    """Finds (or, where allowed, creates) the vendor of each supplier for one organization, in
    the order of the module docstring."""

    def __init__(
        self,
        engine: Engine,
        organization: Organization,
        client: QboClient,
        counts: SyncCounts,
        *,
        create: bool,
        home: str | None,
        pulled: bool = False,
    ) -> None:
        self.engine = engine
        self.organization = organization
        self.organization_id = organization_id = organization.id
        self.slug = organization.slug
        self.client = client
        self.counts = counts
        self.create = create
        self.home = home
        # QBO's vendors pulled in this run already (else once, before the first creation)
        self.pulled = pulled
        with tenant_transaction(engine, organization_id) as conn:
            self.vendors = load_vendors(conn, organization_id)
            self.register = load_register(conn, organization_id)

    # -- what a person does, as the findings say it ------------------------------------------

    def _link_command(self, supplier_id: object = "SUPPLIER_ID", vendor: object = None) -> str:
        vendor_id = vendor["qbo_id"] if isinstance(vendor, dict) else "VENDOR_QBO_ID"
        return (
            f"invoice-pipelines suppliers link-vendor --org {self.slug} --id {supplier_id} "
            f"--vendor {vendor_id} --by NAME --reason TEXT"
        )

    def _unregistered(self, supplier: Supplier) -> Resolved:
        return Resolved(
            problem=f"the seller {supplier.described()} is not a supplier of the organization's "
            "register, or differs from the one registered: register or confirm the supplier "
            "(invoice-pipelines suppliers add/change), then link its QuickBooks vendor "
            f"({self._link_command()})"
        )

    def _unconfirmed(self, registered: RegisteredSupplier) -> Resolved:
        return Resolved(
            problem=f"supplier {registered.described()} was registered by its first invoice and "
            "no person has confirmed it yet: no QuickBooks vendor is created and no bill pushed "
            "for it until a person checks it and confirms it (invoice-pipelines suppliers "
            f"confirm --org {self.slug} --id {registered.id} --version "
            f"{registered.version} --by NAME --reason TEXT)",
            code=UNCONFIRMED,
        )

    def _suggested(self, registered: RegisteredSupplier, named: list[dict], why: str) -> Resolved:
        shown = ", ".join(_vendor_named(v) for v in named[:3])
        return Resolved(
            problem=f"{why}: the QuickBooks vendor {shown} is named like supplier "
            f"{registered.described()}, and a name is not an identity: if it is this supplier, "
            f"link it ({self._link_command(registered.id, named[0])}); otherwise rename one of "
            "them in QuickBooks"
        )

    # -- the order ---------------------------------------------------------------------------

    def resolve(self, supplier: Supplier) -> Resolved:
        registered = registered_supplier(self.register, supplier)
        if registered is None:
            return self._unregistered(supplier)
        if not registered.confirmed:
            # before any vendor is looked for: a link, a VAT id or a new vendor alike wait
            return self._unconfirmed(registered)
        if registered.qbo_vendor_id:
            return self._linked(registered)
        by_vat_id = with_full_vat_id(self.vendors, registered.vat_id)
        if by_vat_id:
            return self._found_by_vat_id(registered, by_vat_id)
        named = named_like(self.vendors, registered.names)
        if named:
            return self._suggested(registered, named, "no vendor is linked to this supplier")
        if not self.create:
            name = qbo_display_name(registered.name) or registered.name
            return Resolved(
                problem=f"no QuickBooks vendor for supplier {registered.described()}: create the "
                f"vendor {name!r} in QuickBooks"
                + (f" with Tax ID {registered.vat_id}" if registered.vat_id else "")
                + f" and link it ({self._link_command(registered.id)}), or let the organization "
                "create vendors (invoice-pipelines qbo-payables --create-vendors yes)"
            )
        if not self.pulled:
            # a vendor a person made in QBO since the last pull is seen before one is created
            try:
                self._pull()
            except QboError as exc:
                return Resolved(retry=f"reading QuickBooks' vendors before creating one: {exc}")
            return self.resolve(supplier)
        return self._create(supplier, registered)

    def _pull(self) -> None:
        """QBO's vendors changed since the vendors sync's cursor (all of them before its first
        import) onto ours. The cursor stays the sync's: this run only reads."""
        state = read_cursor(self.engine, self.organization_id, VendorSync.ENTITY)
        since = state["cursor"] if state["import_done"] else None
        changes = self.client.changes(
            VendorSync.QBO_ENTITY, since - CURSOR_OVERLAP if since else None
        )
        sync = VendorSync(self.engine, self.organization, self.client)
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            sync._apply_records(conn, storable(changes.records))
            self.vendors = load_vendors(conn, self.organization_id)
        self.pulled = True

    def _linked(self, registered: RegisteredSupplier) -> Resolved:
        """The vendor the register links: in QBO (read once when our copy lacks it), active."""
        vendor = next((v for v in self.vendors if v["qbo_id"] == registered.qbo_vendor_id), None)
        if vendor is None:
            try:
                found = self.client.get_vendor(str(registered.qbo_vendor_id))
            except ObjectNotFound:
                return Resolved(
                    problem=f"supplier {registered.described()} is linked to QuickBooks vendor "
                    f"Id {registered.qbo_vendor_id}, which QuickBooks does not have: link the "
                    f"right one ({self._link_command(registered.id)})"
                )
            except QboError as exc:
                if exc.temporary:
                    return Resolved(retry=f"reading vendor {registered.qbo_vendor_id}: {exc}")
                return Resolved(
                    problem=f"QuickBooks refused to show vendor {registered.qbo_vendor_id} of "
                    f"supplier {registered.described()}: {exc}"
                )
            vendor = self._save(found.raw, origin="pulled")
        if not vendor["active"]:
            return Resolved(
                problem=f"the QuickBooks vendor {_vendor_named(vendor)} of supplier "
                f"{registered.described()} is inactive: make it active in QuickBooks, or link "
                f"another ({self._link_command(registered.id)})"
            )
        return Resolved(vendor=vendor, how="register")

    def _found_by_vat_id(self, registered: RegisteredSupplier, found: list[dict]) -> Resolved:
        if len(found) > 1:
            names = ", ".join(_vendor_named(v) for v in found[:5])
            return Resolved(
                problem=f"{len(found)} QuickBooks vendors have the VAT id of supplier "
                f"{registered.described()}: {names}; link the right one "
                f"({self._link_command(registered.id)}), or make the others inactive"
            )
        (vendor,) = found
        if not vendor["active"]:
            return Resolved(
                problem=f"the QuickBooks vendor {_vendor_named(vendor)} with the VAT id of "
                f"supplier {registered.described()} is inactive: make it active in QuickBooks"
            )
        return self._link(
            registered,
            vendor,
            f"vendor {vendor['qbo_id']} has the supplier's full VAT id",
            "vat_id",
        )

    def _link(
        self, registered: RegisteredSupplier, vendor: dict, reason: str, how: str
    ) -> Resolved:
        """The register learns the supplier's vendor (audited), unless a person linked another
        meanwhile or the vendor is another supplier's."""
        s = suppliers.c
        try:
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                # locked: two runs at once link once, and never over a person's link
                current = conn.execute(
                    select(s.qbo_vendor_id)
                    .where(s.organization_id == self.organization_id, s.id == registered.id)
                    .with_for_update()
                ).scalar()
                if current and current != vendor["qbo_id"]:
                    return Resolved(
                        retry=f"supplier {registered.described()} was linked to vendor {current} "
                        "meanwhile: next run"
                    )
                if not current:
                    change_supplier(
                        conn,
                        self.organization_id,
                        registered.id,
                        Change(qbo_vendor_id=vendor["qbo_id"]),
                        changed_by=LINKED_BY,
                        reason=reason,
                    )
        except RegisterError as exc:
            return Resolved(
                problem=f"vendor {_vendor_named(vendor)} of supplier {registered.described()} "
                f"is not linked: {exc}"
            )
        linked = dataclasses.replace(registered, qbo_vendor_id=vendor["qbo_id"])
        self.register = Register(
            [linked if r.id == registered.id else r for r in self.register.suppliers]
        )
        return Resolved(vendor=vendor, how=how)

    def _save(self, record: dict, *, origin: str, vat_id: str | None = None) -> dict:
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            row = save_vendor(conn, self.organization_id, record, origin=origin, vat_id=vat_id)
        self.vendors = [v for v in self.vendors if v["qbo_id"] != row["qbo_id"]] + [row]
        return row

    def _create(self, supplier: Supplier, registered: RegisteredSupplier) -> Resolved:
        name = qbo_display_name(registered.name)
        if not name:
            return Resolved(problem="the supplier has no name to create a QuickBooks vendor with")
        lookalike = named_like(self.vendors, (name,))
        if lookalike:
            return self._suggested(registered, lookalike, "no vendor is created")
        currency = (
            supplier.currency if supplier.currency and supplier.currency != self.home else None
        )
        draft = VendorDraft(
            display_name=name,
            company_name=name,
            email=registered.notice_email,  # never an address a document claimed
            tax_identifier=(registered.vat_id or "")[:TAX_IDENTIFIER_MAX] or None,
            currency=currency,
        )
        rid = request_id(
            "vendor", self.organization_id, f"supplier:{registered.id}", currency or ""
        )
        try:
            created = self.client.create_vendor(draft, requestid=rid)
        except DuplicateName:
            return self._name_taken(registered, name)
        except QboError as exc:
            if exc.temporary:
                return Resolved(retry=f"creating vendor {name!r}: {exc}")
            return Resolved(problem=f"QuickBooks refused vendor {name!r}: {exc}")
        row = self._save(created.raw, origin="created", vat_id=registered.vat_id)
        self.counts.pushed += 1
        return self._link(
            registered, row, f"vendor {row['qbo_id']} created for the supplier", "created"
        )

    def _name_taken(self, registered: RegisteredSupplier, name: str) -> Resolved:
        """6240: QBO has the name. A vendor of that name is a suggestion, never a link."""
        try:
            found = self.client.find_vendors(f"DisplayName = {quote(name)}")
        except QboError as exc:
            return Resolved(retry=f"looking up vendor {name!r}: {exc}")
        named = [self._save(vendor.raw, origin="pulled") for vendor in found]
        if named:
            return self._suggested(registered, named, f"the name {name!r} is taken in QuickBooks")
        return Resolved(
            problem=f"the name {name!r} of supplier {registered.described()} is taken in "
            "QuickBooks by a customer, employee or another vendor: create the vendor under "
            f"another name and link it ({self._link_command(registered.id)})"
        )


class VendorSync(TwoWaySync):
    """QBO's vendors pulled into qbo_vendors; then every waiting supplier resolved."""

    ENTITY = "vendor"
    QBO_ENTITY = "Vendor"

    def __init__(
        self, engine: Engine, organization: Organization, client: QboClient, progress=None
    ) -> None:
        super().__init__(engine, organization.id, client, progress)
        self.organization = organization

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
        waiting = waiting_suppliers(self.engine, self.organization_id)
        if not waiting:
            return
        waits = import_pending(self.engine, self.organization_id)
        if waits is not None:
            # a switched company's customers and items are not imported yet: no vendor either
            self.counts.held += len(waiting)
            self.counts.errors.append(waits)
            return
        settings = read_settings(self.engine, self.organization_id)
        resolver = VendorResolver(
            self.engine,
            self.organization,
            self.client,
            self.counts,
            create=settings.create_vendors,
            home=home_currency(self.client, self.organization.currency),
            pulled=True,  # `run` pulled just now
        )
        for supplier in waiting:
            resolved = resolver.resolve(supplier)
            if resolved.problem or resolved.retry:
                self.counts.held += 1
                self.counts.errors.append(resolved.problem or resolved.retry or "")


def waiting_suppliers(engine: Engine, organization_id: int) -> list[Supplier]:
    """The sellers of the organization's VALIDATED documents (history left out) that have no
    active bill yet, one per seller key and currency (each resolved through the register by `VendorResolver`)."""
    t = incoming_invoices.c
    with tenant_transaction(engine, organization_id) as conn:
        rows = conn.execute(
            select(t.seller_name, t.seller_vat_id, t.currency, SELLER_EMAIL.label("seller_email"))
            .where(
                t.organization_id == organization_id,
                validated(organization_id=organization_id),
                # a migration's history gets no vendor on its own: a person pushing it does
                t.history.is_(False),
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


def sync_vendors(
    engine: Engine, organization: Organization, client: QboClient, **kwargs
) -> SyncCounts:
    return VendorSync(engine, organization, client, kwargs.get("progress")).run()
