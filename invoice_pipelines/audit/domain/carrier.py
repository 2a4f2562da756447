"""Writing a Z3 data carrier (Datenträgerüberlassung, § 147 (6) AO) of one organization's fiscal
year into a folder: one flat file per table (audit/domain/carrier_tables.py), the originals, documents,
letters and DATEV export files the tables name (by relative path), `index.xml` describing every
table in the description standard with its DTD beside it, and `manifest-sha256.txt`, the SHA-256
of every other file of the carrier (the format `sha256sum -c` reads).

The tables are read in one snapshot of the database. A file the tables name that is missing from
its store, or whose bytes no longer have the SHA-256 recorded when it was stored, is named in the
result (and in `carrier-notes.txt`): the carrier holds what the stores hold, and says so.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from invoice_pipelines.audit.domain.carrier_tables import CARRIER_TABLES, Reading, Wanted, Year
from invoice_pipelines.audit.domain.description import (
    DTD_NAME,
    ENCODING,
    RECORD_DELIMITER,
    Kind,
    index_xml,
)
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.retention import LEGAL_YEARS, RecordClass
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.settings import PROJECT_ROOT, env_value

MANIFEST = "manifest-sha256.txt"
NOTES = "carrier-notes.txt"
# where the description standard's DTD is read from when INVOICE_PIPELINES_GDPDU_DTD is not set:
# the reference folder beside the repository (a deployment names its own copy)
DEFAULT_DTD = PROJECT_ROOT.parent / "shared" / "reference" / "gdpdu" / DTD_NAME


class CarrierError(RuntimeError):
    """A carrier that cannot be written (one sentence for people)."""


@dataclass
class TableWritten:
    rows: int = 0
    sums: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class CarrierResult:
    organization: str
    year: int
    folder: Path
    tables: dict[str, TableWritten] = field(default_factory=dict)
    files: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "year": self.year,
            "folder": str(self.folder),
            "tables": {
                name: {"rows": t.rows, "sums": {c: str(s) for c, s in t.sums.items()}}
                for name, t in self.tables.items()
            },
            "files": self.files,
            "missing": self.missing,
            "changed": self.changed,
        }


def dtd_path() -> Path:
    path = Path(env_value("INVOICE_PIPELINES_GDPDU_DTD") or DEFAULT_DTD)
    if not path.is_file():
        raise CarrierError(
            f"the description standard's DTD {DTD_NAME} is not at {path} "
            "(INVOICE_PIPELINES_GDPDU_DTD names it)"
        )
    return path


def write_carrier(
    engine: Engine, stores: dict[str, Any], organization: Organization, year: int, folder: Path
) -> CarrierResult:
    """Write the carrier of `organization`'s `year` into `folder` (new or empty). `stores`: the
    upload, document and export store by their resource names."""
    dtd = dtd_path()
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CarrierError(
            f"{folder} is a file, not a folder: a carrier is written into a new folder"
        )
    if folder.exists() and any(folder.iterdir()):
        raise CarrierError(f"{folder} is not empty: a carrier is written into a new folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CarrierError(
            f"{folder} cannot be made ({exc.strerror or exc}): give another folder"
        ) from None
    result = CarrierResult(organization.slug, year, folder)
    described = []
    wanted: list[Wanted] = []
    with tenant_transaction(engine, organization, snapshot=True) as conn:
        reading = Reading(
            conn, organization, Year.of(organization, year), stores["export_store"], wanted, []
        )
        for table in CARRIER_TABLES:
            written, longest = _write_table(folder, table, reading)
            result.tables[table.description.name] = written
            described.append((table.description, longest))
        result.missing.extend(reading.missing)
    _copy_files(folder, stores, wanted, result)
    shutil.copyfile(dtd, folder / DTD_NAME)
    supplier = (
        organization.name,
        ", ".join(str(v) for v in (organization.country, organization.vat_id) if v),
        f"invoice_pipelines tax-audit data carrier, fiscal year {year}; kept: booking documents "
        f"{LEGAL_YEARS[RecordClass.BOOKING_DOCUMENT]} years, books "
        f"{LEGAL_YEARS[RecordClass.BOOK]} years from the end of the calendar year",
    )
    (folder / "index.xml").write_bytes(
        index_xml(
            supplier=supplier,
            media_name=f"{organization.slug} {year}",
            year=year,
            tables=described,
        )
    )
    if result.missing or result.changed:
        lines = [f"missing from its store: {p}" for p in result.missing]
        lines += [f"not the SHA-256 recorded when stored: {p}" for p in result.changed]
        (folder / NOTES).write_text("\n".join(lines) + "\n", encoding=ENCODING)
    result.files = _write_manifest(folder)
    return result


def _write_table(folder: Path, table, reading: Reading) -> tuple[TableWritten, dict[str, int]]:
    description = table.description
    columns = description.columns
    numeric = [(i, c.name) for i, c in enumerate(columns) if c.kind is Kind.NUMERIC]
    texts = [(i, c.name) for i, c in enumerate(columns) if c.kind is Kind.TEXT]
    written = TableWritten(sums={name: Decimal(0) for _, name in numeric})
    longest = {name: 0 for _, name in texts}
    path = folder / description.url
    with path.open("w", encoding=ENCODING, newline="") as handle:
        for values in table.read(reading):
            handle.write(description.record(values) + RECORD_DELIMITER)
            written.rows += 1
            for i, name in numeric:
                if values[i] is not None:
                    written.sums[name] += Decimal(
                        str(int(values[i])) if isinstance(values[i], bool) else str(values[i])
                    )
            for i, name in texts:
                if values[i] is not None:
                    # the value as written (line breaks as spaces, without the encapsulator), in
                    # bytes of the declared encoding (UTF8, never fewer than its characters): an
                    # importer counting bytes cut "Industriestraße 12" at characters (issue 85)
                    written_bytes = len(columns[i].plain(values[i]).encode(ENCODING))
                    longest[name] = max(longest[name], written_bytes)
    return written, longest


def _copy_files(folder: Path, stores: dict[str, Any], wanted: list[Wanted], result) -> None:
    seen: set[str] = set()
    for file in wanted:
        if file.path in seen:
            continue
        seen.add(file.path)
        try:
            data = stores[file.store].read(file.key)
        except (FileNotFoundError, OSError, KeyError):
            result.missing.append(file.path)
            continue
        target = folder / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if file.sha256 and hashlib.sha256(data).hexdigest() != file.sha256:
            result.changed.append(file.path)


def _write_manifest(folder: Path) -> int:
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(folder).as_posix()}")
    (folder / MANIFEST).write_text("\n".join(lines) + "\n", encoding="ascii")
    return len(lines)
