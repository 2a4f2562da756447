"""OpenPEPPOL's official examples (../shared/samples/peppol) as a supplier would send them: the
examples name made-up bank details (`IBAN32423940`, `BIC324098`, an 18-character Swedish IBAN,
`SEXDABCD`), which the intake holds in review (IP-PAY-01/02, intake/domain/plausibility.py). A test of
the Peppol path itself takes the example with a valid account instead, as the demo forwards it
(invoice_pipelines_devtools/demo/peppol.py); test_peppol_receiving.py shows an example as
published ending in review for that reason alone."""

from __future__ import annotations

from pathlib import Path

from invoice_pipelines_devtools.demo.peppol import with_valid_account


def example(path: Path) -> bytes:
    """An official example as a supplier with a real bank account would send it."""
    return with_valid_account(path.read_bytes())
