"""UploadStore.remove on a local folder and on S3 (moto server on loopback): an archived original is
deleted, and a second removal says it was already missing instead of failing."""

from __future__ import annotations

import pytest

from invoice_pipelines.resources.files.s3 import S3UploadStore
from invoice_pipelines.resources.files.uploads import LocalUploads, archive_key

pytest.importorskip("moto", reason="moto[server] is a dev dependency")

from invoice_pipelines_tests.resources.test_s3 import bucket, s3_endpoint  # noqa: E402, F401


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_remove_deletes_an_archived_original_once(kind, tmp_path, request):
    if kind == "local":
        store = LocalUploads(str(tmp_path))
    else:
        store = S3UploadStore(
            bucket=request.getfixturevalue("bucket"),
            prefix="uploads",
            endpoint_url=request.getfixturevalue("s3_endpoint"),
        ).uploads()
    dropped = store.put("acme", "invoice.xml", b"<Invoice/>")
    kept = store.put("acme", "other.xml", b"<Invoice>2</Invoice>")
    archived = archive_key(dropped, "ab" * 32, 1)
    store.move(dropped, archived)

    assert store.remove(archived) is True
    with pytest.raises(Exception):  # noqa: B017 - each store has its own "not found"
        store.read(archived)
    assert store.remove(archived) is False  # already gone: reported, not an error
    assert store.read(kept) == b"<Invoice>2</Invoice>"  # nothing else touched
    with pytest.raises(ValueError):
        store.remove("../outside.xml")
