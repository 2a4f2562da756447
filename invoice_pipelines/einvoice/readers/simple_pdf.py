"""A PDF of the simple shape our documents have, read straight from its bytes: one classic
cross-reference table (no incremental update, no cross-reference or object streams, no
encryption), a flat page tree and a flat list of embedded files, each stored as is or with
/FlateDecode alone. `read_simple` gives the page count and the embedded files, read from the
objects the table points at, exactly as `readers/pdf.py` reads them with pypdf; anything else it
does not guess at: it gives None and the caller reads the file with pypdf.

Why: the read-back of every document we write opened it with pypdf, 0.8 ms of a document's
6-7 (pypdf parses the catalog, the page tree and the file specification object by object in
Python). This reads the same five objects in about a tenth of that. It reads the bytes, not
what we meant to write: the page count comes from walking the page tree, each embedded file
from its stream's bytes through zlib, within the same bounds (`MAX_ATTACHMENTS`, the decoded
byte budget); `test_simple_pdf.py` compares it with the pypdf reading on every sample PDF and
on generated documents.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

Obj = object  # a parsed value: dict, list, Name, bytes (a string), int, float, bool, None, Ref


class NotSimple(Exception):
    """The file is not of the simple shape: read it with pypdf."""


class Name(str):
    """A PDF name, without its slash."""


@dataclass(frozen=True, slots=True)
class Ref:
    number: int
    generation: int


@dataclass(frozen=True, slots=True)
class Stream:
    header: dict
    raw: bytes


_WHITESPACE = b" \t\r\n\x0c\x00"
_DELIMITERS = b"()<>[]{}/%"
_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)")
_REF = re.compile(
    rb"(\d+)[ \t\r\n\x0c\x00]+(\d+)[ \t\r\n\x0c\x00]+R(?![^ \t\r\n\x0c\x00()<>\[\]{}/%])"
)
_NAME = re.compile(rb"/([^ \t\r\n\x0c\x00()<>\[\]{}/%]*)")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_KEYWORD = re.compile(rb"(true|false|null)(?![^ \t\r\n\x0c\x00()<>\[\]{}/%])")
_HEX = re.compile(rb"<([0-9A-Fa-f \t\r\n]*)>")
_LITERAL_PLAIN = re.compile(rb"\(([^()\\]*)\)")
_XREF_ENTRY = re.compile(rb"(\d{10}) (\d{5}) ([nf])(?: \r| \n|\r\n)")
_OBJECT_HEADER = re.compile(rb"(\d+)[ \t\r\n]+(\d+)[ \t\r\n]+obj\b")
_STREAM_START = re.compile(rb"[ \t\r\n\x0c]*stream(?:\r\n|\n)")
_STREAM_END = re.compile(rb"(?:\r\n|\n|\r)?endstream\b")
MAX_DEPTH = 32


class _Parser:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def skip(self, at: int) -> int:
        data = self.data
        while at < len(data) and data[at] in _WHITESPACE:
            at += 1
        if at < len(data) and data[at : at + 1] == b"%":
            raise NotSimple("a comment inside an object")
        return at

    def value(self, at: int, depth: int = 0) -> tuple[Obj, int]:
        if depth > MAX_DEPTH:
            raise NotSimple("nested too deep")
        data = self.data
        at = self.skip(at)
        head = data[at : at + 2]
        if head == b"<<":
            result: dict = {}
            at += 2
            while True:
                at = self.skip(at)
                if data[at : at + 2] == b">>":
                    return result, at + 2
                key, at = self.value(at, depth + 1)
                if not isinstance(key, Name) or key in result:
                    raise NotSimple("a dictionary key that is not a new name")
                result[key], at = self.value(at, depth + 1)
        if head[:1] == b"[":
            items: list = []
            at += 1
            while True:
                at = self.skip(at)
                if data[at : at + 1] == b"]":
                    return items, at + 1
                item, at = self.value(at, depth + 1)
                items.append(item)
        if head[:1] == b"/":
            found = _NAME.match(data, at)
            name = found.group(1)
            if b"#" in name:
                name = _NAME_ESCAPE.sub(lambda m: bytes.fromhex(m.group(1).decode()), name)
                if b"#" in _NAME_ESCAPE.sub(b"", found.group(1)):
                    raise NotSimple("a name with a malformed escape")
            return Name(name.decode("latin-1")), found.end()
        if head[:1] == b"(":
            found = _LITERAL_PLAIN.match(data, at)
            if found is None:
                raise NotSimple("a string with escapes or parentheses")
            return found.group(1), found.end()
        if head[:1] == b"<":
            found = _HEX.match(data, at)
            if found is None:
                raise NotSimple("a malformed hex string")
            digits = re.sub(rb"\s", b"", found.group(1))
            if len(digits) % 2:
                digits += b"0"
            return bytes.fromhex(digits.decode("ascii")), found.end()
        found = _REF.match(data, at)
        if found is not None:
            return Ref(int(found.group(1)), int(found.group(2))), found.end()
        found = _KEYWORD.match(data, at)
        if found is not None:
            return {b"true": True, b"false": False, b"null": None}[found.group(1)], found.end()
        found = _NUMBER.match(data, at)
        if found is not None and (
            found.end() == len(data) or data[found.end()] in _WHITESPACE + _DELIMITERS
        ):
            text = found.group(0)
            return (float(text) if b"." in text else int(text)), found.end()
        raise NotSimple(f"an unexpected token at byte {at}")


class _File:
    def __init__(self, data: bytes) -> None:
        self.parser = _Parser(data)
        self.data = data
        self.offsets: dict[int, tuple[int, int]] = {}
        self.cache: dict[int, Obj] = {}
        self.trailer = self._cross_references()

    def _cross_references(self) -> dict:
        data = self.data
        if not data.startswith(b"%PDF-") or data.count(b"startxref") != 1:
            raise NotSimple("not one revision with its header first")
        tail = re.search(rb"startxref[ \t\r\n]+(\d+)[ \t\r\n]+%%EOF[ \t\r\n]*$", data[-1024:])
        if tail is None:
            raise NotSimple("no plain startxref at the end")
        at = int(tail.group(1))
        head = re.compile(rb"xref[ \t]*(?:\r\n|\n|\r)0 (\d+)[ \t]*(?:\r\n|\n|\r)").match(data, at)
        if head is None:
            raise NotSimple("no classic cross-reference table with one section")
        count, at = int(head.group(1)), head.end()
        for number in range(count):
            entry = _XREF_ENTRY.match(data, at)
            if entry is None:
                raise NotSimple("a malformed cross-reference entry")
            if entry.group(3) == b"n":
                self.offsets[number] = (int(entry.group(1)), int(entry.group(2)))
            at = entry.end()
        at = self.parser.skip(at)
        if not data.startswith(b"trailer", at):
            raise NotSimple("no trailer after the table")
        trailer, _ = self.parser.value(at + len(b"trailer"))
        if not isinstance(trailer, dict) or {"Prev", "Encrypt", "XRefStm"} & trailer.keys():
            raise NotSimple("an updated, encrypted or hybrid file")
        return trailer

    def resolve(self, value: Obj) -> Obj:
        if not isinstance(value, Ref):
            return value
        if value.number in self.cache:
            return self.cache[value.number]
        where = self.offsets.get(value.number)
        if where is None or where[1] != value.generation:
            raise NotSimple("a reference to an object the table does not have")
        header = _OBJECT_HEADER.match(self.data, where[0])
        if header is None or (int(header.group(1)), int(header.group(2))) != (
            value.number,
            value.generation,
        ):
            raise NotSimple("the table points at another object")
        self.cache[value.number] = None  # a reference to itself is not followed
        obj, at = self.parser.value(header.end())
        start = _STREAM_START.match(self.data, at)
        if start is not None:
            length = obj.get("Length") if isinstance(obj, dict) else None
            if type(length) is not int or length < 0:
                raise NotSimple("a stream without a direct length")
            end = start.end() + length
            if end > len(self.data) or _STREAM_END.match(self.data, end) is None:
                raise NotSimple("a stream whose length does not end at endstream")
            obj = Stream(obj, self.data[start.end() : end])
        self.cache[value.number] = obj
        return obj

    def dictionary(self, value: Obj) -> dict:
        value = self.resolve(value)
        if not isinstance(value, dict):
            raise NotSimple("a dictionary expected")
        return value

    def pages(self, node: Obj, seen: set[int], depth: int = 0) -> int:
        if depth > MAX_DEPTH or (isinstance(node, Ref) and node.number in seen):
            raise NotSimple("a page tree that loops or is too deep")
        if isinstance(node, Ref):
            seen.add(node.number)
        tree = self.dictionary(node)
        if tree.get("Type") == "Page" and "Kids" not in tree:
            return 1
        kids = self.resolve(tree.get("Kids"))
        if tree.get("Type") != "Pages" or not isinstance(kids, list):
            raise NotSimple("a page tree node that is neither pages nor a page")
        return sum(self.pages(kid, seen, depth + 1) for kid in kids)


@dataclass(frozen=True, slots=True)
class SimplePdf:
    page_count: int
    # each embedded file's name and how to decode it within a byte limit (LimitReached past it)
    files: list[tuple[str, Callable[[int], bytes]]]


class LimitReached(Exception):
    """Decoding an embedded file went past the limit it was given."""


def _file_name(value: Obj) -> str:
    if not isinstance(value, bytes) or value.startswith(
        (b"\xfe\xff", b"\xff\xfe", b"\xef\xbb\xbf")
    ):
        raise NotSimple("a file name that is not a plain string")
    if any(byte < 0x20 or byte > 0x7E for byte in value):
        raise NotSimple("a file name beyond printable ASCII")
    return value.decode("ascii")


def _decoder(pdf: _File, specification: Obj) -> Callable[[int], bytes]:
    def decode(limit: int) -> bytes:
        spec = pdf.dictionary(specification)
        embedded = pdf.dictionary(spec.get("EF"))
        streams = [pdf.resolve(embedded[key]) for key in ("UF", "F") if key in embedded]
        stream = next((each for each in streams if isinstance(each, Stream)), None)
        if stream is None:
            raise NotSimple("a file specification without an embedded file stream")
        filters = pdf.resolve(stream.header.get("Filter"))
        if filters is None or filters == []:
            if len(stream.raw) > limit:
                raise LimitReached
            return stream.raw
        if filters not in ("FlateDecode", ["FlateDecode"]) or "DecodeParms" in stream.header:
            raise NotSimple("a filter other than /FlateDecode alone")
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(stream.raw, limit + 1)
        except zlib.error as exc:
            raise NotSimple(f"a stream zlib cannot read: {exc}") from None
        if len(data) > limit:
            raise LimitReached
        if not inflater.eof:
            raise NotSimple("a compressed stream that does not end")
        return data

    return decode


def read_simple(data: bytes) -> SimplePdf | None:
    """The page count and embedded files of a PDF of the simple shape, or None: then it is to be
    read with pypdf. Decoding a file (its callable) may raise NotSimple too (then as well), or
    LimitReached."""
    try:
        pdf = _File(data)
        root = pdf.dictionary(pdf.trailer.get("Root"))
        page_count = pdf.pages(root.get("Pages"), set())
        names = pdf.resolve(root.get("Names"))
        files: list[tuple[str, Callable[[int], bytes]]] = []
        if names is not None:
            if not isinstance(names, dict):
                raise NotSimple("a names entry that is not a dictionary")
            container = pdf.resolve(names.get("EmbeddedFiles"))
            if container is not None:
                if not isinstance(container, dict) or "Kids" in container:
                    raise NotSimple("embedded files in a name tree with kids")
                flat = pdf.resolve(container.get("Names"))
                if not isinstance(flat, list) or len(flat) % 2:
                    raise NotSimple("embedded files not in a flat name list")
                for index in range(0, len(flat), 2):
                    files.append((_file_name(flat[index]), _decoder(pdf, flat[index + 1])))
        return SimplePdf(page_count, files)
    except (NotSimple, RecursionError, ValueError, IndexError, AttributeError):
        return None
