"""OpenPEPPOL's official examples (../shared/samples/peppol) as a supplier would send them: the
examples name made-up bank details (`IBAN32423940`, `BIC324098`, an 18-character Swedish IBAN,
`SEXDABCD`), which the intake holds in review (IP-PAY-01/02, intake/plausibility.py). A test of
the Peppol path itself takes the example with a valid account instead; test_peppol_receiving.py
shows an example as published ending in review for that reason alone."""

from __future__ import annotations

import re
from pathlib import Path

# a valid Swedish IBAN (ISO 13616 check digits, the registry's length) and SEB's BIC
VALID_IBAN = "SE7450000000583982574660"
VALID_BIC = "ESSESESS"
_ACCOUNT = re.compile(rb"(<cac:PayeeFinancialAccount>\s*<cbc:ID>)[^<]*(</cbc:ID>)", re.MULTILINE)
_BRANCH = re.compile(
    rb"(<cac:FinancialInstitutionBranch>\s*<cbc:ID>)[^<]*(</cbc:ID>)", re.MULTILINE
)


def with_valid_account(data: bytes) -> bytes:
    """The example with every payee account and branch BIC replaced by valid ones."""
    data = _ACCOUNT.sub(rb"\g<1>" + VALID_IBAN.encode() + rb"\g<2>", data)
    return _BRANCH.sub(rb"\g<1>" + VALID_BIC.encode() + rb"\g<2>", data)


def example(path: Path) -> bytes:
    """An official example as a supplier with a real bank account would send it."""
    return with_valid_account(path.read_bytes())
