"""What `invoice-pipelines audit-export` and `audit-verify` do: the functions the
`audit_data_carrier` asset and the `archive_unchanged` check call too, with the same stores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from invoice_pipelines.audit.domain.carrier import CarrierError, write_carrier
from invoice_pipelines.audit.domain.verify import verify_archive


def stores_of(resources) -> dict:
    return {
        "upload_store": resources.upload_store,
        "document_store": resources.document_store,
        "export_store": resources.export_store,
    }


def run_audit_export_command(args: argparse.Namespace) -> int:
    try:
        result = write_carrier(
            args.resources.database,
            stores_of(args.resources),
            args.organization,
            args.year,
            Path(args.out),
        )
    except CarrierError as exc:
        print(f"invoice-pipelines audit-export: {exc}")
        return 2
    print(json.dumps(result.as_dict(), indent=2))
    return 1 if result.missing or result.changed else 0


def run_audit_verify_command(args: argparse.Namespace) -> int:
    """Exit 0: every file as stored and the audit chain whole; 1: something named is not."""
    report = verify_archive(
        args.resources.database, stores_of(args.resources), args.organization, args.year
    )
    print(json.dumps(report.as_dict(), indent=2))
    return 0 if report.passed else 1
