"""Demo and benchmark supplier invoices: German suppliers as XRechnung CII, UBL, text PDF and scan.

Everything is deterministic: the same `today` (or seed) gives the same bytes, so demo data and
benchmark inputs can be regenerated instead of stored. The companies are invented; their VAT ids
and IBANs carry correct check digits (computed here) so that validators accept them.
"""

from __future__ import annotations

import io
import random
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from invoice_pipelines.core.invoice import Address, Invoice, InvoiceLine, VatBreakdown
from invoice_pipelines.core.money import CENT
from invoice_pipelines.core.totals import LineAmounts, compute_totals
from invoice_pipelines.einvoice.cii import EN16931_GUIDELINE, XRECHNUNG_GUIDELINE, write_cii
from invoice_pipelines.einvoice.layout import render_invoice_text
from invoice_pipelines.einvoice.ubl import write_ubl
from invoice_pipelines_devtools.demo.writers.textpdf import write_text_pdf

D = Decimal
POPPLER_INSTALL_COMMAND = "apt-get install -y poppler-utils"
SCAN_DPI = 200
# Synthetic invoices are dated in a fixed past year, so no rule ever sees a future issue date.
SYNTHETIC_START = date(2025, 1, 2)
SYNTHETIC_KINDS = (
    "cii",
    "ubl",
    "xrechnung-cii",
    "xrechnung-ubl",
    "text-pdf",
    "text-pdf-review",
    "scan",
)


# ---------------------------------------------------------------- check digits


def iban_check_digits(country_code: str, bban: str) -> str:
    """ISO 13616 check digits: 98 - (BBAN + country + "00" as digits) mod 97."""
    rearranged = (bban + country_code + "00").upper()
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return f"{98 - int(digits) % 97:02d}"


def german_iban(bank_code: str, account_number: str) -> str:
    """A German IBAN from an 8-digit Bankleitzahl and an account number of up to 10 digits."""
    if not (bank_code.isdigit() and len(bank_code) == 8):
        raise ValueError(f"a Bankleitzahl has 8 digits, not {bank_code!r}")
    if not (account_number.isdigit() and len(account_number) <= 10):
        raise ValueError(f"a German account number has at most 10 digits, not {account_number!r}")
    bban = bank_code + account_number.zfill(10)
    return f"DE{iban_check_digits('DE', bban)}{bban}"


def german_vat_id(first_eight_digits: str) -> str:
    """DE + 8 digits + the check digit of the German USt-IdNr. (ISO 7064 MOD 11,10)."""
    if not (first_eight_digits.isdigit() and len(first_eight_digits) == 8):
        raise ValueError("a German VAT id has 8 digits before its check digit")
    product = 10
    for digit in first_eight_digits:
        total = (int(digit) + product) % 10 or 10
        product = (2 * total) % 11
    check = (11 - product) % 10
    return f"DE{first_eight_digits}{check}"


# ---------------------------------------------------------------- building invoices


@dataclass(frozen=True)
class Company:
    """A seller or buyer as the documents need it."""

    name: str
    street: str
    postcode: str
    city: str
    vat_id: str | None = None
    iban: str | None = None
    email: str | None = None  # also its electronic address (BT-34/BT-49)
    contact_name: str | None = None
    contact_phone: str | None = None
    country_code: str = "DE"

    @property
    def address(self) -> Address:
        return Address(self.street, self.city, self.postcode, self.country_code)


@dataclass(frozen=True)
class LineItem:
    """One billed item before any amount is computed."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal = D("19")
    unit_code: str = "H87"
    vat_category: str = "S"


def invoice_from_lines(
    *,
    number: str,
    issue_date: date,
    due_date: date | None,
    seller: Company,
    buyer: Company,
    lines: Sequence[LineItem],
    currency: str = "EUR",
    type_code: str = "380",
    guideline_id: str = EN16931_GUIDELINE,
) -> Invoice:
    """A complete normalized invoice whose totals follow the EN 16931 sum rules.

    Line net = quantity x price rounded half-up; per (category, rate) VAT = basis x rate
    rounded half-up (BR-CO-17); BT-106 = sum of line nets (BR-CO-10); gross = net + VAT
    (BR-CO-15); nothing prepaid, so amount due = gross. The arithmetic is core/totals.py's.
    """
    totals = compute_totals(
        LineAmounts(item.quantity, item.unit_price, item.vat_category, item.vat_rate)
        for item in lines
    )
    # compute_totals keys the breakdown by the rate quantized to cents; print it as the lines do.
    stated_rates = {item.vat_rate.quantize(CENT): item.vat_rate for item in lines}
    invoice_lines = tuple(
        InvoiceLine(
            line_id=str(index),
            description=item.description,
            quantity=item.quantity,
            unit_code=item.unit_code,
            unit_price=item.unit_price,
            net_amount=net,
            vat_category=item.vat_category,
            vat_rate=item.vat_rate,
        )
        for index, (item, net) in enumerate(zip(lines, totals.line_nets, strict=True), start=1)
    )
    return Invoice(
        number=number,
        type_code=type_code,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        guideline_id=guideline_id,
        seller_name=seller.name,
        seller_vat_id=seller.vat_id,
        seller_address=seller.address,
        buyer_name=buyer.name,
        buyer_vat_id=buyer.vat_id,
        buyer_address=buyer.address,
        iban=seller.iban,
        payment_means_code="58" if seller.iban else None,
        line_total=totals.net_total,
        net_total=totals.net_total,
        tax_total=totals.tax_total,
        gross_total=totals.gross_total,
        amount_due=totals.amount_due,
        lines=invoice_lines,
        vat_breakdown=tuple(
            VatBreakdown(b.vat_category, stated_rates[b.vat_rate], b.basis, b.amount)
            for b in totals.breakdown
        ),
    )


def document_extras(
    seller: Company,
    buyer: Company,
    *,
    buyer_reference: str,
    payment_terms: str | None = None,
    delivery_date: date | None = None,
) -> dict[str, Any]:
    """The XRechnung terms (BT-10, BT-34, BT-41..43, BT-49) that the Invoice model lacks."""
    extras: dict[str, Any] = {
        "buyer_reference": buyer_reference,
        "seller_electronic_address": seller.email,
        "buyer_electronic_address": buyer.email,
        "seller_contact_name": seller.contact_name,
        "seller_contact_phone": seller.contact_phone,
        "seller_contact_email": seller.email,
        "payment_terms": payment_terms,
        "delivery_date": delivery_date,
    }
    return {key: value for key, value in extras.items() if value is not None}


# ---------------------------------------------------------------- scans


DEMO_SCAN_SEED = 0  # the demo scan's dust (demo_supplier_invoices)


def scan_image(
    pdf: bytes, *, dpi: int = SCAN_DPI, rotation_degrees: float = 0.4, seed: int = 0
) -> bytes:
    """The first page of a PDF as a grayscale PNG that looks scanned: tilted, grey, specked.

    Rendered with `pdftoppm -r 200 -gray` and degraded with Pillow only as far as Tesseract
    still reads every amount: a fraction of a degree of tilt, paper that is not quite white,
    and sparse dust. The noise comes from a seeded generator, so the output is reproducible.
    """
    from PIL import Image, ImageChops  # only scans need Pillow; keep importing this module cheap

    with tempfile.TemporaryDirectory(prefix="invoice-scan-") as tmp:
        source = Path(tmp) / "page.pdf"
        source.write_bytes(pdf)
        command = ["pdftoppm", "-r", str(dpi), "-gray", "-png", "-f", "1", "-l", "1", "-singlefile"]
        try:
            subprocess.run(
                [*command, str(source), str(Path(tmp) / "page")],
                check=True,
                capture_output=True,
                timeout=120,
            )
        except FileNotFoundError as exc:
            raise RuntimeError(
                f"pdftoppm is not installed; install it with: {POPPLER_INSTALL_COMMAND}"
            ) from exc
        with Image.open(Path(tmp) / "page.png") as rendered:
            page = rendered.convert("L")

    # Paper is never pure white and toner never pure black on a scan.
    page = page.point(lambda v: 28 + v * 206 // 255)
    page = page.rotate(rotation_degrees, resample=Image.Resampling.BICUBIC, fillcolor=234)
    rng = random.Random(seed)
    noise = Image.frombytes("L", page.size, rng.randbytes(page.size[0] * page.size[1]))
    # One pixel in 256 becomes a grey speck: visible dust that OCR shrugs off.
    dust = noise.point(lambda v: 90 if v == 0 else 255)
    page = ImageChops.darker(page, dust)
    buffer = io.BytesIO()
    page.save(buffer, format="PNG", dpi=(dpi, dpi))
    return buffer.getvalue()


# ---------------------------------------------------------------- the demo set

DEMO_BUYER = Company(
    name="Müller Werkzeugbau GmbH",
    street="Schützenstraße 14",
    postcode="42659",
    city="Solingen",
    vat_id="DE123456789",  # the demo organization's VAT id (demo/seed.py)
    email="rechnungseingang@mueller-werkzeugbau.de",
)

OFFICE_SUPPLIER = Company(
    name="Bürobedarf Schröder GmbH",
    street="Venloer Straße 231",
    postcode="50823",
    city="Köln",
    vat_id=german_vat_id("81473920"),
    iban=german_iban("37050198", "1902874415"),
    email="rechnung@buerobedarf-schroeder.de",
    contact_name="Petra Schröder",
    contact_phone="+49 221 5402310",
)
LOGISTICS_SUPPLIER = Company(
    name="Nordhafen Logistik GmbH & Co. KG",
    street="Am Sandtorkai 40",
    postcode="20457",
    city="Hamburg",
    vat_id=german_vat_id("27731846"),
    iban=german_iban("20050550", "1280336571"),
    email="faktura@nordhafen-logistik.de",
    contact_name="Jens Albers",
    contact_phone="+49 40 3197720",
)
SOFTWARE_SUPPLIER = Company(
    name="Datenwerk Software AG",
    street="Leopoldstraße 118",
    postcode="80802",
    city="München",
    vat_id=german_vat_id("31290573"),
    iban=german_iban("70150000", "90128733"),
    email="billing@datenwerk-software.de",
    contact_name="Sabine Krämer",
    contact_phone="+49 89 2154880",
)
PRINT_SUPPLIER = Company(
    name="Druckhaus Weser GmbH",
    street="Faulenstraße 54",
    postcode="28195",
    city="Bremen",
    vat_id=german_vat_id("11658402"),
    iban=german_iban("29050101", "14422957"),
    email="buchhaltung@druckhaus-weser.de",
    contact_name="Ole Brinkmann",
    contact_phone="+49 421 1658400",
)


@dataclass(frozen=True)
class DemoInvoice:
    """One invoice of the demo set and the form it is delivered in."""

    file_name: str
    form: str  # xrechnung-cii, ubl, text-pdf or scan
    invoice: Invoice
    seller: Company
    payment_days: int


def _demo(
    form: str, seller: Company, number: str, issue: date, days: int, lines: list[LineItem]
) -> DemoInvoice:
    invoice = invoice_from_lines(
        number=number,
        issue_date=issue,
        due_date=issue + timedelta(days=days),
        seller=seller,
        buyer=DEMO_BUYER,
        lines=lines,
        guideline_id=XRECHNUNG_GUIDELINE if form == "xrechnung-cii" else EN16931_GUIDELINE,
    )
    slug = seller.email.rsplit("@", 1)[1].rsplit(".", 1)[0] if seller.email else "supplier"
    extension = {"xrechnung-cii": "xml", "ubl": "xml", "text-pdf": "pdf", "scan": "png"}[form]
    suffix = "_scan" if form == "scan" else ""
    return DemoInvoice(f"{slug}_{number}{suffix}.{extension}", form, invoice, seller, days)


def in_last_closed_month(today: date, days_before_running_month: int) -> date:
    """A day of the month before `today`'s (`days_before_running_month`, 1 to 28, before its 1st).

    The export assets' month partitions end with the last complete month: what the demo dates
    there is what a newcomer can export from the UI, whatever day the demo is seeded."""
    if not 1 <= days_before_running_month <= 28:
        raise ValueError("1 to 28 days before the 1st lie in the month before on every day")
    return today.replace(day=1) - timedelta(days=days_before_running_month)


def demo_invoice_set(today: date) -> list[DemoInvoice]:
    """The demo invoices as data, in the order demo_supplier_invoices writes them.

    The two XML invoices are dated in the last closed month (the month an export can book from
    the UI), the text PDF and the scan in the days before `today`."""
    office_issued = in_last_closed_month(today, 6)
    freight_issued = in_last_closed_month(today, 15)
    return [
        _demo(
            "xrechnung-cii",
            OFFICE_SUPPLIER,
            f"RE-{office_issued:%Y%m%d}-017",
            office_issued,
            30,
            [
                LineItem("Kopierpapier A4 80 g/m², Karton 5 x 500 Blatt", D("8"), D("21.90"), unit_code="XPK"),
                LineItem("Toner schwarz für Laserdrucker M404", D("2"), D("89.00")),
                LineItem("Ordner DIN A4, 8 cm Rücken, blau", D("20"), D("2.35")),
                LineItem("Fachbuch Büroorganisation, 4. Auflage", D("1"), D("34.90"), D("7")),
            ],
        ),
        _demo(
            "ubl",
            LOGISTICS_SUPPLIER,
            f"NHL{freight_issued:%y%m%d}88",
            freight_issued,
            14,
            [
                LineItem("Stückguttransport Solingen - Hamburg, 2 Paletten", D("3"), D("148.00"), unit_code="C62"),
                LineItem("Palettentausch Europalette", D("6"), D("12.50"), unit_code="XPX"),
                LineItem("Maut- und Energiezuschlag", D("1"), D("41.37"), unit_code="LS"),
                LineItem("Avis-Service telefonisch", D("3"), D("8.00"), unit_code="C62"),
            ],
        ),
        _demo(
            "text-pdf",
            SOFTWARE_SUPPLIER,
            f"DW-{today:%Y}-{today:%m%d}4",
            today - timedelta(days=1),
            14,
            [
                LineItem("ERP Cloud Lizenz, Benutzer pro Monat", D("12"), D("39.00"), unit_code="C62"),
                LineItem("Supportpaket Premium, monatlich", D("1"), D("249.00"), unit_code="MON"),
                LineItem("Schulung Lagerverwaltung vor Ort", D("6"), D("135.00"), unit_code="HUR"),
            ],
        ),
        _demo(
            "scan",
            PRINT_SUPPLIER,
            f"{today:%Y%m%d}-205",
            today - timedelta(days=20),
            14,
            [
                LineItem("Visitenkarten 4/4-farbig, je 500 Stück", D("4"), D("38.50")),
                LineItem("Briefpapier DIN A4, 2000 Blatt", D("1"), D("186.00")),
                LineItem("Firmenbroschüre A5, 16 Seiten", D("250"), D("1.84")),
            ],
        ),
    ]  # fmt: skip


def demo_supplier_invoices(today: date) -> list[tuple[str, bytes]]:
    """(file name, content) of four supplier invoices to the demo tenant, one per input form.

    * Bürobedarf Schröder (office supplies): XRechnung 3.0 CII XML, 19 % and 7 % lines;
    * Nordhafen Logistik (freight): UBL 2.1 Invoice (EN 16931);
    * Datenwerk Software (licences, support): a text PDF without XML;
    * Druckhaus Weser (print shop): a scanned page, PNG, for OCR.

    Dates are relative to `today`; the same `today` gives the same bytes. The scan needs
    poppler's pdftoppm.
    """
    files: list[tuple[str, bytes]] = []
    for demo in demo_invoice_set(today):
        invoice = demo.invoice
        extras = document_extras(
            demo.seller,
            DEMO_BUYER,
            buyer_reference=f"MWB-{today:%Y}-0815",
            payment_terms=f"Zahlbar innerhalb von {demo.payment_days} Tagen ohne Abzug.",
            delivery_date=invoice.issue_date - timedelta(days=2),
        )
        if demo.form == "xrechnung-cii":
            data = write_cii(invoice, guideline_id=XRECHNUNG_GUIDELINE, extra=extras)
        elif demo.form == "ubl":
            data = write_ubl(invoice, extra=extras)
        else:
            pdf = write_text_pdf(render_invoice_text(invoice))
            # the same dust every day: seeded by the day, one day's specks fell between two words
            # of the sender's footer (2026-11-27: "Druckhaus:Weser GmbH"), and the scan waited
            # for review while the README says all four are VALIDATED
            data = pdf if demo.form == "text-pdf" else scan_image(pdf, seed=DEMO_SCAN_SEED)
        files.append((demo.file_name, data))
    return files


# ---------------------------------------------------------------- the benchmark stream

_STREETS = (
    "Hauptstraße",
    "Industriestraße",
    "Am Markt",
    "Bahnhofstraße",
    "Gartenweg",
    "Lindenallee",
)
_CITIES = (
    ("10115", "Berlin"), ("20095", "Hamburg"), ("80331", "München"), ("50667", "Köln"),
    ("60311", "Frankfurt am Main"), ("70173", "Stuttgart"), ("04109", "Leipzig"), ("28195", "Bremen"),
)  # fmt: skip
_TRADES = (
    ("Bürobedarf", "GmbH"), ("Logistik", "GmbH & Co. KG"), ("Software", "AG"), ("Druck", "GmbH"),
    ("Elektro", "GmbH"), ("Reinigung", "GmbH"), ("Metallbau", "KG"), ("Catering", "GmbH"),
)  # fmt: skip
_BUYER_TRADES = ("Maschinenbau", "Handelshaus", "Bauunternehmen", "Autohaus")
_FAMILY_NAMES = ("Becker", "Wagner", "Schulz", "Koch", "Richter", "Wolf", "Neumann", "Braun")
# (item, unit, VAT rate, lowest and highest net price in cents): prices stay plausible per item.
_ITEMS = (
    ("Kopierpapier A4, 500 Blatt", "XPK", D("19"), 399, 899),
    ("Fachbuch Arbeitsrecht", "H87", D("7"), 2490, 8900),
    ("Transportpauschale", "LS", D("19"), 4500, 39000),
    ("Wartung Serverraum", "HUR", D("19"), 6500, 14500),
    ("Softwarelizenz Jahresabo", "ANN", D("19"), 19900, 249000),
    ("Zeitschrift Abonnement", "H87", D("7"), 890, 24900),
    ("Reinigung Büroflächen", "HUR", D("19"), 2800, 4900),
    ("Lebensmittel Kantine", "KGM", D("7"), 150, 2990),
    ("Druck Flyer A5", "H87", D("19"), 9, 95),
    ("Kabelmaterial", "MTR", D("19"), 45, 1290),
)


def _synthetic_company(rng: random.Random, index: int, *, seller: bool) -> Company:
    trade, form = _TRADES[index % len(_TRADES)]
    family = _FAMILY_NAMES[(index // len(_TRADES)) % len(_FAMILY_NAMES)]
    postcode, city = _CITIES[rng.randrange(len(_CITIES))]
    name = f"{trade} {family} {form}" if seller else f"{family} {_BUYER_TRADES[index % 4]} {form}"
    slug = "-".join(name.split()[:2]).lower().replace("ü", "ue").replace("ä", "ae")
    return Company(
        name=f"{trade} {family} {form}"
        if seller
        else f"{family} {_BUYER_TRADES[index % 4]} {form}",
        street=f"{_STREETS[rng.randrange(len(_STREETS))]} {rng.randint(1, 180)}",
        postcode=postcode,
        city=city,
        vat_id=german_vat_id(f"{rng.randrange(10**7, 10**8)}"),
        iban=german_iban(f"{rng.randrange(10**7, 10**8)}", f"{rng.randrange(10**9, 10**10)}")
        if seller
        else None,
        email=f"{'rechnung' if seller else 'eingang'}@{slug}.example",
        contact_name=f"{rng.choice(('Anna', 'Jonas', 'Lea', 'Paul'))} {family}",
        contact_phone=f"+49 {rng.randint(30, 999)} {rng.randint(100000, 9999999)}",
    )


def synthetic_xml_invoices(
    n: int, *, seed: int = 0, kinds: Sequence[str] = ("cii", "ubl")
) -> Iterator[tuple[str, bytes]]:
    """n distinct valid XML e-invoices (file name, bytes) for the intake benchmark.

    Kinds cycle in the order given: "cii" / "ubl" (EN 16931) and "xrechnung-cii" /
    "xrechnung-ubl"; "text-pdf" is the same kind of invoice as a PDF of its page without XML
    (`.pdf`: what the intake reads from the text and books or holds for review by the
    organization's policy); "text-pdf-review" such a page whose stated gross total is 1.00 more
    than net plus VAT (a doubt no policy books unseen: IP-REV-03, NEEDS_REVIEW); "scan" the
    page of "text-pdf" scanned (`.png`, read by OCR). Invoice numbers are unique within a seed (SYN-<seed>-<i>); each invoice has
    1-5 lines at 19 % or 7 % with totals by the EN 16931 rules, dated in 2025.
    """
    unknown = [kind for kind in kinds if kind not in SYNTHETIC_KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty choice of {SYNTHETIC_KINDS}, not {kinds!r}")
    rng = random.Random(seed)
    sellers = [_synthetic_company(rng, i, seller=True) for i in range(24)]
    buyers = [_synthetic_company(rng, i + 3, seller=False) for i in range(12)]
    for index in range(n):
        kind = kinds[index % len(kinds)]
        seller, buyer = rng.choice(sellers), rng.choice(buyers)
        issue = SYNTHETIC_START + timedelta(days=rng.randrange(360))
        items = []
        for _ in range(rng.randint(1, 5)):
            description, unit, rate, low, high = _ITEMS[rng.randrange(len(_ITEMS))]
            items.append(
                LineItem(
                    description,
                    D(rng.randint(1, 50)),
                    D(rng.randint(low, high)).scaleb(-2),
                    rate,
                    unit_code=unit,
                )
            )
        xrechnung = kind.startswith("xrechnung")
        invoice = invoice_from_lines(
            number=f"SYN-{seed}-{index:07d}",
            issue_date=issue,
            due_date=issue + timedelta(days=rng.choice((14, 30))),
            seller=seller,
            buyer=buyer,
            lines=items,
            guideline_id=XRECHNUNG_GUIDELINE if xrechnung else EN16931_GUIDELINE,
        )
        extras = (
            document_extras(seller, buyer, buyer_reference=f"PO-{rng.randrange(10**6):06d}")
            if xrechnung
            else {}
        )
        # BT-72: a CII's ApplicableHeaderTradeDelivery is never empty (PEPPOL-EN16931-R008)
        extras["delivery_date"] = issue - timedelta(days=1 + index % 3)
        if kind in ("text-pdf", "text-pdf-review", "scan"):
            if kind == "text-pdf-review":
                invoice = replace(invoice, gross_total=invoice.gross_total + 1)
            pdf = write_text_pdf(render_invoice_text(invoice))
            if kind == "scan":
                yield f"{invoice.number}_scan.png", scan_image(pdf, seed=seed * 100_000 + index)
            else:
                yield f"{invoice.number}.pdf", pdf
            continue
        if kind.endswith("cii"):
            data = write_cii(invoice, guideline_id=invoice.guideline_id, extra=extras)
        else:
            data = write_ubl(invoice, customization_id=invoice.guideline_id, extra=extras)
        yield f"{invoice.number}.{kind}.xml", data
