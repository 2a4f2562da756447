"""The one place where the areas' Dagster objects and the shared resources are assembled.

The resources are fixed here, from the environment of the code location: run config (the
launchpad) cannot change any of their fields (see `resources/fixed.py` for why).
"""

from dagster import Definitions, FilesystemIOManager

# modules, not their `defs` objects: a module-level Definitions besides `defs` confuses the loader
from invoice_pipelines.billing import defs as billing
from invoice_pipelines.catalog import with_code_references
from invoice_pipelines.delivery import defs as delivery
from invoice_pipelines.documents import defs as documents
from invoice_pipelines.documents.letter_writer import PdfaLetterWriter
from invoice_pipelines.documents.renderer import DocumentRenderer
from invoice_pipelines.exports import defs as exports
from invoice_pipelines.housekeeping import defs as housekeeping
from invoice_pipelines.intake import defs as intake
from invoice_pipelines.intake.parser_resource import DocumentParser
from invoice_pipelines.overdue import defs as overdue
from invoice_pipelines.queue import defs as queue
from invoice_pipelines.quickbooks import defs as quickbooks
from invoice_pipelines.quickbooks.resources import quickbooks_from_env
from invoice_pipelines.resources.channels import resource_factories
from invoice_pipelines.resources.database import Database
from invoice_pipelines.resources.fixed import fixed_at_code_location
from invoice_pipelines.resources.ocr import ocr_engine_from_env
from invoice_pipelines.resources.parse_server import KEEP_WARM_SECONDS
from invoice_pipelines.resources.stores import file_store_from_env, upload_store_from_env
from invoice_pipelines.settings import env_var_or_default, max_upload_bytes, positive_number
from invoice_pipelines.tenants import defs as tenants


def build_definitions() -> Definitions:
    given = {
        "database": Database(url=env_var_or_default("INVOICE_PIPELINES_DB_URL")),
        "upload_store": upload_store_from_env(as_env_vars=True),
        "export_store": file_store_from_env("exports", as_env_vars=True),
        "document_store": file_store_from_env("documents", as_env_vars=True),
        "ocr_engine": ocr_engine_from_env(as_env_vars=True),
        "document_parser": DocumentParser(
            timeout_seconds=float(
                positive_number("INVOICE_PIPELINES_PARSE_TIMEOUT_SECONDS", float)
            ),
            max_upload_bytes=max_upload_bytes(),
            # the runs share one warm pool (resources/parse_server.py), not one warm-up each
            keep_warm_seconds=KEEP_WARM_SECONDS,
        ),
        # what the delivery channels go out through: `mailer`, `text_messages` (the supplier
        # notices use the mailer too)
        **{name: from_env() for name, from_env in resource_factories().items()},
        "letter_writer": PdfaLetterWriter(),
        "quickbooks": quickbooks_from_env(),
        "document_renderer": DocumentRenderer(
            timeout_seconds=float(
                positive_number("INVOICE_PIPELINES_PARSE_TIMEOUT_SECONDS", float)
            ),
        ),
    }
    # endpoints and secrets (and the limits beside them) come from the code location only: a
    # person who may launch runs must not send the SMTP password or the QuickBooks tokens elsewhere
    resources = {name: fixed_at_code_location(resource) for name, resource in given.items()}
    # Dagster's default IO manager too: its base_dir would let a run write (and a later step
    # unpickle) outputs in a folder of the launcher's choosing
    resources["io_manager"] = fixed_at_code_location(FilesystemIOManager())
    merged = Definitions.merge(
        tenants.defs,
        intake.defs,
        billing.defs,
        exports.defs,
        documents.defs,
        delivery.defs,
        # the batch-job kinds each area registers with the queue
        queue.build_defs([*billing.QUEUE_KINDS, *documents.QUEUE_KINDS, *delivery.QUEUE_KINDS]),
        overdue.defs,
        quickbooks.defs,
        housekeeping.defs,
    )
    # every asset links to the function or module that defines it ("View source" in the catalog)
    assets = with_code_references(list(merged.assets or []))
    return Definitions(
        assets=assets,
        asset_checks=merged.asset_checks,
        jobs=merged.jobs,
        sensors=merged.sensors,
        schedules=merged.schedules,
        resources=resources,
    )


defs = build_definitions()
