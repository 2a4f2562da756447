"""The read-back's PDF reading without pypdf (`readers/simple_pdf.py`): a PDF of the simple shape
ours have gives the same page count, embedded files and problems as pypdf's reading, from its
bytes; anything else is left to pypdf."""

from __future__ import annotations

import re
import zlib
from decimal import Decimal

import pytest

from invoice_pipelines.documents.domain.build import build_document
from invoice_pipelines.einvoice.read import read_einvoice
from invoice_pipelines.einvoice.readers import pdf as pdf_reader
from invoice_pipelines.einvoice.readers.pdf import _open_simple, open_pdf
from invoice_pipelines_tests.conftest import SAMPLES_DIR
from invoice_pipelines_tests.documents.test_build import make_invoice, source

D = Decimal
SAMPLE_PDFS = sorted(SAMPLES_DIR.rglob("*.pdf")) if SAMPLES_DIR.is_dir() else []


def _written(number: str = "RE-2026-000077") -> bytes:
    lines = [("Bohrer HSS 8 mm", D("3"), D("24.90"), "S", D("19"))]
    lines += [("Fachbuch", D("1"), D("39.95"), "S", D("7"))]
    built = build_document(source(make_invoice(lines, number=number)))
    assert built.ok, built.errors
    return built.pdf


def _reading(document) -> tuple:
    return document.page_count, document.attachments, document.problems


@pytest.mark.parametrize("path", SAMPLE_PDFS, ids=lambda p: p.name)
def test_a_sample_reads_as_pypdf_reads_it_or_is_left_to_pypdf(path) -> None:
    data = path.read_bytes()
    simple = _open_simple(data)
    if simple is not None:
        assert _reading(simple) == _reading(open_pdf(data))


def test_the_samples_are_there() -> None:
    assert len(SAMPLE_PDFS) >= 10


def test_a_document_we_write_is_read_without_pypdf_to_the_same_files() -> None:
    data = _written()
    simple = _open_simple(data)
    assert simple is not None
    assert _reading(simple) == _reading(open_pdf(data))
    assert [a.name for a in simple.attachments] == ["factur-x.xml"]
    assert b"RE-2026-000077" in simple.attachments[0].data


def _with_xml(data: bytes, change) -> bytes:
    """The PDF with its embedded XML's stream replaced by `change(xml)`, the table's offsets
    and the stream's length mended: a valid PDF saying something else than was written."""
    stream = re.compile(rb"/Filter /FlateDecode /Length (\d+) >>\nstream\n")
    header = stream.search(data)
    while (
        header is not None and b"/EmbeddedFile" not in data[header.start() - 300 : header.start()]
    ):
        header = stream.search(data, header.end())
    assert header is not None
    length = int(header.group(1))
    old = data[header.end() : header.end() + length]
    new = zlib.compress(change(zlib.decompress(old)))
    head = data[: header.start()] + b"/Filter /FlateDecode /Length %d >>\nstream\n" % len(new)
    out = head + new + data[header.end() + length :]
    shift = len(out) - len(data)

    def moved(entry: re.Match) -> bytes:
        offset = int(entry.group(1))
        return b"%010d" % (offset + shift if offset > header.start() else offset) + entry.group(2)

    table = out.rindex(b"\nxref\n") + 1
    xref = re.sub(rb"(\d{10})( \d{5} n)", moved, out[table:])
    xref = re.sub(rb"startxref\n(\d+)", b"startxref\n%d" % table, xref)
    return out[:table] + xref


def test_what_the_read_back_reads_is_what_the_bytes_hold() -> None:
    """A document whose embedded XML says another number reads back with that number: the
    reading comes from the bytes, not from what was meant to be written."""
    data = _with_xml(_written(), lambda xml: xml.replace(b"RE-2026-000077", b"RE-2026-000078"))
    assert _open_simple(data) is not None
    outcome = read_einvoice(data, "RE-2026-000077.pdf")
    assert outcome.invoice is not None and outcome.invoice.number == "RE-2026-000078"
    broken = _with_xml(_written(), lambda xml: xml.replace(b"</rsm:CrossIndustryInvoice>", b""))
    assert read_einvoice(broken, "RE-2026-000077.pdf").status == "FAILED"


def test_a_damaged_stream_is_left_to_pypdf_and_fails_the_reading() -> None:
    data = bytearray(_written())
    at = data.index(b"/Type /EmbeddedFile")
    start = data.index(b"stream\n", at) + len(b"stream\n")
    data[start + 40 : start + 48] = b"\x00" * 8
    assert _open_simple(bytes(data)) is None
    assert read_einvoice(bytes(data), "RE-2026-000077.pdf").status == "FAILED"


def test_a_file_over_the_budget_is_not_read_either_way(monkeypatch) -> None:
    data = _written()
    monkeypatch.setattr(pdf_reader, "MAX_ATTACHMENT_BYTES_TOTAL", 1000)
    simple = _open_simple(data)
    assert simple is not None and simple.attachments[0].over_limit
    assert _reading(simple) == _reading(open_pdf(data))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d + d[d.rindex(b"xref") :], id="an incremental update"),
        pytest.param(
            lambda d: d.replace(b"trailer\n<<", b"trailer\n<< /Encrypt 99 0 R", 1), id="encrypted"
        ),
        pytest.param(lambda d: d.replace(b"/Kids [", b"/Kids [99 0 R ", 1), id="a missing page"),
        pytest.param(lambda d: d.replace(b"/FlateDecode", b"/LZWDecode"), id="another filter"),
        pytest.param(
            lambda d: re.sub(rb"/Length \d+ >>", b"/Length -1 >>", d), id="a negative length"
        ),
        pytest.param(lambda d: d.replace(b" 0 obj", b" 0 obj %", 1), id="a comment"),
    ],
)
def test_other_shapes_are_left_to_pypdf(change) -> None:
    assert _open_simple(change(_written())) is None


def _mutated(data: bytes, rng) -> bytes:
    """`data` with one to four small damages: a byte changed, a token put in, a run cut out, or an
    object reference's number changed."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        position, kind = rng.randrange(len(out)), rng.random()
        if kind < 0.4:
            out[position] = rng.randrange(256)
        elif kind < 0.6:
            token = rng.choice([b"0", b"9", b" ", b"/", b"<<", b">>", b"R", b"\n", b"999999999"])
            out[position:position] = token
        elif kind < 0.8:
            del out[position : position + rng.randint(1, 20)]
        else:
            reference = out.find(b" 0 R", position)
            if reference > 0:
                out[reference - 1 : reference] = str(rng.randrange(100)).encode()
    return bytes(out)


def test_a_damaged_document_is_read_as_pypdf_reads_it_or_left_to_pypdf() -> None:
    """Damaged copies of a document we write (migrated history reads other people's PDFs through
    the same reader): whatever the simple reader accepts, it reads as pypdf does, and it never
    raises where it should have handed the file on. The seed is fixed: the same 400 copies each
    run."""
    import random

    rng = random.Random(20261127)
    written = _written()
    taken = 0
    for _ in range(400):
        data = _mutated(written, rng)
        simple = _open_simple(data)
        if simple is None:
            continue
        taken += 1
        try:
            reference = open_pdf(data)
        except pdf_reader.PdfUnreadable:
            continue
        assert _reading(simple) == _reading(reference)
    assert taken > 20  # the damages leave enough copies of the simple shape to compare
