"""The onboarding CSV of `organizations add --csv FILE`: one organization a line, the columns of
`core.organization_values.FIELDS` (slug and name required, the others may be left out or empty),
comma- or semicolon-separated, UTF-8 (a spreadsheet's byte-order mark is fine). Each row comes
with where it is (`file:line`) for the problems' sentences."""

from __future__ import annotations

import csv
from pathlib import Path

from invoice_pipelines.core.organization_values import FIELDS

Row = tuple[str, dict[str, str | None]]


class CsvProblem(ValueError):
    """The file cannot be read as an onboarding CSV at all (one sentence)."""


def read_organizations_csv(path: Path) -> tuple[list[Row], list[str]]:
    """The rows of `path` as (where, values by column), and a sentence for each line that is no
    row (a wrong number of cells); blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CsvProblem(
            f"{path}: cannot be read as UTF-8 text ({exc.__class__.__name__})"
        ) from exc
    lines = text.splitlines()
    if not lines:
        raise CsvProblem(f"{path}: is empty; its first line names the columns ({','.join(FIELDS)})")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(lines, delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader)]
    missing = [name for name in ("slug", "name") if name not in header]
    if missing:
        raise CsvProblem(
            f"{path}:1: the header has no column {' and '.join(missing)} "
            f"(columns: {','.join(FIELDS)})"
        )
    rows: list[Row] = []
    problems: list[str] = []
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        where = f"{path.name}:{number}"
        if len(cells) != len(header):
            problems.append(f"{where}: {len(cells)} cells, the header names {len(header)}")
            continue
        rows.append((where, dict(zip(header, cells, strict=True))))
    return rows, problems
