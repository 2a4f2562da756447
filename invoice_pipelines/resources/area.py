"""The resources no area makes, as the assemblies take them (`Area.provides`): the database, the
stores, OCR and the delivery channels' senders, each by the name runs and commands both use. A run
gets the Dagster resource (definitions.py), a command the plain object it wraps
(`resources.for_commands.EnvResources`): the same files, pages and messages, by the same names.
Each is imported when an assembly asks for it, so listing them loads nothing."""

from __future__ import annotations

from invoice_pipelines.area import Area, Resource


def _database():
    from invoice_pipelines.resources.database import Database
    from invoice_pipelines.settings import env_var_or_default

    return Database(
        url=env_var_or_default("INVOICE_PIPELINES_DB_URL"),
        system_url=env_var_or_default("INVOICE_PIPELINES_SYSTEM_DB_URL"),
    )


def _upload_store():
    from invoice_pipelines.resources.stores import upload_store_from_env

    return upload_store_from_env(as_env_vars=True)


def _uploads():
    from invoice_pipelines.resources.stores import uploads_from_env

    return uploads_from_env()


def _file_store(area: str) -> Resource:
    def for_runs():
        from invoice_pipelines.resources.stores import file_store_from_env

        return file_store_from_env(area, as_env_vars=True)

    def for_commands():
        from invoice_pipelines.resources.stores import files_from_env

        return files_from_env(area)

    return Resource(for_runs, for_commands)


def _ocr_engine():
    from invoice_pipelines.resources.ocr import ocr_engine_from_env

    return ocr_engine_from_env(as_env_vars=True)


def _ocr_reader():
    from invoice_pipelines.resources.ocr_readers import ocr_reader_from_env

    return ocr_reader_from_env()


def _resources() -> dict[str, Resource]:
    # what the delivery channels go out through: `mailer`, `text_messages` (the supplier notices
    # and the dunning notices use them too)
    from invoice_pipelines.resources.channels import client_factories, resource_factories

    clients = client_factories()
    return {
        # a command takes `db.engine.command_line_engine()`: the same engine, without Dagster
        "database": Resource(_database),
        "upload_store": Resource(_upload_store, _uploads),
        "export_store": _file_store("exports"),
        "document_store": _file_store("documents"),
        "ocr_engine": Resource(_ocr_engine, _ocr_reader),
        **{
            name: Resource(from_env, clients[name])
            for name, from_env in resource_factories().items()
        },
    }


AREA = Area("resources", provides=_resources)
