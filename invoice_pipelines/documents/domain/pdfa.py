"""PDF/A-3b files written directly: the page content, one TrueType font cut to the glyphs the
document uses, the sRGB output intent, XMP metadata and, for a Factur-X invoice, the XML as an
associated file (`factur-x.xml`, AFRelationship Data, the Factur-X XMP extension schema).

Why not a PDF library: fpdf2 took 20 ms per invoice (parsing the font again for every document,
subsetting it with fontTools, a Python object per QR module) and factur-x another 11 ms (pypdf
reading the whole PDF back to add one file and rewrite it). What is the same for every document is
prepared once per process here (`Font`: the font's tables, its widths and character map; the
compressed colour profile; the XMP extension schema), and a document costs its own text, the
glyphs it uses and the XML it carries.

What PDF/A-3b asks of such a file and how it is met: every font embedded (a TrueType CIDFont,
Identity-H, widths equal to the font program's advances, no .notdef shown), an OutputIntent
GTS_PDFA1 with the ICC profile, the XMP packet in the catalog uncompressed with
`pdfaid:part` 3 and conformance B and the same title, author, subject, keywords, tools and
dates as the Info dictionary, a file ID in the trailer, no encryption, every stream's length
exact, embedded files with /F, /UF, /AFRelationship, a MIME /Subtype and /Params /ModDate, listed
in the catalog's /AF.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

FACTURX_NAMESPACE = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
PRODUCER = "invoice_pipelines"

# composite glyph flags (OpenType 'glyf'): what follows a component's glyph index
_ARG_1_AND_2_ARE_WORDS = 0x0001
_WE_HAVE_A_SCALE = 0x0008
_MORE_COMPONENTS = 0x0020
_WE_HAVE_AN_X_AND_Y_SCALE = 0x0040
_WE_HAVE_A_TWO_BY_TWO = 0x0080


def _checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF


class Font:
    """One TrueType font, read once per process: glyph ids by character, advance widths in
    thousandths of the font size, each glyph's outline bytes and, for composite glyphs, where
    their components' glyph ids sit (a cut renumbers them)."""

    def __init__(
        self, path: Path, characters: Sequence[tuple[int, int]] = ((0, 0x10FFFF),)
    ) -> None:
        """`characters`: ranges of code points documents may show (others are not in `gids`)."""
        from fontTools.ttLib import TTFont

        with TTFont(str(path)) as font:
            self.name = font["name"].getDebugName(6) or "DejaVuSans"
            head, hhea = font["head"], font["hhea"]
            units = head.unitsPerEm
            order = font.getGlyphOrder()
            gid = {name: index for index, name in enumerate(order)}
            self.gids: dict[str, int] = {
                chr(code): gid[name]
                for code, name in font.getBestCmap().items()
                if any(first <= code <= last for first, last in characters)
            }
            metrics = font["hmtx"].metrics
            self.advances = [metrics[name][0] for name in order]
            self.side_bearings = [metrics[name][1] for name in order]
            self.widths = [int(a * 1000 / units + 0.5) for a in self.advances]
            loca = font["loca"]
            glyf = font.getTableData("glyf")
            self.outlines = [glyf[loca[i] : loca[i + 1]] for i in range(len(order))]
            self.tables = {
                tag: font.getTableData(tag) for tag in ("cvt ", "fpgm", "prep") if tag in font
            }
            self.head = font.getTableData("head")
            self.hhea = font.getTableData("hhea")
            self.maxp = font.getTableData("maxp")
            scale = 1000 / units
            self.descriptor = (
                f"/Ascent {int(hhea.ascent * scale)} /Descent {int(hhea.descent * scale)} "
                f"/CapHeight {int(hhea.ascent * scale)} /Flags 4 /FontBBox "
                f"[{int(head.xMin * scale)} {int(head.yMin * scale)} "
                f"{int(head.xMax * scale)} {int(head.yMax * scale)}] /ItalicAngle 0 "
                f"/StemV {50 + int((font['OS/2'].usWeightClass / 65) ** 2)} "
                f"/MissingWidth {self.widths[0]}"
            )
        self.components = [self._components(outline) for outline in self.outlines]
        # text as 4-digit hex glyph ids (the CIDs of an Identity-H font), one lookup per character
        self.hex = {char: f"{g:04x}" for char, g in self.gids.items()}
        self.char_widths = {char: self.widths[g] for char, g in self.gids.items()}

    @staticmethod
    def _components(outline: bytes) -> list[tuple[int, int]]:
        """(offset of the glyph id, glyph id) of each component of a composite glyph."""
        if len(outline) < 10 or struct.unpack_from(">h", outline)[0] >= 0:
            return []
        found, offset = [], 10
        while True:
            flags, glyph = struct.unpack_from(">HH", outline, offset)
            found.append((offset + 2, glyph))
            offset += 4 + (4 if flags & _ARG_1_AND_2_ARE_WORDS else 2)
            if flags & _WE_HAVE_A_SCALE:
                offset += 2
            elif flags & _WE_HAVE_AN_X_AND_Y_SCALE:
                offset += 4
            elif flags & _WE_HAVE_A_TWO_BY_TWO:
                offset += 8
            if not flags & _MORE_COMPONENTS:
                return found

    def string_width(self, text: str, size: float) -> float:
        widths = self.char_widths
        return sum(widths[char] for char in text) * size / 1000

    def program(self, used: set[int]) -> tuple[bytes, dict[int, int]]:
        """A TrueType font program with glyph 0 (.notdef) and the `used` glyphs (and their
        components), renumbered from 1 in glyph id order, with one (3,1) cmap of the characters
        they show (PDF/A: a symbolic TrueType program has exactly one); and new id by old."""
        keep, todo = {0}, list(used)
        while todo:
            glyph = todo.pop()
            if glyph not in keep:
                keep.add(glyph)
                todo.extend(g for _, g in self.components[glyph])
        order = sorted(keep)
        new = {old: index for index, old in enumerate(order)}
        outlines, offsets, position = [], [], 0
        for old in order:
            outline = self.outlines[old]
            if self.components[old]:
                patched = bytearray(outline)
                for offset, glyph in self.components[old]:
                    struct.pack_into(">H", patched, offset, new[glyph])
                outline = bytes(patched)
            outline += b"\0" * (-len(outline) % 4)
            offsets.append(position)
            outlines.append(outline)
            position += len(outline)
        offsets.append(position)
        count = len(order)
        head = bytearray(self.head)
        struct.pack_into(">I", head, 8, 0)  # checkSumAdjustment, set below
        struct.pack_into(">h", head, 50, 1)  # indexToLocFormat: long offsets
        hhea = bytearray(self.hhea)
        struct.pack_into(">H", hhea, 34, count)  # numberOfHMetrics
        maxp = bytearray(self.maxp)
        struct.pack_into(">H", maxp, 4, count)  # numGlyphs
        tables = {
            **self.tables,
            "cmap": _cmap(
                sorted((ord(char), new[g]) for char, g in self.gids.items() if g in used)
            ),
            "glyf": b"".join(outlines),
            "head": bytes(head),
            "hhea": bytes(hhea),
            "hmtx": b"".join(
                struct.pack(">Hh", self.advances[old], self.side_bearings[old]) for old in order
            ),
            "loca": struct.pack(f">{len(offsets)}I", *offsets),
            "maxp": bytes(maxp),
        }
        data, offsets = _sfnt(tables)
        adjustment = (0xB1B0AFBA - _checksum(data)) & 0xFFFFFFFF
        data = bytearray(data)
        struct.pack_into(">I", data, offsets["head"] + 8, adjustment)
        return bytes(data), new


def _cmap(pairs: list[tuple[int, int]]) -> bytes:
    """A 'cmap' table with one subtable, Windows Unicode BMP (3,1) format 4: segments of
    consecutive characters whose glyph ids are consecutive too."""
    segments: list[list[int]] = []  # [first code, last code, delta]
    for code, glyph in pairs:
        if code > 0xFFFE:
            continue
        delta = (glyph - code) % 0x10000
        if segments and segments[-1][1] == code - 1 and segments[-1][2] == delta:
            segments[-1][1] = code
        else:
            segments.append([code, code, delta])
    segments.append([0xFFFF, 0xFFFF, 1])
    count = len(segments)
    search = 2 * (1 << (count.bit_length() - 1))
    subtable = struct.pack(
        f">7H{count}HH{count}H{count}H{count}H",
        4,
        16 + 8 * count,
        0,
        2 * count,
        search,
        search.bit_length() - 2,
        2 * count - search,
        *(last for _, last, _ in segments),
        0,
        *(first for first, _, _ in segments),
        *(delta for _, _, delta in segments),
        *([0] * count),
    )
    return struct.pack(">HHHHI", 0, 1, 3, 1, 12) + subtable


def _sfnt(tables: dict[str, bytes]) -> tuple[bytes, dict[str, int]]:
    """The font file of these tables, and where each table starts in it."""
    tags = sorted(tables)
    count = len(tags)
    power = 1 << (count.bit_length() - 1)
    header = struct.pack(">IHHHH", 0x00010000, count, power * 16, power.bit_length() - 1,
                         count * 16 - power * 16)  # fmt: skip
    directory, body, offsets = [], [], {}
    offset = 12 + 16 * count
    for tag in tags:
        data = tables[tag]
        directory.append(struct.pack(">4sIII", tag.encode(), _checksum(data), offset, len(data)))
        padded = data + b"\0" * (-len(data) % 4)
        body.append(padded)
        offsets[tag] = offset
        offset += len(padded)
    return header + b"".join(directory) + b"".join(body), offsets


@lru_cache(maxsize=4)
def font(path: Path) -> Font:
    return Font(path)


class Page:
    """One page's content stream in the coordinates of the layout (points, y downwards from the
    top), in one font at any size."""

    def __init__(self, font: Font, height: float) -> None:
        self.font = font
        self.height = height
        self.ops: list[str] = []
        self.used: set[str] = set()
        self._size: float | None = None

    def text(self, x: float, y: float, text: str, size: float) -> None:
        """`text` with its baseline at y; every character must be in the font."""
        if not text:
            return
        hex_of = self.font.hex
        font_op = "" if size == self._size else f"/F1 {size:.2f} Tf "
        self._size = size
        self.ops.append(
            f"BT {font_op}{x:.2f} {self.height - y:.2f} Td "
            f"<{''.join(hex_of[char] for char in text)}> Tj ET"
        )
        self.used.update(text)

    def modules(self, x: float, y: float, step: float, runs: list[tuple[int, int, int]]) -> None:
        """Filled black squares of side `step` on a grid whose top left corner is (x, y): runs
        of (row, column, length), one rectangle each, in grid units (a transformation matrix
        does the scaling)."""
        if not runs:
            return
        rects = "\n".join(f"{column} {row} {length} 1 re" for row, column, length in runs)
        self.ops.append(
            f"q {step:.5f} 0 0 {-step:.5f} {x:.2f} {self.height - y:.2f} cm 0 0 0 rg\n{rects}\nf Q"
        )

    def content(self) -> bytes:
        # the text state (font and size) carries over between text objects: set it per page
        return ("0 0 0 rg\n" + "\n".join(self.ops)).encode("ascii")


@dataclass(frozen=True)
class Attachment:
    """An embedded file associated with the document (PDF/A-3 /AF)."""

    name: str
    data: bytes
    mime: str = "text/xml"
    relationship: str = "Data"
    description: str = ""


@dataclass(frozen=True)
class Metadata:
    title: str = ""
    author: str = ""
    subject: str = ""
    keywords: str = ""
    creator: str = PRODUCER
    lang: str = "de-DE"
    created: datetime | None = None
    # Factur-X: (document type, conformance level) for the fx: XMP properties, e.g.
    # ("INVOICE", "EN 16931"); None for a PDF without an e-invoice
    facturx: tuple[str, str] | None = None


def _pdf_string(text: str) -> bytes:
    """A PDF text string: literal when ASCII, else UTF-16BE with a byte order mark (hex)."""
    if text.isascii():
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        escaped = escaped.replace("\r", "\\r").replace("\n", "\\n")
        return f"({escaped})".encode("ascii")
    return b"<feff" + text.encode("utf-16-be").hex().encode("ascii") + b">"


def _pdf_date(moment: datetime) -> str:
    return moment.strftime("D:%Y%m%d%H%M%S+00'00'")


def _xmp(meta: Metadata, moment: datetime) -> bytes:
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    facturx = ""
    if meta.facturx is not None:
        kind, level = meta.facturx
        facturx = (
            _FACTURX_SCHEMA
            + '<rdf:Description rdf:about="" xmlns:fx="'
            + FACTURX_NAMESPACE
            + f'"><fx:DocumentType>{escape(kind)}</fx:DocumentType>'
            "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>"
            f"<fx:Version>1.0</fx:Version><fx:ConformanceLevel>{escape(level)}"
            "</fx:ConformanceLevel></rdf:Description>"
        )
    text = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">'
        "<pdfaid:part>3</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>"
        "</rdf:Description>"
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(meta.title)}</rdf:li>'
        f"</rdf:Alt></dc:title><dc:creator><rdf:Seq><rdf:li>{escape(meta.author)}</rdf:li>"
        '</rdf:Seq></dc:creator><dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
        f"{escape(meta.subject)}</rdf:li></rdf:Alt></dc:description></rdf:Description>"
        '<rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">'
        f"<pdf:Producer>{PRODUCER}</pdf:Producer>"
        f"<pdf:Keywords>{escape(meta.keywords)}</pdf:Keywords></rdf:Description>"
        '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        f"<xmp:CreatorTool>{escape(meta.creator)}</xmp:CreatorTool>"
        f"<xmp:CreateDate>{stamp}</xmp:CreateDate><xmp:ModifyDate>{stamp}</xmp:ModifyDate>"
        f"</rdf:Description>{facturx}</rdf:RDF></x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return text.encode("utf-8")


def _property(name: str, description: str) -> str:
    return (
        f'<rdf:li rdf:parseType="Resource"><pdfaProperty:name>{name}</pdfaProperty:name>'
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{description}</pdfaProperty:description></rdf:li>"
    )


# The Factur-X specification's XMP extension schema (PDF/A allows only described properties).
_FACTURX_SCHEMA = (
    '<rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" '
    'xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" '
    'xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">'
    '<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">'
    "<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>"
    f"<pdfaSchema:namespaceURI>{FACTURX_NAMESPACE}</pdfaSchema:namespaceURI>"
    "<pdfaSchema:prefix>fx</pdfaSchema:prefix><pdfaSchema:property><rdf:Seq>"
    + _property("DocumentFileName", "The name of the embedded XML document")
    + _property(
        "DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER"
    )
    + _property(
        "Version", "The actual version of the standard applying to the embedded XML document"
    )
    + _property("ConformanceLevel", "The conformance level of the embedded XML document")
    + "</rdf:Seq></pdfaSchema:property></rdf:li></rdf:Bag></pdfaExtension:schemas>"
    "</rdf:Description>"
)


def _to_unicode(chars: dict[int, str]) -> bytes:
    """The ToUnicode CMap: each CID (old glyph id) to its character."""
    pairs = sorted(chars.items())
    lines = []
    for first in range(0, len(pairs), 100):  # at most 100 entries per bfchar block
        block = pairs[first : first + 100]
        lines.append(f"{len(block)} beginbfchar")
        lines += [f"<{g:04x}> <{char.encode('utf-16-be').hex()}>" for g, char in block]
        lines.append("endbfchar")
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <ffff>\nendcodespacerange\n"
        + "\n".join(lines)
        + "\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
    ).encode("ascii")


def _widths(font: Font, gids: list[int]) -> str:
    """The /W array: runs of consecutive CIDs with their widths."""
    parts, run = [], []
    for g in gids:
        if run and g != run[-1] + 1:
            parts.append(f"{run[0]} [{' '.join(str(font.widths[c]) for c in run)}]")
            run = []
        run.append(g)
    if run:
        parts.append(f"{run[0]} [{' '.join(str(font.widths[c]) for c in run)}]")
    return " ".join(parts)


def _stream(entries: str, data: bytes, *, compress: bool = True) -> bytes:
    if compress:
        data = zlib.compress(data)
        entries += " /Filter /FlateDecode"
    return f"<< {entries} /Length {len(data)} >>\nstream\n".encode("ascii") + data + b"\nendstream"


# Object numbers: the catalog, the page tree, the font's six objects and the colour profile are
# always the same objects, so what is the same for many documents is serialized once.
CATALOG, PAGES, TYPE0, CID_FONT, DESCRIPTOR, FONT_FILE, GID_MAP, TO_UNICODE, PROFILE = range(1, 10)


@lru_cache(maxsize=256)
def _embedding(font: Font, glyphs: frozenset[int]) -> tuple[bytes, ...]:
    """The font's objects TYPE0 .. TO_UNICODE for a document showing these glyphs (old ids):
    the program cut to them, the widths and character map of every glyph it holds. Documents
    that show the same glyphs share it: the same labels, seller, digits and, mostly, letters."""
    program, new = font.program(set(glyphs))
    cids = sorted(new)  # old glyph ids, the CIDs the content streams use
    tag = "".join(chr(65 + b % 26) for b in hashlib.md5(program).digest()[:6])
    base_font = f"/{tag}+{font.name}"
    gid_map = bytearray(2 * (cids[-1] + 1))
    for old, index in new.items():
        struct.pack_into(">H", gid_map, 2 * old, index)
    chars = {g: char for char, g in sorted(font.gids.items(), reverse=True) if g in new}
    return (
        f"<< /Type /Font /Subtype /Type0 /BaseFont {base_font} /Encoding /Identity-H "
        f"/DescendantFonts [{CID_FONT} 0 R] /ToUnicode {TO_UNICODE} 0 R >>".encode("ascii"),
        f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont {base_font} "
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
        f"/FontDescriptor {DESCRIPTOR} 0 R /DW {font.widths[0]} "
        f"/W [{_widths(font, cids)}] /CIDToGIDMap {GID_MAP} 0 R >>".encode("ascii"),
        f"<< /Type /FontDescriptor /FontName {base_font} {font.descriptor} "
        f"/FontFile2 {FONT_FILE} 0 R >>".encode("ascii"),
        _stream(f"/Length1 {len(program)}", program),
        _stream("", bytes(gid_map)),
        _stream("", _to_unicode(chars)),
    )


@lru_cache(maxsize=1)
def _profile() -> bytes:
    """The sRGB ICC profile fpdf2 ships, as the output intent's stream object (once per process)."""
    from importlib.util import find_spec

    # found, not imported: importing fpdf2 for a data file cost a worker 1.3 s
    [package] = find_spec("fpdf").submodule_search_locations
    profile = (Path(package) / "data" / "color_profiles" / "sRGB2014.icc").read_bytes()
    return _stream("/N 3 /Alternate /DeviceRGB", profile)


def write_pdf(
    font: Font,
    pages: list[Page],
    *,
    width: float,
    height: float,
    meta: Metadata,
    attachment: Attachment | None = None,
) -> bytes:
    """The PDF/A-3b file of these pages, with the attachment (if any) as an associated file."""
    moment = meta.created or datetime.now(UTC)
    # a naive time is UTC (as factur-x took it)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    used: set[str] = set().union(*(page.used for page in pages))
    glyphs = {font.gids[char] for char in used}
    bodies: list[bytes] = [b"", b"", *_embedding(font, frozenset(glyphs)), _profile()]

    def add(body: bytes) -> int:
        bodies.append(body)
        return len(bodies)

    kids = []
    for page in pages:
        content = add(_stream("", page.content()))
        kids.append(
            add(
                f"<< /Type /Page /Parent {PAGES} 0 R /MediaBox [0 0 {width:.2f} "
                f"{height:.2f}] /Resources << /Font << /F1 {TYPE0} 0 R >> >> "
                f"/Contents {content} 0 R >>".encode("ascii")
            )
        )
    bodies[PAGES - 1] = (
        f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] "
        f"/Count {len(kids)} >>".encode("ascii")
    )
    metadata = add(_stream("/Type /Metadata /Subtype /XML", _xmp(meta, moment), compress=False))
    date = _pdf_date(moment)
    extra = b""
    if attachment is not None:
        digest = hashlib.md5(attachment.data).hexdigest()
        subtype = attachment.mime.replace("/", "#2F")
        embedded = add(
            _stream(
                f"/Type /EmbeddedFile /Subtype /{subtype} /Params << /ModDate ({date}) "
                f"/Size {len(attachment.data)} /CheckSum <{digest}> >>",
                attachment.data,
            )
        )
        name = _pdf_string(attachment.name)
        spec = add(
            b"<< /Type /Filespec /F "
            + name
            + b" /UF "
            + name
            + f" /EF << /F {embedded} 0 R /UF {embedded} 0 R >> "
            f"/AFRelationship /{attachment.relationship} /Desc ".encode("ascii")
            + _pdf_string(attachment.description)
            + b" >>"
        )
        extra = (
            b" /Names << /EmbeddedFiles << /Names ["
            + name
            + f" {spec} 0 R] >> >> /AF [{spec} 0 R] /PageMode /UseAttachments".encode("ascii")
        )
    bodies[CATALOG - 1] = (
        f"<< /Type /Catalog /Pages {PAGES} 0 R /Metadata {metadata} 0 R /Lang ".encode()
        + _pdf_string(meta.lang)
        + b" /OutputIntents [<< /Type /OutputIntent /S /GTS_PDFA1 "
        b"/OutputConditionIdentifier (sRGB IEC61966-2.1) /OutputCondition (sRGB) "
        b"/RegistryName (http://www.color.org) /Info (sRGB IEC61966-2.1) "
        + f"/DestOutputProfile {PROFILE} 0 R >>]".encode("ascii")
        + extra
        + b" >>"
    )
    info = add(
        b"<< /Title "
        + _pdf_string(meta.title)
        + b" /Author "
        + _pdf_string(meta.author)
        + b" /Subject "
        + _pdf_string(meta.subject)
        + b" /Keywords "
        + _pdf_string(meta.keywords)
        + b" /Creator "
        + _pdf_string(meta.creator)
        + b" /Producer "
        + _pdf_string(PRODUCER)
        + f" /CreationDate ({date}) /ModDate ({date}) >>".encode("ascii")
    )
    out = [b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"]
    position = len(out[0])
    offsets = []
    for number, body in enumerate(bodies, start=1):
        chunk = b"%d 0 obj\n" % number + body + b"\nendobj\n"
        offsets.append(position)
        out.append(chunk)
        position += len(chunk)
    file_id = hashlib.md5(b"".join(out[1:])).hexdigest()
    count = len(bodies) + 1
    xref = [f"xref\n0 {count}\n0000000000 65535 f \n"]
    xref += [f"{offset:010d} 00000 n \n" for offset in offsets]
    out.append("".join(xref).encode("ascii"))
    out.append(
        f"trailer\n<< /Size {count} /Root {CATALOG} 0 R /Info {info} 0 R "
        f"/ID [<{file_id}> <{file_id}>] >>\nstartxref\n{position}\n%%EOF\n".encode("ascii")
    )
    return b"".join(out)
