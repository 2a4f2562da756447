"""Reading invoices from plain text (PDF text layers, OCR): `extract_fields` is the entry point.

labels.py holds the label dictionaries (German, English, French, Dutch, Spanish, Italian),
numbers.py / dates.py / currency.py the grammars, lines.py the line-item tables, accounts.py the
IBANs and BICs, and extract.py the layout rules that put them together.
"""

from invoice_pipelines.core.bank_accounts import iban_is_valid
from invoice_pipelines.intake.domain.formats.text.dates import find_dates, parse_date
from invoice_pipelines.intake.domain.formats.text.extract import (
    MIN_CONFIDENCE,
    ExtractedFields,
    TextField,
    extract_fields,
)
from invoice_pipelines.intake.domain.formats.text.numbers import parse_amount

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
