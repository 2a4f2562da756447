"""Tax-audit access as the assemblies see it: `audit-export` and `audit-verify` (their parsers
audit/commands/cli.py, what they do audit/commands/run.py), the carrier's asset per organization and fiscal
year and the scheduled `archive_unchanged` check (audit/defs.py).

An area of its own rather than a part of exports/: the exports are the month's bookings for the
tax advisor, written as they happen; the carrier is a year of every tax-relevant table for the
tax auditor, read afterwards, and it reads the exports' files as they were delivered. It imports
no area (the export files' names are core/export_files.py's)."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, FILE_STORES, Area, Command

AREA = Area(
    "audit",
    commands=(
        Command(
            "audit-export",
            "write an organization's fiscal year as a tax-audit data carrier (GDPdU index.xml, "
            "flat files, originals, SHA-256 manifest)",
            run="invoice_pipelines.audit.commands.run:run_audit_export_command",
        ),
        Command(
            "audit-verify",
            "re-read an organization's stored originals and documents and its keyed audit chain, "
            "compared with the heads anchored beside the archive; name each file changed or "
            "missing, each sealed row removed or changed, a chain rewritten, cut or emptied",
            run="invoice_pipelines.audit.commands.run:run_audit_verify_command",
        ),
    ),
    parsers="invoice_pipelines.audit.commands.cli:add_commands",
    definitions="invoice_pipelines.audit.defs:defs",
    needs=DATABASES | FILE_STORES,
)
