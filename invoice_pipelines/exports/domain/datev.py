"""Rendering DATEV files as streams of encoded byte chunks (a chunk per block of rows)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from invoice_pipelines.core.datev import (
    BOOKING_COLUMNS,
    BOOKINGS_CATEGORY,
    CP1252,
    PARTNER_COLUMNS,
    PARTNERS_CATEGORY,
    UTF8_BOM,
    Header,
    column_line,
    cp1252_bytes,
    header_fields,
    join_line,
    partner_fields,
    transliterate,
)

BLOCK = 2000  # rows per written chunk


def _encoded(lines: Iterable[str], encoding: str) -> Iterator[bytes]:
    if encoding == UTF8_BOM:
        yield b"\xef\xbb\xbf"

        def encode(text: str) -> bytes:
            return text.encode("utf-8")
    else:
        encode = cp1252_bytes
    if isinstance(lines, list):
        # the rows rendered already: blocks are slices, not a row at a time
        for start in range(0, len(lines), BLOCK):
            yield encode("".join(lines[start : start + BLOCK]))
        return
    block: list[str] = []
    for line in lines:
        block.append(line)
        if len(block) >= BLOCK:
            yield encode("".join(block))
            block = []
    if block:
        yield encode("".join(block))


def bookings_file(header: Header, rows: Iterable[str], encoding: str = CP1252) -> Iterator[bytes]:
    """A Buchungsstapel (category 21, format version 13) of rows made by `booking_line` (the
    header is checked when the file is written)."""
    head = [
        join_line(header_fields(header, category=BOOKINGS_CATEGORY)),
        join_line(column_line(BOOKING_COLUMNS)),
    ]
    if isinstance(rows, list):
        yield from _encoded(head + rows, encoding)
    else:
        yield from _encoded(_chain(head, rows), encoding)


def _chain(head: list[str], rows: Iterable[str]) -> Iterator[str]:
    yield from head
    yield from rows


def partners_file(
    header: Header, partners: Sequence[dict], encoding: str = CP1252
) -> Iterator[bytes]:
    """A Debitoren/Kreditoren file (category 16) of the given partner accounts."""

    def lines() -> Iterator[str]:
        yield join_line(header_fields(header, category=PARTNERS_CATEGORY))
        yield join_line(column_line(PARTNER_COLUMNS))
        for partner in partners:
            yield join_line(
                partner_fields(
                    partner["account"],
                    transliterate(partner["name"], encoding),
                    vat_id=partner.get("vat_id"),
                    street=partner.get("street"),
                    postal_code=partner.get("postal_code"),
                    city=partner.get("city"),
                    country=partner.get("country"),
                    encoding=encoding,
                )
            )

    return _encoded(lines(), encoding)
