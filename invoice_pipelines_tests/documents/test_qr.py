"""documents/domain/qr.py draws module for module the QR symbols segno drew before it (level M, mask 2,
byte mode): for payloads of every length around each version's capacity, random bytes, and the
EPC payloads our invoices carry."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
import segno

from invoice_pipelines.documents.domain.qr import _BLOCKS_M, make_qr
from invoice_pipelines.documents.domain.render import epc_payload, epc_qr


def _segno(data: bytes):
    return segno.make_qr(data, error="m", mask=2, boost_error=False, mode="byte")


def _same(data: bytes) -> None:
    ours, theirs = make_qr(data), _segno(data)
    assert ours.version == theirs.version, len(data)
    assert [bytes(row) for row in ours.matrix] == [bytes(row) for row in theirs.matrix], len(data)


def _capacity(version: int) -> int:
    _, n1, d1, n2, d2 = _BLOCKS_M[version - 1]
    return (8 * (n1 * d1 + n2 * d2) - 4 - (8 if version < 10 else 16)) // 8


@pytest.mark.parametrize("version", range(1, 41))
def test_every_version_at_and_around_its_capacity(version):
    rnd = random.Random(version)
    for length in {max(1, _capacity(version) - 1), _capacity(version), _capacity(version) + 1}:
        if length > _capacity(40):
            continue
        _same(bytes(rnd.randrange(256) for _ in range(length)))
    assert make_qr(bytes(_capacity(version))).version == version


def test_random_payloads():
    rnd = random.Random(26)
    for _ in range(60):
        _same(bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 400))))


def test_the_epc_codes_of_our_invoices():
    for name, amount, reference in [
        ("Müller Werkzeugbau GmbH", Decimal("131.64"), "RE-2026-000042"),
        ("Ærø Bådeværft ApS", Decimal("0.01"), "RE-2026-000001"),
        ("X" * 80, Decimal("999999999.99"), "R" * 200),
    ]:
        payload = epc_payload(name, "DE02120300000000202051", amount, reference, "BYLADEM1001")
        ours = epc_qr(name, "DE02120300000000202051", amount, reference, "BYLADEM1001")
        theirs = segno.make_qr(payload, error="m", mask=2, boost_error=False, encoding="utf-8")
        assert [bytes(row) for row in ours.matrix] == [bytes(row) for row in theirs.matrix]


def test_too_long_for_any_version():
    with pytest.raises(ValueError, match="do not fit"):
        make_qr(bytes(_capacity(40) + 1))
