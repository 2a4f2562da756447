"""S3 (or any S3-compatible object store) behind the upload and file store interfaces.

When Dagster runs on several machines, a local folder is on one of them only; these stores keep the
same keys as the local ones under a bucket and prefix, so the code that uses a store never knows
which one it has. Credentials come the way boto3 looks for them (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, a profile, or the pod's role): they are never fields here, so they never
show up in Dagster's resource config.

What an object store changes:
- a write is one PUT with `If-None-Match: *`, so "never overwrite" holds on the server even when
  two machines write the same key at once (the loser gets FileExistsError, as with a local file);
- an upload is visible only once complete (PUT and multipart uploads are atomic), so there are no
  half-written files in the drop zone; the settle check still waits until an object stops changing;
- a move is copy then delete: a crash between the two leaves the object in the drop zone and in the
  archive, and the next look completes the move (the sensor finds its record by the archive key),
  so a file is neither lost nor registered twice.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from invoice_pipelines.resources.files import FileStore
from invoice_pipelines.resources.storage import _IGNORED, StoredFile, UploadStore

_READ_BLOCK = 1 << 20


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
            import boto3  # imported here: the local stores never need it
            from botocore.config import Config

            self._s3 = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url or None,
                region_name=self.region or None,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        return self._s3

    def object_key(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"key {key!r} escapes the store")
        prefix = self.prefix.strip("/")
        return f"{prefix}/{key}" if prefix else key

    def _relative(self, object_key: str) -> str:
        prefix = self.prefix.strip("/")
        return object_key[len(prefix) + 1 :] if prefix else object_key

    def _missing(self, error: Exception) -> bool:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")


class S3FileStore(S3Location, FileStore):
    """Exports and documents as objects under `s3://bucket/prefix/`, written once."""

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def write_with(self, key: str, fill: Callable[[BinaryIO], None]) -> str:
        # spooled: small files stay in memory, a large export goes to a temporary file, so the PUT
        # knows its length and the producer can stream (COPY writes into a file object)
        with tempfile.SpooledTemporaryFile(max_size=8 * _READ_BLOCK) as buffer:
            fill(buffer)
            buffer.seek(0)
            try:
                self._client().put_object(
                    Bucket=self.bucket, Key=self.object_key(key), Body=buffer, IfNoneMatch="*"
                )
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
                if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    raise FileExistsError(
                        f"{self.location(key)} exists; files are never overwritten"
                    ) from exc
                raise
        return self.location(key)

    def exists(self, key: str) -> bool:
        try:
            self._client().head_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if self._missing(exc):
                return False
            raise
        return True

    def read(self, key: str) -> bytes:
        try:
            body = self._client().get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]
        except Exception as exc:
            if self._missing(exc):
                raise FileNotFoundError(self.location(key)) from exc
            raise
        return body.read()

    def remove(self, key: str) -> None:
        self._client().delete_object(Bucket=self.bucket, Key=self.object_key(key))


class S3UploadStore(S3Location, UploadStore):
    """Drop zones `prefix/<slug>/` and archives `prefix/<slug>/.archive/` in one bucket."""

    def list_inbox(self, organization_slug: str) -> list[StoredFile]:
        # Delimiter "/": the drop zone's own objects; the archive is a common prefix, not listed
        paginator = self._client().get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(
            Bucket=self.bucket, Prefix=self.object_key(f"{organization_slug}/"), Delimiter="/"
        ):
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if not name or _IGNORED.search(name):
                    continue
                mtime_ns = int(obj["LastModified"].timestamp() * 1_000_000) * 1000
                found.append(
                    StoredFile(f"{organization_slug}/{name}", name, int(obj["Size"]), mtime_ns)
                )
        return sorted(found, key=lambda f: (f.mtime_ns, f.name))

    def _body(self, key: str):
        """The object's stream; a missing object is FileNotFoundError and any other refusal an
        OSError, as with a local file, so the intake fails that one document and goes on."""
        try:
            return self._client().get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]
        except Exception as exc:
            where = f"s3://{self.bucket}/{self.object_key(key)}"
            if self._missing(exc):
                raise FileNotFoundError(where) from exc
            raise OSError(f"{where}: {exc}") from exc

    def read(self, key: str) -> bytes:
        return self._body(key).read()

    def digest(self, key: str) -> str:
        body = self._body(key)
        sha = hashlib.sha256()
        for block in iter(lambda: body.read(_READ_BLOCK), b""):
            sha.update(block)
        return sha.hexdigest()

    def move(self, key: str, target_key: str) -> None:
        source, target = self.object_key(key), self.object_key(target_key)
        client = self._client()
        try:
            # managed copy: multipart for large objects; copying the same bytes again after a
            # crash between copy and delete writes the same archive object
            client.copy({"Bucket": self.bucket, "Key": source}, self.bucket, target)
        except Exception as exc:
            if self._missing(exc):
                raise FileNotFoundError(f"s3://{self.bucket}/{source}") from exc
            raise OSError(f"copy to the archive failed: {exc}") from exc
        try:
            client.delete_object(Bucket=self.bucket, Key=source)
        except Exception as exc:
            raise OSError(f"archived, drop-zone object not removed yet: {exc}") from exc

    def put(self, organization_slug: str, filename: str, data: bytes) -> str:
        name = os.path.basename(filename)
        key = f"{organization_slug}/{name}"
        self._client().put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)
        return key

    def remove(self, key: str) -> bool:
        # DELETE answers 204 whether or not the object existed: ask first, so a file that was
        # already gone is reported as such (housekeeping records it)
        client, target = self._client(), self.object_key(key)
        try:
            client.head_object(Bucket=self.bucket, Key=target)
        except Exception as exc:
            if self._missing(exc):
                return False
            raise
        client.delete_object(Bucket=self.bucket, Key=target)
        return True
