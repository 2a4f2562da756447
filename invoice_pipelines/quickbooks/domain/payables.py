"""QBO's payables as our client speaks them: the drafts we send to create or change a vendor, term,
account, bill, vendor credit, bill payment or attachment, and the records QBO keeps, read from its
answers. Money is Decimal (a float is refused), dates are dates, references are QBO ids. No sync
logic: `QboClient` (client.py) sends the drafts and reads the records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

CENT = Decimal("0.01")
PayType = Literal["Check", "CreditCard"]


def _money(value: object) -> Decimal:
    """An amount as QBO answers it (a JSON number, read as int or Decimal), to the cent."""
    if value is None or value == "":
        return Decimal("0.00")
    return Decimal(str(value)).quantize(CENT)


def _decimal(value: object) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _day(value: object) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def _moment(record: dict) -> datetime | None:
    text = (record.get("MetaData") or {}).get("LastUpdatedTime")
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _ref(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("value")
    return None if value in (None, "") else str(value)


def _int(value: object) -> int | None:
    return None if value in (None, "") else int(value)


def _require_decimal(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")


def _compact(values: dict) -> dict:
    """The fields that are set: a draft's None means "not sent" (a sparse update keeps QBO's)."""
    return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class Address:
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None
    region: str | None = None

    def to_qbo(self) -> dict:
        return _compact(
            {
                "Line1": self.line1,
                "Line2": self.line2,
                "City": self.city,
                "PostalCode": self.postal_code,
                "Country": self.country,
                "CountrySubDivisionCode": self.region,
            }
        )


# ---- vendors, terms, accounts ----------------------------------------------------------


@dataclass(frozen=True)
class VendorDraft:
    """A vendor to create, or the fields to change (None: not sent)."""

    display_name: str | None = None
    company_name: str | None = None
    email: str | None = None
    phone: str | None = None
    tax_identifier: str | None = None
    account_number: str | None = None
    currency: str | None = None
    term_id: str | None = None
    address: Address | None = None
    active: bool | None = None

    def to_qbo(self) -> dict:
        return _compact(
            {
                "DisplayName": self.display_name,
                "CompanyName": self.company_name,
                "PrimaryEmailAddr": {"Address": self.email} if self.email else None,
                "PrimaryPhone": {"FreeFormNumber": self.phone} if self.phone else None,
                "TaxIdentifier": self.tax_identifier,
                "AcctNum": self.account_number,
                "CurrencyRef": {"value": self.currency} if self.currency else None,
                "TermRef": {"value": self.term_id} if self.term_id else None,
                "BillAddr": self.address.to_qbo() if self.address else None,
                "Active": self.active,
            }
        )


@dataclass(frozen=True)
class QboVendor:
    id: str
    sync_token: str
    display_name: str
    company_name: str | None
    email: str | None
    # as QBO shows it: all but the last five characters masked
    tax_identifier: str | None
    account_number: str | None
    currency: str | None
    term_id: str | None
    active: bool
    balance: Decimal
    updated_at: datetime | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_qbo(cls, data: dict) -> QboVendor:
        return cls(
            id=str(data["Id"]),
            sync_token=str(data["SyncToken"]),
            display_name=str(data.get("DisplayName") or ""),
            company_name=data.get("CompanyName"),
            email=(data.get("PrimaryEmailAddr") or {}).get("Address"),
            tax_identifier=data.get("TaxIdentifier"),
            account_number=data.get("AcctNum"),
            currency=_ref(data.get("CurrencyRef")),
            term_id=_ref(data.get("TermRef")),
            active=data.get("Active") is not False,
            balance=_money(data.get("Balance")),
            updated_at=_moment(data),
            raw=data,
        )


@dataclass(frozen=True)
class TermDraft:
    """Payment terms: due `due_days` after the date (or on `day_of_month_due`), with an optional
    early-payment discount of `discount_percent` within `discount_days`."""

    name: str | None = None
    due_days: int | None = None
    discount_percent: Decimal | None = None
    discount_days: int | None = None
    day_of_month_due: int | None = None
    due_next_month_days: int | None = None
    active: bool | None = None

    def __post_init__(self) -> None:
        _require_decimal("discount_percent", self.discount_percent, optional=True)

    def to_qbo(self) -> dict:
        return _compact(
            {
                "Name": self.name,
                "DueDays": self.due_days,
                "DiscountPercent": self.discount_percent,
                "DiscountDays": self.discount_days,
                "DayOfMonthDue": self.day_of_month_due,
                "DueNextMonthDays": self.due_next_month_days,
                "Active": self.active,
            }
        )


@dataclass(frozen=True)
class QboTerm:
    id: str
    sync_token: str
    name: str
    type: str  # STANDARD | DATE_DRIVEN
    due_days: int | None
    discount_percent: Decimal | None
    discount_days: int | None
    day_of_month_due: int | None
    active: bool
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_qbo(cls, data: dict) -> QboTerm:
        return cls(
            id=str(data["Id"]),
            sync_token=str(data["SyncToken"]),
            name=str(data.get("Name") or ""),
            type=str(data.get("Type") or "STANDARD"),
            due_days=_int(data.get("DueDays")),
            discount_percent=_decimal(data.get("DiscountPercent")),
            discount_days=_int(data.get("DiscountDays")),
            day_of_month_due=_int(data.get("DayOfMonthDue")),
            active=data.get("Active") is not False,
            raw=data,
        )


@dataclass(frozen=True)
class AccountDraft:
    name: str | None = None
    account_type: str | None = None  # "Expense", "Accounts Payable", "Bank", ...
    account_sub_type: str | None = None
    account_number: str | None = None
    description: str | None = None
    parent_id: str | None = None
    currency: str | None = None
    active: bool | None = None

    def to_qbo(self) -> dict:
        return _compact(
            {
                "Name": self.name,
                "AccountType": self.account_type,
                "AccountSubType": self.account_sub_type,
                "AcctNum": self.account_number,
                "Description": self.description,
                "ParentRef": {"value": self.parent_id} if self.parent_id else None,
                "CurrencyRef": {"value": self.currency} if self.currency else None,
                "Active": self.active,
            }
        )


@dataclass(frozen=True)
class QboAccount:
    id: str
    sync_token: str
    name: str
    fully_qualified_name: str
    account_type: str
    account_sub_type: str | None
    classification: str | None
    account_number: str | None
    active: bool
    current_balance: Decimal
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_qbo(cls, data: dict) -> QboAccount:
        return cls(
            id=str(data["Id"]),
            sync_token=str(data["SyncToken"]),
            name=str(data.get("Name") or ""),
            fully_qualified_name=str(data.get("FullyQualifiedName") or data.get("Name") or ""),
            account_type=str(data.get("AccountType") or ""),
            account_sub_type=data.get("AccountSubType"),
            classification=data.get("Classification"),
            account_number=data.get("AcctNum"),
            active=data.get("Active") is not False,
            current_balance=_money(data.get("CurrentBalance")),
            raw=data,
        )


# ---- bills and vendor credits ------------------------------------------------------------


@dataclass(frozen=True)
class ExpenseLine:
    """One line of a bill or vendor credit: booked on an expense account (`account_id`), or an
    item bought (`item_id`, with quantity and unit price when known)."""

    amount: Decimal
    account_id: str | None = None
    item_id: str | None = None
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    description: str | None = None
    tax_code_id: str | None = None

    def __post_init__(self) -> None:
        _require_decimal("amount", self.amount)
        _require_decimal("quantity", self.quantity, optional=True)
        _require_decimal("unit_price", self.unit_price, optional=True)
        if (self.account_id is None) == (self.item_id is None):
            raise ValueError("an expense line names an account or an item, one of them")

    def to_qbo(self) -> dict:
        tax = {"TaxCodeRef": {"value": self.tax_code_id}} if self.tax_code_id else {}
        if self.account_id is not None:
            kind = "AccountBasedExpenseLineDetail"
            detail = {"AccountRef": {"value": self.account_id}, **tax}
        else:
            kind = "ItemBasedExpenseLineDetail"
            detail = _compact(
                {
                    "ItemRef": {"value": self.item_id},
                    "Qty": self.quantity,
                    "UnitPrice": self.unit_price,
                }
            )
            detail.update(tax)
        line = {"Amount": self.amount, "DetailType": kind, kind: detail}
        if self.description:
            line["Description"] = self.description
        return line

    @classmethod
    def from_qbo(cls, line: dict) -> ExpenseLine | None:
        """A line of QBO's answer, None for a kind we do not read."""
        account = line.get("AccountBasedExpenseLineDetail")
        item = line.get("ItemBasedExpenseLineDetail")
        detail = account if isinstance(account, dict) else item if isinstance(item, dict) else None
        if detail is None:
            return None
        return cls(
            amount=_money(line.get("Amount")),
            account_id=_ref(detail.get("AccountRef")) if detail is account else None,
            item_id=_ref(detail.get("ItemRef")) if detail is item else None,
            quantity=_decimal(detail.get("Qty")) if detail is item else None,
            unit_price=_decimal(detail.get("UnitPrice")) if detail is item else None,
            description=line.get("Description"),
            tax_code_id=_ref(detail.get("TaxCodeRef")),
        )


@dataclass(frozen=True)
class ExpenseDraft:
    """What a bill and a vendor credit share: the vendor, lines and the money's details.
    `total_tax` is the tax the supplier charged, sent as TxnTaxDetail.TotalTax (QBO's total is
    the lines and that tax)."""

    vendor_id: str | None = None
    lines: tuple[ExpenseLine, ...] | None = None
    doc_number: str | None = None
    txn_date: date | None = None
    currency: str | None = None
    exchange_rate: Decimal | None = None
    total_tax: Decimal | None = None
    ap_account_id: str | None = None
    private_note: str | None = None

    def __post_init__(self) -> None:
        _require_decimal("exchange_rate", self.exchange_rate, optional=True)
        _require_decimal("total_tax", self.total_tax, optional=True)

    def to_qbo(self) -> dict:
        return _compact(
            {
                "VendorRef": {"value": self.vendor_id} if self.vendor_id else None,
                "Line": [line.to_qbo() for line in self.lines] if self.lines is not None else None,
                "DocNumber": self.doc_number,
                "TxnDate": self.txn_date.isoformat() if self.txn_date else None,
                "CurrencyRef": {"value": self.currency} if self.currency else None,
                "ExchangeRate": self.exchange_rate,
                "TxnTaxDetail": {"TotalTax": self.total_tax}
                if self.total_tax is not None
                else None,
                "APAccountRef": {"value": self.ap_account_id} if self.ap_account_id else None,
                "PrivateNote": self.private_note,
            }
        )


@dataclass(frozen=True)
class BillDraft(ExpenseDraft):
    """A bill to create (vendor and lines required), or the fields to change; due on `due_date`,
    else by its terms `term_id`, else by the vendor's."""

    due_date: date | None = None
    term_id: str | None = None

    def to_qbo(self) -> dict:
        return _compact(
            {
                **super().to_qbo(),
                "DueDate": self.due_date.isoformat() if self.due_date else None,
                "SalesTermRef": {"value": self.term_id} if self.term_id else None,
            }
        )


@dataclass(frozen=True)
class VendorCreditDraft(ExpenseDraft):
    """A credit note from a vendor (a supplier's 381), or the fields to change."""


@dataclass(frozen=True)
class QboExpense:
    """What QBO's bill and vendor credit share; `balance` is what bill payments have not paid
    of a bill, or not yet taken of a vendor credit."""

    id: str
    sync_token: str
    vendor_id: str
    doc_number: str | None
    txn_date: date | None
    currency: str | None
    exchange_rate: Decimal | None
    total: Decimal
    balance: Decimal
    lines: tuple[ExpenseLine, ...]
    payment_ids: tuple[str, ...]
    private_note: str | None
    updated_at: datetime | None
    raw: dict = field(repr=False, compare=False)

    @staticmethod
    def _fields(data: dict) -> dict:
        parsed = (ExpenseLine.from_qbo(line) for line in data.get("Line") or [])
        return {
            "id": str(data["Id"]),
            "sync_token": str(data["SyncToken"]),
            "vendor_id": _ref(data.get("VendorRef")) or "",
            "doc_number": data.get("DocNumber"),
            "txn_date": _day(data.get("TxnDate")),
            "currency": _ref(data.get("CurrencyRef")),
            "exchange_rate": _decimal(data.get("ExchangeRate")),
            "total": _money(data.get("TotalAmt")),
            "balance": _money(data.get("Balance")),
            "lines": tuple(line for line in parsed if line is not None),
            "payment_ids": tuple(
                str(link["TxnId"])
                for link in data.get("LinkedTxn") or []
                if str(link.get("TxnType", "")).startswith("BillPayment")
            ),
            "private_note": data.get("PrivateNote"),
            "updated_at": _moment(data),
            "raw": data,
        }


@dataclass(frozen=True)
class QboBill(QboExpense):
    due_date: date | None = None
    term_id: str | None = None

    @classmethod
    def from_qbo(cls, data: dict) -> QboBill:
        return cls(
            **cls._fields(data),
            due_date=_day(data.get("DueDate")),
            term_id=_ref(data.get("SalesTermRef")),
        )


@dataclass(frozen=True)
class QboVendorCredit(QboExpense):
    @classmethod
    def from_qbo(cls, data: dict) -> QboVendorCredit:
        return cls(**cls._fields(data))


# ---- bill payments ---------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """An amount of a payment linked to one transaction (a bill paid, a vendor credit taken)."""

    txn_id: str
    amount: Decimal

    def __post_init__(self) -> None:
        _require_decimal("amount", self.amount)


@dataclass(frozen=True)
class BillPaymentDraft:
    """A payment of `total` to the vendor by check from the bank account `account_id` (or by
    credit card from that card's account): `bills` paid, `credits` of vendor credits taken
    (the lines pay at most total + credits; QBO keeps more money than the lines as a credit)."""

    vendor_id: str | None = None
    total: Decimal | None = None
    account_id: str | None = None
    pay_type: PayType = "Check"
    bills: tuple[Applied, ...] = ()
    credits: tuple[Applied, ...] = ()
    txn_date: date | None = None
    doc_number: str | None = None
    currency: str | None = None
    private_note: str | None = None

    def __post_init__(self) -> None:
        _require_decimal("total", self.total, optional=True)

    def to_qbo(self) -> dict:
        lines = [
            {"Amount": applied.amount, "LinkedTxn": [{"TxnId": applied.txn_id, "TxnType": kind}]}
            for kind, group in (("Bill", self.bills), ("VendorCredit", self.credits))
            for applied in group
        ]
        account = None
        if self.account_id:
            account = (
                {"CheckPayment": {"BankAccountRef": {"value": self.account_id}}}
                if self.pay_type == "Check"
                else {"CreditCardPayment": {"CCAccountRef": {"value": self.account_id}}}
            )
        return _compact(
            {
                "VendorRef": {"value": self.vendor_id} if self.vendor_id else None,
                "PayType": self.pay_type,
                **(account or {}),
                "TotalAmt": self.total,
                "Line": lines or None,
                "TxnDate": self.txn_date.isoformat() if self.txn_date else None,
                "DocNumber": self.doc_number,
                "CurrencyRef": {"value": self.currency} if self.currency else None,
                "PrivateNote": self.private_note,
            }
        )


@dataclass(frozen=True)
class QboBillPayment:
    id: str
    sync_token: str
    vendor_id: str
    pay_type: str
    account_id: str | None
    total: Decimal
    txn_date: date | None
    doc_number: str | None
    bills: tuple[Applied, ...]
    credits: tuple[Applied, ...]
    private_note: str | None
    updated_at: datetime | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_qbo(cls, data: dict) -> QboBillPayment:
        bills, credits = [], []
        for line in data.get("Line") or []:
            for link in line.get("LinkedTxn") or []:
                applied = Applied(str(link["TxnId"]), _money(line.get("Amount")))
                if link.get("TxnType") == "Bill":
                    bills.append(applied)
                elif link.get("TxnType") == "VendorCredit":
                    credits.append(applied)
        check = data.get("CheckPayment") or {}
        card = data.get("CreditCardPayment") or {}
        return cls(
            id=str(data["Id"]),
            sync_token=str(data["SyncToken"]),
            vendor_id=_ref(data.get("VendorRef")) or "",
            pay_type=str(data.get("PayType") or ""),
            account_id=_ref(check.get("BankAccountRef")) or _ref(card.get("CCAccountRef")),
            total=_money(data.get("TotalAmt")),
            txn_date=_day(data.get("TxnDate")),
            doc_number=data.get("DocNumber"),
            bills=tuple(bills),
            credits=tuple(credits),
            private_note=data.get("PrivateNote"),
            updated_at=_moment(data),
            raw=data,
        )


# ---- attachments -----------------------------------------------------------------------


@dataclass(frozen=True)
class AttachmentLink:
    """What an attachment belongs to: `entity_type` "Bill", "VendorCredit", "Invoice", ..."""

    entity_type: str
    entity_id: str
    include_on_send: bool = False

    def to_qbo(self) -> dict:
        return {
            "EntityRef": {"type": self.entity_type, "value": self.entity_id},
            "IncludeOnSend": self.include_on_send,
        }


@dataclass(frozen=True)
class QboAttachable:
    id: str
    sync_token: str
    file_name: str | None
    content_type: str | None
    size: int | None
    note: str | None
    links: tuple[AttachmentLink, ...]
    # a link to the file's bytes, valid for minutes (QBO: 15)
    download_url: str | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_qbo(cls, data: dict) -> QboAttachable:
        links = tuple(
            AttachmentLink(
                str(ref["EntityRef"].get("type")),
                str(ref["EntityRef"].get("value")),
                ref.get("IncludeOnSend") is True,
            )
            for ref in data.get("AttachableRef") or []
            if isinstance(ref.get("EntityRef"), dict)
        )
        return cls(
            id=str(data["Id"]),
            sync_token=str(data["SyncToken"]),
            file_name=data.get("FileName"),
            content_type=data.get("ContentType"),
            size=_int(data.get("Size")),
            note=data.get("Note"),
            links=links,
            download_url=data.get("TempDownloadUri"),
            raw=data,
        )
