"""What `invoice-pipelines parse PATH [--json]` does: parse and validate one file offline, OCR
included. Its parser is intake/commands/cli.py's; intake/area.py's table names `run_parse_command`, and the
console script imports this module only when the command runs.

The file is read through the upload store's bounded reader, so the command refuses a file over
INVOICE_PIPELINES_MAX_UPLOAD_BYTES (reported FAILED, as the intake would) without reading it whole.
A scan is read by the OCR reader the `ocr_engine` resource wraps (`resources/ocr/readers.py`), the
command's `args.resources.ocr_engine`, so the command imports no Dagster.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoice_pipelines.einvoice.read import ParseOutcome, failed
from invoice_pipelines.intake.domain.parse import parse_ocr_pages, unfinished_scan
from invoice_pipelines.intake.domain.workers import SafeParser
from invoice_pipelines.resources.files.uploads import UploadTooLarge, read_file_limited
from invoice_pipelines.resources.ocr.readers import PageOverBudget
from invoice_pipelines.settings import ConfigError, max_upload_bytes

EXIT_VALIDATED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REVIEW = 3  # read, but a person must look before it is booked (NEEDS_REVIEW)
# Generous: one file, a person waiting. The limit is there so a hostile PDF cannot hang the shell.
CLI_TIMEOUT_S = 120.0


def _ocr(outcome: ParseOutcome, data: bytes, ocr_reader: Callable[[], Any]) -> ParseOutcome:
    """Run OCR on an image or scanned PDF and parse its text; FAILED with the reason if OCR is
    missing. `ocr_reader` gives the reader (the command's `ocr_engine`), asked for only here."""
    try:
        # the OCR module or its dependencies may be absent, the engine not configured
        reader = ocr_reader()
        if outcome.format == "image":
            pages = reader.ocr_images([lambda: data])
        else:
            pages = list(reader.ocr_pdf(data))
    except PageOverBudget as exc:  # read in part: for a person, nothing of it taken
        return unfinished_scan(
            outcome.format, str(exc), content_hash=outcome.content_hash, raw=outcome.raw
        )
    except Exception as exc:  # missing binary, engine error, unreadable image: all user-facing
        return _ocr_unavailable(outcome, f"{type(exc).__name__}: {exc}")
    result = parse_ocr_pages(pages, source_format=outcome.format, content_hash=outcome.content_hash)
    result.raw = {**outcome.raw, **result.raw, "ocr_pages": len(pages)}
    return result


def _ocr_unavailable(outcome: ParseOutcome, reason: str) -> ParseOutcome:
    return failed(
        outcome.format,
        "ocr",
        f"the file needs OCR, but OCR is not available: {reason}",
        digest=outcome.content_hash,
        raw=outcome.raw,
    )


def _json_view(path: Path, outcome: ParseOutcome) -> dict[str, Any]:
    def finding(f: Any) -> dict[str, Any]:
        return {"rule": f.rule, "message": f.message, "stage": f.stage}

    return {
        "file": str(path),
        "format": outcome.format,
        "status": outcome.status,
        "verdict": None if outcome.verdict is None else outcome.verdict.to_json_dict(),
        "errors": [finding(f) for f in outcome.errors],
        "warnings": [finding(f) for f in outcome.warnings],
        "review": [finding(f) for f in outcome.review],
        "invoice": None if outcome.invoice is None else outcome.invoice.to_json_dict(),
        # a page's reading: which of the invoice's own sums hold (intake/domain/proofs.py)
        **({"proofs": outcome.raw["proofs"]} if "proofs" in outcome.raw else {}),
        "content_hash": outcome.content_hash,
    }


FORMAT_LABELS = {
    "cii": "CII XML (UN/CEFACT, e.g. XRechnung)",
    "ubl": "UBL XML invoice",
    "ubl-creditnote": "UBL XML credit note",
    "facturx-pdf": "Factur-X / ZUGFeRD PDF, its embedded XML",
    "zugferd1-pdf": "ZUGFeRD 1.0 PDF, its embedded XML",
    "ubl-pdf": "PDF with embedded UBL XML",
    "text-pdf": "PDF text layer (no structured invoice data)",
    "image": "image, read by OCR",
    "image-pdf": "scanned PDF, read by OCR",
}
TYPE_CODES = {  # UNTDID 1001, the codes EN 16931 invoices use most
    "326": "partial invoice",
    "380": "commercial invoice",
    "381": "credit note",
    "383": "debit note",
    "384": "corrected invoice",
    "386": "prepayment invoice",
    "389": "self-billed invoice",
}


def _summary(path: Path, outcome: ParseOutcome) -> str:
    """A short report for a person: what was read, the figures, then what is wrong. A value the
    document does not state is said so, never printed as `None`."""
    label = FORMAT_LABELS.get(outcome.format, outcome.format)
    lines = [f"{path.name}: {outcome.status}", f"  read as   {label}"]
    if outcome.verdict is not None:
        rules = f" ({', '.join(outcome.verdict.rules)})" if outcome.verdict.rules else ""
        lines.append(f"  class     {outcome.verdict.label}{rules}")
    if outcome.invoice is not None:
        view = outcome.invoice.to_json_dict()
        currency = f" {view['currency']}" if view["currency"] else ""
        kind = TYPE_CODES.get(view["type_code"] or "", "type")
        number = view["number"] or "(no number)"
        invoice = f"{number}, {kind} {view['type_code']}" if view["type_code"] else number
        if view["issue_date"]:
            invoice += f", issued {view['issue_date']}"
        lines.append(f"  invoice   {invoice}")
        lines.append(f"  seller    {view['seller_name'] or 'not stated'}")
        lines.append(f"  buyer     {view['buyer_name'] or 'not stated'}")
        net, vat, gross = (view[k] for k in ("net_total", "tax_total", "gross_total"))
        if None not in (net, vat, gross):
            amounts = f"net {net} + VAT {vat} = gross {gross}{currency}"
        else:
            stated = [f"{n} {v}" for n, v in (("net", net), ("VAT", vat), ("gross", gross)) if v]
            amounts = ", ".join(stated) + currency if stated else "not stated"
        lines.append(f"  amounts   {amounts}")
        due = f"{view['amount_due']}{currency}, " if view["amount_due"] is not None else ""
        when = f"by {view['due_date']}" if view["due_date"] else "no due date stated"
        lines.append(f"  due       {due}{when}")
        lines.append(f"  lines     {len(outcome.invoice.lines) or 'none itemized'}")
    sections = [("errors", outcome.errors), ("warnings", outcome.warnings)]
    if outcome.review:
        sections.append(("review", outcome.review))
    for heading, findings in sections:
        lines.append(f"  {heading:<9} {len(findings) or 'none'}")
        for f in findings:
            message = f.message
            if f.rule and message.startswith(f"[{f.rule}]-"):  # schematron repeats its rule id
                message = message[len(f.rule) + 3 :]
            lines.append(f"    {f.rule + ' ' if f.rule else ''}({f.stage}) {message}")
    return "\n".join(lines)


def run_parse_command(args: argparse.Namespace) -> int:
    """The command the table names: the file of `args.path`, a scan read by the command's
    `ocr_engine`."""
    return run_parse(args.path, as_json=args.json, ocr_reader=lambda: args.resources.ocr_engine)


def run_parse(path: str, as_json: bool, *, ocr_reader: Callable[[], Any]) -> int:
    """Parse one file and print the result; exit 0 VALIDATED, 1 FAILED, 2 usage/system error,
    3 NEEDS_REVIEW (by the default policy: a person must look before it is booked). A scan is
    read by `ocr_reader()` (`args.resources.ocr_engine`), built only for a scan."""
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    file = Path(path)
    try:
        limit = max_upload_bytes()
    except ConfigError as exc:
        print(f"invoice-pipelines parse: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        data = read_file_limited(file, limit)
    except UploadTooLarge as exc:
        return _print(file, failed("unknown", "read", str(exc), digest=""), as_json)
    except FileNotFoundError:
        print(f"invoice-pipelines parse: no such file: {path}", file=sys.stderr)
        return EXIT_USAGE
    except IsADirectoryError:
        print(f"invoice-pipelines parse: {path} is a directory, not a file", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(
            f"invoice-pipelines parse: cannot read {path}: {exc.strerror or exc}", file=sys.stderr
        )
        return EXIT_USAGE
    # In a worker process, like the pipeline: a file that hangs or crashes a parser library
    # ends as FAILED with a message instead of a stuck terminal or a stack trace.
    with SafeParser(workers=1, warm=False, timeout_s=CLI_TIMEOUT_S, max_bytes=limit) as parser:
        outcome = parser.parse(data, file.name)
    if outcome.status == "NEEDS_OCR":
        outcome = _ocr(outcome, data, ocr_reader)
    return _print(file, outcome, as_json)


def _print(file: Path, outcome: ParseOutcome, as_json: bool) -> int:
    if as_json:
        print(json.dumps(_json_view(file, outcome), ensure_ascii=False, indent=2))
    else:
        print(_summary(file, outcome))
    if outcome.status == "VALIDATED":
        return EXIT_VALIDATED
    return EXIT_REVIEW if outcome.status == "NEEDS_REVIEW" else EXIT_FAILED
