"""OpenPEPPOL's official examples (../shared/samples/peppol) as a supplier would send them: the
examples name made-up bank details (`IBAN32423940`, `BIC324098`, an 18-character Swedish IBAN,
`SEXDABCD`), which the intake holds in review (IP-PAY-01/02, intake/domain/plausibility.py). A test of
the Peppol path itself takes the example with a valid account instead, as the demo forwards it
(invoice_pipelines_devtools/demo/peppol.py); test_peppol_receiving.py shows an example as
published ending in review for that reason alone. Each example's seller is paid to an account of
its own: two suppliers with one IBAN are held for a person (IP-SUP-11, docs/intake.md)."""

from __future__ import annotations

import zlib
from pathlib import Path

from invoice_pipelines_devtools.demo.invoices import iban_check_digits
from invoice_pipelines_devtools.demo.peppol import VALID_IBAN, with_valid_account


def own_account(path: Path) -> str:
    """A valid Swedish IBAN of the example's own (its bank the demo's, its account number from
    the file name)."""
    bban = f"500{zlib.crc32(path.name.encode()):017d}"
    return f"SE{iban_check_digits('SE', bban)}{bban}"


def example(path: Path) -> bytes:
    """An official example as a supplier with a real bank account would send it."""
    valid = with_valid_account(path.read_bytes())
    return valid.replace(VALID_IBAN.encode(), own_account(path).encode())
