"""DATEV EXTF files: the header line, the column lists and the field formats (no I/O).

Format facts (DATEV developer portal, dtvf pages):
- line 1 is the header (header version 700): format category 21 "Buchungsstapel" (format version
  13) or 16 "Debitoren/Kreditoren" (format version 5); line 2 the column names; then data rows;
- `;` separates fields, CRLF ends lines, text fields are in double quotes with inner quotes
  doubled, amounts have a decimal comma and no thousands separator;
- Belegdatum is TTMM: the year comes from the header's period, so one file never spans two years;
- the encoding is Windows-1252 unless the file starts with a UTF-8 byte-order mark.

German field names are DATEV's own (Umsatz = amount, Soll/Haben = debit/credit, Konto/Gegenkonto
= account/contra account, BU-Schlüssel = tax key, Belegfeld 1 = document number, Buchungstext =
posting text, Beraternummer/Mandantennummer = tax advisor/client number, Festschreibung = lock).

Every text field goes through `text_field` (or a stricter format: Belegfeld 1, VAT ids, country
codes): the values come from suppliers' documents and must neither break the file (a character
outside Windows-1252 used to stop the month's export) nor act in a spreadsheet that opens it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from invoice_pipelines.core.money import CENT
from invoice_pipelines.core.text import cut, defuse_formula, is_clean, printable

HEADER_VERSION = 700
BOOKINGS_CATEGORY, BOOKINGS_FORMAT_NAME, BOOKINGS_FORMAT_VERSION = 21, "Buchungsstapel", 13
PARTNERS_CATEGORY, PARTNERS_FORMAT_NAME, PARTNERS_FORMAT_VERSION = 16, "Debitoren/Kreditoren", 5
ORIGIN = "IP"  # Herkunft: two letters naming the exporting program

CP1252 = "cp1252"
UTF8_BOM = "utf-8-sig"

# Buchungsstapel, format version 13: all 125 columns in file order. Blocks of numbered columns are
# spelled out by the helpers below.


def _pairs(kind: str, content: str, count: int) -> list[str]:
    return [name for i in range(1, count + 1) for name in (f"{kind} {i}", f"{content} {i}")]


BOOKING_COLUMNS: tuple[str, ...] = (
    "Umsatz (ohne Soll/Haben-Kz)",
    "Soll/Haben-Kennzeichen",
    "WKZ Umsatz",
    "Kurs",
    "Basis-Umsatz",
    "WKZ Basis-Umsatz",
    "Konto",
    "Gegenkonto (ohne BU-Schlüssel)",
    "BU-Schlüssel",
    "Belegdatum",
    "Belegfeld 1",
    "Belegfeld 2",
    "Skonto",
    "Buchungstext",
    "Postensperre",
    "Diverse Adressnummer",
    "Geschäftspartnerbank",
    "Sachverhalt",
    "Zinssperre",
    "Beleglink",
    *_pairs("Beleginfo - Art", "Beleginfo - Inhalt", 8),
    "KOST1 - Kostenstelle",
    "KOST2 - Kostenstelle",
    "Kost-Menge",
    "EU-Land u. UStID (Bestimmung)",
    "EU-Steuersatz (Bestimmung)",
    "Abw. Versteuerungsart",
    "Sachverhalt L+L",
    "Funktionsergänzung L+L",
    "BU 49 Hauptfunktionstyp",
    "BU 49 Hauptfunktionsnummer",
    "BU 49 Funktionsergänzung",
    *_pairs("Zusatzinformation - Art", "Zusatzinformation- Inhalt", 20),
    "Stück",
    "Gewicht",
    "Zahlweise",
    "Forderungsart",
    "Veranlagungsjahr",
    "Zugeordnete Fälligkeit",
    "Skontotyp",
    "Auftragsnummer",
    "Buchungstyp",
    "USt-Schlüssel (Anzahlungen)",
    "EU-Mitgliedstaat (Anzahlungen)",
    "Sachverhalt L+L (Anzahlungen)",
    "EU-Steuersatz (Anzahlungen)",
    "Erlöskonto (Anzahlungen)",
    "Herkunft-Kz",
    "Leerfeld",
    "KOST-Datum",
    "SEPA-Mandatsreferenz",
    "Skontosperre",
    "Gesellschaftername",
    "Beteiligtennummer",
    "Identifikationsnummer",
    "Zeichnernummer",
    "Postensperre bis",
    "Bezeichnung SoBil-Sachverhalt",
    "Kennzeichen SoBil-Buchung",
    "Festschreibung",
    "Leistungsdatum",
    "Datum Zuord. Steuerperiode",
    "Fälligkeit",
    "Generalumkehr",
    "Steuersatz",
    "Land",
    "Abrechnungsreferenz",
    "BVV-Position",
    "EU-Mitgliedstaat u. UStID (Ursprung)",
    "EU-Steuersatz (Ursprung)",
    "Abw. Skontokonto",
)

# 1-based positions of the text fields (written in quotes, "" when empty); all others are numbers,
# dates or flags and are written bare (empty when unset).
BOOKING_TEXT_FIELDS: frozenset[int] = frozenset(
    {2, 3, 6, 9, 11, 12, 14, 16, 20, *range(21, 39), 40, 42, *range(48, 88)}
    | {91, 95, 96, 98, 102, 103, 105, 107, 109, 110, 112, 118, 120, 121, 123}
)

# Debitoren/Kreditoren (format version 5): the leading columns, which carry everything a partner
# account needs (account, name, type, EU VAT id, address). DATEV reads the columns by position; a
# row may stop before the format's last column.
PARTNER_COLUMNS: tuple[str, ...] = (
    "Konto",
    "Name (Adressattyp Unternehmen)",
    "Unternehmensgegenstand",
    "Name (Adressattyp natürl. Person)",
    "Vorname (Adressattyp natürl. Person)",
    "Name (Adressattyp keine Angabe)",
    "Adressattyp",
    "Kurzbezeichnung",
    "EU-Land",
    "EU-UStID",
    "Anrede",
    "Titel/Akad. Grad",
    "Adelstitel",
    "Namensvorsatz",
    "Adressart",
    "Straße",
    "Postfach",
    "Postleitzahl",
    "Ort",
    "Land",
)
PARTNER_TEXT_FIELDS: frozenset[int] = frozenset(range(2, 21))

# The EU member states by the prefix of their VAT ids (Greece uses EL, ISO code GR).
EU_VAT_PREFIXES = frozenset(
    "AT BE BG CY CZ DE DK EE EL ES FI FR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK XI".split()
)
ISO_OF_VAT_PREFIX = {"EL": "GR", "XI": "GB"}


class DatevFieldError(ValueError):
    """A value that cannot be written into a DATEV field."""


# ---------------------------------------------------------------------------------------------
# Field formats


_FALLBACK = {
    "Ł": "L",
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "Ħ": "H",
    "ħ": "h",
    "ı": "i",
    "ĸ": "k",
    "ŀ": "l",
    "Ŀ": "L",
    "ŉ": "n",
    "Ŧ": "T",
    "ŧ": "t",
    "ẞ": "SS",
    "‐": "-",
    "‑": "-",
    "−": "-",
    "„": '"',
    "‚": "'",
    "\u00a0": " ",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def transliterate(value: str, encoding: str = CP1252) -> str:
    """`value` with every character the encoding lacks replaced by its closest plain letters.

    Characters the encoding has stay as they are (umlauts, ß and € are in Windows-1252). Others lose
    their accents (NFKD: "ő" -> "o", "ș" -> "s"), a few letters without a decomposition have a
    fixed spelling ("Ł" -> "L"), and what is left becomes "?". Control characters (line breaks,
    tabs) become one space: a field never spans lines.
    """
    value = _CONTROL.sub(" ", value)
    if encoding != CP1252:
        return value
    try:
        value.encode(CP1252)
        return value  # the common case: nothing to replace
    except UnicodeEncodeError:
        pass
    out = []
    for char in value:
        try:
            char.encode(CP1252)
            out.append(char)
            continue
        except UnicodeEncodeError:
            pass
        if char in _FALLBACK:
            out.append(_FALLBACK[char])
            continue
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        try:
            plain.encode(CP1252)
            out.append(plain or "?")
        except UnicodeEncodeError:
            out.append("?")
    return "".join(out)


# the bytes where Latin-1 and Windows-1252 differ (C1 controls in Latin-1, €, ‚ ƒ ... in cp1252)
_C1_BYTES = re.compile(rb"[\x80-\x9f]")


def cp1252_bytes(text: str) -> bytes:
    """`text.encode("cp1252")`, byte for byte and error for error, without the charmap codec
    where it is not needed (it takes about 2.5 ms a megabyte; a month's Buchungsstapel has ten):
    ASCII is the same bytes in both, and so is Latin-1 text without a character in U+0080-U+009F
    (Windows-1252 has the Latin-1 letters at the same places and differs only in 0x80-0x9F)."""
    if text.isascii():
        return text.encode("ascii")
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:  # a character above U+00FF (€, Ł, ...): the codec decides
        return text.encode(CP1252)
    if _C1_BYTES.search(data) is None:
        return data
    return text.encode(CP1252)


def _encodes(text: str) -> bool:
    try:
        text.encode(CP1252)
    except UnicodeEncodeError:
        return False
    return True


def quote(value: str | None) -> str:
    """A text field: in double quotes, inner quotes doubled."""
    return '"' + (value or "").replace('"', '""') + '"'


# what a clean printable ASCII text may not start with: a formula character or a space
_ASCII_NOT_FIRST = frozenset("=+@- ")


def text_field(value: str | None, max_length: int, encoding: str = CP1252) -> str:
    """`core.text`'s rules (no invisible or control characters, a leading `'` before a formula),
    transliterated, cut to `max_length` characters, quoted."""
    text = value or ""
    if len(text) <= max_length and (
        # printable ASCII (the common case) is clean unless it starts with a formula character
        # or a space or ends with a space, and every encoding has it
        (text.isprintable() and text[:1] not in _ASCII_NOT_FIRST and text[-1:] != " ")
        if text.isascii()
        else (
            is_clean(text)
            and not text[:1].isspace()
            and not text[-1:].isspace()
            and (encoding != CP1252 or _encodes(text))
        )
    ):
        return '"' + text.replace('"', '""') + '"'  # the common case: nothing to change
    text = transliterate(printable(text), encoding).strip()
    return quote(cut(defuse_formula(text), max_length, marker=""))


# the same few values on every row of a month (currencies, cost centres): worked out once
_cached_text_field = lru_cache(maxsize=256)(text_field)

_VAT_ID = re.compile(r"[A-Z]{2}[0-9A-Z+*]{2,13}")
_NOT_IN_VAT_ID = re.compile(r"[^0-9A-Z+*]+")


def vat_id_field(value: str | None) -> str | None:
    """A VAT id as DATEV takes it: country prefix and up to 13 letters, digits, `+` or `*`,
    without spaces, dots, dashes or any other character; None when what is left is no VAT id."""
    compact = _NOT_IN_VAT_ID.sub("", (value or "").upper())
    return compact if _VAT_ID.fullmatch(compact) else None


def country_field(value: str | None) -> str:
    """An ISO 3166 alpha-2 code in capitals, or "" for anything else."""
    code = printable(value or "").strip().upper()[:2]
    return code if re.fullmatch(r"[A-Z]{2}", code) else ""


def amount(value: Decimal) -> str:
    """Umsatz: cents with a decimal comma, no sign, no thousands separator (`^\\d{1,10},\\d{2}$`)."""
    cents = abs(value).quantize(CENT, rounding=ROUND_HALF_UP)
    text = format(cents, "f")
    if len(text) > 13:
        raise DatevFieldError(f"amount {value} has more than 10 digits before the decimal comma")
    return text.replace(".", ",")


def discount_field(value: Decimal) -> str:
    """Skonto (column 13): the discount taken with a payment, cents with a decimal comma and no
    sign; DATEV's format description: `^([1-9]\\d{0,7}[,]\\d{2})$`, "Skontobetrag ... nur bei
    Zahlungsbuchungen zulässig", the value 0 not allowed (so a discount is written only where
    there is one). At most 8 digits before the comma."""
    cents = value.quantize(CENT, rounding=ROUND_HALF_UP)
    if cents <= 0:
        raise DatevFieldError(f"a Skonto amount must be above 0, not {value}")
    text = format(cents, "f")
    if len(text) > 11:
        raise DatevFieldError(f"the Skonto amount {value} has more than 8 digits before the comma")
    return text.replace(".", ",")


def rate_field(value: Decimal) -> str:
    """An exchange rate (Kurs): `^[1-9]\\d{0,3},\\d{2,6}$`."""
    text = format(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP).normalize(), "f")
    whole, _, fraction = text.partition(".")
    fraction = (fraction + "00")[: max(2, len(fraction))]
    result = f"{whole},{fraction}"
    if not re.fullmatch(r"[1-9]\d{0,3},\d{2,6}", result):
        raise DatevFieldError(
            f"exchange rate {value} cannot be written in DATEV's Kurs field (1,00 to 9999,999999)"
        )
    return result


def ttmm(day: date) -> str:
    return f"{day.day:02d}{day.month:02d}"


def ttmmjjjj(day: date) -> str:
    return f"{day.day:02d}{day.month:02d}{day.year:04d}"


def ttmmjj(day: date) -> str:
    return f"{day.day:02d}{day.month:02d}{day.year % 100:02d}"


def yyyymmdd(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


_UMLAUTS = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
_NOT_IN_BELEGFELD = re.compile(r"[^A-Za-z0-9$%&*+\-/]+")
_BELEGFELD = re.compile(r"[A-Za-z0-9$%&*+\-/]*")


def belegfeld(number: str | None, max_length: int = 36) -> str:
    """An invoice number in the characters Belegfeld 1 allows: letters, digits and $ % & * + - /.

    Umlauts are spelled out, accents dropped, invisible characters removed; every run of other
    characters (spaces, dots, underscores, colons) becomes one "-". It never starts with "+" or
    "-" (a spreadsheet would take it for a formula) nor ends with "-". The result is cut to
    `max_length` characters.
    """
    number = number or ""
    if (
        _BELEGFELD.fullmatch(number)
        and not number.startswith(("-", "+"))
        and not number.endswith("-")
    ):
        return number[:max_length]  # the common case: nothing to change
    value = "".join(_UMLAUTS.get(c, c) for c in printable(number))
    value = "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))
    value = _NOT_IN_BELEGFELD.sub("-", value).lstrip("+-").rstrip("-")
    return value[:max_length].rstrip("-")


def bu_key(key: str | None) -> str:
    """BU-Schlüssel: four digits in quotes ("0009"); "" when the account is an automatic one."""
    if not key:
        return '""'
    if not re.fullmatch(r"\d{1,4}", key):
        raise DatevFieldError(f"BU key {key!r} is not 1 to 4 digits")
    return quote(key.zfill(4))


def eu_country(vat_id: str | None) -> str | None:
    """The ISO country of an EU VAT id ("ATU12345678" -> "AT"), None outside the EU."""
    prefix = (vat_id or "").strip().upper()[:2]
    if prefix not in EU_VAT_PREFIXES:
        return None
    return ISO_OF_VAT_PREFIX.get(prefix, prefix)


# ---------------------------------------------------------------------------------------------
# Header


@dataclass(frozen=True)
class Header:
    """The values of line 1 that come from the organization and the period."""

    adviser_number: int  # Beraternummer
    client_number: int  # Mandantennummer
    fiscal_year_start: date  # WJ-Beginn
    account_length: int  # Sachkontenlänge, 4..8
    period_start: date  # Datum vom
    period_end: date  # Datum bis
    description: str  # Bezeichnung, <= 30 characters
    chart: str  # Sachkontenrahmen: "03" (SKR03) or "04" (SKR04)
    currency: str = "EUR"  # WKZ
    closed: bool = False  # Festschreibung
    initials: str = ""  # Diktatkürzel, 0 or 2 letters
    created: datetime | None = None  # Erzeugt am

    def check(self) -> None:
        """Raise DatevFieldError with one sentence for the first value DATEV would refuse."""
        if not 1001 <= self.adviser_number <= 9999999:
            raise DatevFieldError(
                f"the Beraternummer {self.adviser_number} is outside 1001..9999999"
            )
        if not 1 <= self.client_number <= 99999:
            raise DatevFieldError(f"the Mandantennummer {self.client_number} is outside 1..99999")
        if not 4 <= self.account_length <= 8:
            raise DatevFieldError(
                f"the Sachkontenlänge {self.account_length} is outside 4..8 digits"
            )
        if self.chart not in ("03", "04"):
            raise DatevFieldError(f"the chart of accounts {self.chart!r} is not SKR03 or SKR04")
        if self.period_start.year != self.period_end.year or self.period_start > self.period_end:
            raise DatevFieldError("a DATEV file's period must lie within one calendar year")
        if not re.fullmatch(r"([A-Z]{2})?", self.initials):
            raise DatevFieldError(f"the Diktatkürzel {self.initials!r} is not two letters")
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise DatevFieldError(f"the currency {self.currency!r} is not an ISO 4217 code")


_BEZEICHNUNG = re.compile(r"[^\w.\-/ ]+", re.ASCII)


def header_fields(header: Header, *, category: int) -> list[str]:
    """The 31 fields of line 1, formatted."""
    header.check()
    if category == BOOKINGS_CATEGORY:
        name, version = BOOKINGS_FORMAT_NAME, BOOKINGS_FORMAT_VERSION
    elif category == PARTNERS_CATEGORY:
        name, version = PARTNERS_FORMAT_NAME, PARTNERS_FORMAT_VERSION
    else:
        raise DatevFieldError(f"unknown format category {category}")
    created = header.created or datetime.now()
    stamp = created.strftime("%Y%m%d%H%M%S") + f"{created.microsecond // 1000:03d}"
    description = _BEZEICHNUNG.sub(" ", belegfeld_safe_text(header.description))[:30].strip()
    bookings = category == BOOKINGS_CATEGORY
    return [
        quote("EXTF"),
        str(HEADER_VERSION),
        str(category),
        quote(name),
        str(version),
        stamp,
        "",  # imported (DATEV fills it)
        quote(ORIGIN),
        quote(""),  # exported by
        quote(""),  # imported by
        str(header.adviser_number),
        str(header.client_number),
        yyyymmdd(header.fiscal_year_start),
        str(header.account_length),
        yyyymmdd(header.period_start) if bookings else "",
        yyyymmdd(header.period_end) if bookings else "",
        quote(description),
        quote(header.initials),
        "1" if bookings else "",  # Buchungstyp 1 = Finanzbuchführung
        "0" if bookings else "",  # Rechnungslegungszweck: none specific
        ("1" if header.closed else "0") if bookings else "",
        quote(header.currency if bookings else ""),
        "",
        quote(""),  # Derivatskennzeichen
        "",
        "",
        quote(header.chart),
        "",  # ID der Branchenlösung
        "",
        quote(""),
        quote(""),  # Anwendungsinformation
    ]


def belegfeld_safe_text(value: str) -> str:
    """Text for the header's Bezeichnung: umlauts spelled out, accents dropped."""
    value = "".join(_UMLAUTS.get(c, c) for c in value)
    return "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))


def column_line(columns: Sequence[str]) -> list[str]:
    """Line 2: the column names, unquoted as in DATEV's own files."""
    return list(columns)


def join_line(fields: Sequence[str]) -> str:
    return ";".join(fields) + "\r\n"


# ---------------------------------------------------------------------------------------------
# Booking rows


@dataclass(slots=True)
class Booking:
    """One row of a Buchungsstapel: one invoice's amount at one VAT rate."""

    amount: Decimal  # gross of this rate, > 0 (the sign is in `side`)
    side: str  # "S" (Soll, debit) or "H" (Haben, credit), relative to `account`
    currency: str
    account: int  # Konto: the creditor/debtor account
    contra_account: int  # Gegenkonto: expense/revenue account
    tax_key: str | None  # BU-Schlüssel; None on automatic accounts
    document_date: date  # Belegdatum
    document_number: str  # Belegfeld 1 (already restricted to DATEV's characters)
    text: str  # Buchungstext
    due_date: date | None = None  # Belegfeld 2 and Fälligkeit
    service_date: date | None = None  # Leistungsdatum
    eu_vat_id: str | None = None  # EU-Land u. UStID: the partner's VAT id (EU partners)
    cost_center_1: str | None = None
    cost_center_2: str | None = None
    exchange_rate: Decimal | None = None  # Kurs: units of `currency` per unit of base currency
    base_amount: Decimal | None = None  # Basis-Umsatz in the organization's currency
    base_currency: str | None = None
    # Beleglink: the GUID of the booking's document in the DATEV document package, written as
    # BEDI "<GUID>" (BEDI: DATEV's own document archive, Belege online)
    document_link: str | None = None
    # a payment booking only: the discount (Skonto) taken with it, and the account it goes to
    # ("Abw. Skontokonto", column 125: the organization's "Gewährte Skonti" account of the rate)
    discount: Decimal | None = None
    discount_account: int | None = None


_EMPTY_BOOKING = ['""' if position in BOOKING_TEXT_FIELDS else "" for position in range(1, 126)]
assert len(BOOKING_COLUMNS) == 125 == len(_EMPTY_BOOKING)


def booking_fields(booking: Booking, encoding: str = CP1252) -> list[str]:
    """The 125 fields of one data row, formatted."""
    if booking.amount <= 0:
        raise DatevFieldError("a booking amount must be positive; the side carries the sign")
    if booking.side not in ("S", "H"):
        raise DatevFieldError(f"Soll/Haben must be S or H, not {booking.side!r}")
    row = list(_EMPTY_BOOKING)
    row[0] = amount(booking.amount)
    row[1] = quote(booking.side)
    row[2] = _cached_text_field(booking.currency, 3, encoding)
    if booking.exchange_rate is not None and booking.base_amount is not None:
        row[3] = rate_field(booking.exchange_rate)
        row[4] = amount(booking.base_amount)
        row[5] = _cached_text_field(booking.base_currency, 3, encoding)
    row[6] = str(booking.account)
    row[7] = str(booking.contra_account)
    row[8] = bu_key(booking.tax_key)
    row[9] = ttmm(booking.document_date)
    row[10] = quote(belegfeld(booking.document_number))
    if booking.due_date is not None:
        row[11] = quote(ttmmjj(booking.due_date))
        row[116] = ttmmjjjj(booking.due_date)
    if booking.discount is not None:
        row[12] = discount_field(booking.discount)
    row[13] = text_field(booking.text, 60, encoding)
    if booking.document_link:
        row[19] = beleglink_field(booking.document_link)
    if booking.cost_center_1:
        row[36] = _cached_text_field(booking.cost_center_1, 36, encoding)
    if booking.cost_center_2:
        row[37] = _cached_text_field(booking.cost_center_2, 36, encoding)
    if booking.eu_vat_id:
        row[39] = quote(vat_id_field(booking.eu_vat_id))
    if booking.service_date is not None:
        row[114] = ttmmjjjj(booking.service_date)
    if booking.discount_account is not None:
        row[124] = str(booking.discount_account)
    return row


BELEGLINK_SYSTEM = "BEDI"  # Belege online, where DATEV's document import files a package


def beleglink_field(guid: str) -> str:
    """The Beleglink field of a booking whose document is `guid` in a DATEV document package:
    BEDI "<GUID>", quoted as every text field (inner quotes doubled)."""
    return quote(f'{BELEGLINK_SYSTEM} "{guid}"')


def _segment(start: int, stop: int) -> str:
    return "".join(";" + _EMPTY_BOOKING[i] for i in range(start, stop))


# the runs of columns a booking never fills, joined once (positions 14-18, 20-35, 40-113,
# 117-123; 19 is the Beleglink, 124 a payment's discount account)
_UNUSED_14_19 = _segment(14, 19)
_UNUSED_20_36 = _segment(20, 36)
_UNUSED_40_114 = _segment(40, 114)
_UNUSED_117_124 = _segment(117, 124)
_EMPTY_TEXT = '""'
# a month's rows carry a few dozen distinct dates: each is formatted once
_ttmm = lru_cache(maxsize=1024)(ttmm)
_ttmmjj = lru_cache(maxsize=1024)(ttmmjj)
_ttmmjjjj = lru_cache(maxsize=1024)(ttmmjjjj)
# and a few BU keys and partners' VAT ids
_bu_key = lru_cache(maxsize=256)(bu_key)
_vat_id_field = lru_cache(maxsize=4096)(vat_id_field)


def booking_line(booking: Booking, encoding: str = CP1252) -> str:
    """`booking_fields` joined into one line with its CRLF, built from the constant runs of unused
    columns instead of 125 separate fields (a month has tens of thousands of rows). A property
    test keeps the two identical."""
    if booking.amount <= 0:
        raise DatevFieldError("a booking amount must be positive; the side carries the sign")
    if booking.side not in ("S", "H"):
        raise DatevFieldError(f"Soll/Haben must be S or H, not {booking.side!r}")
    if booking.exchange_rate is not None and booking.base_amount is not None:
        foreign = (
            f"{rate_field(booking.exchange_rate)};{amount(booking.base_amount)};"
            f"{_cached_text_field(booking.base_currency, 3, encoding)}"
        )
    else:
        foreign = ';;""'
    due = booking.due_date
    return (
        f'{amount(booking.amount)};"{booking.side}";{_cached_text_field(booking.currency, 3, encoding)};'
        f"{foreign};"
        f"{booking.account};{booking.contra_account};{_bu_key(booking.tax_key)};"
        f"{_line_tail(booking, due, encoding)}"
    )


def _line_tail(booking: Booking, due, encoding: str) -> str:
    """A booking line from the document date (column 10) to its end, CRLF included."""
    discount = booking.discount
    return (
        f"{_ttmm(booking.document_date)};{quote(belegfeld(booking.document_number))};"
        f"{quote(_ttmmjj(due)) if due else _EMPTY_TEXT};"
        f"{discount_field(discount) if discount is not None else ''};"
        f"{text_field(booking.text, 60, encoding)}"
        f"{_line_rest(booking, due, encoding)}"
    )


def _line_rest(booking: Booking, due, encoding: str) -> str:
    """A booking line from after the Buchungstext (column 14) to its end, CRLF included."""
    discount_account = booking.discount_account
    return (
        f"{_UNUSED_14_19};"
        f"{beleglink_field(booking.document_link) if booking.document_link else _EMPTY_TEXT}"
        f"{_UNUSED_20_36};"
        f"{_cached_text_field(booking.cost_center_1, 36, encoding) if booking.cost_center_1 else _EMPTY_TEXT};"
        f"{_cached_text_field(booking.cost_center_2, 36, encoding) if booking.cost_center_2 else _EMPTY_TEXT};;"
        f"{quote(_vat_id_field(booking.eu_vat_id)) if booking.eu_vat_id else _EMPTY_TEXT}"
        f"{_UNUSED_40_114};"
        f"{_ttmmjjjj(booking.service_date) if booking.service_date else ''};;"
        f"{_ttmmjjjj(due) if due else ''}"
        f"{_UNUSED_117_124};{discount_account if discount_account is not None else ''}\r\n"
    )


class BookingLines:
    """`booking_line` for the rows of one file, with less work per row (a month has tens of
    thousands): what every row of an account and currency shares, what each contra account and
    BU key gives, and the rest of the line a row shares with the row before it (one invoice's rows
    differ only in amount, side, contra account and BU key) are formatted once, and an amount
    already in cents is written from its own digits. Of that rest, only the document number and
    the posting text are an invoice's own: the fields around them (dates, cost centres, the
    partner's VAT id, the Beleglink) repeat over the month and are formatted once each.
    `line(b)` is `booking_line(b, encoding)`, character for character and error for error (a
    property test keeps them identical)."""

    __slots__ = ("encoding", "_heads", "_terms", "_tail_key", "_tail", "_dates", "_dues", "_rests")

    def __init__(self, encoding: str = CP1252) -> None:
        self.encoding = encoding
        self._heads: dict[tuple, str] = {}  # (currency, account) -> "WKZ;;;"";Konto;"
        self._terms: dict[tuple, str] = {}  # (contra account, BU key) -> "Gegenkonto;BU;"
        self._tail_key: tuple | None = None
        self._tail = ""  # Belegdatum up to the line end, for the fields in `_tail_key`
        self._dates: dict = {}  # Belegdatum -> "TTMM;"
        self._dues: dict = {}  # due date -> ";Belegfeld 2;Skonto;" (no discount here)
        self._rests: dict[tuple, str] = {}  # from after Buchungstext to the line end

    def line(self, booking: Booking) -> str:
        value = booking.amount
        if value <= 0:
            raise DatevFieldError("a booking amount must be positive; the side carries the sign")
        side = booking.side
        if side not in ("S", "H"):
            raise DatevFieldError(f"Soll/Haben must be S or H, not {side!r}")
        encoding = self.encoding
        if booking.discount is not None or booking.discount_account is not None:
            # a payment with its discount (a few per month): the plain way
            return booking_line(booking, encoding)
        if booking.exchange_rate is not None and booking.base_amount is not None:
            head = (
                f"{_cached_text_field(booking.currency, 3, encoding)};"
                f"{rate_field(booking.exchange_rate)};{amount(booking.base_amount)};"
                f"{_cached_text_field(booking.base_currency, 3, encoding)};{booking.account};"
            )
        else:
            key = (booking.currency, booking.account)
            head = self._heads.get(key)
            if head is None:
                head = (
                    f'{_cached_text_field(booking.currency, 3, encoding)};;;"";{booking.account};'
                )
                self._heads[key] = head
        text = str(value) if type(value) is Decimal else ""
        if len(text) <= 13 and text[-3:-2] == ".":
            # already in cents ("1234.50"): `amount` would quantize and format the same digits
            text = f"{text[:-3]},{text[-2:]}"
        else:
            text = amount(value)
        key = (booking.contra_account, booking.tax_key)
        terms = self._terms.get(key)
        if terms is None:
            terms = f"{booking.contra_account};{_bu_key(booking.tax_key)};"
            self._terms[key] = terms
        due = booking.due_date
        key = (
            booking.document_date,
            booking.document_number,
            due,
            booking.text,
            booking.cost_center_1,
            booking.cost_center_2,
            booking.eu_vat_id,
            booking.service_date,
            booking.document_link,
        )
        if key != self._tail_key:
            self._tail = self._new_tail(booking, due)
            self._tail_key = key
        return f'{text};"{side}";{head}{terms}{self._tail}'

    def _new_tail(self, booking: Booking, due) -> str:
        """`_line_tail` of a booking without a discount, from the parts that repeat."""
        day = booking.document_date
        date_part = self._dates.get(day)
        if date_part is None:
            date_part = self._dates[day] = f"{_ttmm(day)};"
        due_part = self._dues.get(due)
        if due_part is None:
            due_part = self._dues[due] = f";{quote(_ttmmjj(due)) if due else _EMPTY_TEXT};;"
        key = (
            booking.document_link,
            booking.cost_center_1,
            booking.cost_center_2,
            booking.eu_vat_id,
            booking.service_date,
            due,
        )
        rest = self._rests.get(key)
        if rest is None:
            rest = self._rests[key] = _line_rest(booking, due, self.encoding)
        return (
            f"{date_part}{quote(belegfeld(booking.document_number))}{due_part}"
            f"{text_field(booking.text, 60, self.encoding)}{rest}"
        )


def partner_fields(
    account: int,
    name: str,
    *,
    vat_id: str | None = None,
    street: str | None = None,
    postal_code: str | None = None,
    city: str | None = None,
    country: str | None = None,
    encoding: str = CP1252,
) -> list[str]:
    """One row of a Debitoren/Kreditoren file (companies: Adressattyp 2)."""
    row = ['""' if p in PARTNER_TEXT_FIELDS else "" for p in range(1, len(PARTNER_COLUMNS) + 1)]
    row[0] = str(account)
    row[1] = text_field(name, 50, encoding)
    row[6] = quote("2")
    row[7] = text_field(name, 15, encoding)
    compact = vat_id_field(vat_id)
    if compact and eu_country(compact):
        row[8] = quote(compact[:2])
        row[9] = quote(compact[2:15])
    if street:
        row[15] = text_field(street, 36, encoding)
    if postal_code:
        row[17] = text_field(postal_code, 10, encoding)
    if city:
        row[18] = text_field(city, 30, encoding)
    if country:
        row[19] = quote(country_field(country))
    return row
