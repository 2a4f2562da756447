"""QR codes for the EPC payment code (GiroCode): byte mode, error correction level M, mask 2.

What is the same for every code of one size is built once per process (`_Layout`: the finder,
timing and alignment patterns, the format and version information, where each data bit goes and
whether the mask flips it); a code then costs its Reed-Solomon blocks and placing its bits.
segno made the same symbols in 1.5 ms each, most of it building and masking the matrix module by
module (the tests compare every module with segno's for many payloads).

ISO/IEC 18004: the smallest version (1-40) whose level-M capacity holds the bytes; mode
indicator 0100, an 8-bit (versions 1-9) or 16-bit count, the bytes, a terminator, padding
0xEC 0x11; data blocks interleaved, then their error correction codewords; mask pattern 010
(dark where the column is a multiple of 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

# level M per version: (error correction codewords per block, blocks of group 1, data codewords
# per block of group 1, blocks of group 2, data codewords per block of group 2)
_BLOCKS_M = (
    (10, 1, 16, 0, 0), (16, 1, 28, 0, 0), (26, 1, 44, 0, 0), (18, 2, 32, 0, 0),
    (24, 2, 43, 0, 0), (16, 4, 27, 0, 0), (18, 4, 31, 0, 0), (22, 2, 38, 2, 39),
    (22, 3, 36, 2, 37), (26, 4, 43, 1, 44), (30, 1, 50, 4, 51), (22, 6, 36, 2, 37),
    (22, 8, 37, 1, 38), (24, 4, 40, 5, 41), (24, 5, 41, 5, 42), (28, 7, 45, 3, 46),
    (28, 10, 46, 1, 47), (26, 9, 43, 4, 44), (26, 3, 44, 11, 45), (26, 3, 41, 13, 42),
    (26, 17, 42, 0, 0), (28, 17, 46, 0, 0), (28, 4, 47, 14, 48), (28, 6, 45, 14, 46),
    (28, 8, 47, 13, 48), (28, 19, 46, 4, 47), (28, 22, 45, 3, 46), (28, 3, 45, 23, 46),
    (28, 21, 45, 7, 46), (28, 19, 47, 10, 48), (28, 2, 46, 29, 47), (28, 10, 46, 23, 47),
    (28, 14, 46, 21, 47), (28, 14, 46, 23, 47), (28, 12, 47, 26, 48), (28, 6, 47, 34, 48),
    (28, 29, 46, 14, 47), (28, 13, 46, 32, 47), (28, 40, 47, 7, 48), (28, 18, 47, 31, 48),
)  # fmt: skip
MASK = 2
_FORMAT_M = 0b00  # error correction level M in the format information


@dataclass(frozen=True)
class QrCode:
    """A QR symbol: `matrix` rows of 0 (light) and 1 (dark) modules, without the quiet zone."""

    version: int
    matrix: tuple[bytearray, ...]


def _gf_tables() -> tuple[list[int], list[int]]:
    exp, log = [0] * 512, [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        value <<= 1
        if value & 0x100:
            value ^= 0x11D
    for power in range(255, 512):
        exp[power] = exp[power - 255]
    return exp, log


_EXP, _LOG = _gf_tables()


@cache
def _divisor(degree: int) -> tuple[list[int], int]:
    """For each leading byte, the generator polynomial times it (as one integer of `degree`
    bytes), and the mask of `degree` bytes: one XOR per data codeword divides."""
    generator = [1]
    for power in range(degree):
        product = [0] * (len(generator) + 1)
        for index, coefficient in enumerate(generator):
            product[index] ^= coefficient
            if coefficient:
                product[index + 1] ^= _EXP[_LOG[coefficient] + power]
        generator = product
    rows = []
    for factor in range(256):
        row = 0
        for coefficient in generator[1:]:
            scaled = _EXP[_LOG[coefficient] + _LOG[factor]] if coefficient and factor else 0
            row = (row << 8) | scaled
        rows.append(row)
    return rows, (1 << (8 * degree)) - 1


def _error_correction(data: bytes, degree: int) -> bytes:
    rows, mask = _divisor(degree)
    shift = 8 * (degree - 1)
    remainder = 0
    for byte in data:
        remainder = ((remainder << 8) & mask) ^ rows[(remainder >> shift) ^ byte]
    return remainder.to_bytes(degree, "big")


def _bch(value: int, generator: int, degree: int) -> int:
    remainder = value << degree
    top = generator.bit_length() - 1
    while remainder.bit_length() > top:
        remainder ^= generator << (remainder.bit_length() - 1 - top)
    return (value << degree) | remainder


def _alignment_centres(version: int) -> list[int]:
    if version == 1:
        return []
    count = version // 7 + 2
    last = 4 * version + 10
    step = 26 if version == 32 else (version * 4 + count * 2 + 1) // (count * 2 - 2) * 2
    return [6] + [last - step * k for k in range(count - 2, -1, -1)]


@dataclass(frozen=True)
class _Layout:
    size: int
    template: bytes  # function patterns and format/version information; data modules light
    positions: tuple[int, ...]  # index into the flat matrix of each data bit, in placing order
    flips: bytes  # 1 where mask 2 darkens a data module (column % 3 == 0)


@cache
def _layout(version: int) -> _Layout:
    size = 4 * version + 17
    grid = bytearray(size * size)
    reserved = bytearray(size * size)

    def put(row: int, column: int, dark: int) -> None:
        grid[row * size + column] = dark
        reserved[row * size + column] = 1

    for top, left in ((0, 0), (0, size - 7), (size - 7, 0)):
        for r in range(-1, 8):
            for c in range(-1, 8):
                row, column = top + r, left + c
                if 0 <= row < size and 0 <= column < size:
                    ring = max(abs(r - 3), abs(c - 3))
                    put(row, column, 1 if ring in (0, 1, 3) else 0)
    for k in range(8, size - 8):
        put(6, k, 1 - k % 2)
        put(k, 6, 1 - k % 2)
    centres = _alignment_centres(version)
    corners = {(6, 6), (6, size - 7), (size - 7, 6)}  # where the finder patterns are
    for row in centres:
        for column in centres:
            if (row, column) in corners:
                continue
            for r in range(-2, 3):
                for c in range(-2, 3):
                    put(row + r, column + c, 1 if max(abs(r), abs(c)) != 1 else 0)
    put(size - 8, 8, 1)  # the dark module
    bits = _bch((_FORMAT_M << 3) | MASK, 0x537, 10) ^ 0x5412
    for i in range(15):
        dark = (bits >> i) & 1
        # once around the top left finder pattern ...
        if i < 6:
            put(i, 8, dark)
        elif i < 8:
            put(i + 1, 8, dark)
        elif i == 8:
            put(8, 7, dark)
        else:
            put(8, 14 - i, dark)
        # ... and once split between the other two
        if i < 8:
            put(8, size - 1 - i, dark)
        else:
            put(size - 15 + i, 8, dark)
    if version >= 7:
        bits = _bch(version, 0x1F25, 12)
        for i in range(18):
            dark = (bits >> i) & 1
            put(i // 3, size - 11 + i % 3, dark)
            put(size - 11 + i % 3, i // 3, dark)
    positions = []
    upward = True
    column = size - 1
    while column > 0:
        if column == 6:
            column -= 1  # the vertical timing pattern has no data beside it
        rows = range(size - 1, -1, -1) if upward else range(size)
        for row in rows:
            for c in (column, column - 1):
                if not reserved[row * size + c]:
                    positions.append(row * size + c)
        upward = not upward
        column -= 2
    flips = bytes(1 if p % size % 3 == 0 else 0 for p in positions)
    return _Layout(size, bytes(grid), tuple(positions), flips)


def _version(length: int) -> int:
    for version, (_, n1, d1, n2, d2) in enumerate(_BLOCKS_M, start=1):
        count_bits = 8 if version < 10 else 16
        if 4 + count_bits + 8 * length <= 8 * (n1 * d1 + n2 * d2):
            return version
    raise ValueError(f"{length} bytes do not fit in a QR code at error correction level M")


_BITS = [bytes((byte >> (7 - k)) & 1 for k in range(8)) for byte in range(256)]


def make_qr(data: bytes) -> QrCode:
    """The smallest level-M QR code (mask 2) of these bytes in byte mode."""
    version = _version(len(data))
    degree, n1, d1, n2, d2 = _BLOCKS_M[version - 1]
    capacity = n1 * d1 + n2 * d2
    count_bits = 8 if version < 10 else 16
    stream = (0b0100 << count_bits) | len(data)
    stream = (stream << (8 * len(data))) | int.from_bytes(data, "big")
    used = 4 + count_bits + 8 * len(data)
    room = 8 * capacity - used
    terminator = min(4, room)
    used += terminator
    stream <<= terminator + (-used % 8)
    used += -used % 8
    if used < 8 * capacity:
        # segno (which drew our codes before) adds a zero codeword after a terminator that ends
        # on a codeword boundary, where ISO 18004 would start the pad codewords; readers stop at
        # the terminator either way, and so the symbols stay exactly the ones we printed before
        stream <<= 8
        used += 8
    codewords = bytearray(stream.to_bytes(used // 8, "big"))
    pad = (0xEC, 0x11)
    codewords += bytes(pad[k % 2] for k in range(capacity - len(codewords)))
    blocks, start = [], 0
    for count, length in ((n1, d1), (n2, d2)):
        for _ in range(count):
            blocks.append(bytes(codewords[start : start + length]))
            start += length
    final = bytearray()
    for index in range(max(d1, d2)):
        final += bytes(block[index] for block in blocks if index < len(block))
    corrections = [_error_correction(block, degree) for block in blocks]
    for index in range(degree):
        final += bytes(block[index] for block in corrections)
    layout = _layout(version)
    bits = b"".join(_BITS[byte] for byte in final)
    bits += bytes(len(layout.positions) - len(bits))  # remainder bits
    grid = bytearray(layout.template)
    for position, bit, flip in zip(layout.positions, bits, layout.flips, strict=True):
        grid[position] = bit ^ flip
    size = layout.size
    return QrCode(
        version, tuple(bytearray(grid[row : row + size]) for row in range(0, size * size, size))
    )
