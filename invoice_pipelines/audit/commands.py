"""What `invoice-pipelines audit-export` does: the function the `audit_data_carrier` asset calls
too, with the same stores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from invoice_pipelines.audit.carrier import CarrierError, write_carrier


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
