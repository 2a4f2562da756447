"""The file store resources: `export_store` (CSV and DATEV files per organization and month) and
`document_store` (invoice PDFs and XML), each a local folder tree or S3. Their settings are
declared once, on the plain stores of `resources/files/files.py` and `resources/files/s3_objects.py`;
Dagster shows and configures them here and hands a run the store they make, the object a command
gets too, so a run and a command write the same files through the same class. An asset or op
takes it as `ResourceParam[Files]`."""

from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.plain_settings import dagster_resource

LocalFileStore = dagster_resource(LocalFiles, "LocalFileStore", made_by="files")
