"""Requests a job refuses before any work: one plain sentence in the UI, no stack trace, no retry."""

from dagster import Failure
from sqlalchemy import Engine

from invoice_pipelines.db.tenancy import UnknownOrganization, resolve_organization


def refused(message: str) -> Failure:
    """A request refused before any work: one plain sentence, and no retry (it would fail alike)."""
    return Failure(message, allow_retries=False)


def organization_or_refuse(engine: Engine, organization: str) -> dict:
    """The organization a run's config names (slug or id), or a refusal naming it."""
    try:
        return resolve_organization(engine, organization.strip())
    except UnknownOrganization:
        raise refused(f"There is no organization {organization!r}.") from None
