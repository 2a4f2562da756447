"""Documents area's Dagster definitions, each kind in its module: sales_invoice_documents
(assets.py), documents_job (jobs.py) and documents_sensor (sensors.py)."""

from dagster import Definitions

from invoice_pipelines.documents.assets import sales_invoice_documents_asset
from invoice_pipelines.documents.jobs import documents_job
from invoice_pipelines.documents.sensors import documents_sensor

defs = Definitions(
    assets=[sales_invoice_documents_asset],
    jobs=[documents_job],
    sensors=[documents_sensor],
)
