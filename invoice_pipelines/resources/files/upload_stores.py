"""The `upload_store` resource: where supplier invoices arrive and where their original bytes are
kept. Dagster configures it (its settings shown, secrets as EnvVars) and hands a run the plain
store of `resources/files/uploads.py` (or `resources/files/s3_objects.py`) that `uploads()` builds, the
object a command gets too: the upload sensor, the intake and housekeeping's runs and a command
read, move and remove the same files through the same class. An asset, op or sensor takes it as
`ResourceParam[Uploads]`. The drop zone's trust boundary (keys, links, bounded reads) is
`resources/files/uploads.py`'s."""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

# the drop zone's rules, also importable from here, beside the resource that applies them
from invoice_pipelines.resources.files.uploads import (  # noqa: F401
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


class UploadStore(ConfigurableResource):
    """The settings of the store the upload sensor and the intake job use; a run gets the plain
    `Uploads` they configure (Dagster's `create_resource`), never this object."""

    def uploads(self) -> Uploads:
        """The plain store these settings make."""
        raise NotImplementedError

    def create_resource(self, context: InitResourceContext) -> Uploads:  # type: ignore[override]
        return self.uploads()


class LocalUploadStore(UploadStore):
    """A folder per organization under `root` (default INVOICE_PIPELINES_UPLOAD_DIR or .data/uploads):
    `resources.files.uploads.LocalUploads`.

    The root is the operator's and may itself be a link (e.g. to a mounted volume); below it,
    nothing is followed.
    """

    root: str = Field(default="", description="Folder; empty means INVOICE_PIPELINES_UPLOAD_DIR")

    def uploads(self) -> LocalUploads:
        return LocalUploads(self.root)
