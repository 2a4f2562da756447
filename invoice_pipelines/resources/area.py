"""The resources no area makes, as the assemblies take them (`Area.provides`): the database, the
stores, OCR and the delivery channels' senders, each by the name runs and commands both use. A run
gets the Dagster resource (definitions.py), a command the plain object it wraps
(`resources.for_commands.EnvResources`, `args.resources`): the same engine, files, pages and
messages, by the same names.

This is the one module that builds them from the environment (the `*_from_env` factories and
`db.engine.command_line_engine`): a command or an asset takes what it is given
(`invoice_pipelines_tests/resources/test_one_assembly.py` holds every other module to that). Each
factory is imported when an assembly asks for it, so listing them loads nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import Area, Resource

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from invoice_pipelines.resources.database import Database
    from invoice_pipelines.resources.file_stores import FileStore
    from invoice_pipelines.resources.files import Files
    from invoice_pipelines.resources.mail import SmtpMailer
    from invoice_pipelines.resources.messaging import TextMessageProvider
    from invoice_pipelines.resources.ocr import OcrEngine
    from invoice_pipelines.resources.ocr_readers import OcrReader
    from invoice_pipelines.resources.peppol import PeppolAccessPoint
    from invoice_pipelines.resources.peppol_transport import PeppolTransport
    from invoice_pipelines.resources.smtp import Smtp
    from invoice_pipelines.resources.text_messages import TextMessages
    from invoice_pipelines.resources.upload_stores import UploadStore
    from invoice_pipelines.resources.uploads import Uploads


def _database() -> Database:
    from invoice_pipelines.resources.database import Database
    from invoice_pipelines.settings import env_var_or_default

    return Database(
        url=env_var_or_default("INVOICE_PIPELINES_DB_URL"),
        system_url=env_var_or_default("INVOICE_PIPELINES_SYSTEM_DB_URL"),
    )


def _engine() -> Engine:
    # what the `database` resource wraps: the same engine for the same settings, without Dagster
    from invoice_pipelines.db.engine import command_line_engine

    return command_line_engine()


def _upload_store() -> UploadStore:
    from invoice_pipelines.resources.stores import upload_store_from_env

    return upload_store_from_env(as_env_vars=True)


def _uploads() -> Uploads:
    from invoice_pipelines.resources.stores import uploads_from_env

    return uploads_from_env()


def _file_store(area: str) -> Resource:
    def for_runs() -> FileStore:
        from invoice_pipelines.resources.stores import file_store_from_env

        return file_store_from_env(area, as_env_vars=True)

    def for_commands() -> Files:
        from invoice_pipelines.resources.stores import files_from_env

        return files_from_env(area)

    return Resource(for_runs, for_commands)


def _ocr_engine() -> OcrEngine:
    from invoice_pipelines.resources.ocr import ocr_engine_from_env

    return ocr_engine_from_env(as_env_vars=True)


def _ocr_reader() -> OcrReader:
    from invoice_pipelines.resources.ocr_readers import ocr_reader_from_env

    return ocr_reader_from_env()


# the delivery channels' resources (resources/channels.py: each transport's `resource`), which
# the supplier notices and the dunning notices use too: the Dagster resource (secrets as EnvVars)
# and the plain sender it wraps (secrets read now)
def _mailer() -> SmtpMailer:
    from invoice_pipelines.resources.mail import mailer_from_env

    return mailer_from_env()


def _smtp() -> Smtp:
    from invoice_pipelines.resources.smtp import smtp_from_env

    return smtp_from_env()


def _text_message_provider() -> TextMessageProvider:
    from invoice_pipelines.resources.messaging import provider_from_env

    return provider_from_env()


def _text_messages() -> TextMessages:
    from invoice_pipelines.resources.text_messages import text_messages_from_env

    return text_messages_from_env()


def _peppol_access_point() -> PeppolAccessPoint:
    from invoice_pipelines.resources.peppol import access_point_from_env

    return access_point_from_env()


def _peppol_transport() -> PeppolTransport:
    from invoice_pipelines.resources.peppol_transport import peppol_transport_from_env

    return peppol_transport_from_env()


CHANNEL_RESOURCES: dict[str, Resource] = {
    "mailer": Resource(_mailer, _smtp),
    "text_messages": Resource(_text_message_provider, _text_messages),
    "peppol_access_point": Resource(_peppol_access_point, _peppol_transport),
}


def _resources() -> dict[str, Resource]:
    # that CHANNEL_RESOURCES are the ones the transports go out through is held by a test
    # (test_channel_resources.py), not here: asking the transports imports every one of them
    # (requests among them), which every command paid, reading ones too (issue 73)
    return {
        "database": Resource(_database, _engine),
        "upload_store": Resource(_upload_store, _uploads),
        "export_store": _file_store("exports"),
        "document_store": _file_store("documents"),
        "ocr_engine": Resource(_ocr_engine, _ocr_reader),
        **CHANNEL_RESOURCES,
    }


AREA = Area("resources", provides=_resources)
