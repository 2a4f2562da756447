"""The file store resources: `export_store` (CSV and DATEV files per organization and month) and
`document_store` (invoice PDFs and XML). Each wraps a plain store of `resources/files.py` (or
`resources/s3_objects.py`) whose settings Dagster shows and configures: every call goes to the
store that `files()` gives, so a run and a command (which uses the plain store without Dagster)
write the same files the same way."""

from collections.abc import Callable
from typing import BinaryIO

from dagster import ConfigurableResource
from pydantic import Field

from invoice_pipelines.resources.files import Files, LocalFiles


class FileStore(ConfigurableResource, Files):
    """The interface the export and document assets use: a `Files` configured by Dagster."""

    def files(self) -> Files:
        """The plain store this resource wraps."""
        raise NotImplementedError

    def write_with(self, key: str, fill: Callable[[BinaryIO], None]) -> str:
        return self.files().write_with(key, fill)

    def location(self, key: str) -> str:
        return self.files().location(key)

    def exists(self, key: str) -> bool:
        return self.files().exists(key)

    def read(self, key: str) -> bytes:
        return self.files().read(key)

    def remove(self, key: str) -> None:
        self.files().remove(key)


class LocalFileStore(FileStore):
    """A folder tree under `root`; by default the folder of its `area` (INVOICE_PIPELINES_EXPORT_DIR
    for exports, INVOICE_PIPELINES_DOCUMENT_DIR for documents): `resources.files.LocalFiles`."""

    root: str = Field(default="", description="Folder; empty means the area's default folder")
    area: str = Field(default="exports", description="exports or documents: the default folder")

    def files(self) -> LocalFiles:
        return LocalFiles(self.root, self.area)

    def path(self, key: str):  # a Path
        return self.files().path(key)
