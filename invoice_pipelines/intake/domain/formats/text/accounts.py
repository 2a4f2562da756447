"""The bank accounts a page names: every IBAN, each with the BIC printed beside or below it.

An IBAN whose check digits hold is read with confidence 0.9. One that fails them is still read
(confidence 0.5) when the page labels it an IBAN or it has its country's length: a mistyped or
misread IBAN the document asks to be paid to is a finding for a person (intake/domain/plausibility.py),
never dropped unseen. A masked IBAN ("DE54 5004 **** **** **** 00", the customer's account a
direct debit is drawn from) is no account to pay to; it still takes the BIC printed with it, so
that BIC is not given to the next account. A BIC is a labelled value ("BIC", "SWIFT", "BIC/SWIFT
code") on the IBAN's line or on one of the two lines below it, in its column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schwifty import exceptions as schwifty_errors
from schwifty import registry

from invoice_pipelines.core.bank_accounts import compact, iban_is_valid, payment_accounts
from invoice_pipelines.core.invoice import PaymentAccount

VALID = 0.9
UNCHECKED = 0.5  # the extractor's floor: kept, so the check sees it
# groups of four as printed; masked digits ("****", "XXXX", "••••") keep the shape
_IBAN = re.compile(
    r"\b([A-Z]{2}\d{2}(?:\s?[A-Z0-9*•]{4}){2,7}(?:\s?[A-Z0-9*•]{1,3})?)(?![A-Z0-9*•])"
)
_MASKED = re.compile(r"[*•]|XXX")
_IBAN_LABEL = re.compile(r"\bIBAN\b")
_BIC = re.compile(
    r"\b(?:BIC|SWIFT)\b(?:[\s/-]*(?:BIC|SWIFT|CODE)\b)*[\s:./-]*"
    r"([A-Z0-9]{4}\s?[A-Z0-9]{2}\s?[A-Z0-9]{2}(?:\s?[A-Z0-9]{3})?)(?![A-Z0-9])"
)
BIC_LINES_BELOW = 2  # how far below its IBAN a BIC may be printed


@dataclass
class _Iban:
    line: int
    column: int
    account: str | None  # None: masked, no account to pay to
    confidence: float
    source: str
    bic: str | None = None


@dataclass(frozen=True, slots=True)
class ReadAccount:
    """One account read from a page, how sure the reading is, and the line it came from."""

    account: PaymentAccount
    confidence: float
    source: str

    def to_json_dict(self) -> dict:
        return {
            **self.account.to_json_dict(),
            "confidence": round(self.confidence, 2),
            "source": " ".join(self.source.split())[:200],
        }


def _country_length(iban: str) -> int | None:
    try:
        return registry.get_iban_spec(iban[:2]).iban_length
    except schwifty_errors.SchwiftyException:
        return None


def _reading(candidate: str, labelled: bool) -> tuple[str, float] | None:
    """The IBAN a printed candidate is and how sure, or None where it is no IBAN at all: a valid
    one (or the valid IBAN at its start, where the page runs on with digits), else a labelled one
    or one of its country's length, unsure."""
    length = _country_length(candidate)
    if iban_is_valid(candidate):
        return candidate, VALID
    if length is not None and len(candidate) > length and iban_is_valid(candidate[:length]):
        return candidate[:length], VALID
    if labelled or (length is not None and len(candidate) == length):
        return candidate, UNCHECKED
    return None


def _ibans(lines: list[str]) -> list[_Iban]:
    found = []
    for index, line in enumerate(lines):
        upper = line.upper()
        above = lines[index - 1].upper() if index else ""
        for match in _IBAN.finditer(upper):
            candidate = compact(match.group(1))
            if _MASKED.search(candidate):
                found.append(_Iban(index, match.start(), None, 0.0, line))
                continue
            labelled = bool(_IBAN_LABEL.search(upper[: match.start()]) or _IBAN_LABEL.search(above))
            reading = _reading(candidate, labelled)
            if reading is not None:
                found.append(_Iban(index, match.start(), reading[0], reading[1], line))
    return found


def _blanked(line: str) -> str:
    """The line with its IBANs blanked out, so "IBAN/BIC: DE89 3704 ..." gives no BIC "DE893704"."""
    upper = line.upper()
    for match in _IBAN.finditer(upper):
        upper = upper[: match.start()] + " " * (match.end() - match.start()) + upper[match.end() :]
    return upper


def _owner(ibans: list[_Iban], line: int, column: int) -> _Iban | None:
    """The IBAN a BIC at (line, column) belongs to: on its line the nearest before it (else the
    first after it), else on the lines above the one whose column is nearest."""
    free = [i for i in ibans if i.bic is None]
    same = [i for i in free if i.line == line]
    if same:
        before = [i for i in same if i.column < column]
        return before[-1] if before else same[0]
    above = [i for i in free if line - BIC_LINES_BELOW <= i.line < line]
    if not above:
        return None
    return min(above, key=lambda i: (abs(i.column - column), line - i.line))


def read_accounts(lines: list[str]) -> list[ReadAccount]:
    """Every account a page names to be paid to, in page order, each with its BIC if printed."""
    ibans = _ibans(lines)
    for index, line in enumerate(lines):
        for match in _BIC.finditer(_blanked(line)):
            owner = _owner(ibans, index, match.start())
            if owner is not None:
                owner.bic = compact(match.group(1))
    read = []
    for iban in ibans:
        if iban.account is None:
            continue
        [account] = payment_accounts([(iban.account, iban.bic)])
        if all(r.account != account for r in read):
            read.append(ReadAccount(account, iban.confidence, iban.source))
    return read
