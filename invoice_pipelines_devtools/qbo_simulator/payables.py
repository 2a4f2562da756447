"""The payables side of a simulated company: vendors, terms, the chart of accounts, bills, vendor
credits and bill payments, with the rules QBO applies when they are written. A mixin of `Company`,
which owns the records, the indexes and the write path (create, update, delete, void).

What is verified against Intuit and what is assumed is listed in docs/quickbooks.md ("The
simulator's payables"); rules below marked "assumed" are the simulator's guess until an Intuit
sandbox says otherwise.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from invoice_pipelines_devtools.qbo_simulator import wire
from invoice_pipelines_devtools.qbo_simulator.records import (
    ZERO,
    Record,
    WriteContext,
    display_name,
    money,
    priced_amount,
    ref_value,
    truthy,
)

PAYABLES = ("Vendor", "Term", "Account", "Bill", "VendorCredit", "BillPayment")

# QBO's account types and the classification each belongs to (Intuit's Account reference)
ACCOUNT_TYPES = {
    "Bank": "Asset",
    "Other Current Asset": "Asset",
    "Fixed Asset": "Asset",
    "Other Asset": "Asset",
    "Accounts Receivable": "Asset",
    "Equity": "Equity",
    "Expense": "Expense",
    "Other Expense": "Expense",
    "Cost of Goods Sold": "Expense",
    "Accounts Payable": "Liability",
    "Credit Card": "Liability",
    "Long Term Liability": "Liability",
    "Other Current Liability": "Liability",
    "Income": "Revenue",
    "Other Income": "Revenue",
}
AP = "Accounts Payable"
AP_NAME = "Accounts Payable (A/P)"

# A new company's chart of accounts, as a sandbox company has one (names as QBO's US sandbox
# shows them; the selection is ours). The first four keep Ids 1-4, which items name.
CHART_OF_ACCOUNTS = (
    ("Services", "Income", "ServiceFeeIncome"),
    ("Sales of Product Income", "Income", "SalesOfProductIncome"),
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    ("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    (AP_NAME, AP, "AccountsPayable"),
    ("Checking", "Bank", "Checking"),
    ("Visa", "Credit Card", "CreditCard"),
    ("Advertising", "Expense", "AdvertisingPromotional"),
    ("Bank Charges", "Expense", "BankCharges"),
    ("Legal & Professional Fees", "Expense", "LegalProfessionalFees"),
    ("Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses"),
    ("Rent or Lease", "Expense", "RentOrLeaseOfBuildings"),
    ("Supplies", "Expense", "SuppliesMaterials"),
    ("Travel", "Expense", "Travel"),
    ("Utilities", "Expense", "Utilities"),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
)
# (Name, DueDays, DiscountPercent, DiscountDays): the standard terms of a sandbox company, and one
# with an early-payment discount
TERMS = (
    ("Due on receipt", 0, None, None),
    ("Net 10", 10, None, None),
    ("Net 15", 15, None, None),
    ("Net 30", 30, None, None),
    ("Net 60", 60, None, None),
    ("2% 10, Net 30", 30, Decimal("2"), 10),
)
TERM_NAME_MAX = 31  # assumed (QBO's UI field)
PRIVATE_NOTE_MAX = 4000
DOC_NUMBER_MAX = 21
# what a bill payment's line may link, and the type the paid transaction lists it under (assumed:
# QBO's samples show a bill linked to "BillPaymentCheck")
PAY_TYPES = {"Check": "BillPaymentCheck", "CreditCard": "BillPaymentCreditCard"}
_INTS = ("DueDays", "DiscountDays", "DayOfMonthDue", "DueNextMonthDays", "DiscountDayOfMonth")


class Payables:
    """Vendor, Term, Account, Bill, VendorCredit and BillPayment rules for `Company`."""

    # ---- seed data of a new company -----------------------------------------------------

    def _seed_payables(self, now: float) -> None:
        self.add_missing_accounts(now)
        for name, due, percent, discount_days in TERMS:
            fields = {"Name": name, "DueDays": due}
            if percent is not None:
                fields.update(DiscountPercent=percent, DiscountDays=discount_days)
            self._index_name(self._insert("Term", self._term(fields, None), now))

    def add_missing_accounts(self, now: float) -> None:
        """The chart of accounts' accounts the company does not have by name (all of them when
        it is new; those added since, when a saved company is loaded)."""
        have = {str(r.data.get("Name")) for r in self.records["Account"].values()}
        for name, kind, sub in CHART_OF_ACCOUNTS:
            if name not in have:
                fields = {"Name": name, "AccountType": kind, "AccountSubType": sub}
                self._index_name(self._insert("Account", self._account(fields, None, None), now))

    # ---- the write path's payables part -------------------------------------------------

    def _create_payable(self, entity: str, fields: dict, ctx: WriteContext, now: float) -> Record:
        if entity == "BillPayment":
            data, bills, credits = self._bill_payment(fields, None, ctx)
            record = self._insert(entity, data, now)
            self._pay(record, bills, credits, now)
            return record
        data = self._payable_data(entity, fields, None, ctx)
        record = self._insert(entity, data, now)
        self._index_name(record)
        self._index_doc_number(record)
        self._adjust_vendor_balance(record, 1)
        return record

    def _update_payable(self, record: Record, fields: dict, ctx: WriteContext, now: float) -> None:
        if record.entity == "BillPayment":
            data, bills, credits = self._bill_payment(fields, record, ctx)
            self._unpay(record, now)
            self._replace(record, data)
            self._pay(record, bills, credits, now)
            return
        old_name = _name_of(record)
        old_doc = record.data.get("DocNumber")
        data = self._payable_data(record.entity, fields, record, ctx)
        self._adjust_vendor_balance(record, -1)
        self._replace(record, data)
        self._adjust_vendor_balance(record, 1)
        self._index_name(record, old_name)
        if record.entity in self.doc_numbers:
            self._unindex_doc_number(record.entity, record.id, old_doc)
            self._index_doc_number(record)

    def _payable_data(self, entity: str, fields: dict, existing: Record | None, ctx) -> dict:
        if entity == "Vendor":
            return self._vendor(fields, existing, ctx)
        if entity == "Term":
            return self._term(fields, existing)
        if entity == "Account":
            return self._account(fields, existing, ctx)
        if entity == "Bill":
            return self._bill(fields, existing, ctx)
        return self._vendor_credit(fields, existing, ctx)

    def _delete_payable(self, record: Record, now: float) -> None:
        if record.entity == "BillPayment":
            self._unpay(record, now)
            return
        payments = [x["TxnId"] for x in record.data.get("LinkedTxn", []) if _is_payment(x)]
        if payments:  # assumed: QBO's UI asks to unapply the payments first
            raise wire.business_validation(
                f"{record.entity} {record.id} has bill payments ({', '.join(payments)}): delete "
                "or void them first."
            )
        self._adjust_vendor_balance(record, -1)
        self._unindex_doc_number(record.entity, record.id, record.data.get("DocNumber"))

    def void_bill_payment(self, body: dict, ctx: WriteContext) -> dict:
        """As a voided Payment: its amounts zero, "Voided" in front of the private note, what it
        paid open on its bills again (and its credits back on the vendor credits)."""
        record = self._existing("BillPayment", body, ctx)
        now = self.now()
        self._unpay(record, now)
        return self._voided(record, now)

    # ---- name lists ---------------------------------------------------------------------

    def _vendor(self, fields: dict, existing: Record | None, ctx: WriteContext | None) -> dict:
        data = dict(fields)
        stored_tax_id = existing.data.get("TaxIdentifier") if existing else None
        if stored_tax_id and data.get("TaxIdentifier") == wire.mask_tax_id(stored_tax_id):
            data["TaxIdentifier"] = stored_tax_id  # the masked value read back keeps the real one
        name = display_name(data)
        self._check_name("Vendor", name, existing.id if existing else None)
        data["DisplayName"] = name
        data.setdefault("PrintOnCheckName", name)
        data["Active"] = not (data.get("Active") is False or data.get("Active") == "false")
        data["Vendor1099"] = truthy(data.get("Vendor1099"))
        data["CurrencyRef"] = {"value": self._currency(data.get("CurrencyRef"), "Vendor")}
        if data.get("TermRef") is not None:
            term = self._resolve_ref("Term", data["TermRef"], ctx or WriteContext(), "TermRef")
            data["TermRef"] = {"value": term.id, "name": term.data["Name"]}
        if data.get("APAccountRef") is not None:
            data["APAccountRef"] = self._ap_account(data["APAccountRef"], ctx)
        data["Balance"] = existing.data.get("Balance", ZERO) if existing else ZERO
        return data

    def _term(self, fields: dict, existing: Record | None) -> dict:
        data = dict(fields)
        name = str(data.get("Name") or "").strip()
        if not name:
            raise wire.required_param("Name")
        if len(name) > TERM_NAME_MAX:
            raise wire.invalid_value("Name", f"longer than {TERM_NAME_MAX} characters")
        wire.check_name_characters("Name", name)
        self._check_name("Term", name, existing.id if existing else None)
        data["Name"] = name
        for key in _INTS:
            value = data.get(key)
            if value in (None, ""):
                data.pop(key, None)
                continue
            number = wire.to_decimal(value)
            if number is None or number < 0 or number != int(number):
                raise wire.invalid_value(key, f"{value!r} is not a whole number of days")
            data[key] = int(number)
        if data.get("DiscountPercent") not in (None, ""):
            percent = wire.to_decimal(data["DiscountPercent"])
            if percent is None or not ZERO <= percent <= 100:
                raise wire.invalid_value("DiscountPercent", f"{data['DiscountPercent']!r}")
            data["DiscountPercent"] = percent
        else:
            data.pop("DiscountPercent", None)
        if "DayOfMonthDue" in data:
            if not 1 <= data["DayOfMonthDue"] <= 31:
                raise wire.invalid_value("DayOfMonthDue", "a day of the month is 1..31")
            data["Type"] = "DATE_DRIVEN"
        else:
            if "DueDays" not in data:
                raise wire.required_param("DueDays")
            data["Type"] = "STANDARD"
        data["Active"] = not (data.get("Active") is False or data.get("Active") == "false")
        return data

    def _account(self, fields: dict, existing: Record | None, ctx: WriteContext | None) -> dict:
        data = dict(fields)
        name = str(data.get("Name") or "").strip()
        if not name:
            raise wire.required_param("Name")
        if len(name) > 100:
            raise wire.invalid_value("Name", "longer than 100 characters")
        wire.check_name_characters("Name", name)
        kind = data.get("AccountType")
        if not kind:
            raise wire.required_param("AccountType")
        if kind not in ACCOUNT_TYPES:
            raise wire.invalid_value("AccountType", f"unknown account type {kind!r}")
        full_name = name
        if data.get("ParentRef") is not None:
            parent = self._resolve_ref(
                "Account", data["ParentRef"], ctx or WriteContext(), "ParentRef"
            )
            if existing is not None and parent.id == existing.id:
                raise wire.business_validation("An account cannot be its own parent.")
            data["ParentRef"] = {"value": parent.id}
            data["SubAccount"] = True
            full_name = f"{parent.data['FullyQualifiedName']}:{name}"
        else:
            data["SubAccount"] = False
        self._check_name("Account", full_name, existing.id if existing else None)
        data["Name"] = name
        data["FullyQualifiedName"] = full_name
        data["Classification"] = ACCOUNT_TYPES[kind]
        data["Active"] = not (data.get("Active") is False or data.get("Active") == "false")
        data["CurrencyRef"] = {"value": self._currency(data.get("CurrencyRef"), "Account")}
        balance = existing.data.get("CurrentBalance", ZERO) if existing else ZERO
        data["CurrentBalance"] = balance
        data["CurrentBalanceWithSubAccounts"] = balance
        return data

    # ---- transactions -------------------------------------------------------------------

    def _bill(self, fields: dict, existing: Record | None, ctx: WriteContext) -> dict:
        """A bill: the vendor's, with expense lines (accounts or items); TotalAmt from its lines
        and tax, Balance what bill payments have not paid of it; DueDate as sent, else from its
        terms (SalesTermRef, else the vendor's), else the bill's date (assumed)."""
        data = dict(fields)
        vendor = self._payable_vendor(data, existing, ctx)
        self._expense_amounts(data, existing, ctx, "bill", "paid on it")
        txn_date = self._txn_date(data)
        data["TxnDate"] = txn_date.isoformat()
        term = None
        if data.get("SalesTermRef") not in (None, ""):
            term = self._resolve_ref("Term", data["SalesTermRef"], ctx, "SalesTermRef")
            data["SalesTermRef"] = {"value": term.id, "name": term.data["Name"]}
        else:
            data.pop("SalesTermRef", None)
            term = self.find("Term", ref_value(vendor.data.get("TermRef")))
        if data.get("DueDate"):
            data["DueDate"] = _date(data["DueDate"], "DueDate").isoformat()
        else:
            data["DueDate"] = (_due(term.data, txn_date) if term else txn_date).isoformat()
        self._transaction_common(data, vendor, ctx)
        self._doc_number_of("Bill", data, vendor, existing, ctx)
        return data

    def _vendor_credit(self, fields: dict, existing: Record | None, ctx: WriteContext) -> dict:
        """A credit from the vendor: lines like a bill's, TotalAmt, and Balance what bill payments
        have not yet taken of it (assumed to be QBO's Balance of a vendor credit)."""
        data = dict(fields)
        vendor = self._payable_vendor(data, existing, ctx)
        self._expense_amounts(data, existing, ctx, "vendor credit", "taken from it")
        data["TxnDate"] = self._txn_date(data).isoformat()
        data.pop("DueDate", None)
        self._transaction_common(data, vendor, ctx)
        self._doc_number_of("VendorCredit", data, vendor, existing, ctx)
        return data

    def _bill_payment(self, fields: dict, existing: Record | None, ctx: WriteContext):
        """A payment to the vendor, by check (from a Bank account) or credit card: lines linked
        to the vendor's bills (money paid on them) and to its vendor credits (credit taken).
        Intuit: TotalAmt cannot be negative, and money beyond the lines stays with the vendor as
        a credit. Assumed: a line pays at most what a bill has open (6000), credits taken are
        at most what they pay on bills, and the lines pay at most TotalAmt plus those credits."""
        data = dict(fields)
        vendor = self._resolve_ref("Vendor", data.get("VendorRef"), ctx, "VendorRef")
        data["VendorRef"] = {"value": vendor.id, "name": vendor.data["DisplayName"]}
        pay_type = data.get("PayType")
        if not pay_type:
            raise wire.required_param("PayType")
        if pay_type not in PAY_TYPES:
            raise wire.invalid_value("PayType", f"{pay_type!r} is not Check or CreditCard")
        if pay_type == "Check":
            detail, ref, kind = "CheckPayment", "BankAccountRef", "Bank"
            data.pop("CreditCardPayment", None)
        else:
            detail, ref, kind = "CreditCardPayment", "CCAccountRef", "Credit Card"
            data.pop("CheckPayment", None)
        payment = dict(data.get(detail) or {})
        account = self._resolve_ref("Account", payment.get(ref), ctx, f"{detail}.{ref}")
        if account.data.get("AccountType") != kind:
            raise wire.business_validation(
                f"{detail}.{ref} must name a {kind} account; account {account.id} is "
                f"{account.data.get('AccountType')}."
            )
        payment[ref] = {"value": account.id, "name": account.data["FullyQualifiedName"]}
        if pay_type == "Check":
            payment.setdefault("PrintStatus", "NotSet")
        data[detail] = payment
        total = wire.to_decimal(data.get("TotalAmt"))
        if total is None:
            raise wire.required_param("TotalAmt")
        if total < 0:
            raise wire.business_validation("The total amount of a bill payment cannot be negative.")
        held: dict[tuple[str, str], Decimal] = {}
        if existing is not None:
            for entity, txn_id, amount in _payment_lines(existing):
                held[(entity, txn_id)] = held.get((entity, txn_id), ZERO) + amount
        wanted: dict[tuple[str, str], Decimal] = {}
        bills: list[tuple[Record, Decimal]] = []
        credits: list[tuple[Record, Decimal]] = []
        lines = []
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
            if len(links) != 1 or not isinstance(links[0], dict):
                raise wire.invalid_value("Line.LinkedTxn", "a line links one Bill or VendorCredit")
            entity = links[0].get("TxnType")
            if entity not in ("Bill", "VendorCredit"):
                raise wire.invalid_value("LinkedTxn.TxnType", f"{entity!r} is not supported here")
            target = self.find(entity, str(links[0].get("TxnId") or ""), ctx)
            if target is None:
                raise wire.invalid_reference(entity, str(links[0].get("TxnId")))
            if ref_value(target.data["VendorRef"]) != vendor.id:
                raise wire.business_validation(
                    f"{entity} {target.id} belongs to another vendor than the bill payment."
                )
            key = (entity, target.id)
            wanted[key] = wanted.get(key, ZERO) + amount
            left = target.data["Balance"] + held.get(key, ZERO)
            if wanted[key] > left:
                raise wire.business_validation(
                    f"The amount linked to {entity} {target.id} ({wanted[key]}) is more than "
                    f"its open balance ({left})."
                )
            (bills if entity == "Bill" else credits).append((target, amount))
            lines.append(
                dict(raw, Amount=amount, LinkedTxn=[{"TxnId": target.id, "TxnType": entity}])
            )
        paid = sum((a for _, a in bills), ZERO)
        used = sum((a for _, a in credits), ZERO)
        if used > paid:
            raise wire.business_validation(
                f"The credits taken ({used}) are more than the amounts paid on bills ({paid})."
            )
        if paid > total + used:
            raise wire.business_validation(
                f"The amounts paid on bills ({paid}) are more than the total ({total})"
                + (f" and the credits taken ({used})." if used else ".")
            )
        data["Line"] = lines
        data["TotalAmt"] = total
        data["TxnDate"] = self._txn_date(data).isoformat()
        data["CurrencyRef"] = {"value": ref_value(vendor.data.get("CurrencyRef")) or self.currency}
        data["APAccountRef"] = self._ap_account(data.get("APAccountRef"), ctx)
        if len(str(data.get("PrivateNote") or "")) > PRIVATE_NOTE_MAX:
            raise wire.invalid_value("PrivateNote", f"longer than {PRIVATE_NOTE_MAX} characters")
        return data, bills, credits

    # ---- shared by the transactions -----------------------------------------------------

    def _payable_vendor(self, data: dict, existing: Record | None, ctx: WriteContext) -> Record:
        """The transaction's vendor (VendorRef required, 2020; unknown 2500; inactive 610); once
        bill payments are linked, it cannot change (assumed)."""
        vendor = self._resolve_ref("Vendor", data.get("VendorRef"), ctx, "VendorRef")
        if existing is not None and vendor.id != ref_value(existing.data["VendorRef"]):
            if any(_is_payment(x) for x in existing.data.get("LinkedTxn", [])):
                raise wire.business_validation(
                    f"{existing.entity} {existing.id} has bill payments; its vendor cannot change."
                )
        data["VendorRef"] = {"value": vendor.id, "name": vendor.data["DisplayName"]}
        return vendor

    def _expense_amounts(
        self, data: dict, existing: Record | None, ctx: WriteContext, what: str, held: str
    ) -> None:
        """Lines, TotalAmt (lines and tax, never negative) and Balance: TotalAmt less what bill
        payments hold of it already (a total below that is refused); LinkedTxn kept."""
        data["Line"], subtotal = self._expense_lines(data.get("Line"), ctx)
        total = subtotal + self._total_tax(data)
        if total < 0:
            raise wire.business_validation(f"A {what} total cannot be negative ({total}).")
        self._open_amounts(data, existing, total, what, held)

    def _expense_lines(self, raw_lines: object, ctx: WriteContext) -> tuple[list[dict], Decimal]:
        """A bill's or vendor credit's lines as QBO stores them (numbered) and their sum: each an
        AccountBasedExpenseLineDetail (AccountRef required) or an ItemBasedExpenseLineDetail
        (ItemRef required; Amount = Qty x UnitPrice, 6070 when it is not)."""
        lines = []
        subtotal = ZERO
        for raw in raw_lines or []:
            if not isinstance(raw, dict):
                raise wire.invalid_value("Line", "a line is not an object")
            kind = raw.get("DetailType")
            line = {k: v for k, v in raw.items() if k not in ("Id", "LineNum")}
            detail = dict(line.get(kind) or {}) if isinstance(kind, str) else {}
            if kind == "AccountBasedExpenseLineDetail":
                account = self._resolve_ref("Account", detail.get("AccountRef"), ctx, "AccountRef")
                detail["AccountRef"] = {
                    "value": account.id,
                    "name": account.data["FullyQualifiedName"],
                }
                amount = wire.to_decimal(line.get("Amount"))
                if amount is None:
                    raise wire.required_param("Line.Amount")
            elif kind == "ItemBasedExpenseLineDetail":
                item = self._resolve_ref("Item", detail.get("ItemRef"), ctx, "ItemRef")
                detail["ItemRef"] = {"value": item.id, "name": item.data["Name"]}
                amount = priced_amount(line, detail)
            else:
                raise wire.invalid_value("Line.DetailType", f"unsupported detail type {kind!r}")
            self._tax_code(detail, ctx)
            if detail.get("CustomerRef") is not None:
                customer = self._resolve_ref("Customer", detail["CustomerRef"], ctx, "CustomerRef")
                detail["CustomerRef"] = {"value": customer.id, "name": customer.data["DisplayName"]}
            detail.setdefault("BillableStatus", "NotBillable")
            line[kind] = detail
            line["Amount"] = amount
            subtotal += amount
            lines.append(line)
        if not lines:
            raise wire.business_validation("You must fill out at least one split line.")
        for number, line in enumerate(lines, start=1):
            line["Id"] = str(number)
            line["LineNum"] = number
        return lines, subtotal

    def _transaction_common(self, data: dict, vendor: Record, ctx: WriteContext) -> None:
        """Currency (the vendor's; another one is refused, assumed), exchange rate and home
        amounts, the A/P account and the private note."""
        vendor_currency = ref_value(vendor.data.get("CurrencyRef")) or self.currency
        currency = ref_value(data.get("CurrencyRef")) or vendor_currency
        if currency != vendor_currency:
            raise wire.business_validation(
                f"The transaction's currency {currency} is not its vendor's ({vendor_currency})."
            )
        data["CurrencyRef"] = {"value": currency}
        if currency == self.currency:
            for key in ("ExchangeRate", "HomeTotalAmt", "HomeBalance"):
                data.pop(key, None)
        else:
            rate = wire.to_decimal(data.get("ExchangeRate"))
            if rate is None or rate <= 0:
                # assumed: QBO would take its own rate of the day; the simulator asks for one
                raise wire.required_param("ExchangeRate")
            data["ExchangeRate"] = rate
            _home_amounts(data)
        data["APAccountRef"] = self._ap_account(data.get("APAccountRef"), ctx)
        if len(str(data.get("PrivateNote") or "")) > PRIVATE_NOTE_MAX:
            raise wire.invalid_value("PrivateNote", f"longer than {PRIVATE_NOTE_MAX} characters")

    def _currency(self, ref: object, entity: str) -> str:
        """A currency other than the home currency needs multicurrency on (assumed wording)."""
        currency = ref_value(ref) or self.currency
        if currency != self.currency and not self.multicurrency():
            raise wire.business_validation(
                f"{entity} in {currency}: multicurrency is not enabled for this company "
                f"(home currency {self.currency})."
            )
        return currency

    def multicurrency(self) -> bool:
        prefs = self.records["Preferences"]["1"].data.get("CurrencyPrefs") or {}
        return truthy(prefs.get("MultiCurrencyEnabled"))

    def _ap_account(self, ref: object, ctx: WriteContext | None) -> dict:
        """The A/P account a transaction names (it must be one, assumed 6000), else the company's
        first; QBO creates one with the first bill of a company without (assumed)."""
        if ref not in (None, "", {}):
            account = self._resolve_ref("Account", ref, ctx or WriteContext(), "APAccountRef")
            if account.data.get("AccountType") != AP:
                raise wire.business_validation(
                    f"APAccountRef must name an Accounts Payable account; account {account.id} "
                    f"is {account.data.get('AccountType')}."
                )
        else:
            accounts = [
                r
                for r in self.records["Account"].values()
                if r.active and r.data.get("AccountType") == AP
            ]
            if accounts:
                account = min(accounts, key=lambda r: int(r.id))
            else:
                fields = {"Name": AP_NAME, "AccountType": AP, "AccountSubType": "AccountsPayable"}
                account = self._insert("Account", self._account(fields, None, ctx), self.now())
                self._index_name(account)
        return {"value": account.id, "name": account.data["FullyQualifiedName"]}

    def _doc_number_of(
        self, entity: str, data: dict, vendor: Record, existing: Record | None, ctx: WriteContext
    ) -> None:
        """A bill's or vendor credit's DocNumber is the vendor's number, never numbered by QBO;
        a bill's is accepted twice for a vendor unless the company switch `unique_bill_numbers`
        is on (then 6140, unless include=allowduplicatedocnum): unverified either way."""
        doc = data.get("DocNumber")
        if doc in (None, ""):
            data.pop("DocNumber", None)
            return
        doc = str(doc)
        if len(doc) > DOC_NUMBER_MAX:
            raise wire.invalid_value("DocNumber", f"longer than {DOC_NUMBER_MAX} characters")
        data["DocNumber"] = doc
        settings = self.settings
        if (
            entity != "Bill"
            or not settings.unique_bill_numbers
            or "allowduplicatedocnum" in ctx.include
        ):
            return
        own = existing.id if existing else None
        same = [
            bill_id
            for bill_id in self.doc_numbers["Bill"].get(doc.casefold(), set())
            if bill_id != own
            and ref_value(self.records["Bill"][bill_id].data["VendorRef"]) == vendor.id
        ]
        if same:
            raise wire.duplicate_doc_number(doc, "Bill", min(same, key=int))

    # ---- money moving between bills, vendor credits and bill payments -----------------

    def _pay(self, payment: Record, bills, credits, now: float) -> None:
        link = PAY_TYPES[payment.data["PayType"]]
        for record, amount, sign in [(r, a, -1) for r, a in bills] + [
            (r, a, 1) for r, a in credits
        ]:
            record.data["Balance"] -= amount
            _home_amounts(record.data)
            _link(record, payment.id, link)
            self._bump(record, now)
            self._vendor_delta(record.data["VendorRef"], sign * amount)

    def _unpay(self, payment: Record, now: float) -> None:
        for entity, txn_id, amount in _payment_lines(payment):
            record = self.records[entity].get(txn_id)
            if record is None:
                continue
            record.data["Balance"] += amount
            _home_amounts(record.data)
            _unlink(record, payment.id)
            self._bump(record, now)
            self._vendor_delta(record.data["VendorRef"], amount if entity == "Bill" else -amount)

    def _adjust_vendor_balance(self, record: Record, sign: int) -> None:
        """A vendor's Balance: what its bills have open less what its credits have left."""
        if record.entity == "Bill":
            self._vendor_delta(record.data["VendorRef"], sign * record.data["Balance"])
        elif record.entity == "VendorCredit":
            self._vendor_delta(record.data["VendorRef"], -sign * record.data["Balance"])

    def _vendor_delta(self, vendor_ref: object, delta: Decimal) -> None:
        vendor = self.records["Vendor"].get(ref_value(vendor_ref) or "")
        if vendor is not None and delta:
            vendor.data["Balance"] = vendor.data.get("Balance", ZERO) + delta


def _name_of(record: Record) -> str | None:
    for key in ("FullyQualifiedName", "DisplayName", "Name"):
        if record.data.get(key):
            return str(record.data[key])
    return None


def _date(value: object, element: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise wire.invalid_value(element, f"{value!r} is not a date") from None


def _due(term: dict, txn_date: date) -> date:
    """The due date a term gives a transaction of `txn_date`: DueDays after it (STANDARD), or the
    DayOfMonthDue of its month, of the next month when it falls within DueNextMonthDays of that
    day or after it (DATE_DRIVEN; assumed reading of Intuit's field descriptions)."""
    if term.get("Type") != "DATE_DRIVEN":
        return txn_date + timedelta(days=int(term.get("DueDays") or 0))
    day = int(term["DayOfMonthDue"])
    due = _day_in_month(txn_date.year, txn_date.month, day)
    if txn_date > due - timedelta(days=int(term.get("DueNextMonthDays") or 0)):
        year, month = (
            (txn_date.year + 1, 1) if txn_date.month == 12 else (txn_date.year, txn_date.month + 1)
        )
        due = _day_in_month(year, month, day)
    return due


def _day_in_month(year: int, month: int, day: int) -> date:
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return date(year, month, min(day, (following - timedelta(days=1)).day))


def _home_amounts(data: dict) -> None:
    """Amounts in the home currency of a foreign-currency transaction (rate x amount, cents)."""
    rate = data.get("ExchangeRate")
    if rate is None:
        return
    data["HomeTotalAmt"] = money(data["TotalAmt"] * rate)
    if "Balance" in data:
        data["HomeBalance"] = money(data["Balance"] * rate)


def _payment_lines(payment: Record) -> list[tuple[str, str, Decimal]]:
    """(Bill | VendorCredit, id, amount) of each line of a bill payment."""
    out = []
    for line in payment.data.get("Line", []):
        for link in line.get("LinkedTxn") or []:
            out.append(
                (link["TxnType"], str(link["TxnId"]), wire.to_decimal(line.get("Amount")) or ZERO)
            )
    return out


def _is_payment(link: dict) -> bool:
    return link.get("TxnType") in PAY_TYPES.values()


def _link(record: Record, payment_id: str, txn_type: str) -> None:
    links = record.data.setdefault("LinkedTxn", [])
    if not any(x.get("TxnId") == payment_id and _is_payment(x) for x in links):
        links.append({"TxnId": payment_id, "TxnType": txn_type})


def _unlink(record: Record, payment_id: str) -> None:
    record.data["LinkedTxn"] = [
        x
        for x in record.data.get("LinkedTxn", [])
        if not (x.get("TxnId") == payment_id and _is_payment(x))
    ]
