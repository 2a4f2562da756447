"""The simulator inflates a gzip or deflate body only up to wire.MAX_REQUEST_BYTES: past it the
request is answered 413 before the rest is inflated (a 0.5 MB body once became 1.1 GB before the
answer 401), and a Content-Length past it is answered 413 without reading the body."""

from __future__ import annotations

import gzip
import json
import socket
import tracemalloc
import zlib

import pytest

from invoice_pipelines_devtools.qbo_simulator import wire

MiB = 1024 * 1024


def gzip_bomb(inflated: int) -> bytes:
    """`inflated` zero bytes, gzipped (about a thousandth of the size), built a MiB at a time."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(bytes(MiB)) for _ in range(inflated // MiB)]
    return b"".join(parts) + compressor.flush()


def test_decode_body_stops_inflating_at_the_bound() -> None:
    bomb = gzip_bomb(200 * MiB)
    assert len(bomb) < 300_000

    tracemalloc.start()
    try:
        with pytest.raises(wire.BodyTooLarge, match="inflates to more than 10485760 bytes"):
            wire.decode_body(bomb, "gzip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * wire.MAX_REQUEST_BYTES  # never the 200 MiB


def test_bodies_within_the_bound_still_inflate() -> None:
    body = json.dumps({"DisplayName": "x" * 1000}).encode()
    assert wire.decode_body(gzip.compress(body), "gzip") == body
    assert wire.decode_body(gzip.compress(body) + gzip.compress(b"!"), "gzip") == body + b"!"
    assert wire.decode_body(zlib.compress(body), "deflate") == body
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert wire.decode_body(raw.compress(body) + raw.flush(), "deflate") == body
    exactly = gzip.compress(bytes(1000))
    assert wire.decode_body(exactly, "gzip", max_bytes=1000) == bytes(1000)
    with pytest.raises(wire.BodyTooLarge):
        wire.decode_body(exactly, "gzip", max_bytes=999)
    with pytest.raises(ValueError, match="not valid gzip data"):
        wire.decode_body(gzip.compress(body)[:-20], "gzip")


def test_a_gzip_bomb_is_answered_413(qbo) -> None:
    response = qbo.request(
        "POST",
        "customer",
        content=gzip_bomb(64 * MiB),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )

    assert response.status_code == 413
    assert response.text == "the request body inflates to more than 10485760 bytes\n"
    assert qbo.query("select count(*) from Customer") == {"totalCount": 0}


def test_a_content_length_past_the_bound_is_answered_413_unread(qbo) -> None:
    host, port = qbo.sim.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"POST /v3/company/{qbo.realm}/customer HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {qbo.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {wire.MAX_REQUEST_BYTES + 1}\r\n\r\n".encode()
        )
        answer = conn.recv(4096)  # nothing of the body was sent: the answer comes anyway

    assert answer.startswith(b"HTTP/1.0 413") or answer.startswith(b"HTTP/1.1 413")
