"""The S3 store resources (S3 or any S3-compatible object store): `S3FileStore` for exports and
documents, `S3UploadStore` for uploads. Their settings (bucket, prefix, endpoint, region) are
declared once, on the plain stores of `resources/files/s3_objects.py` (where what an object store
changes is described, and where each store makes its boto3 client when first needed); Dagster
shows and configures them here and hands a run the store they make. Credentials come the way
boto3 looks for them: they are never settings, so they never show up in Dagster's resource
config."""

from __future__ import annotations

from invoice_pipelines.resources.files.s3_objects import S3Files, S3Uploads
from invoice_pipelines.resources.plain_settings import dagster_resource

S3FileStore = dagster_resource(
    S3Files,
    "S3FileStore",
    doc="Exports and documents as objects under `s3://bucket/prefix/`, written once.",
    made_by="files",
)
S3UploadStore = dagster_resource(
    S3Uploads,
    "S3UploadStore",
    doc="Drop zones `prefix/<slug>/` and archives `prefix/<slug>/.archive/` in one bucket.",
    made_by="uploads",
)
