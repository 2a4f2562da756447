"""One simulated QBO company (realm): its records and the rules QBO applies when they are written.

Customer, Item, Invoice, CreditMemo, Payment, CompanyInfo and Preferences are read and written
here; the payables (Vendor, Term, Account, Bill, VendorCredit, BillPayment) in payables.py and
Attachable with its files in attachments.py, both mixins of `Company`; TaxCode is a seeded,
read-only list so lines can name it. A new company has a chart of accounts and terms. A credit
memo is applied to an invoice as in QBO: by a Payment (of TotalAmt 0 when no money comes with it)
with a line linked to the invoice and a line linked to the credit memo. Every write goes through
`write`, which QBO's POST /{entity} maps onto (create, full or sparse update, delete, void), and
holds the company lock, so one realm's writes are serial as in QBO.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from decimal import Decimal
from typing import Any

from invoice_pipelines_devtools.qbo_simulator import wire
from invoice_pipelines_devtools.qbo_simulator.attachments import Attachments
from invoice_pipelines_devtools.qbo_simulator.payables import PAYABLES, Payables
from invoice_pipelines_devtools.qbo_simulator.records import (
    ZERO,
    Record,
    Tombstone,
    WriteContext,
    display_name,
    id_key,
    priced_amount,
    ref_value,
    truthy,
)

NAME_LISTS = ("Customer", "Vendor", "Item", "Account", "Term", "TaxCode")
TRANSACTIONS = ("Invoice", "CreditMemo", "Payment", "Bill", "VendorCredit", "BillPayment")
SINGLETONS = ("CompanyInfo", "Preferences")
ENTITIES = NAME_LISTS + TRANSACTIONS + ("Attachable",) + SINGLETONS
WRITABLE = tuple(name for name in ENTITIES if name != "TaxCode")
DELETABLE = (
    "Invoice",
    "CreditMemo",
    "Payment",
    "Bill",
    "VendorCredit",
    "BillPayment",
    "Attachable",
)
# the sales forms with lines of items and a DocNumber of their own
SALES_FORMS = ("Invoice", "CreditMemo")
# the names QBO keeps unique, by the field holding them and the group they are unique in: a
# DisplayName across customers and vendors (and employees, not simulated), the others per list
NAME_FIELDS = {
    "Customer": ("DisplayName", "party"),
    "Vendor": ("DisplayName", "party"),
    "Item": ("Name", "Item"),
    "Term": ("Name", "Term"),
    "Account": ("FullyQualifiedName", "Account"),
}
# URL path segment (lower case, as clients send it) -> entity name
PATHS = {name.lower(): name for name in ENTITIES}

# what the server maintains; a client sending these has them ignored
_SERVER_FIELDS = {
    "Id",
    "SyncToken",
    "MetaData",
    "domain",
    "sparse",
    "status",
    "Balance",
    "BalanceWithJobs",
    "FullyQualifiedName",
}
_SERVER_FIELDS_BY_ENTITY = {
    "Invoice": {"TotalAmt", "LinkedTxn", "HomeBalance", "HomeTotalAmt"},
    "CreditMemo": {"TotalAmt", "RemainingCredit", "LinkedTxn", "HomeBalance", "HomeTotalAmt"},
    "Payment": {"UnappliedAmt"},
    "Bill": {"TotalAmt", "LinkedTxn", "HomeBalance", "HomeTotalAmt"},
    "VendorCredit": {"TotalAmt", "LinkedTxn", "HomeBalance", "HomeTotalAmt"},
    "Term": {"Type"},
    "Account": {"CurrentBalance", "CurrentBalanceWithSubAccounts", "Classification"},
    "Attachable": {
        "FileAccessUri",
        "TempDownloadUri",
        "Size",
        "ThumbnailFileAccessUri",
        "ThumbnailTempDownloadUri",
    },
}


@dataclass
class Settings:
    """Per-company switches; `inactive_names_conflict` and `unique_bill_numbers` (a vendor's
    bill number used twice: 6140) are unverified against Intuit's sandbox."""

    custom_txn_numbers: bool = True
    inactive_names_conflict: bool = True
    throttle_xml: bool = False
    multicurrency: bool = False
    unique_bill_numbers: bool = False


class Company(Payables, Attachments):
    """A realm's records, indexes and QBO's write rules. Callers hold `lock` around a request."""

    def __init__(
        self,
        realm_id: str,
        now: Callable[[], float],
        name: str = "Sandbox Company",
        tz_offset: str = "-07:00",
        currency: str = "USD",
        country: str = "US",
        settings: Settings | None = None,
    ) -> None:
        self.realm_id = realm_id
        self.now = now
        self.name = name
        self.tz_offset = tz_offset
        self.tz: timezone = wire.parse_offset(tz_offset)
        self.currency = currency
        self.country = country
        self.settings = settings or Settings()
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, Record]] = {name: {} for name in ENTITIES}
        self.tombstones: list[Tombstone] = []
        self.next_ids: dict[str, int] = {name: 1 for name in ENTITIES}
        self.next_doc_number = 1001
        # per name group, casefolded name -> (entity, Id); per form, casefolded DocNumber -> Ids
        self.names: dict[str, dict[str, tuple[str, str]]] = {
            group: {} for _, group in NAME_FIELDS.values()
        }
        self.doc_numbers: dict[str, dict[str, set[str]]] = {
            form: {} for form in (*SALES_FORMS, "Bill")
        }
        # Attachable Id -> the file's bytes; the key its download links are signed with
        self.files: dict[str, bytes] = {}
        self.file_secret = secrets.token_hex(16)
        # the simulator's address (download links); the simulator sets it
        self.base_url: Callable[[], str] = lambda: "http://127.0.0.1"
        # requestid -> (status, content type, body): a replay answers these bytes again
        self.replies: dict[str, tuple[int, str, bytes]] = {}
        # told of every change (entity, id, Create|Update|Delete|Void, time): webhooks
        self.notify: Callable[[str, str, str, float], None] | None = None
        self._seed()

    # ---- time and rendering -------------------------------------------------------------

    def stamp(self, epoch: float) -> str:
        return wire.local_time(epoch, self.tz)

    def today(self) -> date:
        return date.fromisoformat(wire.local_date(self.now(), self.tz))

    def render(self, record: Record, masked: bool = True) -> dict:
        out = dict(record.data)
        if masked and record.entity == "Customer":
            wire.mask_tax_ids(out)
        if masked and record.entity == "Vendor" and out.get("TaxIdentifier"):
            out["TaxIdentifier"] = wire.mask_tax_id(out["TaxIdentifier"])
        if record.entity == "Attachable":
            out.update(self.file_links(record))
        meta = dict(out.get("MetaData") or {})
        meta["CreateTime"] = self.stamp(record.created)
        meta["LastUpdatedTime"] = self.stamp(record.updated)
        out["MetaData"] = meta
        return out

    def _seed(self) -> None:
        now = self.now()
        for code, name, taxable in (("TAX", "TAX", True), ("NON", "NON", False)):
            self.records["TaxCode"][code] = Record(
                "TaxCode",
                {
                    "Id": code,
                    "SyncToken": "0",
                    "Name": name,
                    "Description": "Taxable" if taxable else "Non-taxable",
                    "Active": True,
                    "Taxable": taxable,
                    "domain": "QBO",
                    "sparse": False,
                },
                now,
                now,
            )
        self.records["CompanyInfo"]["1"] = Record(
            "CompanyInfo",
            {
                "Id": "1",
                "SyncToken": "0",
                "CompanyName": self.name,
                "LegalName": self.name,
                "Country": self.country,
                "CompanyAddr": {"Id": "1", "Country": self.country},
                "FiscalYearStartMonth": "January",
                "SupportedLanguages": "en",
                "NameValue": [{"Name": "OfferingSku", "Value": "QuickBooks Online Plus"}],
                "domain": "QBO",
                "sparse": False,
            },
            now,
            now,
        )
        self.records["Preferences"]["1"] = Record(
            "Preferences",
            {
                "Id": "1",
                "SyncToken": "0",
                "SalesFormsPrefs": {"CustomTxnNumbers": self.settings.custom_txn_numbers},
                "CurrencyPrefs": {
                    "MultiCurrencyEnabled": self.settings.multicurrency,
                    "HomeCurrency": {"value": self.currency},
                },
                "domain": "QBO",
                "sparse": False,
            },
            now,
            now,
        )
        self._seed_payables(now)

    # ---- lookups ------------------------------------------------------------------------

    def find(self, entity: str, entity_id: str | None, ctx: WriteContext | None = None):
        if entity_id is None:
            return None
        if ctx is not None and (entity, entity_id) in ctx.hidden:
            return None
        return self.records[entity].get(entity_id)

    def read(self, entity: str, entity_id: str) -> dict:
        record = self.find(entity, entity_id)
        if record is None:
            raise wire.object_not_found(entity, entity_id)
        return self.render(record)

    def _resolve_ref(self, entity: str, ref: object, ctx: WriteContext, element: str) -> Record:
        value = ref_value(ref)
        if not value:
            raise wire.required_param(element)
        record = self.find(entity, value, ctx)
        if record is None:
            raise wire.invalid_reference(entity, value)
        if not record.active:
            raise wire.object_not_found(entity, value)
        return record

    # ---- record bookkeeping -------------------------------------------------------------

    def _new_id(self, entity: str) -> str:
        value = self.next_ids[entity]
        self.next_ids[entity] = value + 1
        return str(value)

    def _insert(self, entity: str, data: dict, now: float) -> Record:
        data = dict(data)
        data["Id"] = self._new_id(entity)
        data["SyncToken"] = "0"
        data["domain"] = "QBO"
        data["sparse"] = False
        data.pop("MetaData", None)
        record = Record(entity, data, now, now)
        self.records[entity][record.id] = record
        return record

    def _event(self, record: Record, operation: str) -> None:
        if self.notify is not None:
            self.notify(record.entity, record.id, operation, record.updated)

    def _bump(self, record: Record, now: float) -> None:
        record.data["SyncToken"] = str(int(record.data["SyncToken"]) + 1)
        record.updated = max(now, record.updated)

    def _index_name(self, record: Record, old_name: str | None = None) -> None:
        if record.entity not in NAME_FIELDS:
            return
        key_field, group = NAME_FIELDS[record.entity]
        index = self.names[group]
        if old_name is not None and index.get(old_name.casefold()) == (record.entity, record.id):
            del index[old_name.casefold()]
        index[str(record.data[key_field]).casefold()] = (record.entity, record.id)

    def _check_name(self, entity: str, name: str, own_id: str | None) -> None:
        """6240 when another record of the name's group has it (an inactive one too, unless the
        switch says otherwise)."""
        found = self.names[NAME_FIELDS[entity][1]].get(name.casefold())
        if found is None or found == (entity, own_id):
            return
        other = self.records[found[0]].get(found[1])
        if other is None:
            return
        if not other.active and not self.settings.inactive_names_conflict:
            return
        if entity in ("Customer", "Vendor"):
            raise wire.duplicate_name()
        raise wire.duplicate_list_name(entity, name)

    # ---- writes -------------------------------------------------------------------------

    def write(self, entity: str, body: dict, params: dict[str, str], ctx: WriteContext) -> dict:
        """POST /{entity}[?operation=...]: the saved object (rendered), or a Fault raised."""
        if entity not in WRITABLE:
            raise wire.unsupported_operation(
                f"Operation Create/Update is not supported for {entity}."
            )
        if not isinstance(body, dict):
            raise wire.invalid_value(entity, "the request body is not an object")
        operation = (params.get("operation") or "").lower()
        includes = {part.strip().lower() for part in (params.get("include") or "").split(",")}
        ctx.include = includes
        if operation == "delete":
            return self.delete(entity, body, ctx)
        if operation == "void":
            if entity != "Invoice":
                raise wire.unsupported_operation(f"Operation Void is not supported for {entity}.")
            return self.void_invoice(body, ctx)
        if operation == "update" and "void" in includes:
            if entity == "Payment":
                return self.void_payment(body, ctx)
            if entity == "BillPayment":
                return self.void_bill_payment(body, ctx)
            raise wire.unsupported_operation(
                f"Operation update with include=void is not supported for {entity}."
            )
        if operation not in ("", "create", "update"):
            raise wire.unsupported_operation(f"Operation {operation} is not supported.")
        if body.get("Id") not in (None, ""):
            return self.update(entity, body, ctx)
        if entity in SINGLETONS:
            raise wire.required_param("Id")
        return self.create(entity, body, ctx)

    def _writable(self, entity: str, body: dict) -> dict:
        hidden = _SERVER_FIELDS | _SERVER_FIELDS_BY_ENTITY.get(entity, set())
        return {key: value for key, value in body.items() if key not in hidden}

    def create(self, entity: str, body: dict, ctx: WriteContext) -> dict:
        now = self.now()
        fields = self._writable(entity, body)
        if entity == "Customer":
            data = self._customer(fields, None)
            record = self._insert(entity, data, now)
            self._index_name(record)
        elif entity == "Item":
            data = self._item(fields, None)
            record = self._insert(entity, data, now)
            self._index_name(record)
        elif entity == "Invoice":
            data = self._invoice(fields, None, ctx)
            record = self._insert(entity, data, now)
            self._index_doc_number(record)
            self._adjust_customer_balance(data["CustomerRef"], data["Balance"])
        elif entity == "CreditMemo":
            data = self._credit_memo(fields, None, ctx)
            record = self._insert(entity, data, now)
            self._index_doc_number(record)
            self._adjust_customer_balance(data["CustomerRef"], -data["RemainingCredit"])
        elif entity == "Payment":
            data, applications, credits = self._payment(fields, None, ctx)
            record = self._insert(entity, data, now)
            self._apply(record, applications, credits, now)
        elif entity in PAYABLES:
            record = self._create_payable(entity, fields, ctx, now)
        elif entity == "Attachable":
            record = self._insert(entity, self._attachable(fields, None, ctx), now)
        else:  # pragma: no cover - guarded by write()
            raise wire.unsupported_operation(f"Operation Create is not supported for {entity}.")
        self._event(record, "Create")
        return self.render(record)

    def _existing(self, entity: str, body: dict, ctx: WriteContext) -> Record:
        entity_id = str(body.get("Id"))
        record = self.find(entity, entity_id, ctx)
        if record is None:
            raise wire.object_not_found(entity, entity_id)
        token = body.get("SyncToken")
        if token is None or str(token) == "":
            raise wire.required_param("SyncToken")
        if str(token) != record.data["SyncToken"]:
            raise wire.stale_object()
        return record

    def update(self, entity: str, body: dict, ctx: WriteContext) -> dict:
        """Full update (unsent writable fields are cleared) or sparse (`"sparse": true`)."""
        record = self._existing(entity, body, ctx)
        now = self.now()
        sparse = truthy(body.get("sparse"))
        changes = self._writable(entity, body)
        if sparse:
            fields = {k: v for k, v in record.data.items() if k not in _SERVER_FIELDS}
            fields.update(changes)
        else:
            fields = changes
        if entity == "Customer":
            old_name = record.data["DisplayName"]
            data = self._customer(fields, record)
            self._replace(record, data)
            self._index_name(record, old_name)
        elif entity == "Item":
            old_name = record.data["Name"]
            data = self._item(fields, record)
            self._replace(record, data)
            self._index_name(record, old_name)
        elif entity == "Invoice":
            old_doc = record.data.get("DocNumber")
            old_balance = record.data["Balance"]
            old_customer = record.data["CustomerRef"]
            data = self._invoice(fields, record, ctx)
            self._replace(record, data)
            self._unindex_doc_number(entity, record.id, old_doc)
            self._index_doc_number(record)
            self._adjust_customer_balance(old_customer, -old_balance)
            self._adjust_customer_balance(data["CustomerRef"], data["Balance"])
        elif entity == "CreditMemo":
            old_doc = record.data.get("DocNumber")
            old_credit = record.data["RemainingCredit"]
            old_customer = record.data["CustomerRef"]
            data = self._credit_memo(fields, record, ctx)
            self._replace(record, data)
            self._unindex_doc_number(entity, record.id, old_doc)
            self._index_doc_number(record)
            self._adjust_customer_balance(old_customer, old_credit)
            self._adjust_customer_balance(data["CustomerRef"], -data["RemainingCredit"])
        elif entity == "Payment":
            data, applications, credits = self._payment(fields, record, ctx)
            self._unapply(record, now)
            self._replace(record, data)
            self._apply(record, applications, credits, now)
        elif entity in PAYABLES:
            self._update_payable(record, fields, ctx, now)
        elif entity == "Attachable":
            self._replace(record, self._attachable(fields, record, ctx))
        elif entity == "Preferences":
            data = dict(fields)
            self._replace(record, data)
            prefs = data.get("SalesFormsPrefs") or {}
            if "CustomTxnNumbers" in prefs:
                self.settings.custom_txn_numbers = truthy(prefs["CustomTxnNumbers"])
            currency = data.get("CurrencyPrefs") or {}
            if "MultiCurrencyEnabled" in currency:
                self.settings.multicurrency = truthy(currency["MultiCurrencyEnabled"])
        else:
            self._replace(record, dict(fields))
        self._bump(record, now)
        self._event(record, "Update")
        return self.render(record)

    def _replace(self, record: Record, data: dict) -> None:
        keep = {
            key: record.data[key] for key in ("Id", "SyncToken", "domain") if key in record.data
        }
        data = {k: v for k, v in data.items() if k not in ("MetaData", "sparse")}
        record.data = {**data, **keep, "sparse": False}

    def delete(self, entity: str, body: dict, ctx: WriteContext) -> dict:
        if entity not in DELETABLE:
            raise wire.unsupported_operation(
                f"Operation Delete is not supported for {entity}: make it inactive (Active=false)."
            )
        if entity == "Attachable" and body.get("SyncToken") in (None, ""):
            # QBO deletes an attachable named by its Id alone (recorded by qbo_api)
            found = self.find(entity, str(body.get("Id")), ctx)
            if found is not None:
                body = {**body, "SyncToken": found.data["SyncToken"]}
        record = self._existing(entity, body, ctx)
        now = self.now()
        if entity == "Invoice":
            self._unlink_payments(record, now)
            self._adjust_customer_balance(record.data["CustomerRef"], -record.data["Balance"])
            self._unindex_doc_number(entity, record.id, record.data.get("DocNumber"))
        elif entity == "CreditMemo":
            self._unlink_credit_memo(record, now)
            # its credit no longer offsets the customer's open invoices
            self._adjust_customer_balance(
                record.data["CustomerRef"], record.data["RemainingCredit"]
            )
            self._unindex_doc_number(entity, record.id, record.data.get("DocNumber"))
        elif entity in PAYABLES:
            self._delete_payable(record, now)
        elif entity == "Attachable":
            self.files.pop(record.id, None)
        else:
            self._unapply(record, now)
        del self.records[entity][record.id]
        self.tombstones.append(Tombstone(entity, record.id, now))
        if self.notify is not None:
            self.notify(entity, record.id, "Delete", now)
        return {"status": "Deleted", "domain": "QBO", "Id": record.id}

    def void_invoice(self, body: dict, ctx: WriteContext) -> dict:
        """Amounts become zero, "Voided" goes in front of the private note; the record stays."""
        record = self._existing("Invoice", body, ctx)
        now = self.now()
        self._unlink_payments(record, now)
        self._adjust_customer_balance(record.data["CustomerRef"], -record.data["Balance"])
        record.data.pop("TxnTaxDetail", None)
        return self._voided(record, now, "Balance")

    def void_payment(self, body: dict, ctx: WriteContext) -> dict:
        record = self._existing("Payment", body, ctx)
        now = self.now()
        self._unapply(record, now)
        return self._voided(record, now, "UnappliedAmt")

    def _voided(self, record: Record, now: float, *amounts: str) -> dict:
        """A void as QBO makes it: the lines, TotalAmt and `amounts` zero, "Voided" in front of
        the private note, the record kept with a new SyncToken (its links already undone)."""
        data = record.data
        for line in data.get("Line", []):
            line["Amount"] = ZERO
        for key in ("TotalAmt", *amounts):
            data[key] = ZERO
        note = data.get("PrivateNote")
        data["PrivateNote"] = f"Voided - {note}" if note else "Voided"
        self._bump(record, now)
        self._event(record, "Void")
        return self.render(record)

    # ---- entity rules -------------------------------------------------------------------

    def _customer(self, fields: dict, existing: Record | None) -> dict:
        data = dict(fields)
        wire.keep_tax_ids(data, existing.data if existing else None, self.country)
        name = display_name(data)
        self._check_name("Customer", name, existing.id if existing else None)
        data["DisplayName"] = name
        data["FullyQualifiedName"] = name
        data.setdefault("PrintOnCheckName", name)
        data["Active"] = not (data.get("Active") is False or data.get("Active") == "false")
        data.setdefault("Job", False)
        data.setdefault("BillWithParent", False)
        data.setdefault("Taxable", False)
        data.setdefault("CurrencyRef", {"value": self.currency})
        balance = existing.data.get("Balance", ZERO) if existing else ZERO
        data["Balance"] = balance
        data["BalanceWithJobs"] = balance
        return data

    def _item(self, fields: dict, existing: Record | None) -> dict:
        data = dict(fields)
        name = str(data.get("Name") or "").strip()
        if not name:
            raise wire.required_param("Name")
        if len(name) > 100:
            raise wire.invalid_value("Name", "longer than 100 characters")
        wire.check_name_characters("Name", name)
        self._check_name("Item", name, existing.id if existing else None)
        data["Name"] = name
        data["FullyQualifiedName"] = name
        data.setdefault("Type", "Service")
        if data["Type"] not in ("Service", "NonInventory", "Inventory", "Category", "Group"):
            raise wire.invalid_value("Type", f"unknown item type {data['Type']}")
        if data["Type"] in ("Service", "NonInventory", "Inventory"):
            account = ref_value(data.get("IncomeAccountRef"))
            if not account:
                raise wire.required_param("IncomeAccountRef")
            if self.find("Account", account) is None:
                raise wire.invalid_reference("Account", account)
        price = data.get("UnitPrice")
        if price is not None:
            value = wire.to_decimal(price)
            if value is None:
                raise wire.invalid_value("UnitPrice", f"{price!r} is not a number")
            data["UnitPrice"] = value
        else:
            data["UnitPrice"] = ZERO
        data["Active"] = not (data.get("Active") is False or data.get("Active") == "false")
        data.setdefault("Taxable", False)
        return data

    # the sales forms (Invoice, CreditMemo) share their customer, lines, tax, date and DocNumber

    def _sales_customer(self, data: dict, existing: Record | None, ctx: WriteContext) -> dict:
        customer_ref = ref_value(data.get("CustomerRef"))
        if existing is None or customer_ref != ref_value(existing.data.get("CustomerRef")):
            customer = self._resolve_ref("Customer", data.get("CustomerRef"), ctx, "CustomerRef")
            return {"value": customer.id, "name": customer.data["DisplayName"]}
        return existing.data["CustomerRef"]

    def _sales_lines(self, raw_lines: object, ctx: WriteContext) -> tuple[list[dict], Decimal]:
        """The lines as QBO stores them (numbered, SubTotalLineDetail added) and their subtotal."""
        lines = []
        subtotal = ZERO
        sales_lines = 0
        for raw in raw_lines or []:
            if not isinstance(raw, dict):
                raise wire.invalid_value("Line", "a line is not an object")
            kind = raw.get("DetailType")
            if kind == "SubTotalLineDetail":
                continue
            line = {k: v for k, v in raw.items() if k not in ("Id", "LineNum")}
            if kind == "SalesItemLineDetail":
                detail = dict(line.get("SalesItemLineDetail") or {})
                if detail.get("ItemRef") is not None:
                    item = self._resolve_ref("Item", detail["ItemRef"], ctx, "ItemRef")
                    detail["ItemRef"] = {"value": item.id, "name": item.data["Name"]}
                self._tax_code(detail, ctx)
                amount = priced_amount(line, detail)
                line["SalesItemLineDetail"] = detail
                subtotal += amount
                sales_lines += 1
            elif kind == "DescriptionOnly":
                amount = wire.to_decimal(line.get("Amount")) or ZERO
            elif kind == "DiscountLineDetail":
                amount = wire.to_decimal(line.get("Amount")) or ZERO
                subtotal -= amount
            else:
                raise wire.invalid_value("Line.DetailType", f"unsupported detail type {kind!r}")
            line["Amount"] = amount
            lines.append(line)
        if sales_lines == 0:
            raise wire.business_validation("You must fill out at least one split line.")
        for number, line in enumerate(lines, start=1):
            line["Id"] = str(number)
            line["LineNum"] = number
        lines.append(
            {"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
        )
        return lines, subtotal

    def _tax_code(self, detail: dict, ctx: WriteContext) -> None:
        """A line's TaxCodeRef, when it has one, names a tax code of the company (else 2500)."""
        if detail.get("TaxCodeRef") is not None:
            code = ref_value(detail["TaxCodeRef"]) or ""
            if self.find("TaxCode", code, ctx) is None:
                raise wire.invalid_reference("TaxCode", code)
            detail["TaxCodeRef"] = {"value": code}

    def _open_amounts(
        self, data: dict, existing: Record | None, total: Decimal, what: str, held: str
    ) -> None:
        """TotalAmt, and Balance: TotalAmt less what payments hold of it already (a total below
        that is refused, 6000); the links to those payments kept."""
        taken = existing.data["TotalAmt"] - existing.data["Balance"] if existing else ZERO
        if total < taken:
            raise wire.business_validation(
                f"The {what} total {total} is less than the {taken} already {held}."
            )
        data["TotalAmt"] = total
        data["Balance"] = total - taken
        data["LinkedTxn"] = list(existing.data.get("LinkedTxn", [])) if existing else []

    def _total_tax(self, data: dict) -> Decimal:
        """The tax the client computed (TxnTaxDetail.TotalTax); this company computes none."""
        if not isinstance(data.get("TxnTaxDetail"), dict):
            return ZERO
        tax = wire.to_decimal(data["TxnTaxDetail"].get("TotalTax")) or ZERO
        data["TxnTaxDetail"] = {**data["TxnTaxDetail"], "TotalTax": tax}
        return tax

    def _txn_date(self, data: dict) -> date:
        txn_date = data.get("TxnDate") or self.today().isoformat()
        try:
            return date.fromisoformat(str(txn_date)[:10])
        except ValueError:
            raise wire.invalid_value("TxnDate", f"{txn_date!r} is not a date") from None

    def _doc_number(
        self, entity: str, data: dict, existing: Record | None, ctx: WriteContext
    ) -> None:
        """DocNumber as sent (unique per form when CustomTxnNumbers is on), kept, or numbered."""
        doc = data.get("DocNumber")
        if doc not in (None, ""):
            doc = str(doc)
            if len(doc) > 21:
                raise wire.invalid_value("DocNumber", "longer than 21 characters")
            if self.settings.custom_txn_numbers and "allowduplicatedocnum" not in ctx.include:
                others = self.doc_numbers[entity].get(doc.casefold(), set()) - (
                    {existing.id} if existing else set()
                )
                if others:
                    raise wire.duplicate_doc_number(doc, entity, min(others, key=int))
            data["DocNumber"] = doc
        elif existing is not None and existing.data.get("DocNumber"):
            data["DocNumber"] = existing.data["DocNumber"]
        elif not self.settings.custom_txn_numbers:
            # the sales forms share one sequence of numbers
            data["DocNumber"] = str(self.next_doc_number)
            self.next_doc_number += 1

    def _invoice(self, fields: dict, existing: Record | None, ctx: WriteContext) -> dict:
        data = dict(fields)
        data["CustomerRef"] = self._sales_customer(data, existing, ctx)
        data["Line"], subtotal = self._sales_lines(data.get("Line"), ctx)
        self._open_amounts(
            data, existing, subtotal + self._total_tax(data), "invoice", "paid on it"
        )
        parsed = self._txn_date(data)
        data["TxnDate"] = parsed.isoformat()
        if not data.get("DueDate"):
            data["DueDate"] = (parsed + timedelta(days=30)).isoformat()
        else:
            try:
                data["DueDate"] = date.fromisoformat(str(data["DueDate"])[:10]).isoformat()
            except ValueError:
                raise wire.invalid_value("DueDate", f"{data['DueDate']!r} is not a date") from None
        self._doc_number("Invoice", data, existing, ctx)
        data.setdefault("CurrencyRef", {"value": self.currency})
        data.setdefault("EmailStatus", "NotSet")
        data.setdefault("PrintStatus", "NotSet")
        return data

    def _credit_memo(self, fields: dict, existing: Record | None, ctx: WriteContext) -> dict:
        """A credit for the customer: TotalAmt from its lines and tax, RemainingCredit (and
        Balance) what payments have not yet applied of it to invoices."""
        data = dict(fields)
        data["CustomerRef"] = self._sales_customer(data, existing, ctx)
        applied = ZERO
        if existing is not None:
            applied = existing.data["TotalAmt"] - existing.data["RemainingCredit"]
            moved = ref_value(data["CustomerRef"]) != ref_value(existing.data["CustomerRef"])
            if applied and moved:
                raise wire.business_validation(
                    f"{applied} of credit memo {existing.id} is applied to the customer's "
                    "invoices; its customer cannot change."
                )
        data["Line"], subtotal = self._sales_lines(data.get("Line"), ctx)
        total = subtotal + self._total_tax(data)
        if total < 0:
            raise wire.business_validation(f"A credit memo total cannot be negative ({total}).")
        if total < applied:
            raise wire.business_validation(
                f"The credit memo total {total} is less than the {applied} already applied from it."
            )
        data["TotalAmt"] = total
        data["RemainingCredit"] = total - applied
        data["Balance"] = total - applied
        data["LinkedTxn"] = list(existing.data.get("LinkedTxn", [])) if existing else []
        data["TxnDate"] = self._txn_date(data).isoformat()
        data.pop("DueDate", None)  # nothing is due on a credit
        if data.get("CustomerMemo") is not None:
            memo = data["CustomerMemo"]
            text = memo.get("value") if isinstance(memo, dict) else memo
            text = "" if text is None else str(text)
            if len(text) > 1000:
                raise wire.invalid_value("CustomerMemo", "longer than 1000 characters")
            data["CustomerMemo"] = {"value": text}
        if len(str(data.get("PrivateNote") or "")) > 4000:
            raise wire.invalid_value("PrivateNote", "longer than 4000 characters")
        self._doc_number("CreditMemo", data, existing, ctx)
        data.setdefault("CurrencyRef", {"value": self.currency})
        data.setdefault("EmailStatus", "NotSet")
        data.setdefault("PrintStatus", "NotSet")
        return data

    def _payment(self, fields: dict, existing: Record | None, ctx: WriteContext):
        """A payment: money (TotalAmt) and credits taken from credit memos (lines linked to a
        CreditMemo), applied to invoices (lines linked to an Invoice). A credit memo is applied
        by a payment of TotalAmt 0 with one line of each kind; what is neither applied nor a
        credit is UnappliedAmt."""
        data = dict(fields)
        customer = self._resolve_ref("Customer", data.get("CustomerRef"), ctx, "CustomerRef")
        data["CustomerRef"] = {"value": customer.id, "name": customer.data["DisplayName"]}
        total = wire.to_decimal(data.get("TotalAmt"))
        if total is None:
            raise wire.required_param("TotalAmt")
        if total < 0:
            raise wire.business_validation("A payment amount cannot be negative.")
        # what this payment holds already is free again for itself when it is updated
        already_applied: dict[str, Decimal] = {}
        already_used: dict[str, Decimal] = {}
        if existing is not None:
            for invoice_id, amount in self._applications(existing):
                already_applied[invoice_id] = already_applied.get(invoice_id, ZERO) + amount
            for memo_id, amount in self._credits_used(existing):
                already_used[memo_id] = already_used.get(memo_id, ZERO) + amount
        applications: list[tuple[Record, Decimal]] = []
        credits: list[tuple[Record, Decimal]] = []
        wanted: dict[str, Decimal] = {}
        taken: dict[str, Decimal] = {}
        lines = []
        applied = used = ZERO
        for raw in data.get("Line") or []:
            if not isinstance(raw, dict):
                raise wire.invalid_value("Line", "a line is not an object")
            amount = wire.to_decimal(raw.get("Amount"))
            if amount is None:
                raise wire.required_param("Line.Amount")
            if amount < 0:
                raise wire.invalid_value("Line.Amount", f"{amount} is negative")
            links = raw.get("LinkedTxn") or []
            if not links:
                raise wire.required_param("Line.LinkedTxn")
            for link in links:
                kind = link.get("TxnType") if isinstance(link, dict) else None
                if kind not in ("Invoice", "CreditMemo"):
                    raise wire.invalid_value("LinkedTxn.TxnType", f"{kind!r} is not supported here")
            invoice_id, memo_id = _line_targets(raw)
            if invoice_id is not None:
                invoice = self._payment_target(
                    "Invoice", invoice_id, customer, amount, wanted, already_applied, ctx
                )
                applications.append((invoice, amount))
                applied += amount
            if memo_id is not None:
                memo = self._payment_target(
                    "CreditMemo", memo_id, customer, amount, taken, already_used, ctx
                )
                credits.append((memo, amount))
                used += amount
            lines.append(dict(raw, Amount=amount))
        if used > applied:
            raise wire.business_validation(
                f"The credits taken ({used}) are more than the amounts applied to invoices "
                f"({applied})."
            )
        if applied > total + used:
            raise wire.business_validation(
                f"The amounts applied ({applied}) are more than the payment total ({total})"
                + (f" and the credits taken ({used})." if used else ".")
            )
        data["Line"] = lines
        data["TotalAmt"] = total
        data["UnappliedAmt"] = total + used - applied
        data["TxnDate"] = self._txn_date(data).isoformat()
        data.setdefault("CurrencyRef", {"value": self.currency})
        data.setdefault("ProcessPayment", False)
        return data, applications, credits

    def _payment_target(
        self,
        entity: str,
        txn_id: str,
        customer: Record,
        amount: Decimal,
        counted: dict[str, Decimal],
        already: dict[str, Decimal],
        ctx: WriteContext,
    ) -> Record:
        """The invoice a payment line applies to, or the credit memo it takes credit from: the
        customer's, with enough open (Balance) or left (RemainingCredit) for all the payment's
        lines on it; `already`: what the payment being updated holds on it now."""
        record = self.find(entity, txn_id, ctx)
        if record is None:
            raise wire.invalid_reference(entity, txn_id)
        what = "Invoice" if entity == "Invoice" else "Credit memo"
        if ref_value(record.data["CustomerRef"]) != customer.id:
            raise wire.business_validation(
                f"{what} {txn_id} belongs to another customer than the payment."
            )
        counted[txn_id] = counted.get(txn_id, ZERO) + amount
        field, taking, having = (
            ("Balance", "amount applied to invoice", "open balance")
            if entity == "Invoice"
            else ("RemainingCredit", "credit taken from credit memo", "remaining credit")
        )
        left = record.data[field] + already.get(txn_id, ZERO)
        if counted[txn_id] > left:
            raise wire.business_validation(
                f"The {taking} {txn_id} ({counted[txn_id]}) is more than its {having} ({left})."
            )
        return record

    # ---- payments applied to invoices, credit memos applied through payments ----------

    def _applications(self, payment: Record) -> list[tuple[str, Decimal]]:
        """(invoice id, amount) of each line of the payment applied to an invoice."""
        out = []
        for line in payment.data.get("Line", []):
            invoice_id, _memo = _line_targets(line)
            if invoice_id is not None:
                out.append((invoice_id, wire.to_decimal(line.get("Amount")) or ZERO))
        return out

    def _credits_used(self, payment: Record) -> list[tuple[str, Decimal]]:
        """(credit memo id, amount) of each line of the payment that takes a credit."""
        out = []
        for line in payment.data.get("Line", []):
            _invoice, memo_id = _line_targets(line)
            if memo_id is not None:
                out.append((memo_id, wire.to_decimal(line.get("Amount")) or ZERO))
        return out

    def _apply(self, payment: Record, applications, credits, now: float) -> None:
        for invoice, amount in applications:
            invoice.data["Balance"] -= amount
            _link(invoice, payment.id)
            self._bump(invoice, now)
            self._adjust_customer_balance(invoice.data["CustomerRef"], -amount)
        taken: dict[str, tuple[Record, Decimal]] = {}
        for memo, amount in credits:
            taken[memo.id] = (memo, taken.get(memo.id, (memo, ZERO))[1] + amount)
        for memo, amount in taken.values():
            self._take_credit(memo, amount)
            _link(memo, payment.id)
            self._bump(memo, now)

    def _unapply(self, payment: Record, now: float) -> None:
        for invoice_id, amount in self._applications(payment):
            invoice = self.records["Invoice"].get(invoice_id)
            if invoice is None:
                continue
            invoice.data["Balance"] += amount
            _unlink(invoice, payment.id)
            self._bump(invoice, now)
            self._adjust_customer_balance(invoice.data["CustomerRef"], amount)
        released: dict[str, Decimal] = {}
        for memo_id, amount in self._credits_used(payment):
            released[memo_id] = released.get(memo_id, ZERO) + amount
        for memo_id, amount in released.items():
            memo = self.records["CreditMemo"].get(memo_id)
            if memo is None:
                continue
            self._take_credit(memo, -amount)
            _unlink(memo, payment.id)
            self._bump(memo, now)

    def _take_credit(self, memo: Record, amount: Decimal) -> None:
        """`amount` of the memo's credit used (a negative amount gives it back)."""
        memo.data["RemainingCredit"] -= amount
        memo.data["Balance"] = memo.data["RemainingCredit"]
        # the customer's balance counts a remaining credit against the open invoices
        self._adjust_customer_balance(memo.data["CustomerRef"], amount)

    def _settle(self, payment: Record, memos_before: set[str], now: float) -> None:
        """After lines of the payment went: credits beyond what it still applies to invoices go
        back to their credit memos (credit-only lines from the last), a credit memo it no longer
        takes from loses the link, and UnappliedAmt is what is left of its money."""
        lines = payment.data.get("Line", [])
        applied = sum((a for _, a in self._applications(payment)), ZERO)
        used = sum((a for _, a in self._credits_used(payment)), ZERO)
        excess = used - applied
        for line in reversed(lines):
            if excess <= 0:
                break
            invoice_id, memo_id = _line_targets(line)
            if memo_id is None or invoice_id is not None:
                continue
            cut = min(excess, wire.to_decimal(line.get("Amount")) or ZERO)
            line["Amount"] = (wire.to_decimal(line.get("Amount")) or ZERO) - cut
            excess -= cut
            memo = self.records["CreditMemo"].get(memo_id)
            if memo is not None:
                self._take_credit(memo, -cut)
                self._bump(memo, now)
        payment.data["Line"] = [
            line
            for line in lines
            if not (_line_targets(line)[0] is None and not wire.to_decimal(line.get("Amount")))
        ]
        still = {memo_id for memo_id, _ in self._credits_used(payment)}
        for memo_id in memos_before - still:
            memo = self.records["CreditMemo"].get(memo_id)
            if memo is not None:
                _unlink(memo, payment.id)
        applied = sum((a for _, a in self._applications(payment)), ZERO)
        used = sum((a for _, a in self._credits_used(payment)), ZERO)
        payment.data["UnappliedAmt"] = payment.data["TotalAmt"] + used - applied
        self._bump(payment, now)

    def _unlink_payments(self, invoice: Record, now: float) -> None:
        """An invoice voided or deleted: payments applied to it keep their money as unapplied,
        and the credits they took for it go back to their credit memos."""
        for link in invoice.data.get("LinkedTxn", []):
            if link.get("TxnType") != "Payment":
                continue
            payment = self.records["Payment"].get(str(link.get("TxnId")))
            if payment is None:
                continue
            memos_before = {memo_id for memo_id, _ in self._credits_used(payment)}
            kept, freed = [], ZERO
            for line in payment.data.get("Line", []):
                invoice_id, memo_id = _line_targets(line)
                if invoice_id != invoice.id:
                    kept.append(line)
                    continue
                amount = wire.to_decimal(line.get("Amount")) or ZERO
                freed += amount
                if memo_id is not None:  # the line took its credit for this invoice alone
                    memo = self.records["CreditMemo"].get(memo_id)
                    if memo is not None:
                        self._take_credit(memo, -amount)
                        self._bump(memo, now)
            payment.data["Line"] = kept
            invoice.data["Balance"] += freed
            self._adjust_customer_balance(invoice.data["CustomerRef"], freed)
            self._settle(payment, memos_before, now)
        invoice.data["LinkedTxn"] = [
            link for link in invoice.data.get("LinkedTxn", []) if link.get("TxnType") != "Payment"
        ]

    def _unlink_credit_memo(self, memo: Record, now: float) -> None:
        """A credit memo deleted: payments lose the credit they took from it, and what it paid
        on invoices beyond the payments' own money is open on those invoices again."""
        for link in memo.data.get("LinkedTxn", []):
            if link.get("TxnType") != "Payment":
                continue
            payment = self.records["Payment"].get(str(link.get("TxnId")))
            if payment is None:
                continue
            kept, released = [], ZERO
            for line in payment.data.get("Line", []):
                invoice_id, memo_id = _line_targets(line)
                if memo_id != memo.id:
                    kept.append(line)
                    continue
                released += wire.to_decimal(line.get("Amount")) or ZERO
                if invoice_id is not None:  # the application stays, without the credit
                    links = [
                        x
                        for x in line.get("LinkedTxn") or []
                        if not (x.get("TxnType") == "CreditMemo" and str(x.get("TxnId")) == memo.id)
                    ]
                    kept.append(dict(line, LinkedTxn=links))
            payment.data["Line"] = kept
            self._take_credit(memo, -released)
            used = sum((a for _, a in self._credits_used(payment)), ZERO)
            applied = sum((a for _, a in self._applications(payment)), ZERO)
            deficit = applied - (payment.data["TotalAmt"] + used)
            for line in reversed(kept):
                if deficit <= 0:
                    break
                invoice_id, _memo = _line_targets(line)
                invoice = self.records["Invoice"].get(invoice_id or "")
                if invoice is None:
                    continue
                cut = min(deficit, wire.to_decimal(line.get("Amount")) or ZERO)
                line["Amount"] = (wire.to_decimal(line.get("Amount")) or ZERO) - cut
                deficit -= cut
                invoice.data["Balance"] += cut
                self._adjust_customer_balance(invoice.data["CustomerRef"], cut)
                self._bump(invoice, now)
            payment.data["Line"] = [line for line in kept if wire.to_decimal(line.get("Amount"))]
            for invoice_id in {i for i, _ in _invoice_links(kept)} - {
                i for i, _ in self._applications(payment)
            }:
                invoice = self.records["Invoice"].get(invoice_id)
                if invoice is not None:
                    _unlink(invoice, payment.id)
            self._settle(payment, set(), now)
        memo.data["LinkedTxn"] = [
            link for link in memo.data.get("LinkedTxn", []) if link.get("TxnType") != "Payment"
        ]

    def _adjust_customer_balance(self, customer_ref: Any, delta: Decimal) -> None:
        customer = self.records["Customer"].get(ref_value(customer_ref) or "")
        if customer is None or not delta:
            return
        balance = customer.data.get("Balance", ZERO) + delta
        customer.data["Balance"] = balance
        customer.data["BalanceWithJobs"] = balance

    def _index_doc_number(self, record: Record) -> None:
        doc = record.data.get("DocNumber")
        if doc and record.entity in self.doc_numbers:
            self.doc_numbers[record.entity].setdefault(str(doc).casefold(), set()).add(record.id)

    def _unindex_doc_number(self, entity: str, record_id: str, doc: str | None) -> None:
        if doc and entity in self.doc_numbers:
            self.doc_numbers[entity].get(str(doc).casefold(), set()).discard(record_id)

    # ---- changes made "as a QBO user" ---------------------------------------------------

    def edit_as_user(self, entity: str, entity_id: str, changes: dict) -> dict:
        """A change in the QBO UI: a sparse update with the current SyncToken."""
        record = self.find(entity, entity_id)
        if record is None:
            raise wire.object_not_found(entity, entity_id)
        body = dict(changes, Id=entity_id, SyncToken=record.data["SyncToken"], sparse=True)
        return self.update(entity, body, WriteContext())

    def create_as_user(self, entity: str, fields: dict) -> dict:
        return self.write(entity, dict(fields), {}, WriteContext())

    def all_records(self, entity: str) -> list[dict]:
        """Every stored record of the entity, inactive ones too, in Id order, as stored (tax ids
        unmasked)."""
        records = sorted(self.records[entity].values(), key=lambda r: id_key(r.id))
        return [self.render(r, masked=False) for r in records]


def _line_targets(line: dict) -> tuple[str | None, str | None]:
    """(invoice id, credit memo id) a payment line links (None where it links none): the first of
    each kind, as QBO reads one line."""
    invoice_id = memo_id = None
    for link in line.get("LinkedTxn") or []:
        if not isinstance(link, dict):
            continue
        if link.get("TxnType") == "Invoice" and invoice_id is None:
            invoice_id = str(link.get("TxnId") or "")
        elif link.get("TxnType") == "CreditMemo" and memo_id is None:
            memo_id = str(link.get("TxnId") or "")
    return invoice_id, memo_id


def _invoice_links(lines: list[dict]) -> list[tuple[str, dict]]:
    return [(i, line) for line in lines if (i := _line_targets(line)[0]) is not None]


def _link(record: Record, payment_id: str) -> None:
    """The payment in the transaction's LinkedTxn (once)."""
    links = record.data.setdefault("LinkedTxn", [])
    if not any(x.get("TxnId") == payment_id and x.get("TxnType") == "Payment" for x in links):
        links.append({"TxnId": payment_id, "TxnType": "Payment"})


def _unlink(record: Record, payment_id: str) -> None:
    record.data["LinkedTxn"] = [
        x
        for x in record.data.get("LinkedTxn", [])
        if not (x.get("TxnId") == payment_id and x.get("TxnType") == "Payment")
    ]
