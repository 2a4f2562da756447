"""Peppol participant ids (`<eas>:<value>`, e.g. `0088:4035811991021`): parsed, checked, written.

A participant id is an electronic address (BT-34 seller, BT-49 buyer; UBL `cbc:EndpointID` with
the scheme as `schemeID`) whose scheme is an EAS code (Electronic Address Scheme). What is checked
is what OpenPEPPOL's rules for Peppol BIS Billing 3.0 (release 3.0.19) check, so that an id this
module accepts never fails those rules in a document, and one it refuses would:

* the scheme is on the EAS code list as the rules carry it (PEPPOL-EN16931-CL008, `EAS_CODES`);
* the value passes the PEPPOL-COMMON rule of its scheme, where the rules have one: GLN 0088
  (GS1 check digit, R040), Norwegian organization number 0192 (mod 11, R041), Danish CVR 0184
  (format only, R042), Belgian enterprise number 0208 (mod 97, R043), Swedish organization number
  0007 (Luhn, R049), Australian ABN 0151 (mod 89, R050). These are fatal in the rules: the id is
  refused (`ParticipantIdError`). The Italian rules R044 (IPA code 0201), R045 (codice fiscale
  0210) and R047 (partita IVA 0211) are warnings in the rules: the id is accepted and
  `ParticipantId.warning` says what the rules will warn about.

Every other scheme (0204 Leitweg-ID, 9930 German VAT number, 0106 Dutch KvK, 0009 SIRET, ...) has
no checksum rule in the Peppol rules and is accepted as stated. The Leitweg-ID has check digits
of its own (KoSIT's specification), but neither the Peppol rules nor KoSIT's XRechnung rules
check them, and a refusal here would be stricter than the receiver.

Pure functions: no database, no network. docs/peppol.md names the sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The EAS codes PEPPOL-EN16931-CL008 accepts (rules 3.0.19, variable `eaid`), in their order.
EAS_CODES: tuple[str, ...] = tuple(
    """
    0002 0007 0009 0037 0060 0088 0096 0097 0106 0130 0135 0142 0151 0177 0183 0184 0188 0190
    0191 0192 0193 0195 0196 0198 0199 0200 0201 0202 0204 0208 0209 0210 0211 0212 0213 0215
    0216 0218 0221 0230 0235 9910 9913 9914 9915 9918 9919 9920 9922 9923 9924 9925 9926 9927
    9928 9929 9930 9931 9932 9933 9934 9935 9936 9937 9938 9939 9940 9941 9942 9943 9944 9945
    9946 9947 9948 9949 9950 9951 9952 9953 9957 9959 0147 0154 0158 0170 0194 0203 0205 0217
    0225 0240
    """.split()
)
_EAS = frozenset(EAS_CODES)

# the identifier scheme of Peppol participant ids, which may precede the id ("...::0088:...")
PARTICIPANT_SCHEME = "iso6523-actorid-upis"
# what the database column holds (migration 0041): the scheme, a colon and the value
MAX_LENGTH = 128

# a few schemes by name, for readable code and messages
LEITWEG_ID = "0204"
GERMAN_VAT = "9930"
GLN = "0088"
BELGIAN_ENTERPRISE = "0208"
SCHEME_NAMES = {
    "0007": "Swedish organization number",
    "0088": "GLN",
    "0151": "Australian Business Number (ABN)",
    "0184": "Danish CVR number",
    "0192": "Norwegian organization number",
    "0201": "Italian IPA code",
    "0204": "German Leitweg-ID",
    "0208": "Belgian enterprise number",
    "0210": "Italian codice fiscale",
    "0211": "Italian partita IVA",
    "9930": "German VAT number",
}


class ParticipantIdError(ValueError):
    """The text is not a Peppol participant id the Peppol rules accept; the message says why."""


@dataclass(frozen=True, slots=True)
class ParticipantId:
    scheme: str  # the EAS code, e.g. "0088"
    value: str  # e.g. "4035811991021"
    # what the Peppol rules will warn about in a document with this id (their warning-level
    # rules), or None
    warning: str | None = None

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"

    @property
    def with_scheme(self) -> str:
        """The id as the SMP and the transport name it: `iso6523-actorid-upis::0088:...`."""
        return f"{PARTICIPANT_SCHEME}::{self}"


def _digits(value: str) -> list[int]:
    return [int(char) for char in value]


def gln_ok(value: str) -> bool:
    """GS1: from the right, the digits before the check digit weigh 3, 1, 3, ...; the check digit
    makes the sum a multiple of 10 (PEPPOL-COMMON-R040 accepts any number of digits)."""
    if not re.fullmatch(r"[0-9]+", value):
        return False
    *body, check = _digits(value)
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def norwegian_ok(value: str) -> bool:
    """Nine digits, not all zero; from the right the first eight weigh 2..7, 2, 3 and the check
    digit is (11 - sum mod 11) mod 11 (a sum needing 10 has no valid number)."""
    if not re.fullmatch(r"[0-9]{9}", value) or int(value) == 0:
        return False
    *body, check = _digits(value)
    total = sum(d * (i % 6 + 2) for i, d in enumerate(reversed(body)))
    return (11 - total % 11) % 11 == check


def danish_ok(value: str) -> bool:
    """Eight digits, or DK and eight digits: R042 checks the format only."""
    return bool(re.fullmatch(r"(?:DK)?[0-9]{8}", value))


def belgian_ok(value: str) -> bool:
    """Ten digits whose last two are 97 minus the first eight mod 97."""
    if not re.fullmatch(r"[0-9]{10}", value):
        return False
    return 97 - int(value[:8]) % 97 == int(value[8:])


def _luhn_ok(number: str) -> bool:
    """Luhn: from the right, every second digit doubled (less 9 above 9); the sum of all,
    the check digit last, a multiple of 10."""
    total = 0
    for i, d in enumerate(reversed(_digits(number))):
        if i % 2 == 1:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return total % 10 == 0


def swedish_ok(value: str) -> bool:
    """Ten digits whose last is the Luhn check digit of the first nine."""
    return bool(re.fullmatch(r"[0-9]{10}", value)) and _luhn_ok(value)


_ABN_WEIGHTS = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)


def abn_ok(value: str) -> bool:
    """Eleven digits; the first less one, weighted 10, 1, 3, 5, ... 19, sum to a multiple of 89."""
    if not re.fullmatch(r"[0-9]{11}", value):
        return False
    digits = _digits(value)
    digits[0] -= 1
    return sum(d * w for d, w in zip(digits, _ABN_WEIGHTS, strict=True)) % 89 == 0


def ipa_ok(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9]{6}", value))


def codice_fiscale_ok(value: str) -> bool:
    """16 characters in the person's pattern (letters, digits at 7-8, 10-11 and 15, a letter at 9
    and 16), or an organization's 11 digits: the format R045 checks, not the check letter."""
    if len(value) == 11:
        return bool(re.fullmatch(r"[+-]?[0-9]+", value))
    return bool(re.fullmatch(r"[A-Za-z]{6}[0-9]{2}[A-Za-z][0-9]{2}...[0-9][A-Za-z]", value))


def partita_iva_ok(value: str) -> bool:
    """With the prefix IT: eleven digits, the last the Luhn check digit (the rules double every
    second digit from the first, the same for eleven digits). Without the prefix R047 checks
    nothing."""
    if value[:2] not in ("IT", "it"):
        return True
    number = value[2:]
    return bool(re.fullmatch(r"[0-9]{11}", number)) and _luhn_ok(number)


# scheme -> (check, the rule, what the value must be); fatal in the rules: refused
_FATAL = {
    "0088": (gln_ok, "PEPPOL-COMMON-R040", "digits with a valid GS1 check digit"),
    "0192": (norwegian_ok, "PEPPOL-COMMON-R041", "nine digits with a valid mod-11 check digit"),
    "0184": (danish_ok, "PEPPOL-COMMON-R042", "eight digits, or DK and eight digits"),
    "0208": (belgian_ok, "PEPPOL-COMMON-R043", "ten digits with valid mod-97 check digits"),
    "0007": (swedish_ok, "PEPPOL-COMMON-R049", "ten digits with a valid Luhn check digit"),
    "0151": (abn_ok, "PEPPOL-COMMON-R050", "eleven digits with a valid mod-89 checksum"),
}
# warnings in the rules: accepted, with the warning
_WARNING = {
    "0201": (ipa_ok, "PEPPOL-COMMON-R044", "six letters or digits"),
    "0210": (codice_fiscale_ok, "PEPPOL-COMMON-R045", "16 characters or 11 digits"),
    "0211": (partita_iva_ok, "PEPPOL-COMMON-R047", "IT and eleven digits with a valid check digit"),
}


def check_value(scheme: str, value: str) -> str | None:
    """The warning the Peppol rules give `value` under `scheme`, or None; ParticipantIdError when
    their fatal rule for the scheme refuses it."""
    name = SCHEME_NAMES.get(scheme, f"scheme {scheme}")
    if scheme in _FATAL:
        ok, rule, wanted = _FATAL[scheme]
        if not ok(value):
            raise ParticipantIdError(
                f"{scheme}:{value} is not a valid {name}: it must be {wanted} ({rule})"
            )
        return None
    if scheme in _WARNING:
        ok, rule, wanted = _WARNING[scheme]
        if not ok(value):
            return f"{scheme}:{value}: the Peppol rules will warn ({rule}): {name}: {wanted}"
    return None


_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


def parse_participant(text: str) -> ParticipantId:
    """`<eas>:<value>`, optionally preceded by `iso6523-actorid-upis::` (any case), blanks around
    it ignored. Raises ParticipantIdError naming what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ParticipantIdError("a Peppol participant id is '<scheme>:<value>', e.g. 0088:...")
    stated = text.strip()
    prefix = f"{PARTICIPANT_SCHEME}::"
    if stated.lower().startswith(prefix):
        stated = stated[len(prefix) :]
    scheme, colon, value = stated.partition(":")
    if not colon or not value:
        raise ParticipantIdError(
            f"{text.strip()!r} is not a Peppol participant id: expected '<scheme>:<value>' "
            "with a four-digit EAS scheme, e.g. 0088:4035811991021"
        )
    if not re.fullmatch(r"[0-9]{4}", scheme):
        raise ParticipantIdError(
            f"{text.strip()!r}: the scheme {scheme!r} is not a four-digit EAS code "
            "(PEPPOL-EN16931-CL008)"
        )
    if scheme not in _EAS:
        raise ParticipantIdError(
            f"{text.strip()!r}: {scheme} is not on the EAS code list the Peppol rules accept "
            "(PEPPOL-EN16931-CL008)"
        )
    if _CONTROL_OR_SPACE.search(value):
        raise ParticipantIdError(f"{text.strip()!r}: the value may not contain blanks")
    if len(scheme) + 1 + len(value) > MAX_LENGTH:
        raise ParticipantIdError(f"{text.strip()[:40]!r}...: longer than {MAX_LENGTH} characters")
    return ParticipantId(scheme, value, check_value(scheme, value))


def participant_or_none(text: str | None) -> ParticipantId | None:
    """A stored id parsed, or None for NULL / empty."""
    if text is None or not str(text).strip():
        return None
    return parse_participant(str(text))
