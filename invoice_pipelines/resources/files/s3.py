"""The S3 store resources (S3 or any S3-compatible object store): `S3FileStore` for exports and
documents, `S3UploadStore` for uploads. Each wraps the plain store of `resources/files/s3_objects.py`
(where what an object store changes is described) and owns its boto3 client: one per resource
instance, made when first needed, shared by the worker threads. Credentials come the way boto3
looks for them (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, or the pod's role): they are
never fields here, so they never show up in Dagster's resource config."""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from invoice_pipelines.resources.files.file_stores import FileStore
from invoice_pipelines.resources.files.s3_objects import S3Files, S3Objects, S3Uploads, s3_client
from invoice_pipelines.resources.files.upload_stores import UploadStore


class S3Location(ConfigurableResource):
    """Bucket, prefix and endpoint shared by both stores; one boto3 client per resource instance."""

    bucket: str = Field(description="Bucket of the store")
    prefix: str = Field(default="", description="Key prefix inside the bucket, e.g. exports")
    endpoint_url: str = Field(
        default="", description="S3-compatible endpoint; empty means AWS's own for the region"
    )
    region: str = Field(default="", description="Region; empty means boto3's default")

    _s3: Any = PrivateAttr(default=None)

    def _client(self) -> Any:
        # boto3 clients are thread-safe: one per resource instance serves the worker threads
        if self._s3 is None:
            self._s3 = s3_client(self.endpoint_url, self.region)
        return self._s3

    def _settings(self) -> dict:
        """The plain store's settings; it reaches the bucket through this resource's client."""
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "connect": self._client,
        }

    def object_key(self, key: str) -> str:
        return S3Objects(**self._settings()).object_key(key)


class S3FileStore(S3Location, FileStore):
    """Exports and documents as objects under `s3://bucket/prefix/`, written once."""

    def files(self) -> S3Files:
        return S3Files(**self._settings())


class S3UploadStore(S3Location, UploadStore):
    """Drop zones `prefix/<slug>/` and archives `prefix/<slug>/.archive/` in one bucket."""

    def uploads(self) -> S3Uploads:
        return S3Uploads(**self._settings())
