"""PDF reading for e-invoices: the embedded files (a Factur-X/ZUGFeRD PDF's invoice XML), within the
bounds of `limits.py`, with the reason any one was not read. The text layer of the pages is the
intake's (`intake/domain/formats/pdf_text.py`).

A PDF is untrusted input that can unpack to far more than its own size: a 20 MiB upload can hold
hundreds of compressed streams of zeros. `open_pdf` therefore looks at no more than
`MAX_ATTACHMENTS` embedded files and decodes no more than `MAX_ATTACHMENT_BYTES_TOTAL` bytes of
them in total; decoding stops when the bound is reached (pypdf inflates with zlib's `max_length`
under the output limit we give it), so the bound holds for memory, not only for what we keep.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError
from pypdf.filters import decode_stream_data
from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

from invoice_pipelines.einvoice.readers.simple_pdf import LimitReached, NotSimple, read_simple
from invoice_pipelines.limits import MAX_ATTACHMENT_BYTES_TOTAL, MAX_ATTACHMENTS

# Names the Factur-X, ZUGFeRD and XRechnung specifications give the embedded XML, best first.
PREFERRED_ATTACHMENTS = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml", "order-x.xml")
# Filters an embedded file may be encoded with; each has an output limit in pypdf. Image codecs
# (DCT, JPX, CCITT, JBIG2) never carry an invoice, and JBIG2 would run an external program.
ATTACHMENT_FILTERS = frozenset(
    {
        "/FlateDecode",
        "/Fl",
        "/ASCIIHexDecode",
        "/AHx",
        "/ASCII85Decode",
        "/A85",
        "/LZWDecode",
        "/LZW",
        "/RunLengthDecode",
        "/RL",
    }
)


class PdfUnreadable(ValueError):
    """The bytes are not a PDF we can read; the message says why."""


@dataclass(frozen=True, slots=True)
class PdfAttachment:
    """One embedded file; `data` is None when it was not read, and `error` says why.

    `over_limit` marks a file left unread because of a limit in `limits.py`, not because it is
    broken.
    """

    name: str
    data: bytes | None
    error: str | None = None
    over_limit: bool = False

    def looks_like_xml(self) -> bool:
        if self.data is None:
            return self.name.lower().endswith(".xml")
        head = self.data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
        return head.startswith(b"<") or self.name.lower().endswith(".xml")


@dataclass
class PdfDocument:
    """What we found in a PDF: page count, embedded files and reading problems."""

    page_count: int
    attachments: list[PdfAttachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reader: Any = None

    def attachment_summary(self) -> list[dict[str, Any]]:
        return [
            {
                "name": a.name,
                "bytes": None if a.data is None else len(a.data),
                "error": a.error,
            }
            for a in self.attachments
        ]


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


def _read_priority(name: str) -> int:
    """Decoding order: the specification names first, then other XML, then everything else.

    The byte budget is shared, so a hostile file listed first must not starve the invoice XML.
    """
    lowered = name.lower()
    if lowered in PREFERRED_ATTACHMENTS:
        return PREFERRED_ATTACHMENTS.index(lowered)
    return len(PREFERRED_ATTACHMENTS) + (0 if lowered.endswith(".xml") else 1)


def _embedded_stream(spec: Any) -> StreamObject:
    """The embedded-file stream (/EF /UF or /EF /F) of a file specification, not decoded."""
    ef = spec.get("/EF") if isinstance(spec, DictionaryObject) else None
    ef = ef.get_object() if ef is not None else None
    if not isinstance(ef, DictionaryObject):
        raise ValueError("the file specification has no /EF entry")
    for key in ("/UF", "/F"):
        if key in ef:
            stream = ef[key].get_object()
            if isinstance(stream, StreamObject):
                return stream
    raise ValueError("the file specification has no embedded file stream")


def _filters(stream: StreamObject) -> list[str]:
    value = stream.get("/Filter")
    value = value.get_object() if value is not None else None
    if value is None:
        return []
    if isinstance(value, ArrayObject):
        return [str(item.get_object()) for item in value]
    return [str(value)]


def _decode_bounded(stream: StreamObject, limit: int) -> bytes:
    """Decode an embedded-file stream, producing at most `limit` + 1 bytes.

    Raises LimitReachedError past the limit; every output limit pypdf knows for the filters in
    ATTACHMENT_FILTERS is set to it, so decoding stops there instead of finishing first.
    """
    filters = _filters(stream)
    unsupported = [name for name in filters if name not in ATTACHMENT_FILTERS]
    if unsupported:
        raise ValueError(f"it is encoded with {', '.join(unsupported)}, which we do not decode")
    if not filters:
        # Stored as is: its size is bounded by the file's. (pypdf's decode_stream_data does not
        # take a stream without /Filter.)
        data = stream.get_data()
        if len(data) > limit:
            raise LimitReachedError(f"it is more than {limit} bytes")
        return bytes(data)
    # pypdf reads 0 as "no limit", so the caller never passes 0.
    bound = limit + 1
    with apply_configuration(
        zlib_maximum_output_length=bound,
        lzw_maximum_output_length=bound,
        run_length_maximum_output_length=bound,
        array_based_stream_maximum_output_length=bound,
    ):
        data = decode_stream_data(stream)
    if len(data) > limit:
        raise LimitReachedError(f"decoded to more than {limit} bytes")
    return bytes(data)


def _read_attachments(reader: PdfReader, document: PdfDocument) -> None:
    try:
        entries = list(islice(reader.attachment_list, MAX_ATTACHMENTS + 1))
    except MemoryError:
        raise
    except Exception as exc:
        document.problems.append(f"cannot list embedded files: {type(exc).__name__}: {exc}")
        entries = []
    names = []
    for entry in entries:
        try:
            names.append(str(entry.name))
        except Exception:
            names.append("(unnamed)")

    def decoder(entry: Any) -> Callable[[int], bytes]:
        return lambda budget: _decode_bounded(_embedded_stream(entry.pdf_object), budget)

    _decode_within_budget(document, list(zip(names, map(decoder, entries), strict=True)))


def _decode_within_budget(
    document: PdfDocument, entries: list[tuple[str, Callable[[int], bytes]]]
) -> None:
    """Each embedded file (its name, and its decoding within a byte limit) read into
    `document.attachments`, the specification's names first, all of them together within
    MAX_ATTACHMENT_BYTES_TOTAL, at most MAX_ATTACHMENTS of them."""
    if len(entries) > MAX_ATTACHMENTS:
        entries = entries[:MAX_ATTACHMENTS]
        document.problems.append(
            f"the PDF has more than {MAX_ATTACHMENTS} embedded files; "
            f"only the first {MAX_ATTACHMENTS} were looked at"
        )
    read: dict[int, PdfAttachment] = {}
    budget = MAX_ATTACHMENT_BYTES_TOTAL
    for index in sorted(range(len(entries)), key=lambda i: _read_priority(entries[i][0])):
        name, decode = entries[index]
        if budget <= 0:
            read[index] = PdfAttachment(
                name,
                None,
                f"not read: the embedded files of this PDF already used the "
                f"{_mib(MAX_ATTACHMENT_BYTES_TOTAL)} we decode from one PDF",
                over_limit=True,
            )
            continue
        try:
            data = decode(budget)
        except (LimitReachedError, LimitReached):
            # What was inflated before the stop counts: the next files get what is left.
            read[index] = PdfAttachment(
                name,
                None,
                f"not read: it decodes to more than the {_mib(MAX_ATTACHMENT_BYTES_TOTAL)} "
                "we decode from the embedded files of one PDF",
                over_limit=True,
            )
            budget = 0
            continue
        except (MemoryError, NotSimple):
            raise  # MemoryError: the worker's memory limit, the whole document fails with it
        except Exception as exc:  # corrupt streams make pypdf raise anything
            read[index] = PdfAttachment(name, None, f"cannot read it: {type(exc).__name__}: {exc}")
            continue
        budget -= len(data)
        read[index] = PdfAttachment(name, data)
    document.attachments = [read[i] for i in range(len(entries))]


def looks_like_pdf(data: bytes) -> bool:
    """Whether the bytes are a PDF by their content (the header may follow some junk)."""
    return b"%PDF-" in data[:1024]


def _open_simple(data: bytes) -> PdfDocument | None:
    """The PDF read straight from its bytes when it has the simple shape of the documents we
    write (`simple_pdf.py`), else None."""
    simple = read_simple(data)
    if simple is None:
        return None
    document = PdfDocument(page_count=simple.page_count)
    try:
        _decode_within_budget(document, simple.files[: MAX_ATTACHMENTS + 1])
    except NotSimple:
        return None
    return document


def open_pdf(data: bytes, *, simple_first: bool = False) -> PdfDocument:
    """Open a PDF and read its embedded files within the limits; raise PdfUnreadable for corrupt
    or locked files. `simple_first`: a PDF of the simple shape our documents have is read
    without pypdf (`simple_pdf.py`: the same page count and files, in a tenth of the time); its
    `reader` is then None, so not for a caller that goes on to read the pages' text."""
    if b"%%EOF" not in data:
        raise PdfUnreadable("the PDF is truncated: it has no %%EOF end marker")
    if simple_first:
        document = _open_simple(data)
        if document is not None:
            return document
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Owner-password-only PDFs open with the empty user password; others we cannot read.
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # pypdf raises several types, incl. missing crypto deps
                raise PdfUnreadable(f"the PDF is encrypted and cannot be opened: {exc}") from None
            if not opened:
                raise PdfUnreadable("the PDF is password protected")
        page_count = len(reader.pages)
    except (PdfUnreadable, MemoryError):
        raise
    except Exception as exc:  # corrupt input makes pypdf raise anything from KeyError to its own
        raise PdfUnreadable(f"cannot read the PDF: {type(exc).__name__}: {exc}") from None
    document = PdfDocument(page_count=page_count, reader=reader)
    _read_attachments(reader, document)
    return document
