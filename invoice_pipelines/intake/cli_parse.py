"""`invoice-pipelines parse PATH [--json]`: parse and validate one file offline, OCR included."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from invoice_pipelines.intake.parse import ParseOutcome, SafeParser, failed, parse_ocr_text

EXIT_VALIDATED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# Generous: one file, a person waiting. The limit is there so a hostile PDF cannot hang the shell.
CLI_TIMEOUT_S = 120.0


def _ocr(outcome: ParseOutcome, data: bytes) -> ParseOutcome:
    """Run OCR on an image or scanned PDF and parse its text; FAILED with the reason if OCR is missing."""
    try:
        from invoice_pipelines.resources import ocr
    except Exception as exc:  # the OCR module or its dependencies may be absent
        return _ocr_unavailable(outcome, f"{type(exc).__name__}: {exc}")
    try:
        engine_factory = getattr(ocr, "ocr_engine_from_env", None)
        if engine_factory is not None:
            engine = engine_factory()
            read_image, read_pdf = engine.ocr_image, engine.ocr_pdf
        else:
            read_image, read_pdf = ocr.ocr_image, ocr.ocr_pdf
        if outcome.format == "image":
            pages = [read_image(data)]
        else:
            pages = list(read_pdf(data))
    except Exception as exc:  # missing binary, engine error, unreadable image: all user-facing
        return _ocr_unavailable(outcome, f"{type(exc).__name__}: {exc}")
    text = "\n\f".join(page.text for page in pages)
    confidences = [page.confidence for page in pages if page.confidence is not None]
    confidence = sum(confidences) / len(confidences) if confidences else None
    result = parse_ocr_text(
        text,
        source_format=outcome.format,
        confidence=confidence,
        content_hash=outcome.content_hash,
    )
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
        "errors": [finding(f) for f in outcome.errors],
        "warnings": [finding(f) for f in outcome.warnings],
        "invoice": None if outcome.invoice is None else outcome.invoice.to_json_dict(),
        "content_hash": outcome.content_hash,
    }


def _summary(path: Path, outcome: ParseOutcome) -> str:
    lines = [f"{path.name}: {outcome.status} ({outcome.format})"]
    invoice = outcome.invoice
    if invoice is not None:
        view = invoice.to_json_dict()
        lines.append(
            f"  invoice {view['number']} type {view['type_code']} of {view['issue_date']}"
            f" from {view['seller_name']} to {view['buyer_name']}"
        )
        lines.append(
            f"  net {view['net_total']} + VAT {view['tax_total']} = gross {view['gross_total']}"
            f" {view['currency'] or ''}; due {view['amount_due']} by {view['due_date']};"
            f" {len(invoice.lines)} lines"
        )
    for label, findings in (("error", outcome.errors), ("warning", outcome.warnings)):
        for f in findings:
            rule = f" {f.rule}" if f.rule else ""
            lines.append(f"  {label} [{f.stage}{rule}] {f.message}")
    return "\n".join(lines)


def run_parse(path: str, as_json: bool) -> int:
    """Parse one file and print the result; exit 0 VALIDATED, 1 FAILED, 2 usage/system error."""
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        print(f"invoice-pipelines parse: no such file: {path}", file=sys.stderr)
        return EXIT_USAGE
    except IsADirectoryError:
        print(f"invoice-pipelines parse: {path} is a directory, not a file", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"invoice-pipelines parse: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    # In a worker process, like the pipeline: a file that hangs or crashes a parser library
    # ends as FAILED with a message instead of a stuck terminal or a stack trace.
    with SafeParser(workers=1, warm=False, timeout_s=CLI_TIMEOUT_S) as parser:
        outcome = parser.parse(data, file.name)
    if outcome.status == "NEEDS_OCR":
        outcome = _ocr(outcome, data)
    if as_json:
        print(json.dumps(_json_view(file, outcome), ensure_ascii=False, indent=2))
    else:
        print(_summary(file, outcome))
    return EXIT_VALIDATED if outcome.status == "VALIDATED" else EXIT_FAILED
