"""The one place where the areas' Dagster objects and the shared resources are assembled."""

from dagster import Definitions

# modules, not their `defs` objects: a module-level Definitions besides `defs` confuses the loader
from invoice_pipelines.resources.database import Database
from invoice_pipelines.tenants import defs as tenants


def build_definitions() -> Definitions:
    resources = {"database": Database()}
    return Definitions.merge(tenants.defs, Definitions(resources=resources))


defs = build_definitions()
