"""The one bounded reader behind every upload read: its contract on a stream, and the S3 upload
store against an S3-compatible server on loopback (moto in server mode): an object over the upload
limit is refused from its Content-Length without being streamed, and the upload scan records it
FAILED with the reason while the rest go on."""

from __future__ import annotations

import hashlib
import io
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from invoice_pipelines.db.tables import incoming_invoices, processing_errors, uploads
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.limits import MiB
from invoice_pipelines.resources.files.s3 import S3UploadStore
from invoice_pipelines.resources.files.s3_objects import S3Uploads
from invoice_pipelines.resources.files.upload_stores import (
    UploadTooLarge,
    hash_limited,
    read_limited,
)

pytest.importorskip("moto", reason="moto[server] is a dev dependency")

from invoice_pipelines_tests.resources import test_s3  # noqa: E402

# the moto server and a fresh bucket, as the other S3 tests have them
s3_endpoint = test_s3.s3_endpoint
bucket = test_s3.bucket
_keys = test_s3._keys


class Stream(io.BytesIO):
    """A file object that counts what was read from it."""

    taken = 0

    def read(self, n: int | None = -1) -> bytes:
        data = super().read(n)
        self.taken += len(data)
        return data


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    length=st.integers(min_value=0, max_value=3 * MiB),
    limit=st.integers(min_value=0, max_value=3 * MiB),
    stated=st.sampled_from(["true", "none", "smaller"]),
)
def test_the_bounded_reader_never_reads_more_than_the_limit_and_one_byte(length, limit, stated):
    data = bytes(range(256)) * (length // 256) + b"x" * (length % 256)
    # "smaller": stat said less than there is (the file grew between stat and read)
    size = {"true": length, "none": None, "smaller": min(length, limit) // 2}[stated]
    for consume, expected in (
        (read_limited, data),
        (hash_limited, hashlib.sha256(data).hexdigest()),
    ):
        stream = Stream(data)
        if length <= limit:
            assert consume(stream.read, limit, size=size) == expected
        else:
            with pytest.raises(UploadTooLarge) as refused:
                consume(stream.read, limit, size=size)
            assert stream.taken <= limit + 1
            assert "INVOICE_PIPELINES_MAX_UPLOAD_BYTES" in str(refused.value)
            if stated == "true":
                assert stream.taken == 0  # the stated size alone refused it


class CountingS3Uploads(S3Uploads):
    """The real S3 store; the bytes it pulls from each response body are counted."""

    def __init__(self, *args, **options) -> None:
        super().__init__(*args, **options)
        self._taken: list[int] = []

    def _client(self):
        client = super()._client()
        taken = self._taken

        class Counting:
            def __getattr__(self, name):
                return getattr(client, name)

            def get_object(self, **kwargs):
                reply = client.get_object(**kwargs)
                body = reply["Body"]

                class Body:
                    def read(self, n=None):
                        data = body.read(n)
                        taken.append(len(data))
                        return data

                    def close(self):
                        body.close()

                return {**reply, "Body": Body()}

        return Counting()


def test_an_object_over_the_limit_is_refused_without_being_streamed(
    bucket, s3_endpoint, monkeypatch
):
    monkeypatch.setenv("INVOICE_PIPELINES_MAX_UPLOAD_BYTES", str(1 * MiB))
    store = CountingS3Uploads(bucket=bucket, prefix="uploads", endpoint_url=s3_endpoint)
    big = store.put("acme", "scan.pdf", b"%PDF" + b"\0" * (3 * MiB))
    small = store.put("acme", "ok.xml", b"<Invoice/>")
    for operation in (store.read, store.digest):
        with pytest.raises(UploadTooLarge, match=r"the file is 3 MiB; the limit is 1 MiB"):
            operation(big)
    assert sum(store._taken) == 0
    assert store.read(small) == b"<Invoice/>"
    assert store.digest(small) == hashlib.sha256(b"<Invoice/>").hexdigest()
    # a caller's own limit (the intake passes the parser's) wins over the setting
    with pytest.raises(UploadTooLarge):
        store.read(small, max_bytes=4)


def test_the_scan_records_an_object_over_the_limit_failed_and_goes_on(
    db, bucket, s3_endpoint, monkeypatch
):
    monkeypatch.setenv("INVOICE_PIPELINES_MAX_UPLOAD_BYTES", str(1 * MiB))
    org = db.new_organization()
    store = CountingS3Uploads(bucket=bucket, prefix="uploads", endpoint_url=s3_endpoint)
    store.put(org["slug"], "huge.pdf", b"%PDF" + b"\0" * (2 * MiB))
    store.put(org["slug"], "good.xml", b"<Invoice n='1'/>")
    result = scan_uploads(
        db.engine,
        store,
        ScanState(),
        system=db.system_engine,
        only_organizations={org["slug"]},
        now=time.time() + 120,
    )
    assert (result.registered, result.errors) == (2, [])
    assert store.list_inbox(org["slug"]) == []
    assert len(_keys(store, f"uploads/{org['slug']}/.archive/")) == 2  # both originals kept
    assert sum(store._taken) == len(b"<Invoice n='1'/>")  # only the good one was read
    with tenant_transaction(db.engine, org["id"]) as conn:
        docs = dict(
            conn.execute(
                select(uploads.c.filename, incoming_invoices.c.status)
                .join(incoming_invoices, incoming_invoices.c.upload_id == uploads.c.id)
                .where(uploads.c.organization_id == org["id"])
            ).all()
        )
        messages = (
            conn.execute(
                select(processing_errors.c.message).where(
                    processing_errors.c.organization_id == org["id"]
                )
            )
            .scalars()
            .all()
        )
    assert docs == {"huge.pdf": "FAILED", "good.xml": "UPLOADED"}
    assert messages == [
        "the file is 2 MiB; the limit is 1 MiB (INVOICE_PIPELINES_MAX_UPLOAD_BYTES)"
    ]


def test_listing_a_drop_zone_in_a_bucket_stops_at_the_limit(bucket, s3_endpoint):
    store = S3UploadStore(bucket=bucket, prefix="uploads", endpoint_url=s3_endpoint).uploads()
    for i in range(25):
        store.put("acme", f"{i:02d}.xml", b"<x/>")
    assert len(store.list_inbox("acme", limit=10)) == 10
    assert len(store.list_inbox("acme")) == 25
