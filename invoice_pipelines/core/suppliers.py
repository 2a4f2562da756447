"""Who sent an invoice: what a document claims about its seller compared with the organization's
supplier register (what a person confirmed). Plain Python: the register's rows come in as
`RegisteredSupplier`s, the findings go out as `Finding`s of stage "supplier".

A claim is the seller's name, VAT id, IBAN and e-mail as the intake read them. Each difference
from the register is one finding (IP-SUP-xx) that names what differs and what the register says;
any of them holds the document for a person. Names compare by what a person sees (the
confusables skeleton, `lookalike_key`: case, separators and look-alike letters of other scripts
do not make another name), and a name that only looks like a registered one (`Schrӧder` with a
Cyrillic `ӧ`) is a finding of its own. VAT ids compare in full: a masked or partial id is never
an identity.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from invoice_pipelines.core.rules import Finding, lookalike_key
from invoice_pipelines.core.supplier_names import letters_of, name_core, near
from invoice_pipelines.core.supplier_policies import (  # noqa: F401 - the register's names
    DEFAULT_POLICY,
    FIRST_INVOICE,
    FIRST_INVOICE_BOOKS,
    POLICIES,
    POLICY_SETTING,
    REGISTERING_POLICIES,
    REVIEW,
)
from invoice_pipelines.core.text import hidden_problem

STAGE = "supplier"

NEW_SUPPLIER = "IP-SUP-01"
VAT_ID_OTHER_NAME = "IP-SUP-02"
NAME_OTHER_VAT_ID = "IP-SUP-03"
NEW_IBAN = "IP-SUP-04"
NEW_NOTICE_ADDRESS = "IP-SUP-05"
OWN_ORGANIZATION = "IP-SUP-06"
TWO_SUPPLIERS = "IP-SUP-07"
LOOKALIKE_NAME = "IP-SUP-08"
NAME_OF_SEVERAL = "IP-SUP-09"
UNREGISTRABLE_NAME = "IP-SUP-10"
IBAN_OF_ANOTHER = "IP-SUP-11"

# what a person's confirmation cannot make right: the document names the wrong party, or a name
# the register cannot hold, whatever a reviewer says; only a correction of the seller's values
# (or a rejection) moves it on
NEVER_CONFIRMED = frozenset({OWN_ORGANIZATION, TWO_SUPPLIERS, UNREGISTRABLE_NAME})


_VAT_SEPARATORS = re.compile(r"[\s.\-/]+")


def vat_id_key(value: object) -> str:
    """A VAT id as the register stores and compares it: no blanks, dots, dashes or slashes,
    upper case."""
    return _VAT_SEPARATORS.sub("", str(value or "")).upper()


def tax_number_key(value: object) -> str:
    """A tax number as compared: its digits (`201/113/40209` is `20111340209`)."""
    return "".join(c for c in str(value or "") if c.isdigit())


def iban_key(value: object) -> str:
    """An IBAN as compared: no blanks, upper case (`DE89 3704 0044 ...` is `DE893704...`)."""
    return re.sub(r"\s+", "", str(value or "")).upper()


@lru_cache(maxsize=65536)
def name_skeleton(value: str | None) -> str:
    """A name by what a person sees (`lookalike_key`), decomposed first: the confusables table
    takes a precomposed letter with a diacritic (`ö`) for a look-alike of a letter of another
    script, while the same letter decomposed (`o` and a diaeresis) is its base letter and mark,
    as a Cyrillic `ӧ` decomposes to the Cyrillic `о` that looks like `o`. Cached: a batch names the
    same few sellers and the organization over and over (0.1 ms a name uncached)."""
    text = unicodedata.normalize("NFD", value or "")
    return lookalike_key(text) if text.strip() else ""


def blanks_collapsed(name: str | None) -> str:
    """A document's name with each run of blanks (spaces, tabs, line breaks) as one space: how the
    readers give it (einvoice/readers/xmlsafe.clean_text) and the register keeps it, so that the
    intake and the register judge the same name."""
    return " ".join((name or "").split())


def name_problem(value: str | None) -> str | None:
    """Why the register cannot hold `value` as a supplier's name (one sentence), or None: a name
    with a character nobody sees as written (a bidi override shows its letters in another order
    than stored, a line break makes one name two lines) is not one a person can confirm by
    reading it."""
    return hidden_problem("the name", value or "")


def _plain_name(value: str | None) -> str:
    """A name's letters and digits as written (compatibility forms folded, case-folded): two
    names with one skeleton but other plain letters only look alike."""
    folded = unicodedata.normalize("NFKC", value or "").casefold()
    return "".join(c for c in folded if unicodedata.category(c)[0] in "LN")


@dataclass(frozen=True)
class RegisteredSupplier:
    """One supplier as the register holds it: what a person confirmed."""

    id: int
    name: str
    other_names: tuple[str, ...] = ()
    vat_id: str | None = None
    tax_number: str | None = None
    ibans: tuple[str, ...] = ()
    notice_email: str | None = None
    qbo_vendor_id: str | None = None
    # a person vouched for it (`suppliers.confirmed_at`): only then a QuickBooks vendor and bill
    confirmed: bool = True
    version: int = 1  # what `suppliers change` and `confirm` ask for (--version)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.other_names)

    def described(self) -> str:
        return f"{self.name!r} (supplier {self.id}" + (
            f", VAT id {self.vat_id})" if self.vat_id else ", no VAT id)"
        )

    @classmethod
    def of_claim(cls, supplier_id: int, claim: Claim) -> RegisteredSupplier:
        """The supplier a document's claim registers: its name, VAT id and IBANs."""
        return cls(
            id=supplier_id,
            name=blanks_collapsed(claim.name),
            vat_id=claim.vat or None,
            ibans=claim.all_ibans,
            confirmed=False,
        )


@dataclass(frozen=True)
class Claim:
    """What a document says about its seller."""

    name: str | None
    vat_id: str | None = None
    iban: str | None = None
    email: str | None = None
    tax_number: str | None = None
    # every other account the document asks to be paid to (BG-17 after the first)
    other_ibans: tuple[str, ...] = ()

    @property
    def vat(self) -> str:
        return vat_id_key(self.vat_id)

    @property
    def all_ibans(self) -> tuple[str, ...]:
        """Every IBAN the document names, as compared (`iban_key`), each once, in its order."""
        keys = (iban_key(i) for i in (self.iban, *self.other_ibans))
        return tuple(dict.fromkeys(k for k in keys if k))


@dataclass(frozen=True)
class OwnParty:
    """The organization itself: a document it is the seller of is not a supplier invoice."""

    name: str
    vat_id: str | None = None
    tax_number: str | None = None


@dataclass
class Register:
    """One organization's suppliers, looked up by VAT id and by name skeleton."""

    suppliers: list[RegisteredSupplier] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_vat = {s.vat_id: s for s in self.suppliers if s.vat_id}
        self.by_iban: dict[str, RegisteredSupplier] = {}
        for supplier in self.suppliers:
            for iban in supplier.ibans:
                self.by_iban.setdefault(iban_key(iban), supplier)
        self.by_name: dict[str, list[RegisteredSupplier]] = {}
        for supplier in self.suppliers:
            for key in {name_skeleton(n) for n in supplier.names} - {""}:
                self.by_name.setdefault(key, []).append(supplier)

    def adding(self, supplier: RegisteredSupplier) -> Register:
        """This register with one more supplier (one registered meanwhile, or about to be); the
        names' cores carried over where they were taken."""
        register = Register([*self.suppliers, supplier])
        if "_cores" in self.__dict__:
            cores = {length: list(entries) for length, entries in self._cores.items()}
            for core in {name_core(n) for n in supplier.names} - {""}:
                cores.setdefault(len(letters_of(core)), []).append((core, supplier))
            register.__dict__["_cores"] = cores
        return register

    @cached_property
    def _cores(self) -> dict[int, list[tuple[str, RegisteredSupplier]]]:
        """Every registered name's core (`supplier_names.name_core`) by its length: built on the
        first new seller's comparison only."""
        by_length: dict[int, list[tuple[str, RegisteredSupplier]]] = {}
        for supplier in self.suppliers:
            for core in {name_core(n) for n in supplier.names} - {""}:
                by_length.setdefault(len(letters_of(core)), []).append((core, supplier))
        return by_length

    def resembling(self, name: str | None) -> list[tuple[RegisteredSupplier, str]]:
        """The registered suppliers one of whose names reads like `name` (the same core, or a
        near one: `supplier_names.near`), each with that name; the nearest first."""
        core = name_core(name)
        if not core:
            return []
        found: dict[int, tuple[int, RegisteredSupplier, str]] = {}
        letters = len(letters_of(core))
        for length in range(letters - 2, letters + 3):
            for other, supplier in self._cores.get(length, ()):
                if supplier.id not in found and near(core, other):
                    alike = next(n for n in supplier.names if name_core(n) == other)
                    found[supplier.id] = (0 if other == core else 1, supplier, alike)
        return [(s, n) for _, s, n in sorted(found.values(), key=lambda f: (f[0], f[1].id))]


@dataclass(frozen=True)
class Comparison:
    """The register's supplier for a claim (None: none, or not one), and what differs."""

    supplier: RegisteredSupplier | None
    findings: tuple[Finding, ...] = ()
    new: bool = False  # the register knows neither the claimed VAT id nor the name
    # IP-SUP-03: the registered suppliers of the claimed name (the claimed VAT id is none's)
    named: tuple[RegisteredSupplier, ...] = ()
    # IP-SUP-08 of a new seller: the registered suppliers whose name it reads like
    resembles: tuple[RegisteredSupplier, ...] = ()

    @property
    def agrees(self) -> bool:
        return not self.findings


def _finding(rule: str, message: str) -> Finding:
    return Finding(rule, message, "warning", STAGE)


def _own(claim: Claim, own: OwnParty | None) -> Finding | None:
    if own is None:
        return None
    same_vat = claim.vat and claim.vat == vat_id_key(own.vat_id)
    tax = tax_number_key(claim.tax_number)
    same_tax = tax and tax == tax_number_key(own.tax_number)
    same_name = name_skeleton(claim.name) and name_skeleton(claim.name) == name_skeleton(own.name)
    if not (same_vat or same_tax or same_name):
        return None
    what = (
        f"VAT id {claim.vat}"
        if same_vat
        else f"tax number {claim.tax_number}"
        if same_tax
        else f"name {claim.name!r}"
    )
    return _finding(
        OWN_ORGANIZATION,
        f"the seller this document names is this organization itself ({what} of {own.name!r}): "
        "the reading took the recipient for the sender; correct the seller, or reject it",
    )


def _name_finding(claim: Claim, supplier: RegisteredSupplier) -> Finding | None:
    """The claimed name against a supplier found by VAT id."""
    key = name_skeleton(claim.name)
    if not key:
        return None
    if key not in {name_skeleton(n) for n in supplier.names}:
        return _finding(
            VAT_ID_OTHER_NAME,
            f"VAT id {claim.vat} is registered for {supplier.described()}, but the document "
            f"names the seller {claim.name!r}",
        )
    return _lookalike(claim, supplier)


def _lookalike(claim: Claim, supplier: RegisteredSupplier) -> Finding | None:
    """IP-SUP-08 where the claimed name has a registered name's skeleton but none of the
    registered names of that skeleton is written with the same letters (a person may have
    confirmed a look-alike spelling as another name: it is one of them then)."""
    key = name_skeleton(claim.name)
    alike = [n for n in supplier.names if name_skeleton(n) == key]
    if not alike or _plain_name(claim.name) in {_plain_name(n) for n in alike}:
        return None
    return _finding(
        LOOKALIKE_NAME,
        f"the seller name {claim.name!r} only looks like the registered {alike[0]!r} of "
        f"{supplier.described()}: other letters (another script) stand in it",
    )


def _details(
    claim: Claim, supplier: RegisteredSupplier, register: Register | None = None
) -> list[Finding]:
    """IBAN and notice address of a document against the supplier it comes from; an unknown IBAN
    that another registered supplier has is named with that supplier."""
    found = []
    known = {iban_key(i) for i in supplier.ibans}
    unknown = [iban for iban in claim.all_ibans if iban not in known]
    if unknown:
        registered = ", ".join(supplier.ibans) if supplier.ibans else "none"
        which = f"IBAN {unknown[0]}" if len(unknown) == 1 else "IBANs " + ", ".join(unknown)
        owners = [
            f"; IBAN {iban} is registered for {owner.described()}"
            for iban in unknown
            if (owner := (register.by_iban.get(iban) if register else None)) is not None
        ]
        found.append(
            _finding(
                NEW_IBAN,
                f"the document asks for payment to {which}, not registered for "
                f"{supplier.described()} (registered: {registered})" + "".join(owners[:1]),
            )
        )
    email = (claim.email or "").strip()
    if email and supplier.notice_email and email.casefold() != supplier.notice_email.casefold():
        found.append(
            _finding(
                NEW_NOTICE_ADDRESS,
                f"the document gives the e-mail address {email!r} for {supplier.described()}, "
                f"whose registered notice address is {supplier.notice_email!r}",
            )
        )
    return found


def compare(register: Register, claim: Claim, own: OwnParty | None = None) -> Comparison:
    """The register's view of a document's seller (see the module docstring)."""
    own_finding = _own(claim, own)
    if own_finding is not None:
        return Comparison(None, (own_finding,))
    problem = name_problem(blanks_collapsed(claim.name))
    if problem is not None:
        return Comparison(None, (unregistrable_finding(claim, problem),))
    key = name_skeleton(claim.name)
    by_vat = register.by_vat.get(claim.vat) if claim.vat else None
    named = register.by_name.get(key, []) if key else []
    if by_vat is not None:
        others = [s for s in named if s.id != by_vat.id]
        if others and by_vat.id not in {s.id for s in named}:
            return Comparison(
                None,
                (
                    _finding(
                        TWO_SUPPLIERS,
                        f"the seller name {claim.name!r} is registered for "
                        f"{others[0].described()}, its VAT id {claim.vat} for "
                        f"{by_vat.described()}: two suppliers in one document",
                    ),
                ),
            )
        found = [f for f in (_name_finding(claim, by_vat),) if f is not None]
        return Comparison(by_vat, tuple(found + _details(claim, by_vat, register)))
    if named:
        supplier = sorted(named, key=lambda s: s.id)[0]
        if claim.vat:
            registered = f"VAT id {supplier.vat_id}" if supplier.vat_id else "no VAT id"
            return Comparison(
                None,
                (
                    _finding(
                        NAME_OTHER_VAT_ID,
                        f"the seller name {claim.name!r} is registered for "
                        f"{supplier.described()} with {registered}, but the document states "
                        f"VAT id {claim.vat}",
                    ),
                ),
                named=tuple(named),
            )
        if len(named) > 1:
            return Comparison(
                None,
                (
                    _finding(
                        NAME_OF_SEVERAL,
                        f"the seller name {claim.name!r} without a VAT id fits "
                        f"{len(named)} registered suppliers: "
                        + ", ".join(s.described() for s in named[:3]),
                    ),
                ),
            )
        found = [f for f in (_lookalike(claim, supplier),) if f is not None]
        return Comparison(supplier, tuple(found + _details(claim, supplier, register)))
    if not key and not claim.vat:
        return Comparison(None)
    return _new_seller(register, claim)


def unregistrable_finding(claim: Claim, problem: str) -> Finding:
    """IP-SUP-10: a seller the register cannot hold (its name, or another of its values by the
    register's rules: `problem`); never registered, never passed on. The name quoted as `repr`
    writes what nobody sees as its escape (`\\u202e`)."""
    vat = f"VAT id {claim.vat}" if claim.vat else "no VAT id"
    return _finding(
        UNREGISTRABLE_NAME,
        f"the seller {claim.name!r} ({vat}) cannot be registered: {problem}; correct the "
        "seller's values as the supplier writes them, or reject the document",
    )


def _iban_of_another(register: Register, claim: Claim) -> Finding | None:
    """IP-SUP-11: a new seller asks for payment to an account the register holds for another
    supplier (the real supplier's account under a new name, or a name made up for it)."""
    for iban in claim.all_ibans:
        supplier = register.by_iban.get(iban)
        if supplier is not None:
            return _finding(
                IBAN_OF_ANOTHER,
                f"the new seller {claim.name!r} asks for payment to IBAN {iban}, which the "
                f"register holds for {supplier.described()}: confirm it only if both companies "
                "are paid to one account, or reject it",
            )
    return None


def _new_seller(register: Register, claim: Claim) -> Comparison:
    """A seller the register knows neither by VAT id nor by name: IP-SUP-08 where its name reads
    like a registered supplier's (`Register.resembling`), so that no look-alike is registered or
    booked by its first invoice; IP-SUP-11 where it asks to be paid to another supplier's
    account. A person who confirms it registers another supplier."""
    resembling = register.resembling(claim.name)
    shared = _iban_of_another(register, claim)
    if not resembling:
        return Comparison(None, (shared,) if shared else (), new=True)
    supplier, alike = resembling[0]
    more = f" (and {len(resembling) - 1} more)" if len(resembling) > 1 else ""
    vat = f"VAT id {claim.vat}" if claim.vat else "no VAT id"
    return Comparison(
        None,
        (
            _finding(
                LOOKALIKE_NAME,
                f"the new seller {claim.name!r} ({vat}) reads like the registered {alike!r} of "
                f"{supplier.described()}{more}: a look-alike of a known supplier; confirm it "
                "only if it is another company, or reject it",
            ),
            *((shared,) if shared else ()),
        ),
        new=True,
        resembles=tuple(s for s, _ in resembling),
    )


def new_supplier_finding(claim: Claim) -> Finding:
    """IP-SUP-01: the organization's policy wants a person to confirm a supplier it does not
    know."""
    vat = f" (VAT id {claim.vat})" if claim.vat else " (no VAT id)"
    return _finding(
        NEW_SUPPLIER,
        f"the seller {claim.name!r}{vat} is not in the organization's supplier register: "
        "confirm the document to register it, or reject it",
    )


def checked_policy(value: object) -> str:
    """The organization's supplier policy; an unknown value is refused."""
    if value in (None, ""):
        return DEFAULT_POLICY
    if value not in POLICIES:
        raise ValueError(f"supplier policy {value!r}: one of {', '.join(POLICIES)}")
    return str(value)
