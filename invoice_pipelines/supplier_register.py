"""The organization's supplier register in the database: read it as `core.suppliers.Register`,
change it with an audit row for every change (`supplier_changes`: who, why, before and after).

The intake compares documents with it (intake/domain/pipeline.py) and teaches it what a person confirmed
(intake/domain/review.py) or what the organization's first-invoice policy registers; the QuickBooks bill
push books to the vendor it links (quickbooks/domain/sync/vendors.py); the supplier notices go to the
address it holds (intake/domain/notices.py). Nothing else changes it: a document's claim never does on
its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from invoice_pipelines.core.bank_accounts import bic_problem, iban_problem
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.suppliers import (
    LOOKALIKE_NAME,
    NAME_OTHER_VAT_ID,
    NEW_IBAN,
    POLICY_SETTING,
    VAT_ID_OTHER_NAME,
    Claim,
    Comparison,
    OwnParty,
    Register,
    RegisteredSupplier,
    blanks_collapsed,
    checked_policy,
    compare,
    iban_key,
    name_problem,
    name_skeleton,
    vat_id_key,
)
from invoice_pipelines.db.audit_log import record_policy_change
from invoice_pipelines.db.tables import (
    incoming_invoices,
    supplier_changes,
    suppliers,
)
from invoice_pipelines.db.tenancy import change_settings
from invoice_pipelines.db.types import utcnow

_EMAIL = re.compile(r"^[A-Za-z0-9._+\-]{1,64}@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
# the fields a person sets directly (names and bank accounts have their own add/remove)
FIELDS = ("name", "vat_id", "tax_number", "notice_email", "qbo_vendor_id", "datev_creditor_account")


class RegisterError(ValueError):
    """A change the register refuses: one clear sentence for the person who asked for it."""


# what a person can write into the register: as many characters as its columns hold, nothing
# cut on the way, and no character a terminal or a reader would not show as written (controls,
# bidi overrides, zero-width characters)
MAX_NAME = 500
MAX_WHO = 255
MAX_REASON = 2000
MAX_TAX_NUMBER = 64
MAX_DATEV_ACCOUNT = 999_999_999
_VAT_FORM = re.compile(r"[A-Z]{2}[A-Z0-9]{2,14}")
_MASKED_VAT = re.compile(r"X{3,}|^XX|[*•…#?]")
_VENDOR_ID_FORM = re.compile(r"[0-9]{1,32}")
_TAX_NUMBER_FORM = re.compile(r"[0-9A-Za-z /.\-]+")


def checked_text(value: object, what: str, limit: int) -> str:
    """A text for the register: blanks collapsed; refused with one sentence when it holds a
    character nobody sees as written or is longer than its column."""
    text = " ".join(str(value or "").split())
    hidden = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs")), None)
    if hidden is not None:
        raise RegisterError(
            f"{what} holds the invisible or control character U+{ord(hidden):04X}: write it "
            "with visible characters only"
        )
    if len(text) > limit:
        raise RegisterError(f"{what} has {len(text)} characters; the register holds {limit}")
    return text


def checked_vat_id(value: object) -> str | None:
    """A VAT id in full: a country code and 2 to 14 letters or digits (blanks, dots and dashes
    dropped). A masked id (`XXXXXX39207`, `DE*****789`) is refused: it is never an identity."""
    raw = checked_text(value, "the VAT id", 64)
    key = vat_id_key(raw)
    if not key:
        return None
    if _MASKED_VAT.search(key):
        raise RegisterError(f"VAT id {raw!r} is masked or partial: give it in full")
    if not _VAT_FORM.fullmatch(key):
        raise RegisterError(
            f"{raw!r} is not a VAT id (a country code and 2 to 14 letters or digits)"
        )
    return key


def checked_bic(value: object) -> str | None:
    """A BIC by its form (ISO 9362: bank, country, location, optional branch), upper case."""
    bic = checked_text(value, "the BIC", 11).replace(" ", "").upper()
    problem = bic_problem(bic) if bic else None
    if problem:
        raise RegisterError(f"{str(value)[:40]!r} is not a BIC: {problem}")
    return bic or None


def checked_vendor_id(value: object) -> str | None:
    """A QuickBooks vendor's Id: its digits, as QuickBooks writes every entity's Id."""
    text = str(value or "").strip()
    if text and not _VENDOR_ID_FORM.fullmatch(text):
        raise RegisterError(f"{text[:40]!r} is not a QuickBooks vendor Id (digits only)")
    return text or None


def checked_tax_number(value: object) -> str | None:
    text = checked_text(value, "the tax number", MAX_TAX_NUMBER)
    if text and not _TAX_NUMBER_FORM.fullmatch(text):
        raise RegisterError(f"{text!r} is not a tax number (digits, letters, / . - only)")
    return text or None


def checked_datev_account(value: int | None) -> int | None:
    if value is not None and not 1 <= int(value) <= MAX_DATEV_ACCOUNT:
        raise RegisterError(f"DATEV creditor account {value} is not 1 to {MAX_DATEV_ACCOUNT}")
    return value


def checked_name(value: object) -> str:
    """A supplier's name as the register holds it and a command shows it: NFC (one form of each
    letter with its diacritics), blanks collapsed. Refused before anything is collapsed when it
    holds a character nobody sees as written (a line break, a bidi mark): what is stored is what
    the person typed and reads (core.suppliers.name_problem, the rule the intake holds a
    document's seller to)."""
    problem = name_problem(str(value or ""))
    if problem is not None:
        raise RegisterError(f"the supplier's {problem}")
    name = checked_text(
        unicodedata.normalize("NFC", str(value or "")), "the supplier's name", MAX_NAME
    )
    if not name_skeleton(name):
        raise RegisterError("a supplier needs a name")
    return name


def registration_problem(claim: Claim) -> str | None:
    """Why the register would refuse to register a document's seller (its name or VAT id by the
    rules a person's values are held to), in one sentence, or None: the intake holds such a
    document (IP-SUP-10) instead of accepting it with its supplier never registered."""
    try:
        checked_name(blanks_collapsed(claim.name))
        checked_vat_id(claim.vat)
    except RegisterError as exc:
        return str(exc)
    return None


def _account(iban: object, bic: object) -> dict:
    return {"iban": checked_iban(iban), "bic": checked_bic(bic)}


def checked_iban(value: object) -> str:
    """An IBAN by its form, its country's length and account pattern and its ISO 13616 check
    digits (core/bank_accounts.py, as the intake checks a document's)."""
    iban = iban_key(checked_text(value, "the IBAN", 64))
    problem = iban_problem(iban)
    if problem:
        raise RegisterError(f"{value!r} is not an IBAN: {problem}")
    return iban


def checked_email(value: object) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    if not _EMAIL.match(text) or len(text) > 255:
        raise RegisterError(f"{text!r} is not a plain e-mail address (mailbox@domain)")
    return text


def _supplier(row) -> RegisteredSupplier:
    return RegisteredSupplier(
        id=row.id,
        name=row.name,
        other_names=tuple(row.other_names or ()),
        vat_id=row.vat_id,
        tax_number=row.tax_number,
        ibans=tuple(a["iban"] for a in (row.bank_accounts or ()) if a.get("iban")),
        notice_email=row.notice_email,
        qbo_vendor_id=row.qbo_vendor_id,
        confirmed=row.confirmed_at is not None,
        version=row.version,
    )


def load_register(conn: Connection, organization_id: int) -> Register:
    """The organization's active suppliers, one query."""
    rows = conn.execute(
        select(suppliers)
        .where(suppliers.c.organization_id == organization_id, suppliers.c.active.is_(True))
        .order_by(suppliers.c.id)
    )
    return Register([_supplier(row) for row in rows])


def own_party(organization: Organization) -> OwnParty:
    """The organization as a party (its name, VAT id, tax number): a document it is the seller
    of is no supplier invoice."""
    return OwnParty(organization.name, organization.vat_id, organization.tax_number)


def supplier_policy(organization: Organization) -> str:
    """The organization's supplier policy (`settings["supplier_policy"]`); an unknown value is
    the safe one, review."""
    try:
        return checked_policy(organization.settings.get(POLICY_SETTING))
    except ValueError:
        return "review"


def set_supplier_policy(
    conn: Connection, organization_id: int, policy: str, *, changed_by: str, reason: str
) -> str:
    """Switch the organization's supplier policy: a money-path policy (`first_invoice_books`
    books a new supplier's bills with no person involved), so it names who and why and is
    audited with the policy before and after, in the caller's transaction; a switch to the
    policy it has changes nothing and records nothing."""
    by, why = _who(changed_by, reason)
    policy = checked_policy(policy)
    before, after = change_settings(
        conn, organization_id, lambda settings: {**settings, POLICY_SETTING: policy}
    )
    if after is before:
        return policy
    record_policy_change(
        conn, organization_id, POLICY_SETTING, before.get(POLICY_SETTING), policy, by=by, reason=why
    )
    return policy


def values_of(row) -> dict[str, Any]:
    """A supplier's values as the audit keeps them."""
    return {
        "name": row["name"],
        "other_names": list(row["other_names"] or []),
        "vat_id": row["vat_id"],
        "tax_number": row["tax_number"],
        "bank_accounts": list(row["bank_accounts"] or []),
        "notice_email": row["notice_email"],
        "qbo_vendor_id": row["qbo_vendor_id"],
        "datev_creditor_account": row["datev_creditor_account"],
        "active": bool(row["active"]),
        "confirmed": row.get("confirmed_at") is not None,
    }


def _audit(conn, organization_id, supplier_id, action, by, reason, before, after, document_id):
    conn.execute(
        insert(supplier_changes).values(
            organization_id=organization_id,
            supplier_id=supplier_id,
            action=action,
            changed_by=by,
            reason=reason,
            before=before,
            after=after,
            incoming_invoice_id=document_id,
        )
    )


def _who(changed_by: str, reason: str) -> tuple[str, str]:
    by = checked_text(changed_by, "who makes the change (--by)", MAX_WHO)
    why = checked_text(reason, "the reason (--reason)", MAX_REASON)
    if not by:
        raise RegisterError("a change of the supplier register names who makes it (--by NAME)")
    if not why:
        raise RegisterError("a change of the supplier register says why (--reason TEXT)")
    return by, why


def _check_unique(
    conn, organization_id: int, supplier_id: int | None, values: dict, ibans: Iterable[str] = ()
) -> None:
    """A VAT id, a QBO vendor or an IBAN (`ibans`: the ones being added) belongs to one supplier
    of the register."""
    s = suppliers.c
    mine = s.id != supplier_id if supplier_id is not None else True
    _check_ibans_unique(conn, organization_id, supplier_id, set(ibans))
    for column, label in (("vat_id", "VAT id"), ("qbo_vendor_id", "QuickBooks vendor")):
        value = values.get(column)
        if not value:
            continue
        other = conn.execute(
            select(s.id, s.name).where(
                s.organization_id == organization_id, getattr(s, column) == value, mine
            )
        ).first()
        if other is not None:
            raise RegisterError(
                f"{label} {value} belongs to supplier {other.id} ({other.name!r}) already"
            )


def _check_ibans_unique(
    conn, organization_id: int, supplier_id: int | None, ibans: set[str]
) -> None:
    """An IBAN of another supplier is refused, naming that supplier: the real supplier's account
    under a second name is how a payment goes to the wrong party unnoticed. One query for the
    organization's accounts (JSON in both databases, compared here)."""
    if not ibans:
        return
    s = suppliers.c
    for other in conn.execute(
        select(s.id, s.name, s.bank_accounts).where(
            s.organization_id == organization_id, s.id != (supplier_id or 0)
        )
    ):
        taken = ibans & {a.get("iban") for a in other.bank_accounts or ()}
        if taken:
            raise RegisterError(
                f"IBAN {sorted(taken)[0]} belongs to supplier {other.id} ({other.name!r}) "
                "already: one account, one supplier"
            )


def _check_lookalike(conn, organization_id: int, name: str) -> None:
    """A name that reads like a registered supplier's (a Cyrillic look-alike, a digit for a
    letter) is refused, naming that supplier, unless the person says it is another company."""
    alike = load_register(conn, organization_id).resembling(name)
    if alike:
        twin, registered = alike[0]
        raise RegisterError(
            f"{name!r} reads like the registered {registered!r} of {twin.described()}: add it "
            "only if it is another company (--despite-lookalike)"
        )


def add_supplier(
    conn: Connection,
    organization_id: int,
    *,
    name: str,
    changed_by: str,
    reason: str,
    vat_id: str | None = None,
    tax_number: str | None = None,
    ibans: Iterable[tuple[str, str | None]] = (),
    notice_email: str | None = None,
    qbo_vendor_id: str | None = None,
    datev_creditor_account: int | None = None,
    origin: str = "person",
    document_id: int | None = None,
    confirmed: bool | None = None,
    despite_lookalike: bool = False,
    shared_ibans: bool = False,
) -> int:
    """Register a supplier; its id. Refused: no name, a value out of form (one sentence each), a
    VAT id, vendor or IBAN another supplier has (`shared_ibans`: a person confirmed a document
    that asks for one), a name a person gives that reads like a registered supplier's (unless
    `despite_lookalike`; the first-invoice policy registers no look-alike anyway). `confirmed`:
    whether a person vouches for it (by default: registered by a person, not by the
    first-invoice policy)."""
    by, why = _who(changed_by, reason)
    name = checked_name(name)
    values = {
        "name": name,
        "name_key": name_skeleton(name)[:MAX_NAME],
        "other_names": [],
        "vat_id": checked_vat_id(vat_id),
        "tax_number": checked_tax_number(tax_number),
        "bank_accounts": [_account(iban, bic) for iban, bic in ibans],
        "notice_email": checked_email(notice_email),
        "qbo_vendor_id": checked_vendor_id(qbo_vendor_id),
        "datev_creditor_account": checked_datev_account(datev_creditor_account),
    }
    _check_unique(
        conn,
        organization_id,
        None,
        values,
        () if shared_ibans else [a["iban"] for a in values["bank_accounts"]],
    )
    if origin == "person" and not despite_lookalike:
        _check_lookalike(conn, organization_id, name)
    if confirmed is None:
        confirmed = origin == "person"
    supplier_id = conn.execute(
        insert(suppliers)
        .values(
            organization_id=organization_id,
            origin=origin,
            updated_by=by,
            confirmed_at=utcnow() if confirmed else None,
            confirmed_by=by if confirmed else None,
            **values,
        )
        .returning(suppliers.c.id)
    ).scalar_one()
    after = values_of({**values, "active": True, "confirmed_at": confirmed or None})
    _audit(conn, organization_id, supplier_id, "add", by, why, None, after, document_id)
    return supplier_id


def _row(conn, organization_id: int, supplier_id: int, expected_version: int | None) -> dict:
    """One supplier's row; with `expected_version`, refused if it changed since the person
    looked."""
    row = _stored_row(conn, organization_id, supplier_id)
    if expected_version is not None and row["version"] != expected_version:
        raise RegisterError(
            f"supplier {supplier_id} changed since version {expected_version} (now "
            f"{row['version']}): look again"
        )
    return row


def _stored_row(conn, organization_id: int, supplier_id: int) -> dict:
    row = (
        conn.execute(
            select(suppliers).where(
                suppliers.c.organization_id == organization_id, suppliers.c.id == supplier_id
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise RegisterError(f"organization {organization_id} has no supplier {supplier_id}")
    return dict(row)


@dataclass
class Change:
    """What a person changes of one supplier (None: unchanged)."""

    name: str | None = None
    vat_id: str | None = None
    tax_number: str | None = None
    notice_email: str | None = None
    qbo_vendor_id: str | None = None
    datev_creditor_account: int | None = None
    add_names: tuple[str, ...] = ()
    add_ibans: tuple[tuple[str, str | None], ...] = ()
    remove_ibans: tuple[str, ...] = ()
    active: bool | None = None
    # "" in one of these clears the field
    clear: tuple[str, ...] = ()


def change_supplier(
    conn: Connection,
    organization_id: int,
    supplier_id: int,
    change: Change,
    *,
    changed_by: str,
    reason: str,
    expected_version: int | None = None,
    action: str = "change",
    document_id: int | None = None,
    shared_ibans: bool = False,
) -> dict:
    """Apply `change` to one supplier with its audit row; the supplier's values after it. With
    `expected_version`, a supplier changed since the person looked is refused; an IBAN added that
    another supplier has is refused unless `shared_ibans` (a person confirmed the document)."""
    by, why = _who(changed_by, reason)
    row = _row(conn, organization_id, supplier_id, expected_version)
    before = values_of(row)
    new = _changed_values(row, change)
    held = {a.get("iban") for a in row["bank_accounts"] or ()}
    added = [a["iban"] for a in new.get("bank_accounts", ()) if a["iban"] not in held]
    _check_unique(conn, organization_id, supplier_id, new, () if shared_ibans else added)
    after = {**before, **{k: v for k, v in new.items() if k != "name_key"}}
    if after == before:
        return before
    conn.execute(
        update(suppliers)
        .where(suppliers.c.organization_id == organization_id, suppliers.c.id == supplier_id)
        .values(**new, version=suppliers.c.version + 1, updated_by=by, updated_at=utcnow())
    )
    _audit(conn, organization_id, supplier_id, action, by, why, before, after, document_id)
    return after


def confirm_supplier(
    conn: Connection,
    organization_id: int,
    supplier_id: int,
    *,
    changed_by: str,
    reason: str,
    expected_version: int | None = None,
    despite_lookalike: bool = False,
) -> dict:
    """A person vouches for a supplier the first-invoice policy registered: from now on a
    QuickBooks vendor may be created and its bills pushed. Held to the rules a new supplier's
    document is: one whose name reads like another registered supplier's is refused unless the
    person says it is another company (`despite_lookalike`). Audited (action `confirm`); the
    supplier's values after it. Confirming a confirmed supplier changes nothing."""
    by, why = _who(changed_by, reason)
    row = _row(conn, organization_id, supplier_id, expected_version)
    before = values_of(row)
    if row["confirmed_at"] is not None:
        return before
    if not row["active"]:
        raise RegisterError(f"supplier {supplier_id} is retired: change it back first")
    if not despite_lookalike:
        others = load_register(conn, organization_id)
        others = Register([s for s in others.suppliers if s.id != supplier_id])
        alike = others.resembling(row["name"])
        if alike:
            twin, name = alike[0]
            raise RegisterError(
                f"supplier {supplier_id} ({row['name']!r}) reads like the registered {name!r} "
                f"of {twin.described()}: confirm it only if it is another company "
                "(--despite-lookalike), else retire it"
            )
    conn.execute(
        update(suppliers)
        .where(suppliers.c.organization_id == organization_id, suppliers.c.id == supplier_id)
        .values(
            confirmed_at=utcnow(),
            confirmed_by=by,
            version=suppliers.c.version + 1,
            updated_by=by,
            updated_at=utcnow(),
        )
    )
    after = {**before, "confirmed": True}
    _audit(conn, organization_id, supplier_id, "confirm", by, why, before, after, None)
    return after


def _changed_values(row: dict, change: Change) -> dict:
    new: dict[str, Any] = {}
    if change.name is not None:
        name = checked_name(change.name)
        new["name"], new["name_key"] = name, name_skeleton(name)[:MAX_NAME]
    if change.vat_id is not None:
        new["vat_id"] = checked_vat_id(change.vat_id)
    if change.tax_number is not None:
        new["tax_number"] = checked_tax_number(change.tax_number)
    if change.notice_email is not None:
        new["notice_email"] = checked_email(change.notice_email)
    if change.qbo_vendor_id is not None:
        new["qbo_vendor_id"] = checked_vendor_id(change.qbo_vendor_id)
    if change.datev_creditor_account is not None:
        new["datev_creditor_account"] = checked_datev_account(change.datev_creditor_account)
    if change.active is not None:
        new["active"] = change.active
    for column in change.clear:
        if column not in FIELDS or column == "name":
            raise RegisterError(f"{column!r} cannot be cleared (one of {', '.join(FIELDS[1:])})")
        new[column] = None
    names = list(row["other_names"] or [])
    for name in map(checked_name, change.add_names):
        if name != new.get("name", row["name"]) and name not in names:
            names.append(name)
    if names != list(row["other_names"] or []):
        new["other_names"] = names
    accounts = [a for a in (row["bank_accounts"] or []) if a.get("iban")]
    removed = {checked_iban(i) for i in change.remove_ibans}
    missing = removed - {a["iban"] for a in accounts}
    if missing:
        raise RegisterError(f"IBAN {sorted(missing)[0]} is not registered for this supplier")
    accounts = [a for a in accounts if a["iban"] not in removed]
    for account in (_account(iban, bic) for iban, bic in change.add_ibans):
        if account["iban"] not in {a["iban"] for a in accounts}:
            accounts.append(account)
    if accounts != list(row["bank_accounts"] or []):
        new["bank_accounts"] = accounts
    return new


def learn(
    conn: Connection,
    organization_id: int,
    claim: Claim,
    comparison: Comparison,
    *,
    changed_by: str,
    reason: str,
    document_id: int | None,
    origin: str = "person",
    confirmed: bool | None = None,
) -> int | None:
    """What a confirmation (or the first-invoice policy) teaches the register about a document's
    seller: a new supplier with its name, VAT id and IBAN; another name for the supplier of its
    VAT id; a new IBAN of its supplier. A notice address is never learned from a document. The
    supplier's id, or None when there is nothing to learn."""
    ibans = [iban for iban in claim.all_ibans if iban_problem(iban) is None]
    supplier = comparison.supplier
    rules = {f.rule for f in comparison.findings}
    if supplier is None and NAME_OTHER_VAT_ID in rules and claim.vat:
        # the person confirmed a registered name with a VAT id: the supplier of that name that
        # has none learns it; one that has another is another company of the same name
        without = [s for s in comparison.named if not s.vat_id]
        if len(without) == 1:
            change_supplier(
                conn,
                organization_id,
                without[0].id,
                Change(vat_id=claim.vat),
                changed_by=changed_by,
                reason=reason,
                action="confirmed",
                document_id=document_id,
            )
            return without[0].id
    if supplier is None:
        if not (comparison.new or NAME_OTHER_VAT_ID in rules) or not name_skeleton(claim.name):
            return None
        return add_supplier(
            conn,
            organization_id,
            name=blanks_collapsed(claim.name),
            vat_id=claim.vat or None,
            ibans=[(iban, None) for iban in ibans],
            changed_by=changed_by,
            reason=reason,
            origin=origin,
            document_id=document_id,
            confirmed=confirmed,
            # the comparison named a look-alike or another supplier's account, and a person
            # confirmed the document all the same (the policy registers none with a finding)
            despite_lookalike=True,
            shared_ibans=True,
        )
    change = Change(
        add_names=(blanks_collapsed(claim.name),)
        if rules & {VAT_ID_OTHER_NAME, LOOKALIKE_NAME}
        else (),
        add_ibans=tuple((iban, None) for iban in ibans) if NEW_IBAN in rules else (),
    )
    if change.add_names or change.add_ibans:
        change_supplier(
            conn,
            organization_id,
            supplier.id,
            change,
            changed_by=changed_by,
            reason=reason,
            action="confirmed",
            document_id=document_id,
            shared_ibans=True,
        )
    return supplier.id


@dataclass
class HistoryLearned:
    """What `learn_history` did: how many suppliers it registered, and a sentence for each seller
    it left for a person (a name the register cannot hold, a look-alike, another supplier's
    account), so that one seller never stops the rest."""

    registered: int = 0
    skipped: list[str] = field(default_factory=list)


def learn_history(
    conn: Connection, organization: Organization, *, changed_by: str, reason: str
) -> HistoryLearned:
    """Register the sellers of the organization's accepted documents (VALIDATED, EXPORTED) that
    the register knows neither by VAT id nor by name: a person's act for the documents from before
    the register (a migration). Each seller as its latest accepted document names it, with that
    document's IBAN; one query for the documents. A seller the register refuses or the
    comparison holds is skipped with its reason, once per seller; the others are registered."""
    _who(changed_by, reason)
    organization_id = organization.id
    t = incoming_invoices.c
    rows = conn.execute(
        select(t.id, t.seller_name, t.seller_vat_id, t.raw_json["invoice", "iban"].as_string())
        .where(t.organization_id == organization_id, t.status.in_(("VALIDATED", "EXPORTED")))
        .order_by(t.id.desc())
    ).all()
    register = load_register(conn, organization_id)
    own = own_party(organization)
    done = HistoryLearned()
    skipped_sellers: set[tuple] = set()
    for doc_id, name, vat_id, iban in rows:  # the latest first
        claim = Claim(name, vat_id, iban)
        comparison = compare(register, claim, own)
        seller = (vat_id_key(vat_id), name_skeleton(name) or name)
        if comparison.findings and (comparison.new or comparison.supplier is None):
            # a look-alike of a registered supplier, a name the register cannot hold: for a
            # person to look at (said once per seller)
            if seller not in skipped_sellers:
                skipped_sellers.add(seller)
                done.skipped.append(
                    f"incoming invoice {doc_id}: "
                    + "; ".join(f"{f.message} ({f.rule})" for f in comparison.findings)
                )
            continue
        if not comparison.new or comparison.findings:
            continue  # known (what differs is the intake's to hold)
        try:
            with conn.begin_nested():
                supplier_id = learn(
                    conn,
                    organization_id,
                    claim,
                    comparison,
                    changed_by=changed_by,
                    reason=f"{reason} (from accepted incoming invoice {doc_id})",
                    document_id=doc_id,
                )
        except RegisterError as exc:
            if seller not in skipped_sellers:
                skipped_sellers.add(seller)
                done.skipped.append(f"incoming invoice {doc_id}: {exc}")
            continue
        if supplier_id is not None:
            register = register.adding(RegisteredSupplier.of_claim(supplier_id, claim))
            done.registered += 1
    return done


def supplier_rows(conn: Connection, organization_id: int, *, active_only: bool = False) -> list:
    query = select(suppliers).where(suppliers.c.organization_id == organization_id)
    if active_only:
        query = query.where(suppliers.c.active.is_(True))
    return [dict(r) for r in conn.execute(query.order_by(suppliers.c.id)).mappings()]


def supplier_history(conn: Connection, organization_id: int, supplier_id: int) -> list[dict]:
    c = supplier_changes.c
    return [
        dict(r)
        for r in conn.execute(
            select(supplier_changes)
            .where(c.organization_id == organization_id, c.supplier_id == supplier_id)
            .order_by(c.id)
        ).mappings()
    ]


def register_counts(conn: Connection, organization_id: int) -> dict[str, int]:
    """How many suppliers the register holds, confirmed by a person and not (registered by the
    first-invoice policy, waiting for one), and how many changes it saw."""
    s = suppliers.c
    unconfirmed = s.confirmed_at.is_(None)
    by_state = dict(
        conn.execute(
            select(unconfirmed, func.count())
            .where(s.organization_id == organization_id, s.active.is_(True))
            .group_by(unconfirmed)
        ).all()
    )
    changes = conn.execute(
        select(func.count()).where(supplier_changes.c.organization_id == organization_id)
    ).scalar_one()
    return {
        "suppliers": sum(by_state.values()),
        "confirmed by a person": by_state.get(False, 0),
        "unconfirmed": by_state.get(True, 0),
        "changes": changes,
    }
