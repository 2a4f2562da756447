"""Benchmark: N generated hostile inputs through intake, export, documents and delivery.

Owns the hostile-input generators (deterministic from `--seed`) and the bookkeeping that decides,
for every input, whether it ended with a recorded outcome. About three quarters of the inputs are
supplier uploads: random bytes, truncated and mutated real e-invoices (the shared samples, or
synthetic ones when the folder is absent), attachment bombs, many-page scans and text PDFs,
over-size files, XML entity attacks, and valid e-invoices whose supplier name, VAT id, invoice
number and line descriptions carry hostile text. They are registered the way the upload sensor
does and read by `process_documents` with the product's parse workers (`DocumentParser`) and
Tesseract, in batches as the intake job runs them. Some are small valid e-invoices whose archived
originals the bench swaps for 16 MiB files after registration, side by side so they fill whole
read-ahead groups (a tenant that can write its own `.archive`): each must end FAILED as changed
after it was received, unread, or it counts as a crash. Every month of the resulting supplier invoices
is then exported to CSV and DATEV with `run_export`. The other quarter are sales invoices to
customers with hostile names, addresses and e-mail addresses, written by `generate_documents`
(the `DocumentRenderer` workers) and sent by `send_invoice_emails` to the SMTP stand-in.

Then the cases of issue 46 (bench/hostile_intake.py), each in an organization of its own: poison
e-invoices among good ones in the same intake batches, rejection notices whose documents name
hostile addresses, copies of accepted invoices under look-alike numbers, and hostile review
corrections; `categories` in the JSON has each one's counts and `stuck` the documents left waiting.

An input is a clean failure when it ends FAILED or skipped with a recorded reason; a crash when
an exception escapes a batch (everything in the batch counts) or when it is left without any
recorded outcome. A month whose export raises is a blocked export. PostgreSQL unless told
otherwise: `--db-url`, else INVOICE_PIPELINES_DB_URL when it names PostgreSQL, else a scratch
database created (and dropped) on the local server.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import resource
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from invoice_pipelines.cli_args import non_negative_int, positive_int
from invoice_pipelines.limits import MAX_ATTACHMENTS, MAX_OCR_PAGES, MAX_TEXT_PAGES, MiB
from invoice_pipelines_devtools.bench.documents import SELLER
from invoice_pipelines_devtools.bench.limit import limit_fields, per_second

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLES = REPO_ROOT.parent / "shared" / "samples" / "einvoice"
DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
# a stranger's file our XML reader must never copy into a document's values
SECRET_FILE = "/etc/passwd"
SECRET_MARK = "root:"
EVIL_DOMAIN = "evil.example"
SALES_SHARE = 4  # one input in four is a sales invoice

# Hostile text, by what it attacks. Each generated value mixes one or two of these with a normal
# company-like word, so the same kind turns up in every field.
HOSTILE_TEXT: dict[str, tuple[str, ...]] = {
    "formula": (
        '=HYPERLINK("http://evil.example","Zahlung")',
        "+SUM(1+1)*cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(A1:A9)",
        "\t=1+1",
    ),
    "zero-width": ("Mül\u200bler\u200d GmbH", "\ufeffBOM GmbH", "A\u2060B\u200cC"),
    "bidi": ("Lieferant \u202egpj.exe\u202c GmbH", "\u2067RTL\u2069 AG", "\u200fabc\u200e"),
    "nul": ("Null\x00Byte GmbH", "\x00", "A\x00=1+1"),
    "crlf": ("Zeile1\r\nZeile2", "lone\rCR", "lone\nLF", "X\r\nBcc: x@evil.example"),
    "control": ("Bell\x07Esc\x1b[31m", "Tab\there", "\x0bVT\x0cFF\x7fDEL"),
    "astral": ("😀 Emoji GmbH", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 AG", "𓀀 Hieroglyph"),
    "quotes": ('"; DROP TABLE x; --', "a;b;\"c\";'d'", "O'Brien & <Söhne>"),
    "markup": ("<script>alert(1)</script>", "| a | b |\n|---|---|", "[klick](javascript:x)"),
    "long": ("Ä" * 10_000, "W" * 4_000 + "=1+1", ("ab " * 3_400)),
}


@dataclass(frozen=True)
class HostileInput:
    """One generated supplier upload: the name it is dropped under, its bytes, what it attacks."""

    kind: str
    name: str
    data: bytes


def hostile_text(rng: random.Random) -> str:
    """One hostile value: one or two attack kinds around an ordinary word."""
    kinds = rng.sample(sorted(HOSTILE_TEXT), rng.choice((1, 1, 2)))
    parts = [rng.choice(HOSTILE_TEXT[k]) for k in kinds]
    if rng.random() < 0.5:
        parts.append(rng.choice(("Werkzeugbau GmbH", "Service KG", "Handel AG")))
    return " ".join(parts)


# --- PDFs written by hand: we need files no PDF library would produce --------------------------


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF whose object i+1 is objects[i]; object 1 is the catalog."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< %s /Length %d >>\nstream\n" % (dictionary, len(data)) + data + b"\nendstream"


def _page_objects(pages: int, first: int, content: Callable[[int], bytes] | None) -> list[bytes]:
    """Pages tree (object `first`), then per page a page object and its content stream."""
    kids = b" ".join(b"%d 0 R" % (first + 1 + 2 * i) for i in range(pages))
    objects = [b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)]
    font = b"<< /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
    for i in range(pages):
        objects.append(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Resources %s "
            b"/Contents %d 0 R >>" % (first, font, first + 2 + 2 * i)
        )
        objects.append(_stream(b"", content(i) if content else b""))
    return objects


def attachment_bomb(files: int, decoded_bytes: int, *, name: str = "factur-x.xml") -> bytes:
    """A one-page PDF whose `files` embedded files all point at one Flate stream of zeros: a few
    KiB on disk, files x decoded_bytes once decoded."""
    zeros = zlib.compress(b"\0" * decoded_bytes, 9)
    names = [name] + [f"anlage-{i:05d}.xml" for i in range(1, files)]
    # objects 2-4 are the page tree, the page and its contents; the streams follow. One stream
    # per file unless there are very many: a reader that caches a decoded object must still
    # hold every file apart
    streams = 1 if files > 64 else files
    first_spec = 5 + streams
    tree = b" ".join(b"(%s) %d 0 R" % (n.encode(), first_spec + i) for i, n in enumerate(names))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [%s] >> >> >>" % tree,
        *_page_objects(1, 2, None),
    ]
    for _ in range(streams):
        objects.append(
            _stream(b"/Type /EmbeddedFile /Subtype /text#2Fxml /Filter /FlateDecode", zeros)
        )
    for i, n in enumerate(names):
        objects.append(
            b"<< /Type /Filespec /F (%s) /UF (%s) /EF << /F %d 0 R >> >>"
            % (n.encode(), n.encode(), 5 + i % streams)
        )
    return _pdf(objects)


def text_pages_pdf(pages: int) -> bytes:
    """A PDF with a text layer on every one of `pages` pages (past MAX_TEXT_PAGES)."""

    def content(i: int) -> bytes:
        return b"BT /F1 11 Tf 60 780 Td (Rechnung Seite %d von %d Betrag 1,00 EUR) Tj ET" % (
            i + 1,
            pages,
        )

    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>", *_page_objects(pages, 2, content)])


def scan_pdf(pages: int, seed: int) -> bytes:
    """An image-only PDF of `pages` small grey pages: a scan that needs OCR on every page."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    images = []
    for i in range(pages):
        page = Image.new("L", (420, 594), 235)
        draw = ImageDraw.Draw(page)
        draw.text((30, 40 + rng.randrange(20)), f"Seite {i + 1}  Summe {rng.randrange(999)},00", 20)
        images.append(page)
    out = io.BytesIO()
    fixed = time.gmtime(1735776000)  # Pillow stamps the current time otherwise
    images[0].save(
        out,
        "PDF",
        save_all=True,
        append_images=images[1:],
        resolution=50.0,
        creationDate=fixed,
        modDate=fixed,
    )
    return out.getvalue()


# --- XML ---------------------------------------------------------------------------------------

ENTITY_ATTACKS: tuple[bytes, ...] = (
    # billion laughs
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lollollollollol">'
    + b"".join(
        b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&%s;" % bytes([97 + i])) * 10) for i in range(8)
    )
    + b"]><Invoice>&i;</Invoice>",
    # external entity reading a local file into a value
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://'
    + SECRET_FILE.encode()
    + b'">]><rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:'
    b'CrossIndustryInvoice:100"><rsm:ExchangedDocument><ID>&x;</ID></rsm:ExchangedDocument>'
    b"</rsm:CrossIndustryInvoice>",
    # parameter entity fetching an external DTD (a closed loopback port: nothing may be fetched)
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % d SYSTEM "http://127.0.0.1:9/x.dtd"> %d;]>'
    b"<r>&e;</r>",
    # external DTD by SYSTEM id
    b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "file://' + SECRET_FILE.encode() + b'"><r/>',
    # XInclude of a local file
    b'<?xml version="1.0"?><r xmlns:xi="http://www.w3.org/2001/XInclude">'
    b'<xi:include href="file://' + SECRET_FILE.encode() + b'" parse="text"/></r>',
    # DOCTYPE after a comment, in UTF-16
    '<?xml version="1.0" encoding="UTF-16"?><!-- x --><!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>'.encode(
        "utf-16"
    ),
)


def crop_box_bomb(pages: int = 3, media_side: int = 5000) -> bytes:
    """Blank pages with a `media_side` pt MediaBox behind an A4 CropBox, a few hundred bytes: the
    page size pdfinfo reports is the CropBox, pdftoppm renders the MediaBox (issue 38)."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages)).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
    ]
    objects += [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /CropBox [0 0 595 842]"
        b" /Resources << >> >>" % (media_side, media_side)
    ] * pages
    return _pdf(objects)


def quadratic_blowup(size: int = 20_000, refs: int = 2_000) -> bytes:
    return (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "'
        + b"A" * size
        + b'">]><r>'
        + b"&a;" * refs
        + b"</r>"
    )


def deep_nesting(depth: int = 200_000) -> bytes:
    return b'<?xml version="1.0"?>' + b"<a>" * depth + b"</a>" * depth


_CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
_UBL = {
    "ubl": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
# where the supplier name, VAT id, number and line descriptions stand in each syntax
_FIELDS = {
    "cii": (
        _CII,
        {
            "seller": ".//ram:SellerTradeParty/ram:Name",
            "vat": ".//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID",
            "number": "./rsm:ExchangedDocument/ram:ID",
            "lines": ".//ram:SpecifiedTradeProduct/ram:Name",
        },
    ),
    "ubl": (
        _UBL,
        {
            "seller": ".//cac:AccountingSupplierParty//cbc:RegistrationName",
            "vat": ".//cac:AccountingSupplierParty//cac:PartyTaxScheme/cbc:CompanyID",
            "number": "./cbc:ID",
            "lines": ".//cac:InvoiceLine/cac:Item/cbc:Name",
        },
    ),
}


def _xml_safe(text: str) -> bool:
    return all(
        c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD or ord(c) > 0xFFFF
        for c in text
    )


def with_hostile_text(xml: bytes, syntax: str, rng: random.Random, index: int) -> bytes:
    """The e-invoice with hostile text as supplier name, VAT id, number and line descriptions.

    Text XML can carry is set through lxml; text it cannot (NUL, most C0 controls) goes in as raw
    bytes after serializing, which makes the file malformed: intake must then say so.
    """
    from lxml import etree

    root = etree.fromstring(xml)
    namespaces, paths = _FIELDS[syntax]
    raw: dict[bytes, bytes] = {}
    targets = ["seller", "number", "lines"] + (["vat"] if rng.random() < 0.3 else [])
    for field_name in targets:
        for position, element in enumerate(root.iterfind(paths[field_name], namespaces)):
            value = hostile_text(rng)
            if field_name == "number":
                # unique, or every copy after the first is a duplicate, not a hostile reading
                value = f"{value[:100]}-{index}" if rng.random() < 0.8 else f"{index}-{value}"
            if _xml_safe(value):
                element.text = value
            else:
                token = f"HOSTILE{index}X{len(raw)}".encode()
                raw[token] = value.encode("utf-8", "surrogatepass")
                element.text = token.decode()
            if field_name != "lines" and position == 0:
                break
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    for token, value in raw.items():
        data = data.replace(token, value)
    return data


# --- the intake inputs --------------------------------------------------------------------------


def _samples(folder: Path | None) -> list[bytes]:
    if folder is None or not folder.is_dir():
        return []
    return [
        p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix.lower() in (".pdf", ".xml") and p.stat().st_size < 4 * MiB
    ]


def _synthetic_samples(seed: int) -> list[bytes]:
    """Valid e-invoices (XML and Factur-X-like PDFs with one embedded XML) when no samples exist."""
    from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices

    xmls = [data for _, data in synthetic_xml_invoices(8, seed=seed)]
    pdfs = [
        _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names "
                b"[(factur-x.xml) 6 0 R] >> >> >>",
                *_page_objects(1, 2, None),
                _stream(b"/Type /EmbeddedFile /Filter /FlateDecode", zlib.compress(xml)),
                b"<< /Type /Filespec /F (factur-x.xml) /UF (factur-x.xml) /EF << /F 5 0 R >> >>",
            ]
        )
        for xml in xmls[:4]
    ]
    return xmls + pdfs


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 40)):
        choice = rng.random()
        at = rng.randrange(len(out) or 1)
        if choice < 0.5 and out:
            out[at] = rng.randrange(256)
        elif choice < 0.75:
            out[at:at] = rng.randbytes(rng.randint(1, 64))
        else:
            del out[at : at + rng.randint(1, 256)]
    return bytes(out)


# kinds whose reading is expensive: at most one per `every` inputs (at least one of each)
EXPENSIVE_EVERY = {
    "attachment-bomb": 300,
    "attachment-flood": 600,
    "huge-attachment": 600,
    "many-page-scan": 750,
    "many-page-text": 400,
    "over-size": 500,
    "crop-box-bomb": 400,
    # 16 MiB on disk each, and they must fill read-ahead groups to show the bound: one in 30
    "swapped-archive": 30,
}
# a tenant that can write its own `.archive` swaps small originals for files this large after
# registration (issue 38): the intake must read within the recorded size, never the file whole
SWAPPED_ARCHIVE_BYTES = 16 * MiB
SWAPPED_REASON = "changed after it was received"
HOSTILE_NAMES = (
    "=cmd|' -C calc'!A0.xml",
    "rechnung\u202egpj.pdf",
    "zeile\nzwei.xml",
    "..%2f..%2fetc%2fpasswd.pdf",
    "😀 rechnung.pdf",
    "-rf .xml",
)


def intake_inputs(n: int, *, seed: int, samples: Path | None) -> Iterator[HostileInput]:
    """n hostile uploads, the same for the same seed and sample folder."""
    from invoice_pipelines.limits import MAX_UPLOAD_BYTES
    from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices

    rng = random.Random(seed)
    real = _samples(samples) or _synthetic_samples(seed)
    plan: list[str] = []
    for kind, every in EXPENSIVE_EVERY.items():
        plan += [kind] * max(1, n // every)
    cheap = (
        ("hostile-einvoice", 10),
        ("random-bytes", 2),
        ("truncated-sample", 2),
        ("mutated-sample", 3),
        ("entity-attack", 2),
        ("deep-xml", 1),
    )
    weights = [w for _, w in cheap]
    while len(plan) < n:
        plan.append(rng.choices([k for k, _ in cheap], weights)[0])
    plan = plan[:n]
    rng.shuffle(plan)
    # the swapped originals side by side, so they fill whole read-ahead groups of one batch (a
    # group sized by recorded sizes held 32 x 16 MiB at once)
    swapped = [k for k in plan if k == "swapped-archive"]
    plan = [k for k in plan if k != "swapped-archive"]
    at = rng.randrange(len(plan) + 1)
    plan[at:at] = swapped
    valid = synthetic_xml_invoices(
        plan.count("hostile-einvoice") + len(swapped), seed=seed, kinds=("cii", "ubl")
    )
    for index, kind in enumerate(plan):
        suffix = ".xml"
        if kind == "hostile-einvoice":
            _, xml = next(valid)
            syntax = "cii" if b"CrossIndustryInvoice" in xml[:400] else "ubl"
            data = with_hostile_text(xml, syntax, rng, index)
        elif kind == "swapped-archive":
            # a small valid e-invoice; the bench swaps its archived original after registration
            _, data = next(valid)
        elif kind == "random-bytes":
            data = rng.randbytes(rng.randint(0, 64 * 1024))
            if rng.random() < 0.5:
                data, suffix = b"%PDF-1.7\n" + data + b"\n%%EOF\n", ".pdf"
        elif kind in ("truncated-sample", "mutated-sample"):
            sample = rng.choice(real)
            suffix = ".pdf" if sample.startswith(b"%PDF") else ".xml"
            if kind == "truncated-sample":
                data = sample[: rng.randrange(max(1, len(sample)))]
            else:
                data = _mutate(sample, rng)
        elif kind == "entity-attack":
            data = rng.choice(ENTITY_ATTACKS + (quadratic_blowup(),))
        elif kind == "deep-xml":
            data = deep_nesting(rng.choice((10_000, 200_000)))
        elif kind == "attachment-bomb":
            data, suffix = attachment_bomb(20, 48 * MiB), ".pdf"
        elif kind == "attachment-flood":
            data, suffix = attachment_bomb(MAX_ATTACHMENTS * 50, 1024), ".pdf"
        elif kind == "huge-attachment":
            data, suffix = attachment_bomb(1, 70 * MiB), ".pdf"
        elif kind == "many-page-scan":
            data, suffix = scan_pdf(MAX_OCR_PAGES * 2, seed + index), ".pdf"
        elif kind == "many-page-text":
            data, suffix = text_pages_pdf(MAX_TEXT_PAGES * 25), ".pdf"
        elif kind == "crop-box-bomb":
            data, suffix = crop_box_bomb(), ".pdf"
        elif kind == "over-size":
            data = b"%PDF-1.7\n" + b"0" * (MAX_UPLOAD_BYTES + 1024) + b"\n%%EOF\n"
            suffix = ".pdf"
        else:  # pragma: no cover - the plan only holds the kinds above
            raise AssertionError(kind)
        if kind in EXPENSIVE_EVERY or kind in ("entity-attack", "deep-xml"):
            # the same bytes twice are one document (a duplicate upload): keep every input apart
            data += (b"%% %d\n" if suffix == ".pdf" else b"<!-- %d -->") % index
        name = f"{index:06d}-{kind}{suffix}"
        if rng.random() < 0.03:
            name = f"{index:06d}-{rng.choice(HOSTILE_NAMES)}"
        yield HostileInput(kind, name, data)


# --- memory of the worker processes ------------------------------------------------------------


class PeakRss:
    """Peak resident memory of the given processes (VmHWM, sampled while they live) and of this
    process and its reaped children (getrusage): a replaced worker is covered by the second."""

    def __init__(self, pids: Callable[[], list[int]], interval_s: float = 0.1) -> None:
        self._pids = pids
        self._interval = interval_s
        self._stop = threading.Event()
        self.workers_kib = 0
        self._thread = threading.Thread(target=self._watch, name="hostile-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        for pid in self._pids():
            try:
                with open(f"/proc/{pid}/status", encoding="ascii") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            self.workers_kib = max(self.workers_kib, int(line.split()[1]))
            except (OSError, ValueError):
                continue  # gone between listing and reading: getrusage has it once reaped

    def figures_mb(self) -> dict[str, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "live_workers": round(self.workers_kib / 1024, 1),
            "reaped_children": round(children / 1024, 1),
            "run_process": round(own / 1024, 1),
        }


# --- the database ------------------------------------------------------------------------------


@contextmanager
def _database(url: str | None, keep: bool) -> Iterator[str]:
    """The URL to run on: as given, the configured PostgreSQL, or a scratch database."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    configured = os.environ.get("INVOICE_PIPELINES_DB_URL", "")
    if url:
        yield url
        return
    if configured.startswith(("postgresql", "postgres://")):
        yield configured
        return
    server = make_url(os.environ.get("INVOICE_PIPELINES_TEST_PG_URL") or DEFAULT_PG_SERVER)
    server = server.set(drivername="postgresql+psycopg2")  # as the test suite's databases
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"hostile_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        admin.dispose()
        raise SystemExit(
            f"the hostile benchmark runs on PostgreSQL and cannot create a scratch database on "
            f"{server.render_as_string()}: {str(exc).splitlines()[0]}; pass --db-url or set "
            "INVOICE_PIPELINES_DB_URL"
        ) from None
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


# --- the run -----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from invoice_pipelines.resources.ocr.engines import available_cores

    parser.add_argument("--n", type=positive_int, default=2000, help="hostile inputs in all")
    parser.add_argument("--seed", type=non_negative_int, default=22, help="the generators' seed")
    parser.add_argument(
        "--samples",
        default=str(DEFAULT_SAMPLES),
        help="folder of real e-invoices to truncate and mutate (default ../shared/samples/"
        "einvoice beside the repo; synthetic ones when it is absent)",
    )
    parser.add_argument(
        "--db-url",
        default=None,
        help="database (default: INVOICE_PIPELINES_DB_URL if PostgreSQL, else a scratch "
        "PostgreSQL database on the local server)",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=available_cores(), help="worker processes"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=50, help="uploads per intake batch"
    )
    parser.add_argument("--keep", action="store_true", help="keep the organization and files")


@dataclass
class Tally:
    """What happened to the inputs: each one counted once."""

    inputs: int = 0
    clean_failures: int = 0
    crashes: int = 0
    passed: int = 0
    blocked_exports: int = 0
    internal_errors: int = 0
    secret_leaks: int = 0
    smtp_header_injections: int = 0
    held_for_review: int = 0  # of the clean failures: NEEDS_REVIEW with its reason recorded

    def __post_init__(self) -> None:
        self.by_kind: dict[str, Counter] = {}
        self.crash_examples: list[str] = []
        self.export_examples: list[str] = []

    def count(self, kind: str, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.by_kind.setdefault(kind, Counter())[outcome] += 1

    def crash(self, where: str, exc: BaseException | str) -> None:
        if len(self.crash_examples) < 10:
            text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
            self.crash_examples.append(f"{where}: {str(text).splitlines()[0][:300]}")


def run(args: argparse.Namespace) -> dict:
    from invoice_pipelines.db.engine import make_engine, make_system_engine
    from invoice_pipelines.db.migrate import ensure_migrated

    if args.n < 1:
        raise SystemExit("--n must be at least 1")
    n_sales = args.n // SALES_SHARE
    n_intake = args.n - n_sales
    samples = Path(args.samples) if args.samples else None
    tally = Tally(inputs=args.n)
    seconds: dict[str, float] = {}
    with ExitStack() as stack:
        url = stack.enter_context(_database(args.db_url, args.keep))
        stack.enter_context(_env("INVOICE_PIPELINES_DB_URL", url))
        ensure_migrated(make_engine(url, owner=True))
        engine = make_engine(url)
        stack.callback(engine.dispose)
        system = make_system_engine(url)
        stack.callback(system.dispose)
        work = Path(tempfile.mkdtemp(prefix="ip-bench-hostile-"))
        org_id, slug = _organization(system)
        t0 = time.perf_counter()
        uploads = list(intake_inputs(n_intake, seed=args.seed, samples=samples))
        seconds["generate"] = time.perf_counter() - t0
        rss: dict[str, float] = {}
        started = time.perf_counter()
        t0 = time.perf_counter()
        _intake(engine, system, org_id, slug, uploads, work, args, tally, rss)
        seconds["intake"] = time.perf_counter() - t0
        del uploads
        t0 = time.perf_counter()
        months = _exports(engine, system, org_id, slug, work, tally)
        seconds["export"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _sales(engine, system, org_id, slug, n_sales, work, args, tally, rss)
        seconds["documents_and_delivery"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _refusals(engine, system, slug, tally)
        seconds["flags_and_tokens"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        categories = _issue_46(engine, url, work, args, tally)
        seconds["issue_46_categories"] = time.perf_counter() - t0
        total = time.perf_counter() - started
        limit_seconds = parse_floor(n_intake, args, samples)
        database_name = _database_name(engine)
        if not args.keep:
            _drop_organization(system, org_id)
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        database = engine.dialect.name
    unaccounted = tally.inputs - tally.clean_failures - tally.crashes - tally.passed
    result = {
        "scenario": "hostile",
        "database": database,
        "seed": args.seed,
        "samples": str(samples) if samples and samples.is_dir() else "synthetic",
        "inputs": tally.inputs,
        "clean_failures": tally.clean_failures,
        "crashes": tally.crashes + max(0, unaccounted),
        "stuck": sum(c.stuck for c in categories.values()),
        "blocked_exports": tally.blocked_exports,
        "max_worker_rss_mb": max(rss.values()) if rss else None,
        "seconds": round(total, 3),
        "passed": tally.passed,
        "held_for_review": tally.held_for_review,
        "export_months": months,
        "internal_errors": tally.internal_errors,
        "secret_leaks": tally.secret_leaks,
        "smtp_header_injections": tally.smtp_header_injections,
        "rss_mb": rss,
        "seconds_by_stage": {k: round(v, 3) for k, v in seconds.items()},
        "by_kind": {k: dict(v) for k, v in sorted(tally.by_kind.items())},
        "categories": {name: c.as_json() for name, c in categories.items()},
        "crash_examples": tally.crash_examples,
        "export_errors": tally.export_examples,
        "intake_inputs": n_intake,
        "intake_inputs_per_s": per_second(n_intake, seconds["intake"]),
    }
    return limit_fields(
        result,
        "intake_inputs_per_s",
        n_intake / limit_seconds if limit_seconds else None,
        LIMIT_METHOD.format(workers=args.workers, batch=args.batch_size),
        limit_seconds=round(limit_seconds, 3),
        database_name=database_name,
        limit_database=database_name,
    )


def _issue_46(engine, url: str, work: Path, args: argparse.Namespace, tally: Tally) -> dict:
    """The poison-batch, notice, look-alike and review categories (bench/hostile_intake.py), each
    in an organization of its own; their inputs and crashes count in the totals."""
    from invoice_pipelines_devtools.bench.hostile_intake import run_categories

    categories = run_categories(
        engine,
        url,
        work,
        n=args.n,
        seed=args.seed,
        workers=args.workers,
        batch_size=args.batch_size,
        keep=args.keep,
    )
    for name, category in categories.items():
        tally.inputs += category.inputs
        tally.passed += category.passed
        tally.clean_failures += category.clean_failures
        # a category's crashes: its inputs that ended wrong and what it checks besides them
        tally.crashes += category.crashes
        outcomes = ("passed", "clean_failures", "crashes")
        tally.by_kind[name] = Counter(
            {o: getattr(category, o) for o in outcomes if getattr(category, o)}
        )
        for example in category.examples:
            if len(tally.crash_examples) < 10:
                tally.crash_examples.append(f"{name}: {example}")
    return categories


# --- hostile flags and blank tokens -------------------------------------------------------------

HUGE = "99999999999999999999999"
# command lines with a malformed numeric or list flag or date: each must end in one sentence and
# exit code 2, having changed nothing ("{org}" is the bench's organization)
HOSTILE_ARGV = (
    ["send-invoices", "--org", "{org}", "--invoices", "abc"],
    ["send-invoices", "--org", "{org}", "--connections", "0"],
    ["send-invoices", "--org", "{org}", "--per-second", "NaN"],
    ["documents", "--org", "{org}", "--invoices", "1;2"],
    ["batch-invoice", "--org", "{org}", "--orders", HUGE],
    ["batch-send", "--org", "{org}", "--invoices", "-3"],
    ["batch-list", "--limit", HUGE],
    ["batch-retry", HUGE],
    ["batch-run", "7", "--chunk-size", "0"],
    ["export-reopen", "--org", "{org}", "--documents", "x", "--reason", "r"],
    ["dunning-block", "--org", "{org}", "--invoices", "abc", "--reason", "r"],
    ["dunning-base-rate", "--org", "{org}", "--from", "2026-01-01", "--percent", "1e999999"],
    ["overdue", "--org", "{org}", "--as-of", "9999-12-31"],
    ["overdue", "--org", "{org}", "--as-of", "0001-01-01"],
    ["credit-note", "--org", "{org}", "--invoice", "X", "--reason", "r", "--date", "9999-12-31"],
    ["credit-note", "--org", "{org}", "--invoice", "X", "--reason", "r", "--lines", "1:NaN"],
    ["qbo-import", "--org", "{org}", "--page-size", "-1"],
    ["qbo-webhooks", "--port", "99999"],
)
BLANK_TOKENS = ("", " ", "\t\n", "    ")


def _refusals(engine, system, slug: str, tally: Tally) -> None:
    """Hostile flags through the console script, run as a user runs it, and blank webhook tokens
    through the receiver: each one refused with one sentence is a clean failure, anything else a
    crash."""
    from invoice_pipelines.quickbooks.domain.webhooks import receiver
    from invoice_pipelines.settings import ConfigError
    from invoice_pipelines_devtools.bench.console import run_console

    for template in HOSTILE_ARGV:
        argv = [part.replace("{org}", slug) for part in template]
        tally.inputs += 1
        code, err = run_console(argv)
        lines = err.strip().splitlines()
        if code == 2 and lines and "Traceback" not in err:
            tally.count("hostile-flag", "clean_failures")
        else:
            tally.count("hostile-flag", "crashes")
            tally.crash(" ".join(argv), f"exit {code}: {lines[-1] if lines else 'no message'}")
    for token in BLANK_TOKENS:
        tally.inputs += 1
        try:
            server = receiver(engine, system, token)
        except ConfigError:
            tally.count("blank-webhook-token", "clean_failures")
            continue
        server.server_close()
        tally.count("blank-webhook-token", "crashes")
        tally.crash("qbo webhook receiver", f"started with the token {token!r}")


LIMIT_METHOD = (
    "the intake stage's headline (its supplier uploads per second, from dropping them to their "
    "recorded outcomes) against the same uploads, generated again from the seed, parsed by "
    "{workers} warm parse workers in batches of {batch} straight from memory, right after the run: "
    "no upload store, registration, OCR, rows or export; the sales invoices have no limit here"
)


def parse_floor(n_intake: int, args: argparse.Namespace, samples: Path | None) -> float:
    """Seconds for warm parse workers alone to read the run's supplier uploads again."""
    from itertools import islice

    from invoice_pipelines.intake.domain.workers import SafeParser

    inputs = intake_inputs(n_intake, seed=args.seed, samples=samples)
    seconds = 0.0
    with SafeParser(workers=args.workers) as parser:
        parser.wait_ready()
        while batch := [(i.data, i.name) for i in islice(inputs, args.batch_size)]:
            started = time.perf_counter()
            parser.parse_many(batch)
            seconds += time.perf_counter() - started
    return seconds


def _database_name(engine) -> str:
    from invoice_pipelines_devtools.bench.limit import current_database

    with engine.connect() as conn:
        return current_database(conn)


def _organization(system) -> tuple[int, str]:
    from invoice_pipelines.db.tables import organizations
    from invoice_pipelines.db.tenancy import system_transaction

    slug = f"bench-hostile-{uuid.uuid4().hex[:8]}"
    with system_transaction(system, write=True) as conn:
        org_id = conn.execute(
            organizations.insert()
            .values(
                slug=slug,
                name="Benchmark Hostile GmbH",
                vat_id="DE123456789",
                settings={"seller": SELLER},
                datev_berater_nr=29098,
                datev_mandant_nr=55003,
                datev_chart="SKR03",
            )
            .returning(organizations.c.id)
        ).scalar_one()
    return org_id, slug


def _drop_organization(system, org_id: int) -> None:
    from invoice_pipelines.db.tables import organizations
    from invoice_pipelines.db.tenancy import system_transaction

    try:
        with system_transaction(system, write=True) as conn:
            conn.execute(organizations.delete().where(organizations.c.id == org_id))
    except Exception:  # a scratch database is dropped anyway; a shared one keeps a bench org
        pass


def _intake(engine, system, org_id, slug, uploads, work, args, tally: Tally, rss: dict) -> None:
    from sqlalchemy import func, select

    from invoice_pipelines.db.tables import incoming_invoices, processing_errors
    from invoice_pipelines.db.tables import uploads as up
    from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
    from invoice_pipelines.intake.domain.pipeline import process_documents
    from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
    from invoice_pipelines.intake.parser_resource import DocumentParser
    from invoice_pipelines.resources.files.uploads import LocalUploads
    from invoice_pipelines.resources.ocr.engines import TesseractOcrEngine

    root = work / "uploads"
    root.mkdir()
    store = LocalUploads(str(root))
    # by content hash: the store or the scan may record a name other than the one we dropped
    stored: dict[str, tuple[str, str]] = {}
    old = time.time() - 600
    for item in uploads:
        try:
            store.put(slug, item.name, item.data)
        except (OSError, ValueError):
            # the store refused the name or the bytes with a reason: nothing reached the books
            tally.count(item.kind, "clean_failures")
            continue
        path = root / slug / item.name
        if path.exists():
            os.utime(path, (old, old))
        stored[hashlib.sha256(item.data).hexdigest()] = (item.name, item.kind)

    scan_errors: list[str] = []
    batches = []
    for _ in range(5):  # a tick has a budget; what it left waits for the next tick
        scan = scan_uploads(
            engine,
            store,
            ScanState(),
            system=system,
            batch_size=args.batch_size,
            max_files_per_tick=len(stored) + 10,
            only_organizations={slug},
            time_budget_s=600,
        )
        scan_errors += scan.errors
        batches += [b for b in scan.batches if b.organization_slug == slug]
        if not scan.waiting:
            break

    swapped = _swap_archived_originals(engine, org_id, root, stored)

    organization = find_organization(system, org_id)
    parser = DocumentParser(workers=args.workers)
    ocr = TesseractOcrEngine().reader()
    try:
        with PeakRss(lambda: parser.process_ids) as peak:
            done: set[int] = set()
            for batch in batches:
                ids = [i for i in batch.document_ids if i not in done]
                done.update(ids)
                if not ids:
                    continue
                try:
                    process_documents(
                        engine,
                        store,
                        organization,
                        ids,
                        parser=parser,
                        ocr=ocr,
                        max_bytes=parser.max_upload_bytes,
                    )
                except Exception as exc:  # escaped the per-document boundary: the batch is lost
                    tally.crash(f"intake batch of {len(ids)}", exc)
    finally:
        parser.close()
    rss.update({f"intake_{k}": v for k, v in peak.figures_mb().items()})

    with tenant_transaction(engine, org_id) as conn:
        rows = conn.execute(
            select(
                incoming_invoices.c.id,
                incoming_invoices.c.status,
                up.c.filename,
                up.c.content_hash.label("upload_hash"),
                incoming_invoices.c.content_hash,
                incoming_invoices.c.seller_name,
                incoming_invoices.c.invoice_number,
                incoming_invoices.c.raw_json,
            )
            .select_from(incoming_invoices.outerjoin(up, up.c.id == incoming_invoices.c.upload_id))
            .where(incoming_invoices.c.organization_id == org_id)
        ).all()
        reasons = dict(
            conn.execute(
                select(
                    processing_errors.c.incoming_invoice_id, func.min(processing_errors.c.message)
                )
                .where(processing_errors.c.organization_id == org_id)
                .group_by(processing_errors.c.incoming_invoice_id)
            ).all()
        )
    # an over-size file is registered without reading it whole: its hash is not ours, its name is
    by_name = {name: digest for digest, (name, _) in stored.items()}
    seen: set[str] = set()
    for row in rows:
        digest = row.upload_hash or row.content_hash
        if digest not in stored:
            digest = by_name.get(row.filename or "", digest)
        kind = stored.get(digest, ("", "unknown"))[1]
        seen.add(digest)
        if (
            SECRET_MARK in f"{row.seller_name}{row.invoice_number}{row.raw_json}"
            and kind == "entity-attack"
        ):
            tally.secret_leaks += 1
        if kind == "swapped-archive" and digest in swapped:
            # refused unread, the reason saying why; anything else read the swapped file
            if row.status == "FAILED" and SWAPPED_REASON in (reasons.get(row.id) or ""):
                tally.count(kind, "clean_failures")
            else:
                tally.count(kind, "crashes")
                tally.crash(
                    f"document {row.id} (swapped-archive)",
                    f"{row.status}: {reasons.get(row.id) or 'no reason'}; the original swapped "
                    "for a 16 MiB file was not refused as changed",
                )
        elif row.status == "FAILED" and reasons.get(row.id):
            tally.count(kind, "clean_failures")
            if "unexpected error" in reasons[row.id]:
                tally.internal_errors += 1
        elif row.status == "NEEDS_REVIEW" and reasons.get(row.id):
            # held for a person with the reason recorded: a clean stop, nothing booked
            tally.count(kind, "clean_failures")
            tally.held_for_review += 1
        elif row.status in ("VALIDATED", "EXPORTED", "PARSED"):
            tally.count(kind, "passed")
        else:
            tally.count(kind, "crashes")
            tally.crash(f"document {row.id} ({kind})", f"left {row.status} without a reason")
    # a file the scan never registered: a recorded scan error is its reason, silence is a crash
    for digest, (name, kind) in stored.items():
        if digest in seen:
            continue
        if any(name in e for e in scan_errors):
            tally.count(kind, "clean_failures")
        else:
            tally.count(kind, "crashes")
            tally.crash(f"upload {name!r}", "never registered and no reason given")


def _swap_archived_originals(engine, org_id: int, root: Path, stored: dict) -> set[str]:
    """What a tenant that can write its own `.archive` does after registration: each registered
    swapped-archive original becomes a SWAPPED_ARCHIVE_BYTES file under the same key. Returns the
    content hashes (as registered) of those swapped."""
    from sqlalchemy import select

    from invoice_pipelines.db.tables import uploads as up
    from invoice_pipelines.db.tenancy import tenant_transaction

    wanted = {digest for digest, (_, kind) in stored.items() if kind == "swapped-archive"}
    with tenant_transaction(engine, org_id) as conn:
        rows = conn.execute(
            select(up.c.content_hash, up.c.storage_key).where(
                up.c.organization_id == org_id, up.c.content_hash.in_(wanted)
            )
        ).all()
    block = b"<swapped>" + b"0" * (MiB - 19) + b"</swapped>"
    swapped = set()
    for digest, key in rows:
        with open(root / key, "wb") as handle:  # the same file, in place
            for _ in range(SWAPPED_ARCHIVE_BYTES // MiB):
                handle.write(block)
        swapped.add(digest)
    return swapped


def _exports(engine, system, org_id, slug, work, tally: Tally) -> int:
    from sqlalchemy import select

    from invoice_pipelines.db.tables import incoming_invoices
    from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
    from invoice_pipelines.exports.domain.pipeline import run_export
    from invoice_pipelines.resources.files.files import LocalFiles

    with tenant_transaction(engine, org_id) as conn:
        days = conn.execute(
            select(incoming_invoices.c.issue_date).where(
                incoming_invoices.c.organization_id == org_id,
                incoming_invoices.c.status == "VALIDATED",
                incoming_invoices.c.issue_date.is_not(None),
            )
        ).scalars()
        periods = sorted({f"{d.year:04d}-{d.month:02d}" for d in days})
    store = LocalFiles(str(work / "exports"))
    for period in periods:
        try:
            result = run_export(
                engine,
                store,
                find_organization(system, slug),
                period,
                "incoming",
                requested_by="bench",
            )
        except Exception as exc:
            tally.blocked_exports += 1
            if len(tally.export_examples) < 10:
                message = str(exc).splitlines()[0][:300] if str(exc) else ""
                tally.export_examples.append(f"{period}: {type(exc).__name__}: {message}")
            continue
        for _ in result.skipped:
            # exported documents were counted as passed: a skipped one moves to clean failures
            tally.passed -= 1
            tally.clean_failures += 1
    return len(periods)


def _clean_for_postgres(value: str, dialect: str) -> str:
    # PostgreSQL text cannot hold NUL at all; the intake inputs carry it instead
    return value.replace("\x00", "") if dialect == "postgresql" else value


EMAILS = (
    "einkauf{i}@kunde.example",
    '"X\r\nBcc: victim@evil.example" <kunde{i}@kunde.example>',
    "kunde{i}@kunde.example\r\nBcc: victim@evil.example",
    "kunde{i}@kunde.example, victim@evil.example",
    "=cmd|' /C calc'!A0@kunde.example",
    "müller{i}@bücher.example",
    "kein-e-mail-{i}",
    "\u202ekunde{i}@kunde.example",
)


def sales_rows(n: int, seed: int, dialect: str) -> tuple[list[dict], list[list[tuple]]]:
    """Customers (one per invoice) and per invoice its lines: (text, quantity, price, rate).

    Each field is hostile with some chance and ordinary otherwise, so that documents get written
    and mail goes out with hostile values in it, not only refused at the first field.
    """
    rng = random.Random(seed * 7919 + 1)

    def value(ordinary: str, limit: int) -> str:
        text = hostile_text(rng) if rng.random() < 0.35 else ordinary
        return _clean_for_postgres(text, dialect)[:limit] or ordinary

    customers, lines = [], []
    for i in range(n):
        customers.append(
            {
                "customer_number": f"K-{i:06d}",
                "name": value(f"Kunde {i} GmbH", 255),
                "email": _clean_for_postgres(
                    rng.choice(EMAILS).format(i=i) if rng.random() < 0.5 else EMAILS[0].format(i=i),
                    dialect,
                )[:255],
                "street": value(f"Hauptstraße {i % 200 + 1}", 255),
                "postal_code": value("10115", 32),
                "city": value("Berlin", 128),
                "country": "DE",
                "language": rng.choice(("de", "en")),
            }
        )
        lines.append(
            [
                (value(f"Artikel {k}", 512), Decimal(k + 1), Decimal("12.50"), Decimal(19))
                for k in range(rng.randint(1, 3))
            ]
        )
    return customers, lines


def _seed_sales(engine, org_id: int, n: int, seed: int) -> tuple[list[int], dict[int, str]]:
    """The sales invoices; a row the database refuses is a clean failure with its reason."""
    from sqlalchemy import insert

    from invoice_pipelines.db.tables import (
        customers,
        sales_invoice_lines,
        sales_invoice_taxes,
        sales_invoices,
    )
    from invoice_pipelines.db.tenancy import tenant_transaction

    d = Decimal
    rows, plans = sales_rows(n, seed, engine.dialect.name)
    ids: list[int] = []
    refused: dict[int, str] = {}
    for i, (customer, lines) in enumerate(zip(rows, plans, strict=True)):
        day = date(2026, 11, 1) + timedelta(days=i % 28)
        net = sum(((q * p).quantize(d("0.01")) for _, q, p, _ in lines), d(0))
        tax = (net * d("0.19")).quantize(d("0.01"))
        number = f"RE-{i:06d}"
        if i % 3 == 0:
            number = f"{number}-{hostile_text(random.Random(seed + i))}"[:64]
        number = _clean_for_postgres(number, engine.dialect.name)
        try:
            with tenant_transaction(engine, org_id, write=True) as conn:
                customer_id = conn.execute(
                    insert(customers)
                    .values(organization_id=org_id, **customer)
                    .returning(customers.c.id)
                ).scalar_one()
                invoice_id = conn.execute(
                    insert(sales_invoices)
                    .values(
                        organization_id=org_id,
                        invoice_number=number,
                        sequence_number=i + 1,
                        customer_id=customer_id,
                        issue_date=day,
                        due_date=day + timedelta(days=14),
                        currency="EUR",
                        net_total=net,
                        tax_total=tax,
                        gross_total=net + tax,
                        amount_due=net + tax,
                    )
                    .returning(sales_invoices.c.id)
                ).scalar_one()
                conn.execute(
                    insert(sales_invoice_lines),
                    [
                        {
                            "organization_id": org_id,
                            "sales_invoice_id": invoice_id,
                            "line_no": no,
                            "description": text,
                            "quantity": q,
                            "unit_price": p,
                            "net_amount": (q * p).quantize(d("0.01")),
                            "vat_rate": rate,
                            "vat_category": "S",
                        }
                        for no, (text, q, p, rate) in enumerate(lines, start=1)
                    ],
                )
                conn.execute(
                    insert(sales_invoice_taxes).values(
                        organization_id=org_id,
                        sales_invoice_id=invoice_id,
                        vat_category="S",
                        vat_rate=d(19),
                        basis=net,
                        amount=tax,
                    )
                )
            ids.append(invoice_id)
        except Exception as exc:
            refused[-(i + 1)] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return ids, refused


def _sales(engine, system, org_id, slug, n, work, args, tally: Tally, rss: dict) -> None:
    from invoice_pipelines.db.tenancy import find_organization
    from invoice_pipelines.delivery.domain.pipeline import send_invoice_emails
    from invoice_pipelines.documents.domain.pipeline import generate_documents
    from invoice_pipelines.documents.domain.renderer import DocumentRenderer
    from invoice_pipelines.resources.files.files import LocalFiles
    from invoice_pipelines.resources.messaging.smtp import Smtp
    from invoice_pipelines_devtools.standins.smtp import SmtpSink

    if n == 0:
        return
    ids, refused = _seed_sales(engine, org_id, n, args.seed)
    for _ in refused:
        tally.count("sales-invoice-refused", "clean_failures")
    store = LocalFiles(str(work / "documents"))
    outcome: dict[int, str] = {}  # invoice id -> passed / clean_failures / crashes
    renderer = DocumentRenderer(workers=args.workers)
    chunks = [ids[i : i + args.batch_size] for i in range(0, len(ids), args.batch_size)]
    try:
        with PeakRss(lambda: renderer.process_ids) as peak:
            for chunk in chunks:
                try:
                    summary = generate_documents(
                        engine, store, find_organization(system, slug), chunk, builder=renderer
                    )
                except Exception as exc:
                    tally.crash(f"documents of {len(chunk)} invoices", exc)
                    outcome.update({i: "crashes" for i in chunk})
                    continue
                for invoice_id in chunk:
                    if invoice_id in summary.failed:
                        errors = summary.failed[invoice_id]
                        ok = bool(errors) and all(e.get("message") for e in errors)
                        outcome[invoice_id] = "clean_failures" if ok else "crashes"
    finally:
        renderer.close()
    rss.update({f"documents_{k}": v for k, v in peak.figures_mb().items()})

    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="rechnung@bench.example")
        for chunk in chunks:
            try:
                sent = send_invoice_emails(
                    engine,
                    store,
                    mailer,
                    find_organization(system, slug),
                    chunk,
                    max_per_second=100_000,
                )
            except Exception as exc:
                tally.crash(f"delivery of {len(chunk)} invoices", exc)
                outcome.update({i: "crashes" for i in chunk})
                continue
            for invoice_id in chunk:
                if outcome.get(invoice_id) == "crashes":
                    continue
                if invoice_id in sent.failed or invoice_id in sent.skipped:
                    outcome[invoice_id] = "clean_failures"
                elif invoice_id in sent.unknown:
                    outcome[invoice_id] = "crashes"  # nobody knows whether it went out
                    tally.crash(f"delivery of invoice {invoice_id}", "outcome unknown")
                elif invoice_id not in outcome:
                    outcome[invoice_id] = "passed"
        for message in sink.mailbox.messages:
            headers = " ".join(f"{k}: {v}" for k, v in message.items())
            if EVIL_DOMAIN in headers or message.get("Bcc") is not None:
                tally.smtp_header_injections += 1
    for invoice_id in ids:
        result = outcome.get(invoice_id)
        if result is None:
            tally.crash(f"sales invoice {invoice_id}", "no document and no delivery outcome")
            result = "crashes"
        tally.count("sales-invoice", result)
