"""A company name as a person reads it: its core and its legal form, and how near two cores are.

An invoice from a new supplier whose name reads like a registered supplier's is the usual start
of invoice fraud: "Bürobedarf Schr0der GmbH", "Buerobedarf Schroeder GmbH" or "Bürobedarf
Schröder GmbH & Co. KG" for the registered "Bürobedarf Schröder GmbH", each with a VAT id and an
IBAN of its own. `name_core` reduces a name to what a reader takes in:

- German transliterations are one spelling (ä/ae, ö/oe, ü/ue, ß/ss), and so are a vowel with or
  without its diacritics (ő, ó, ò, ø are o; "Schroder" is "Schröder");
- letters of other scripts and invisible characters by the confusables skeleton (UTS #39, as
  `core.rules.lookalike_key`: a Greek Η is H, a zero-width space nothing, "rn" is "m");
- digits in a word that read as letters are those letters (0 o, 1 l, 3 e, 4 a, 5 s, 6 g, 7 t,
  8 b, 9 g, 2 z), and l, i and 1 are one letter; a word that is a number stays a number, and two
  names with other numbers are two names ("Lieferant 1", "Lieferant 2");
- case, spacing, punctuation, doubled letters and the words that join two names ("&", "und",
  "and") do not count;
- the legal form (GmbH, GmbH & Co. KG, AG, KG, UG (haftungsbeschränkt), OHG, e.K., mbB, Ltd,
  Inc, LLC, Corp, S.A., SARL, B.V., N.V., ...) at the end of the name is held apart
  (`legal_form`): "Schröder AG" and "Schröder GmbH" have one core.

`near(a, b)`: two cores are the same, or within an edit distance that grows with their length
(none up to 5 characters, one up to 11, two from 12): a typo-squatted name is one or two edits
from the original, while two real short names (Bosch, Busch) differ by one letter often enough
that short names must match exactly. docs/intake.md gives the false-alarm count of this rule on a
list of real company names.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

from invoice_pipelines.core.rules import lookalike_key

_TRANSLITERATED = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "ẞ": "SS"}
)
# after the confusables skeleton (which writes o as 0 and l, i as 1): each digit as the letter
# it reads as
_DIGITS_AS_LETTERS = str.maketrans(
    {
        "0": "o",
        "1": "l",
        "2": "z",
        "3": "e",
        "4": "a",
        "5": "s",
        "6": "g",
        "7": "t",
        "8": "b",
        "9": "g",
    }
)
# German transliterations folded to the plain vowel, so that "Schroeder", "Schröder" and
# "Schroder" are one core (both sides of a comparison go the same way)
_FOLDED_PAIRS = re.compile(r"ae|oe|ue")
_DOUBLED = re.compile(r"(.)\1+")
_WORD = re.compile(r"[^\W_]+|[&+]", re.UNICODE)

# Legal forms as their words (each folded by `_fold`); stripped from the end of a name, longest
# first, until none is left there. "&", "und", "and", "co", "cie" join forms ("GmbH & Co. KG").
_LEGAL_FORMS = (
    "gesellschaft mit beschränkter haftung",
    "aktiengesellschaft",
    "kommanditgesellschaft auf aktien",
    "kommanditgesellschaft",
    "offene handelsgesellschaft",
    "eingetragener kaufmann",
    "eingetragene kauffrau",
    "eingetragene genossenschaft",
    "eingetragener verein",
    "haftungsbeschränkt",
    "gmbh",
    "ggmbh",
    "gesmbh",
    "ges mbh",
    "mbh",
    "ag",
    "kgaa",
    "kg",
    "ug",
    "ohg",
    "gbr",
    "e k",
    "ek",
    "e kfm",
    "e kfr",
    "e v",
    "ev",
    "e g",
    "eg",
    "se",
    "partg",
    "partgmbb",
    "mbb",
    "co",
    "cie",
    "und",
    "and",
    "&",
    "+",
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "llc",
    "llp",
    "lp",
    "plc",
    "corp",
    "corporation",
    "company",
    "s a",
    "sa",
    "s a r l",
    "sarl",
    "s a s",
    "sas",
    "b v",
    "bv",
    "n v",
    "nv",
    "s r l",
    "srl",
    "s p a",
    "spa",
    "s l",
    "sl",
    "ab",
    "a s",
    "as",
    "oy",
    "oyj",
    "aps",
    "kft",
    "s r o",
    "sro",
    "sp z o o",
    "og",
)


def _fold(word: str) -> str:
    """One word as compared: transliterated, without diacritics, by its confusables skeleton,
    digits as the letters they read as, German vowel pairs folded, doubled letters single."""
    text = unicodedata.normalize("NFKC", word).translate(_TRANSLITERATED)
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    if text in ("&", "+"):
        return text
    if text.isdecimal():
        # a number of its own ("Werk 2", "Lieferant 1") is a number, not a disguised letter: its
        # digits in ASCII, without leading zeros (no int(): a hostile name's 5,000 digits)
        digits = "".join(str(unicodedata.decimal(c)) for c in text)
        return digits.lstrip("0") or "0"
    text = lookalike_key(text).translate(_DIGITS_AS_LETTERS)
    # the skeleton may leave marks of other scripts' letters: drop them too
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return _DOUBLED.sub(r"\1", _FOLDED_PAIRS.sub(lambda m: m.group(0)[0], text))


def _words(name: str) -> list[str]:
    # invisible characters (a zero-width space inside a word) must not split it
    visible = "".join(c for c in name if unicodedata.category(c) != "Cf")
    return [w for w in (_fold(w) for w in _WORD.findall(visible)) if w]


@cache
def _forms() -> list[tuple[str, ...]]:
    """The legal forms as folded words, longest first (built on first use: folding reads the
    confusables table, which a command that compares no names never loads)."""
    forms = {tuple(w for f in form.split() for w in _words(f)) for form in _LEGAL_FORMS} - {()}
    return sorted(forms, key=len, reverse=True)


@cache
def _connectors() -> frozenset[str]:
    """Words that join two names ("Meyer & Söhne", "Meyer und Söhne"): not part of the core."""
    return frozenset(w for c in ("&", "+", "und", "and", "et") for w in _words(c))


@lru_cache(maxsize=65536)
def split_name(name: str | None) -> tuple[str, str]:
    """(core, legal form) of a company name, each folded (see the module docstring); a name
    that is only a legal form keeps it as its core."""
    words = _words(name or "")
    end = len(words)
    while end > 1:
        form = next((f for f in _forms() if tuple(words[end - len(f) : end]) == f), None)
        if form is None or end - len(form) < 1:
            break
        end -= len(form)
    core = [w for w in words[:end] if w not in _connectors()] or words[:end]
    return "".join(core), " ".join(words[end:])


def name_core(name: str | None) -> str:
    return split_name(name)[0]


def legal_form(name: str | None) -> str:
    return split_name(name)[1]


def allowed_edits(core: str) -> int:
    """How many edits still read as the same name: none up to 5 characters, one up to 11, two
    from 12."""
    return 0 if len(core) < 6 else 1 if len(core) < 12 else 2


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (insertions, deletions, substitutions, swaps of two
    neighbours), or `limit + 1` as soon as it must exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, previous2[j - 2] + 1)
            row[j] = value
        if min(row) > limit:
            return limit + 1
        previous2, previous = previous, row
    return min(previous[-1], limit + 1)


_NUMBER = re.compile(r"\d+")


def letters_of(core: str) -> str:
    """A core without its numbers (the words of a name that are numbers of their own)."""
    return _NUMBER.sub("", core)


def near(a: str, b: str) -> bool:
    """Whether two cores read as one name: their letters the same or within `allowed_edits` (of
    the shorter), and their numbers the same where both have one ("Lieferant 1" and "Lieferant
    2" are two companies; "Schröder 2" still reads like "Schröder")."""
    numbers_a, numbers_b = _NUMBER.findall(a), _NUMBER.findall(b)
    if numbers_a and numbers_b and numbers_a != numbers_b:
        return False
    a, b = letters_of(a), letters_of(b)
    if not a or not b:
        return False
    limit = allowed_edits(min(a, b, key=len))
    return edit_distance(a, b, limit) <= limit
