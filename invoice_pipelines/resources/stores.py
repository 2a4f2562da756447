"""Which stores the code location, the CLI and the benchmarks use: local folders or S3, by settings.

INVOICE_PIPELINES_STORAGE=local (the default) keeps uploads, exports and documents in folders under
the data directory; `s3` keeps them in one bucket under the prefixes `uploads/`, `exports/` and
`documents/` (INVOICE_PIPELINES_S3_BUCKET, optional INVOICE_PIPELINES_S3_ENDPOINT_URL for an
S3-compatible server and INVOICE_PIPELINES_S3_REGION). Credentials are boto3's own (environment,
profile or the pod's role).

`upload_store_from_env` and `file_store_from_env` give the Dagster resources (definitions.py);
`uploads_from_env` and `files_from_env` the plain stores they wrap, for a command: the same files,
without importing Dagster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.resources.files import Files, LocalFiles
from invoice_pipelines.resources.uploads import LocalUploads, Uploads
from invoice_pipelines.settings import ConfigError, env, env_var_or_default

if TYPE_CHECKING:
    from invoice_pipelines.resources.file_stores import FileStore
    from invoice_pipelines.resources.upload_stores import UploadStore

AREAS = ("uploads", "exports", "documents")


def storage_kind() -> str:
    kind = env("INVOICE_PIPELINES_STORAGE").strip().lower() or "local"
    if kind not in ("local", "s3"):
        # a typo must not silently keep files on one machine's disk
        raise ConfigError(f"INVOICE_PIPELINES_STORAGE={kind!r} is not a store; use 'local' or 's3'")
    if kind == "s3" and not env("INVOICE_PIPELINES_S3_BUCKET").strip():
        raise ConfigError("INVOICE_PIPELINES_STORAGE=s3 needs INVOICE_PIPELINES_S3_BUCKET")
    return kind


def _s3_fields(area: str, as_env_vars: bool) -> dict:
    read = env_var_or_default if as_env_vars else env
    return {
        "bucket": read("INVOICE_PIPELINES_S3_BUCKET"),
        "prefix": area,
        "endpoint_url": read("INVOICE_PIPELINES_S3_ENDPOINT_URL"),
        "region": read("INVOICE_PIPELINES_S3_REGION"),
    }


def _file_area(area: str) -> str:
    if area not in AREAS[1:]:
        raise ValueError(f"no file store for area {area!r}")
    return area


def upload_store_from_env(*, as_env_vars: bool = False) -> UploadStore:
    if storage_kind() == "s3":
        from invoice_pipelines.resources.s3 import S3UploadStore

        return S3UploadStore(**_s3_fields("uploads", as_env_vars))
    from invoice_pipelines.resources.upload_stores import LocalUploadStore

    return LocalUploadStore()


def file_store_from_env(area: str, *, as_env_vars: bool = False) -> FileStore:
    """The `export_store` (area `exports`) or `document_store` (area `documents`)."""
    _file_area(area)
    if storage_kind() == "s3":
        from invoice_pipelines.resources.s3 import S3FileStore

        return S3FileStore(**_s3_fields(area, as_env_vars))
    from invoice_pipelines.resources.file_stores import LocalFileStore

    return LocalFileStore(area=area)


def uploads_from_env() -> Uploads:
    """The store `upload_store_from_env()` wraps."""
    if storage_kind() == "s3":
        from invoice_pipelines.resources.s3_objects import S3Uploads

        return S3Uploads(**_s3_fields("uploads", False))
    return LocalUploads()


def files_from_env(area: str) -> Files:
    """The store `file_store_from_env(area)` wraps: exports or documents."""
    _file_area(area)
    if storage_kind() == "s3":
        from invoice_pipelines.resources.s3_objects import S3Files

        return S3Files(**_s3_fields(area, False))
    return LocalFiles(area=area)
