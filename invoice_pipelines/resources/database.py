"""The `database` resource: the application database engine for assets, jobs and sensors."""

from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.db.engine import shared_engine


class Database(ConfigurableResource):
    """Application database. Leave `url` empty to use INVOICE_PIPELINES_DB_URL (read at run time)."""

    url: str = Field(default="", description="SQLAlchemy URL; empty means INVOICE_PIPELINES_DB_URL")

    def get_engine(self) -> Engine:
        """The application engine (PostgreSQL: bound by row-level security)."""
        return shared_engine(self.url or None)

    def get_owner_engine(self) -> Engine:
        """The owner engine, for migrations only."""
        return shared_engine(self.url or None, owner=True)
