"""A held-out set for the text path: invoice PDFs with a text layer, generated with known truth.

The shared samples are few and the reader was tuned on them; this set is made here, deterministic
from a seed, and varies what real suppliers vary: the label language (German, English, French),
number and date formats, the table's column order and which columns it has, one to three VAT
rates, the VAT breakdown printed or not (then the table's rate column is the only proof), long
descriptions wrapped onto a second line, a prepaid amount, long tables broken over pages with
carried-forward sums, and where the seller's name stands (letterhead left or right, or only in a
sender line and the footer). Tune on one seed, report on another.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ROWS_PER_PAGE = 22


@dataclass(frozen=True)
class Language:
    code: str
    title: str
    number: str
    issue: str
    due: str
    columns: dict[str, tuple[str, ...]]
    net: tuple[str, ...]
    vat: tuple[str, ...]
    vat_on: str
    gross: tuple[str, ...]
    prepaid: tuple[str, ...]
    due_amount: tuple[str, ...]
    carried: tuple[str, ...]
    buyer: tuple[str, ...]
    rates: tuple[Decimal, ...]
    currencies: tuple[str, ...]
    legal: tuple[str, ...]
    units: tuple[str, ...]
    items: tuple[str, ...]
    vat_id: str
    title_words: tuple[str, str]  # "Rechnung Nr.", "vom"
    breakdown_header: tuple[str, str, str]  # rate, basis, VAT
    months: tuple[str, ...] = ()


DE = Language(
    "de",
    "Rechnung",
    "Rechnungsnummer",
    "Rechnungsdatum",
    "Fällig am",
    {
        "pos": ("Pos.", "Nr."),
        "desc": ("Beschreibung", "Bezeichnung", "Artikel", "Leistung"),
        "qty": ("Menge", "Anzahl"),
        "price": ("Einzelpreis", "E-Preis", "Preis/Einh."),
        "rate": ("USt %", "MwSt.", "Steuer"),
        "amount": ("Betrag", "Gesamt", "Gesamtpreis", "Summe"),
    },
    ("Nettobetrag", "Summe netto", "Warenwert netto"),
    ("MwSt", "Umsatzsteuer", "zzgl. USt"),
    "{label} {rate} % auf {basis}",
    ("Gesamtbetrag", "Rechnungsbetrag", "Summe brutto"),
    ("Anzahlung", "bereits gezahlt", "Vorauszahlung"),
    ("Zahlbetrag", "Offener Betrag", "Noch zu zahlen"),
    ("Übertrag", "Zwischensumme"),
    ("Rechnung an:", "Kunde:", ""),
    (Decimal("19"), Decimal("7")),
    ("EUR",),
    ("GmbH", "AG", "KG", "e.K."),
    ("Stk", "Std", "m", "kg"),
    (
        "Wartung Heizungsanlage",
        "Kopierpapier A4 80 g",
        "Beratung Projektphase",
        "Montage vor Ort",
        "Fachbuch Steuerrecht",
        "Lieferpauschale",
        "Reinigung Büroräume",
        "Softwarelizenz Jahresabo",
        "Druckerpatrone schwarz",
        "Anfahrt Techniker",
    ),
    "USt-IdNr.",
    ("Rechnung Nr.", "vom"),
    ("USt-Satz", "Nettobetrag", "USt-Betrag"),
)
EN = Language(
    "en",
    "Invoice",
    "Invoice No.",
    "Invoice Date",
    "Due Date",
    {
        "pos": ("Item", "No."),
        "desc": ("Description", "Item description", "Product"),
        "qty": ("Qty", "Quantity", "Units"),
        "price": ("Unit Price", "Price", "Rate"),
        "rate": ("VAT %", "VAT", "Tax rate"),
        "amount": ("Amount", "Total", "Line total", "Net amount"),
    },
    ("Subtotal", "Net amount", "Total excl. VAT"),
    ("VAT", "Tax"),
    "{label} {rate}% on {basis}",
    ("Total", "Invoice total", "Total incl. VAT"),
    ("Prepaid", "Amount paid", "Less deposit paid"),
    ("Amount due", "Balance due", "Amount payable"),
    ("Carried forward", "Brought forward"),
    ("Bill to:", "Invoice to:", ""),
    (Decimal("20"), Decimal("5")),
    ("EUR", "GBP"),
    ("Ltd", "Limited", "LLP", "plc"),
    ("pcs", "hrs", "days", "box"),
    (
        "Website maintenance",
        "Office chairs ergonomic",
        "Consulting services",
        "Installation on site",
        "Printer toner cyan",
        "Delivery charge",
        "Cleaning of premises",
        "Annual software licence",
        "Training workshop",
        "Travel expenses engineer",
    ),
    "VAT Reg. No.",
    ("Invoice no.", "dated"),
    ("VAT rate", "Net", "VAT amount"),
    (
        "January February March April May June July August September October November December"
    ).split(),
)
FR = Language(
    "fr",
    "Facture",
    "N° de facture",
    "Date de facture",
    "Date d'échéance",
    {
        "pos": ("Réf.", "N°"),
        "desc": ("Désignation", "Description", "Libellé"),
        "qty": ("Qté", "Quantité"),
        "price": ("Prix unitaire HT", "P.U. HT", "Prix unit."),
        "rate": ("TVA %", "TVA", "Taux"),
        "amount": ("Montant HT", "Total HT", "Montant"),
    },
    ("Total HT", "Montant HT"),
    ("TVA", "Montant TVA"),
    "{label} {rate} % sur {basis}",
    ("Total TTC", "Montant TTC"),
    ("Acompte", "Déjà réglé", "Acompte versé"),
    ("Net à payer", "Reste à payer", "Montant dû"),
    ("Report", "À reporter", "Sous-total"),
    ("Facturé à :", "Client :", ""),
    (Decimal("20"), Decimal("10"), Decimal("5.5")),
    ("EUR",),
    ("SARL", "SAS", "SA", "EURL"),
    ("u", "h", "j", "lot"),
    (
        "Maintenance chaudière",
        "Papier ramette A4",
        "Prestation de conseil",
        "Installation sur site",
        "Cartouche d'encre noire",
        "Frais de livraison",
        "Nettoyage des locaux",
        "Licence logiciel annuelle",
        "Formation du personnel",
        "Déplacement technicien",
    ),
    "N° TVA intracom.",
    ("Facture n°", "du"),
    ("Taux TVA", "Base HT", "Montant TVA"),
)
LANGUAGES = (DE, EN, FR)
NAME_PARTS = (
    "Nordlicht Alpen Brightwater Kestrel Lumière Vogt Harbour Sonnen Atlas Meridian Falken "
    "Greenfield Rivage Eichen Copper Azur Lindner Westbrook Orion Tannen"
).split()
TRADES = (
    "Bürotechnik Services Solutions Handel Logistique Systems Consulting Bau Supplies Conseil "
    "Elektro Trading"
).split()
COLUMN_ORDERS = (
    ("pos", "desc", "qty", "price", "rate", "amount"),
    ("desc", "qty", "price", "amount"),
    ("pos", "qty", "desc", "price", "amount"),
    ("desc", "rate", "qty", "price", "amount"),
    ("qty", "desc", "price", "rate", "amount"),
    ("pos", "desc", "qty", "price", "amount"),
)
WIDTHS = {"pos": 12, "desc": 70, "qty": 20, "price": 30, "rate": 16, "amount": 30}


@dataclass(frozen=True)
class Line:
    description: tuple[str, ...]
    quantity: Decimal
    unit: str
    price: Decimal
    rate: Decimal

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.price).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class Layout:
    language: Language
    columns: tuple[str, ...]
    breakdown: str  # "printed": rate, basis and VAT per rate; "rate": the one rate by the VAT;
    # "lines": the VAT total only, the rates in the table's column
    letterhead: str  # "left", "right", "sender-line"
    labels: dict[str, str]
    headers: dict[str, str]
    # "suffix": "1.234,56 EUR" on every total; "prefix": "EUR 1.234,56"; "heading": the
    # currency only in the amount column's heading and a line under the totals
    currency: str
    vat_first: bool  # "19 % MwSt" rather than "MwSt 19 %"
    prepaid_sign: str  # "-" or ""
    page_note: bool  # "Seite 1 von 2" under each page
    title_number: bool  # "Rechnung Nr. X vom <date>" in the title, not in a block of labels
    totals_x: float  # where the totals' labels stand: beside their values or at the margin
    footer_columns: bool  # the footer in three columns (name, bank, tax details)
    quantity_places: int | None  # "2", or "2,000" as ERP systems print it
    price_places: int  # "12,50" or "12,5000"
    meta_row: bool  # number, dates as a row of headings over a row of values


@dataclass(frozen=True)
class GeneratedInvoice:
    """One generated PDF and the values it states."""

    name: str
    data: bytes
    truth: dict[str, Any]


def money(value: Decimal, language: Language, places: int = 2) -> str:
    text = f"{value:,.{places}f}"
    if language.code == "de":
        return text.replace(",", "_").replace(".", ",").replace("_", ".")
    if language.code == "fr":
        return text.replace(",", " ").replace(".", ",")
    return text


def rate_text(rate: Decimal, language: Language) -> str:
    text = f"{rate.normalize():f}"
    return text if language.code == "en" else text.replace(".", ",")


DE_MONTHS = (
    "Januar Februar März April Mai Juni Juli August September Oktober November Dezember"
).split()
FR_MONTHS = (
    "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
).split()


def day(value: date, language: Language, style: int) -> str:
    if language.code == "de":
        if style == 2:
            return f"{value.day}. {DE_MONTHS[value.month - 1]} {value.year}"
        return value.strftime("%d.%m.%Y")
    if language.code == "fr":
        if style == 2:
            return f"{value.day} {FR_MONTHS[value.month - 1]} {value.year}"
        return value.strftime("%d/%m/%Y")
    if style % 2:
        return value.isoformat()
    return f"{value.day} {language.months[value.month - 1]} {value.year}"


def _checksum_iban(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def _de_vat_id(rng: random.Random) -> str:
    body = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(7)]
    product = 10
    for digit in body:
        total = (digit + product) % 10 or 10
        product = (2 * total) % 11
    check = (11 - product) % 10
    return "DE" + "".join(map(str, body)) + str(check)


def _vat_id(rng: random.Random, language: Language) -> str:
    if language.code == "de":
        return _de_vat_id(rng)
    if language.code == "fr":
        siren = rng.randint(100_000_000, 999_999_999)
        key = (12 + 3 * (siren % 97)) % 97
        return f"FR{key:02d}{siren}"
    return f"GB{rng.randint(100_000_000, 999_999_999)}"


def _lines(rng: random.Random, layout: Layout, rates: tuple[Decimal, ...]) -> list[Line]:
    language = layout.language
    count = rng.choice((1, 2, 2, 3, 4, 5, 7)) if rng.random() > 0.1 else rng.randint(26, 40)
    lines = []
    for index in range(count):
        description = [rng.choice(language.items)]
        if rng.random() < 0.25:
            description.append(f"{rng.choice(NAME_PARTS)} {rng.randint(100, 9999)}-{index + 1}")
        quantity = (
            Decimal(rng.choice((1, 1, 2, 3, 5, 10, 12)))
            if rng.random() > 0.2
            else (Decimal(rng.randint(1, 40)) / 4)
        )
        price = Decimal(rng.randint(150, 250_000)) / 100
        lines.append(
            Line(
                tuple(description),
                quantity,
                rng.choice(language.units),
                price,
                rates[index % len(rates)],
            )
        )
    rng.shuffle(lines)
    if rng.random() < 0.15:
        # an allowance as a line of its own, negative ("Rabatt", "Discount", "Remise")
        word = {"de": "Rabatt", "en": "Discount", "fr": "Remise"}[language.code]
        first = [line.amount for line in lines if line.rate == rates[0]]
        price = -(sum(first, Decimal(0)) / 20).quantize(CENT)
        lines.append(Line((f"{word} 5 %",), Decimal(1), language.units[0], price, rates[0]))
    return lines


def _labels(rng: random.Random, language: Language) -> dict[str, str]:
    return {
        "net": rng.choice(language.net),
        "vat": rng.choice(language.vat),
        "gross": rng.choice(language.gross),
        "prepaid": rng.choice(language.prepaid),
        "due": rng.choice(language.due_amount),
        "carried": rng.choice(language.carried),
        "buyer": rng.choice(language.buyer),
    }


def _layout(rng: random.Random, rates: tuple[Decimal, ...], language: Language) -> Layout:
    columns = rng.choice(COLUMN_ORDERS)
    options = ["printed", "table"]
    if "rate" in columns:
        options.append("lines")
    if len(rates) == 1:
        options.append("rate")
    return Layout(
        language,
        columns,
        rng.choice(options),
        rng.choice(("left", "right", "sender-line", "footer")),
        _labels(rng, language),
        {column: rng.choice(words) for column, words in language.columns.items()},
        rng.choice(("suffix", "prefix", "heading")),
        rng.random() < 0.3,
        rng.choice(("-", "")),
        rng.random() < 0.5,
        rng.random() < 0.3,
        rng.choice((100.0, 100.0, 15.0)),
        rng.random() < 0.4,
        rng.choice((None, None, 2, 3)),
        rng.choice((2, 2, 2, 4)),
        rng.random() < 0.25,
    )


def _party(rng: random.Random, language: Language) -> dict[str, str]:
    name = f"{rng.choice(NAME_PARTS)} {rng.choice(TRADES)} {rng.choice(language.legal)}"
    number, part = rng.randint(1, 120), rng.choice(NAME_PARTS)
    street = {
        "de": f"{part}straße {number}",
        "fr": f"{number} rue {part}",
        "en": f"{number} {part} {rng.choice(('Road', 'Street', 'Lane'))}",
    }[language.code]
    city = f"{rng.randint(10000, 99999)} {rng.choice(NAME_PARTS)}{'stadt' if language.code == 'de' else 'ville'}"
    if language.code == "en":
        city = f"{rng.choice(NAME_PARTS)}ton {rng.choice(('AB1 2CD', 'N7 9QP', 'LS2 8JT'))}"
    return {"name": name, "street": street, "city": city}


@dataclass(frozen=True)
class InvoicePlan:
    """One generated invoice before it is drawn (generated_pdf.py `generate` draws it)."""

    name: str
    document: dict[str, Any]
    layout: Layout
    lines: list[Line]
    truth: dict[str, Any]


def plans(seed: int, count: int) -> list[InvoicePlan]:
    """`count` invoices, the same for the same seed."""
    rng = random.Random(seed)
    return [_one(rng, index) for index in range(count)]


def _one(rng: random.Random, index: int) -> InvoicePlan:
    language = rng.choice(LANGUAGES)
    rates = tuple(
        rng.sample(
            language.rates,
            rng.choice((1, 1, 2, 2, 3)) if len(language.rates) > 2 else rng.choice((1, 2)),
        )
    )
    layout = _layout(rng, rates, language)
    lines = _lines(rng, layout, rates)
    issue = date(2025, 1, 1) + timedelta(days=rng.randint(0, 500))
    due = issue + timedelta(days=rng.choice((7, 14, 30)))
    net = sum((line.amount for line in lines), Decimal(0))
    bases: dict[Decimal, Decimal] = {}
    for line in lines:
        bases[line.rate] = bases.get(line.rate, Decimal(0)) + line.amount
    vat = {
        rate: (basis * rate / 100).quantize(CENT, ROUND_HALF_UP) for rate, basis in bases.items()
    }
    tax = sum(vat.values(), Decimal(0))
    gross = net + tax
    prepaid = Decimal(rng.randint(1, int(gross // 100) or 1) * 50) if rng.random() < 0.25 else None
    if prepaid is not None and prepaid >= gross:
        prepaid = (gross / 2).quantize(CENT)
    number = rng.choice(("RE-{y}-{n:05d}", "INV{n:06d}", "{y}/{n:04d}", "F{y}{n:05d}"))
    invoice = {
        "number": number.format(y=issue.year, n=rng.randint(1, 99999)),
        "issue_date": issue,
        "due_date": due,
        "currency": rng.choice(language.currencies),
        "net_total": net,
        "tax_total": tax,
        "gross_total": gross,
        "amount_due": gross - (prepaid or 0),
    }
    seller = _party(rng, language)
    buyer = _party(rng, language)
    while buyer["name"].split()[:2] == seller["name"].split()[:2]:
        buyer = _party(rng, language)  # two companies, not one under two legal forms
    document = {
        **invoice,
        "prepaid": prepaid,
        "vat": vat,
        "bases": bases,
        "seller": seller,
        "buyer": buyer,
        "seller_vat_id": _vat_id(rng, language),
        "iban": _checksum_iban("DE", f"{rng.randint(10**17, 10**18 - 1)}"),
        "date_style": rng.randint(0, 2),
    }
    truth = {**invoice, "seller_name": document["seller"]["name"]}
    return InvoicePlan(f"generated-{index:03d}-{language.code}", document, layout, lines, truth)
