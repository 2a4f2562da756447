"""Compatibility import path: the text extraction lives in intake/formats/text/."""

from invoice_pipelines.intake.formats.text import (
    MIN_CONFIDENCE,
    ExtractedFields,
    TextField,
    extract_fields,
    find_dates,
    iban_is_valid,
    parse_amount,
    parse_date,
)

__all__ = [
    "MIN_CONFIDENCE",
    "ExtractedFields",
    "TextField",
    "extract_fields",
    "find_dates",
    "iban_is_valid",
    "parse_amount",
    "parse_date",
]
