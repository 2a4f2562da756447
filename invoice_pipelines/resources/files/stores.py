"""Which stores the code location, the CLI and the benchmarks use: local folders or S3, by settings.

INVOICE_PIPELINES_STORAGE=local (the default) keeps uploads, exports and documents in folders under
the data directory; `s3` keeps them in one bucket under the prefixes `uploads/`, `exports/` and
`documents/` (INVOICE_PIPELINES_S3_BUCKET, optional INVOICE_PIPELINES_S3_ENDPOINT_URL for an
S3-compatible server and INVOICE_PIPELINES_S3_REGION). Credentials are boto3's own (environment,
profile or the pod's role).

`uploads`, `export_files` and `document_files` are the one builder of each store (resources/area.py):
a command holds the plain store they give, without importing Dagster; a run the Dagster resource
that wraps it (`upload_store`, `file_store`): the same files.
"""

from __future__ import annotations

from typing import Any

from invoice_pipelines.resources.files.files import Files, LocalFiles
from invoice_pipelines.resources.files.uploads import LocalUploads, Uploads
from invoice_pipelines.settings import NOW, ConfigError, Reading, env


def storage_kind() -> str:
    kind = env("INVOICE_PIPELINES_STORAGE").strip().lower() or "local"
    if kind not in ("local", "s3"):
        # a typo must not silently keep files on one machine's disk
        raise ConfigError(f"INVOICE_PIPELINES_STORAGE={kind!r} is not a store; use 'local' or 's3'")
    if kind == "s3" and not env("INVOICE_PIPELINES_S3_BUCKET").strip():
        raise ConfigError("INVOICE_PIPELINES_STORAGE=s3 needs INVOICE_PIPELINES_S3_BUCKET")
    return kind


def _s3_fields(area: str, read: Reading) -> dict:
    return {
        "bucket": read.secret("INVOICE_PIPELINES_S3_BUCKET"),
        "prefix": area,
        "endpoint_url": read.secret("INVOICE_PIPELINES_S3_ENDPOINT_URL"),
        "region": read.secret("INVOICE_PIPELINES_S3_REGION"),
    }


def uploads(read: Reading = NOW) -> Uploads:
    """The upload store the settings choose: the builder of the `upload_store` resource."""
    if storage_kind() == "s3":
        from invoice_pipelines.resources.files.s3_objects import S3Uploads

        return S3Uploads(**_s3_fields("uploads", read))
    return LocalUploads()


def export_files(read: Reading = NOW) -> Files:
    """The export store the settings choose: the builder of the `export_store` resource."""
    return _files("exports", read)


def document_files(read: Reading = NOW) -> Files:
    """The document store the settings choose: the builder of the `document_store` resource."""
    return _files("documents", read)


def _files(area: str, read: Reading) -> Files:
    if storage_kind() == "s3":
        from invoice_pipelines.resources.files.s3_objects import S3Files

        return S3Files(**_s3_fields(area, read))
    return LocalFiles(area=area)


def upload_store(store: Uploads) -> Any:
    """A run's `upload_store`: the Dagster resource of the store `uploads` built for it (an
    `EnvVar` it holds stays one)."""
    if isinstance(store, LocalUploads):
        from invoice_pipelines.resources.files.upload_stores import LocalUploadStore

        return LocalUploadStore.of(store)
    from invoice_pipelines.resources.files.s3 import S3UploadStore

    return S3UploadStore.of(store)


def file_store(store: Files) -> Any:
    """A run's `export_store` or `document_store`: the Dagster resource of the store
    `export_files` or `document_files` built for it (an `EnvVar` it holds stays one)."""
    if isinstance(store, LocalFiles):
        from invoice_pipelines.resources.files.file_stores import LocalFileStore

        return LocalFileStore.of(store)
    from invoice_pipelines.resources.files.s3 import S3FileStore

    return S3FileStore.of(store)
