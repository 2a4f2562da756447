"""Bank accounts as documents write them: an IBAN (ISO 13616) and a BIC (ISO 9362) compacted the
way every reader stores them, and checked by their form, in one plain sentence per problem.

An IBAN is two letters of a country, two check digits and the country's account part (BBAN);
moved four characters to the end and read as a number (A=10 .. Z=35) it leaves 1 modulo 97. The
length and the letters-or-digits pattern of each country's BBAN come from the IBAN registry as
schwifty ships it (126 countries, those with a draft IBAN among them); a country code it does not
know is no IBAN's. A BIC is four letters of the bank, two of the country, two letters or digits
of the location and an optional branch of three.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from schwifty import BIC, registry
from schwifty import exceptions as schwifty_errors

from invoice_pipelines.core.invoice import PaymentAccount

_SEPARATORS = re.compile(r"[\s\-]+")
_IBAN_FORM = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_BIC_FORM = re.compile(r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
# SWIFT's code of Kosovo, which ISO 3166 has not assigned
_BIC_COUNTRIES_BEYOND_ISO = frozenset({"XK"})
# an account id that begins like an IBAN (a country, two check digits) is one, whatever element
# carries it; one that does not may be a national account number (EN 16931 BT-84 allows it)
_IBAN_START = re.compile(r"[A-Z]{2}[0-9]{2}")
# how much of a hostile value a sentence quotes
SHOWN = 40
# the IBAN registry's notation of an account part ("8!n10!n": 8 digits, 10 digits)
_SPEC_PART = re.compile(r"(\d+)!?([nace])")
_SPEC_WORDS = {"n": "digits", "a": "letters", "c": "letters or digits", "e": "blanks"}


def compact(value: object) -> str:
    """An account id or BIC as stored and compared: blanks and hyphens removed, upper case."""
    return _SEPARATORS.sub("", str(value or "")).upper()


def shown(value: str) -> str:
    """A value quoted in a sentence, cut where a hostile document made it long."""
    return repr(value if len(value) <= SHOWN else value[:SHOWN] + "…")


def payment_accounts(pairs: Iterable[tuple[object, object]]) -> tuple[PaymentAccount, ...]:
    """The accounts of (account id, BIC) pairs in document order, compacted; a pair without an
    account id is none, the same pair twice is one."""
    accounts: dict[tuple[str, str | None], PaymentAccount] = {}
    for account_id, bic in pairs:
        iban = compact(account_id)
        if iban:
            account = PaymentAccount(iban, compact(bic) or None)
            accounts.setdefault((account.iban, account.bic), account)
    return tuple(accounts.values())


def looks_like_iban(account_id: str) -> bool:
    """Whether an account id is written as an IBAN (a country and two check digits first)."""
    return bool(_IBAN_START.match(compact(account_id)))


def _in_words(bban_spec: str) -> str:
    """The registry's "4!a10!n" as "4 letters, 10 digits" (runs of one kind added up)."""
    parts: list[list] = []
    for count, kind in _SPEC_PART.findall(bban_spec):
        if parts and parts[-1][1] == kind:
            parts[-1][0] += int(count)
        else:
            parts.append([int(count), kind])
    return ", ".join(f"{count} {_SPEC_WORDS[kind]}" for count, kind in parts)


def _checksum_holds(iban: str) -> bool:
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def iban_problem(account_id: str) -> str | None:
    """Why an account id is not an IBAN, in one sentence, or None for a valid IBAN."""
    iban = compact(account_id)
    if not _IBAN_FORM.fullmatch(iban):
        return (
            f"the IBAN {shown(iban)} does not have an IBAN's form (two letters of a country, two "
            "check digits, 11 to 30 letters or digits)"
        )
    country = iban[:2]
    try:
        spec = registry.get_iban_spec(country)
    except schwifty_errors.SchwiftyException:
        return f"the IBAN {shown(iban)} names {country}, which is no country of the IBAN registry"
    if len(iban) != spec.iban_length:
        return (
            f"the IBAN {shown(iban)} has {len(iban)} characters; an IBAN of {country} has "
            f"{spec.iban_length}"
        )
    if not spec.regex.match(iban[4:]):
        return (
            f"the IBAN {shown(iban)} does not have the account part an IBAN of {country} has "
            f"({_in_words(spec.bban_spec)} after the check digits)"
        )
    if not _checksum_holds(iban):
        return (
            f"the IBAN {shown(iban)} fails its check digits (ISO 13616, mod 97): a character is "
            "wrong or two are swapped"
        )
    return None


def iban_is_valid(account_id: str) -> bool:
    """An IBAN by form, its country's length and account pattern, and its check digits."""
    return iban_problem(account_id) is None


def bic_problem(bic: str) -> str | None:
    """Why a BIC is not one by its form (ISO 9362 as SWIFT issues it) and its country, in one
    sentence, or None."""
    value = compact(bic)
    if not _BIC_FORM.fullmatch(value):
        return (
            f"the BIC {shown(value)} does not have a BIC's form (ISO 9362: four letters of the "
            "bank, two of the country, two letters or digits of the location, optionally three "
            "of the branch)"
        )
    country = value[4:6]
    if country not in _BIC_COUNTRIES_BEYOND_ISO and BIC(value, allow_invalid=True).country is None:
        return f"the BIC {shown(value)} names {country}, which is no country (ISO 3166)"
    return None
