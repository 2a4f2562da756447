"""The resources no area makes, as the assemblies take them (`Area.provides`): the database, the
stores, OCR and the delivery channels' senders, each by the name runs and commands both use, each
from its one builder from the settings. A run gets the Dagster resource that wraps what the
builder makes (definitions.py), a command the object itself (`resources.for_commands.EnvResources`,
`args.resources`): the same engine, files, pages and messages, by the same names.

This table is the one place that names the builders: a command or an asset takes what it is
given (`invoice_pipelines_tests/resources/test_one_assembly.py` holds every other module to that).
Each is imported when an assembly asks for it, so listing them loads nothing."""

from __future__ import annotations

from invoice_pipelines.area_parts import Area, Resource

# the delivery channels' resources (resources/messaging/channels.py: each transport's `resource`), which
# the supplier notices and the dunning notices use too
CHANNEL_RESOURCES: dict[str, Resource] = {
    "mailer": Resource(
        "invoice_pipelines.resources.messaging.smtp:smtp",
        for_runs="invoice_pipelines.resources.messaging.mail:SmtpMailer.of",
    ),
    "text_messages": Resource(
        "invoice_pipelines.resources.messaging.text_messages:text_messages",
        for_runs="invoice_pipelines.resources.messaging.text_message_provider:TextMessageProvider.of",
    ),
    "peppol_access_point": Resource(
        "invoice_pipelines.resources.peppol.transport:peppol_transport",
        for_runs="invoice_pipelines.resources.peppol.access_point:PeppolAccessPoint.of",
    ),
}

# that CHANNEL_RESOURCES are the ones the transports go out through is held by a test
# (test_channel_resources.py), not here: asking the transports imports every one of them
# (requests among them), which every command paid, reading ones too (issue 73)
AREA = Area(
    "resources",
    provides={
        "database": Resource(
            "invoice_pipelines.db.engine:database_login",
            for_runs="invoice_pipelines.resources.database.engines:Database.of",
            for_commands="invoice_pipelines.db.engine:DatabaseLogin.engine",
        ),
        # the work over every organization: `system_transaction`'s engine, beside the runtime one
        "system_database": Resource(
            "invoice_pipelines.db.engine:database_login",
            for_runs="invoice_pipelines.resources.database.engines:SystemDatabase.of",
            for_commands="invoice_pipelines.db.engine:DatabaseLogin.system_engine",
        ),
        "upload_store": Resource(
            "invoice_pipelines.resources.files.stores:uploads",
            for_runs="invoice_pipelines.resources.files.stores:upload_store",
        ),
        "export_store": Resource(
            "invoice_pipelines.resources.files.stores:export_files",
            for_runs="invoice_pipelines.resources.files.stores:file_store",
        ),
        "document_store": Resource(
            "invoice_pipelines.resources.files.stores:document_files",
            for_runs="invoice_pipelines.resources.files.stores:file_store",
        ),
        "ocr_engine": Resource(
            "invoice_pipelines.resources.ocr.choice:ocr_reader",
            for_runs="invoice_pipelines.resources.ocr.engines:ocr_engine",
        ),
        **CHANNEL_RESOURCES,
    },
)
