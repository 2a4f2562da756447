"""An independent reader of DATEV EXTF files for the tests: it knows the file rules, not our writer.

It checks what an importer checks before it reads a field: every line ends with CRLF, no bare LF
or CR anywhere, the bytes decode as the declared encoding, fields are `;`-separated with text in
double quotes (inner quotes doubled), and reports each field with whether it was quoted.
"""

from __future__ import annotations

from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Field:
    value: str
    quoted: bool


def split_fields(line: str) -> list[Field]:
    fields: list[Field] = []
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == '"':
            i += 1
            chars = []
            while True:
                if i >= n:
                    raise ValueError(f"unterminated quote in {line!r}")
                if line[i] == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        chars.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                chars.append(line[i])
                i += 1
            fields.append(Field("".join(chars), True))
        else:
            j = line.find(";", i)
            end = n if j < 0 else j
            raw = line[i:end]
            if '"' in raw:
                raise ValueError(f"quote inside an unquoted field: {raw!r}")
            fields.append(Field(raw, False))
            i = end
        if i >= n:
            return fields
        if line[i] != ";":
            raise ValueError(f"expected ';' at {i} in {line!r}")
        i += 1
        if i == n:
            fields.append(Field("", False))
            return fields


def read_extf(data: bytes, encoding: str = "cp1252") -> list[list[Field]]:
    """All lines of an EXTF file as fields; raises ValueError on any broken file rule."""
    if data.startswith(BOM):
        data, encoding = data[len(BOM) :], "utf-8"
    if not data.endswith(b"\r\n"):
        raise ValueError("the last line does not end with CRLF")
    body = data[:-2].split(b"\r\n")
    for line in body:
        if b"\n" in line or b"\r" in line:
            raise ValueError("a bare LF or CR inside a line")
    return [split_fields(line.decode(encoding)) for line in body]
