"""The `upload_store` resource: where supplier invoices arrive and where their original bytes are
kept. It wraps a plain store of `resources/uploads.py` (or `resources/s3_objects.py`) whose
settings Dagster shows and configures: every call goes to the store that `uploads()` gives, so the
upload sensor, the intake and housekeeping's runs and a command (which uses the plain store without
Dagster) read, move and remove the same files the same way. The drop zone's trust boundary (keys,
links, bounded reads) is `resources/uploads.py`'s."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

# the drop zone's rules, also importable from here, beside the resource that applies them
from invoice_pipelines.resources.uploads import (  # noqa: F401
    ARCHIVE,
    LocalUploads,
    StoredFile,
    StoreKeyError,
    UnsafeUpload,
    Uploads,
    UploadTooLarge,
    archive_key,
    check_key,
    hash_limited,
    limit_or_setting,
    read_file_limited,
    read_limited,
)


class UploadStore(ConfigurableResource, Uploads):
    """The interface the upload sensor and the intake job use: an `Uploads` configured by Dagster.

    `read` and `digest` are bounded by `max_bytes` (default INVOICE_PIPELINES_MAX_UPLOAD_BYTES):
    a larger upload raises UploadTooLarge without being read whole.
    """

    def uploads(self) -> Uploads:
        """The plain store this resource wraps."""
        raise NotImplementedError

    def list_inbox(self, organization_slug: str, limit: int | None = None) -> list[StoredFile]:
        return self.uploads().list_inbox(organization_slug, limit)

    def read(self, key: str, max_bytes: int | None = None) -> bytes:
        return self.uploads().read(key, max_bytes)

    def digest(self, key: str, max_bytes: int | None = None) -> str:
        return self.uploads().digest(key, max_bytes)

    def move(self, key: str, target_key: str) -> None:
        self.uploads().move(key, target_key)

    def put(self, organization_slug: str, filename: str, data: bytes) -> str:
        return self.uploads().put(organization_slug, filename, data)

    def remove(self, key: str) -> bool:
        return self.uploads().remove(key)


class LocalUploadStore(UploadStore):
    """A folder per organization under `root` (default INVOICE_PIPELINES_UPLOAD_DIR or .data/uploads):
    `resources.uploads.LocalUploads`.

    The root is the operator's and may itself be a link (e.g. to a mounted volume); below it,
    nothing is followed.
    """

    root: str = Field(default="", description="Folder; empty means INVOICE_PIPELINES_UPLOAD_DIR")

    def uploads(self) -> LocalUploads:
        return LocalUploads(self.root)
