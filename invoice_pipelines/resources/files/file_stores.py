"""The file store resources: `export_store` (CSV and DATEV files per organization and month) and
`document_store` (invoice PDFs and XML). Dagster configures each (its settings shown) and hands a
run the plain store of `resources/files/files.py` (or `resources/files/s3_objects.py`) that `files()` builds,
the object a command gets too, so a run and a command write the same files through the same
class. An asset or op takes it as `ResourceParam[Files]`."""

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from invoice_pipelines.resources.files.files import Files, LocalFiles


class FileStore(ConfigurableResource):
    """The settings of the store the export and document assets use; a run gets the plain
    `Files` they configure (Dagster's `create_resource`), never this object."""

    def files(self) -> Files:
        """The plain store these settings make."""
        raise NotImplementedError

    def create_resource(self, context: InitResourceContext) -> Files:  # type: ignore[override]
        return self.files()


class LocalFileStore(FileStore):
    """A folder tree under `root`; by default the folder of its `area` (INVOICE_PIPELINES_EXPORT_DIR
    for exports, INVOICE_PIPELINES_DOCUMENT_DIR for documents): `resources.files.files.LocalFiles`."""

    root: str = Field(default="", description="Folder; empty means the area's default folder")
    area: str = Field(default="exports", description="exports or documents: the default folder")

    def files(self) -> LocalFiles:
        return LocalFiles(self.root, self.area)
