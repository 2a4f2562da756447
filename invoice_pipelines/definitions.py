"""The one place where the areas' Dagster objects and the shared resources are assembled."""

from dagster import Definitions

# modules, not their `defs` objects: a module-level Definitions besides `defs` confuses the loader
from invoice_pipelines.billing import defs as billing
from invoice_pipelines.intake import defs as intake
from invoice_pipelines.resources.database import Database
from invoice_pipelines.resources.ocr import ocr_engine_from_env
from invoice_pipelines.resources.storage import LocalUploadStore
from invoice_pipelines.tenants import defs as tenants


def build_definitions() -> Definitions:
    resources = {
        "database": Database(),
        "upload_store": LocalUploadStore(),
        "ocr_engine": ocr_engine_from_env(),
    }
    return Definitions.merge(
        tenants.defs, intake.defs, billing.defs, Definitions(resources=resources)
    )


defs = build_definitions()
