"""The onboarding CSV of `organizations add --csv FILE`: one organization a line, the columns of
`core.organization_values.FIELDS` (slug and name required, the others may be left out or empty),
comma- or semicolon-separated, UTF-8 (a spreadsheet's byte-order mark is fine). Each row comes
with where it is (`file:line`) for the problems' sentences."""

from __future__ import annotations

import csv
from pathlib import Path

from invoice_pipelines.core.organization_values import FIELDS

Row = tuple[str, dict[str, str | None]]


# An organization's line is a few hundred bytes (nine values, a name of at most 255 characters);
# a longer one is no organization's, and reading stops there instead of holding a file of any
# size in memory. A file of more lines than an onboarding takes is refused the same way.
MAX_LINE_BYTES = 8 * 1024
MAX_LINES = 100_000


class CsvProblem(ValueError):
    """The file cannot be read as an onboarding CSV at all (one sentence)."""


def _lines(path: Path) -> list[str]:
    """The file's lines as text, read line by line with a bound on each: an overlong line or too
    many lines is one sentence naming where, never a traceback or a file held whole."""
    lines: list[str] = []
    try:
        with path.open("rb") as file:
            while line := file.readline(MAX_LINE_BYTES + 1):
                if len(line) > MAX_LINE_BYTES:
                    raise CsvProblem(
                        f"{path}:{len(lines) + 1}: the line is longer than {MAX_LINE_BYTES} "
                        "bytes; an organization's line is far shorter"
                    )
                if len(lines) >= MAX_LINES:
                    raise CsvProblem(
                        f"{path}: has more than {MAX_LINES} lines; add the organizations in "
                        "several files"
                    )
                lines.append(line.decode("utf-8-sig" if not lines else "utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CsvProblem(
            f"{path}: cannot be read as UTF-8 text ({exc.__class__.__name__})"
        ) from exc
    return [line.rstrip("\r\n") for line in lines]


def read_organizations_csv(path: Path) -> tuple[list[Row], list[str]]:
    """The rows of `path` as (where, values by column), and a sentence for each line that is no
    row (a wrong number of cells, a cell the CSV rules cannot read); blank lines are skipped."""
    lines = _lines(path)
    if not lines:
        raise CsvProblem(f"{path}: is empty; its first line names the columns ({','.join(FIELDS)})")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    header = [name.strip().lower() for name in next(csv.reader(lines[:1], delimiter=delimiter))]
    missing = [name for name in ("slug", "name") if name not in header]
    if missing:
        raise CsvProblem(
            f"{path}:1: the header has no column {' and '.join(missing)} "
            f"(columns: {','.join(FIELDS)})"
        )
    rows: list[Row] = []
    problems: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        where = f"{path.name}:{number}"
        try:
            cells = next(csv.reader([line], delimiter=delimiter, strict=True), [])
        except csv.Error as exc:
            problems.append(f"{where}: cannot be read as a CSV line ({exc})")
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            problems.append(f"{where}: {len(cells)} cells, the header names {len(header)}")
            continue
        rows.append((where, dict(zip(header, cells, strict=True))))
    return rows, problems
