"""The names of an export version's files in the export store: what the export writes and what
archive retention (housekeeping) removes, written once."""

from __future__ import annotations


def file_keys(
    slug: str, period: str, direction: str, version: int, *, provisional: bool = False
) -> dict[str, str]:
    """kind -> store key of each file of version `version` of an organization's month
    (`datev_documents`, the DATEV document package, where the version has one: the `exports`
    row's `files` names the files a version has)."""
    stem = f"{direction}_{period}_v{version}"
    if provisional:
        stem = f"{stem}_provisional"
    folder = f"{slug}/{period}"
    return {
        "datev": f"{folder}/EXTF_Buchungsstapel_{stem}.csv",
        "datev_partners": f"{folder}/EXTF_Debitoren_Kreditoren_{stem}.csv",
        "csv": f"{folder}/invoices_{stem}.csv",
        "csv_lines": f"{folder}/invoice_lines_{stem}.csv",
        "datev_documents": f"{folder}/DATEV_Belege_{stem}.zip",
    }
