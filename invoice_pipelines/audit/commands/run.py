"""What `invoice-pipelines audit-export` and `audit-verify` do: the functions the
`audit_data_carrier` asset and the `archive_unchanged` check call too, with the same stores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from invoice_pipelines.audit.domain.carrier import CarrierError, write_carrier
from invoice_pipelines.audit.domain.seal_keys import seal_keyring
from invoice_pipelines.audit.domain.verify import verify_archive
from invoice_pipelines.settings import ConfigError


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
    """Exit 0: every file as stored and the audit chain whole; 1: something named is not; 2: the
    seal keys are not configured as they must be (one sentence)."""
    try:
        keyring = seal_keyring(args.resources.database.dialect.name)
    except ConfigError as exc:
        print(f"invoice-pipelines audit-verify: {exc}")
        return 2
    report = verify_archive(
        args.resources.database,
        stores_of(args.resources),
        args.organization,
        args.year,
        keyring=keyring,
    )
    print(json.dumps(report.as_dict(), indent=2))
    return 0 if report.passed else 1
