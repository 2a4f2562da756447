"""Hand-written hostile PDFs for the tests: embedded-file bombs and documents with many pages.

Written byte by byte rather than with pypdf's writer so a test can put any stream (already
compressed, with any /Filter) into the file without the writer decoding or re-encoding it, and
so building a bomb never holds its decoded content in memory.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Embedded:
    """One embedded file: its name and its stream bytes exactly as they go into the PDF."""

    name: str
    stream: bytes
    filter: str | None = "/FlateDecode"


def zeros_deflated(size: int) -> bytes:
    """`size` zero bytes, deflated; about a thousandth of `size`."""
    compressor = zlib.compressobj(9)
    chunk = bytes(MiB)
    parts = [compressor.compress(chunk) for _ in range(size // MiB)]
    parts.append(compressor.compress(bytes(size % MiB)))
    parts.append(compressor.flush())
    return b"".join(parts)


def embedded_xml(name: str, xml: bytes) -> Embedded:
    return Embedded(name, zlib.compress(xml))


def _literal(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def build_pdf(
    embedded: list[Embedded] | tuple[Embedded, ...] = (),
    *,
    pages: int = 1,
    page_text: str | None = None,
) -> bytes:
    """A PDF with `pages` pages (blank, or each showing `page_text`) and the embedded files."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in last, it names the others
    page_tree = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for number in range(1, pages + 1):
        contents = b""
        if page_text is not None:
            text = _literal(f"{page_text} (page {number})")
            content = b"BT /F1 12 Tf 72 720 Td " + text + b" Tj ET"
            stream = add(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
            contents = b" /Contents %d 0 R" % stream
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842]" % page_tree
                + b" /Resources << /Font << /F1 %d 0 R >> >>" % font
                + contents
                + b" >>"
            )
        )
    names = []
    for item in embedded:
        head = b"<< /Type /EmbeddedFile /Length %d" % len(item.stream)
        if item.filter:
            head += b" /Filter " + item.filter.encode("ascii")
        stream = add(head + b" >>\nstream\n" + item.stream + b"\nendstream")
        spec = add(
            b"<< /Type /Filespec /F "
            + _literal(item.name)
            + b" /UF "
            + _literal(item.name)
            + b" /EF << /F %d 0 R >> >>" % stream
        )
        names.append(_literal(item.name) + b" %d 0 R" % spec)
    objects[page_tree - 1] = (
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % kid for kid in kids)
        + b"] /Count %d >>" % len(kids)
    )
    catalog_body = b"<< /Type /Catalog /Pages %d 0 R" % page_tree
    if names:
        catalog_body += b" /Names << /EmbeddedFiles << /Names [" + b" ".join(names) + b"] >> >>"
    objects[catalog - 1] = catalog_body + b" >>"

    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\n" % (len(objects) + 1, catalog)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
