"""What the OCR tests of resources/ share: the real sample invoice they read."""

from __future__ import annotations

import shutil

import pytest

from invoice_pipelines_tests.conftest import IN_CI, samples_dir

EINFACH = "ZUGFeRD-corpus/XML-Rechnung/FX/EN16931_Einfach.pdf"


@pytest.fixture(scope="module")
def einfach_pdf() -> bytes:
    """The shared Factur-X sample's PDF, once Tesseract and pdftoppm are there to read it (CI
    fails without them; elsewhere the test is skipped)."""
    for binary in ("tesseract", "pdftoppm"):
        if shutil.which(binary) is None:
            message = f"{binary} missing; run scripts/ensure-system-packages.sh"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
    return (samples_dir() / EINFACH).read_bytes()
