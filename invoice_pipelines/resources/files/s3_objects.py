"""S3 (or any S3-compatible object store) behind the upload and file store interfaces, in plain
Python: `S3Files` and `S3Uploads`. The Dagster resources of `resources/files/s3.py` wrap them; a command
uses them directly, without Dagster.

When Dagster runs on several machines, a local folder is on one of them only; these stores keep the
same keys as the local ones under a bucket and prefix, so the code that uses a store never knows
which one it has. Credentials come the way boto3 looks for them (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, a profile, or the pod's role): they are never settings here, so they never
show up in Dagster's resource config.

What an object store changes:
- a write is one PUT with `If-None-Match: *`, so "never overwrite" holds on the server even when
  two machines write the same key at once (the loser gets FileExistsError, as with a local file);
- an upload is visible only once complete (PUT and multipart uploads are atomic), so there are no
  half-written files in the drop zone; the settle check still waits until an object stops changing;
- a move is copy then delete: a crash between the two leaves the object in the drop zone and in the
  archive, and the next look completes the move (the sensor finds its record by the archive key),
  so a file is neither lost nor registered twice;
- keys are checked as in the local store (`storage.check_key`): an object store takes `..`
  literally, but a key must not even look as if it left its organization's prefix;
- an upload is read through the same bounded reader: its Content-Length is checked first and at
  most limit + 1 bytes are streamed, so an object over the upload limit is never read whole.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.files.uploads import (
    _IGNORED,
    StoredFile,
    StoreKeyError,
    Uploads,
    check_key,
    check_name,
    hash_limited,
    limit_or_setting,
    put_name,
    read_limited,
)

_READ_BLOCK = 1 << 20


def s3_client(endpoint_url: str = "", region: str = "") -> Any:
    """A boto3 S3 client (thread-safe: one serves a store's worker threads)."""
    import boto3  # imported here: the local stores never need it
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )


@dataclass(eq=False)
class S3Objects:
    """Bucket, prefix and endpoint shared by both stores; one boto3 client per store, made when
    first needed (boto3 clients are thread-safe: it serves the worker threads). Credentials come
    the way boto3 looks for them (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, or the
    pod's role): they are never settings here, so they never show up in Dagster's resource
    config."""

    bucket: str = field(metadata={"description": "Bucket of the store"})
    prefix: str = field(
        default="", metadata={"description": "Key prefix inside the bucket, e.g. exports"}
    )
    endpoint_url: str = field(
        default="",
        metadata={"description": "S3-compatible endpoint; empty means AWS's own for the region"},
    )
    region: str = field(default="", metadata={"description": "Region; empty means boto3's default"})
    _s3: Any = field(default=None, init=False, repr=False)

    def _client(self) -> Any:
        if self._s3 is None:
            self._s3 = s3_client(self.endpoint_url, self.region)
        return self._s3

    def object_key(self, key: str) -> str:
        check_key(key)
        return self._prefixed(key)

    def _prefixed(self, key: str) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{key}" if prefix else key

    def _missing(self, error: Exception) -> bool:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    def _holds(self, client: Any, stored: str) -> bool:
        """Whether the bucket has the object `stored` (an object key), asked of `client` (HEAD):
        a missing one is no error."""
        try:
            client.head_object(Bucket=self.bucket, Key=stored)
        except Exception as exc:
            if self._missing(exc):
                return False
            raise
        return True


class S3Files(S3Objects, Files):
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

    def stored_key(self, key: str) -> str:
        """The object key of a store key, or of a location this store gave (`location`: an
        export records where its files are, `s3://bucket/prefix/...`), so that what was recorded
        can be read back and removed (an organization's offboarding)."""
        own = f"s3://{self.bucket}/"
        if not key.startswith("s3://"):
            return self.object_key(key)
        prefix = self.prefix.strip("/")
        stored = key[len(own) :] if key.startswith(own) else ""
        if not stored or (prefix and not stored.startswith(f"{prefix}/")):
            raise ValueError(f"{key} is not a location of this store (s3://{self.bucket}/{prefix})")
        check_key(stored[len(prefix) + 1 :] if prefix else stored)
        return stored

    def exists(self, key: str) -> bool:
        return self._holds(self._client(), self.stored_key(key))

    def read(self, key: str) -> bytes:
        stored = self.stored_key(key)
        try:
            body = self._client().get_object(Bucket=self.bucket, Key=stored)["Body"]
        except Exception as exc:
            if self._missing(exc):
                raise FileNotFoundError(f"s3://{self.bucket}/{stored}") from exc
            raise
        return body.read()

    def remove(self, key: str) -> None:
        self._client().delete_object(Bucket=self.bucket, Key=self.stored_key(key))


class S3Uploads(S3Objects, Uploads):
    """Drop zones `prefix/<slug>/` and archives `prefix/<slug>/.archive/` in one bucket."""

    def list_inbox(self, organization_slug: str, limit: int | None = None) -> list[StoredFile]:
        # Delimiter "/": the drop zone's own objects; the archive is a common prefix, not listed
        check_name(organization_slug)
        paginator = self._client().get_paginator("list_objects_v2")
        found = []
        # MaxItems: a drop zone of 100,000 objects costs one page per tick, not a hundred
        paging = {"MaxItems": limit} if limit is not None else {}
        for page in paginator.paginate(
            Bucket=self.bucket,
            Prefix=self._prefixed(f"{organization_slug}/"),
            Delimiter="/",
            PaginationConfig=paging,
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

    def _bounded(self, key: str, max_bytes: int | None, consume: Callable[..., Any]) -> Any:
        """`consume(read, limit, size=...)` over the object's stream. A missing object is
        FileNotFoundError and any other refusal an OSError, as with a local file, so the intake
        fails that one document and goes on."""
        where = f"s3://{self.bucket}/{self.object_key(key)}"
        try:
            reply = self._client().get_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if self._missing(exc):
                raise FileNotFoundError(where) from exc
            raise OSError(f"{where}: {exc}") from exc
        body = reply["Body"]
        try:
            return consume(body.read, limit_or_setting(max_bytes), size=reply.get("ContentLength"))
        except OSError:  # UploadTooLarge included
            raise
        except Exception as exc:  # the connection broke off mid-object
            raise OSError(f"{where}: {exc}") from exc
        finally:
            # closing drops the connection instead of draining an object we refused
            body.close()

    def read(self, key: str, max_bytes: int | None = None) -> bytes:
        return self._bounded(key, max_bytes, read_limited)

    def digest(self, key: str, max_bytes: int | None = None) -> str:
        return self._bounded(key, max_bytes, hash_limited)

    def move(self, key: str, target_key: str) -> None:
        if check_key(key)[0] != check_key(target_key)[0]:
            raise StoreKeyError(f"{key!r} cannot move out of its organization's folder")
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
        key = f"{check_name(organization_slug)}/{put_name(filename)}"
        self._client().put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)
        return key

    def remove(self, key: str) -> bool:
        # DELETE answers 204 whether or not the object existed: ask first, so a file that was
        # already gone is reported as such (housekeeping records it)
        client, target = self._client(), self.object_key(key)
        if not self._holds(client, target):
            return False
        client.delete_object(Bucket=self.bucket, Key=target)
        return True
