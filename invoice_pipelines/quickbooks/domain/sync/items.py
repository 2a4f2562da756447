"""Items, both ways with field ownership: QBO owns unit price and active, we own the description.

Not last-write-wins per record: each field has one owner, so there is nothing to decide. Pulling
takes QBO's UnitPrice and Active onto our item (a QBO item we do not know becomes one of ours);
pushing creates our new items in QBO and sends our description (and name) where it differs. An
item Name that QBO already has (6240) is linked to that item: item names are unique in QBO, so
the same name is the same item.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine, insert, update

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import items
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.client import (
    MAX_BATCH,
    QboClient,
    quote,
    request_id,
)
from invoice_pipelines.quickbooks.domain.errors import QboError, StaleObject
from invoice_pipelines.quickbooks.domain.names import qbo_item_name
from invoice_pipelines.quickbooks.domain.sync.common import (
    SyncCounts,
    TwoWaySync,
    create_batch,
    fingerprint,
    mappings_by_local_id,
    save_mapping,
)


def owned_by_us(row: dict) -> dict:
    return {"name": row["name"], "description": row.get("description") or ""}


def to_qbo(row: dict, settings: dict) -> dict:
    return {
        "Name": qbo_item_name(row["name"]),
        "Sku": row["sku"][:100],
        "Description": (row.get("description") or "")[:4000],
        "Type": "Service",
        "UnitPrice": Decimal(row["unit_price"]).normalize(),
        "IncomeAccountRef": {"value": str(settings.get("income_account_id", "1"))},
    }


class ItemSync(TwoWaySync):
    ENTITY = "item"
    QBO_ENTITY = "Item"
    TABLE = items

    def __init__(
        self, engine: Engine, organization_id: int, client: QboClient, progress=None
    ) -> None:
        super().__init__(engine, organization_id, client, progress)
        self.settings = getattr(client, "connection_settings", {}) or {}

    def _apply_records(self, conn, records: list[dict]) -> list:
        local = self._local_rows(conn)
        by_local = mappings_by_local_id(conn, self.organization_id, "item")
        by_qbo = {m["qbo_id"]: m for m in by_local.values()}
        unmapped_by_name = {
            qbo_item_name(r["name"]).casefold(): r for i, r in local.items() if i not in by_local
        }
        for record in records:
            qbo_id = str(record["Id"])
            mapping = by_qbo.get(qbo_id)
            price = Decimal(str(record.get("UnitPrice", "0") or "0"))
            active = bool(record.get("Active", True))
            if mapping is None:
                twin = unmapped_by_name.pop(str(record.get("Name", "")).casefold(), None)
                if twin is not None:
                    conn.execute(
                        update(items)
                        .where(items.c.id == twin["id"])
                        .values(unit_price=price, active=active)
                    )
                    save_mapping(
                        conn,
                        self.organization_id,
                        "item",
                        twin["id"],
                        record,
                        local_fingerprint=fingerprint(owned_by_us(twin)),
                    )
                    self.counts.linked += 1
                    continue
                values = {
                    "name": str(record.get("Name") or f"QBO item {qbo_id}")[:255],
                    "description": record.get("Description") or None,
                }
                item_id = conn.execute(
                    insert(items)
                    .values(
                        organization_id=self.organization_id,
                        sku=str(record.get("Sku") or f"QBO-{qbo_id}")[:64],
                        unit_price=price,
                        vat_rate=Decimal(str(self.settings.get("default_vat_rate", "19.00"))),
                        active=active,
                        **values,
                    )
                    .returning(items.c.id)
                ).scalar_one()
                save_mapping(
                    conn,
                    self.organization_id,
                    "item",
                    item_id,
                    record,
                    local_fingerprint=fingerprint(values),
                )
                self.counts.pulled += 1
                continue
            if str(record.get("SyncToken")) == mapping["sync_token"]:
                self.counts.unchanged += 1
                continue
            row = local.get(mapping["local_id"])
            if row is None:
                continue
            conn.execute(
                update(items).where(items.c.id == row["id"]).values(unit_price=price, active=active)
            )
            ours_differ = (record.get("Description") or "") != (row.get("description") or "")
            # our description (and name) win: a QBO edit of them is overwritten by the push
            save_mapping(
                conn,
                self.organization_id,
                "item",
                row["id"],
                record,
                local_fingerprint="" if ours_differ else None,
            )
            self.counts.pulled += 1
        return []

    def push(self) -> None:
        with tenant_transaction(self.engine, self.organization_id) as conn:
            local = self._local_rows(conn)
            by_local = mappings_by_local_id(conn, self.organization_id, "item")
        new = [r for i, r in local.items() if i not in by_local and r["active"]]
        changed = [
            r
            for i, r in local.items()
            if i in by_local and fingerprint(owned_by_us(r)) != by_local[i]["local_fingerprint"]
        ]
        for start in range(0, len(new), MAX_BATCH):
            self._create_batch(new[start : start + MAX_BATCH])
        for row in changed:
            self._push_ours(row, by_local[row["id"]])

    def _push_ours(self, row: dict, mapping: dict) -> None:
        fp = fingerprint(owned_by_us(row))
        fields = {
            "Name": qbo_item_name(row["name"]),
            "Description": (row.get("description") or "")[:4000],
        }
        token = mapping["sync_token"]
        for attempt in (1, 2):
            try:
                record = self.client.sparse_update(
                    "Item",
                    mapping["qbo_id"],
                    token,
                    fields,
                    requestid=request_id("item", self.organization_id, row["id"], fp, token),
                )
                break
            except StaleObject:
                # field ownership: QBO's price/active change does not compete with our
                # description, so take the fresh SyncToken and send ours again
                token = str(self.client.get("Item", mapping["qbo_id"])["SyncToken"])
                if attempt == 2:
                    self._failed(row, "QBO kept changing the item while we updated it")
                    return
            except QboError as exc:
                self._failed(row, str(exc))
                return
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            conn.execute(
                update(items)
                .where(items.c.id == row["id"])
                .values(
                    unit_price=Decimal(str(record.get("UnitPrice", row["unit_price"]))),
                    active=bool(record.get("Active", True)),
                )
            )
            save_mapping(
                conn, self.organization_id, "item", row["id"], record, local_fingerprint=fp
            )
        self.counts.pushed += 1

    def _failed(self, row: dict, message: str) -> None:
        self.counts.failed += 1
        self.counts.errors.append(f"item {row['sku']}: {message}")

    def _create_batch(self, rows: list[dict]) -> None:
        fps = {r["id"]: fingerprint(owned_by_us(r)) for r in rows}
        duplicates = create_batch(
            self, "item", "Item", rows, lambda r: to_qbo(r, self.settings), fps
        )
        for row in duplicates:
            found = self.client.query_all(
                "Item", f"Name = {quote(qbo_item_name(row['name']))}", order_by=""
            )
            if not found:
                self._failed(row, "QBO reported the name as taken but no item has it")
                continue
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                save_mapping(conn, self.organization_id, "item", row["id"], found[0])
                self._record_conflict(
                    conn,
                    row,
                    found[0],
                    decision="linked",
                    reason=f"item name {row['name']!r} exists in QBO: linked to it",
                    local_version=owned_by_us(row),
                )
            self.counts.linked += 1


def sync_items(
    engine: Engine, organization: Organization, client: QboClient, **kwargs
) -> SyncCounts:
    return ItemSync(engine, organization.id, client, **kwargs).run()
