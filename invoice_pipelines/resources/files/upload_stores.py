"""The `upload_store` resource: where supplier invoices arrive and where their original bytes are
kept, a local folder or S3. Its settings are declared once, on the plain store of
`resources/files/uploads.py` (or `resources/files/s3_objects.py`); Dagster shows and configures them
here (secrets as EnvVars) and hands a run the store they make, the object a command gets too: the
upload sensor, the intake and housekeeping's runs and a command read, move and remove the same
files through the same class. An asset, op or sensor takes it as `ResourceParam[Uploads]`. The
drop zone's trust boundary (keys, links, bounded reads) is `resources/files/uploads.py`'s."""

from __future__ import annotations

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
from invoice_pipelines.resources.plain_settings import dagster_resource

LocalUploadStore = dagster_resource(LocalUploads, "LocalUploadStore", made_by="uploads")
