"""The trust boundary between the code location and the people who launch runs.

Dagster lets a run's config replace any field of a resource the code location configured
(`resources: {mailer: {config: {host: ...}}}` in the launchpad): the values given in code are only
defaults. Whoever may launch a run could then point the mailer, the QuickBooks token endpoint or
the database at a host of their own, and hand it the password, client secret or refresh token the
code location adds (a field may even name the code location's environment variable, `{env: ...}`).

`fixed_at_code_location` binds a resource so its config schema is empty: its values (endpoints,
secrets, limits alike) come only from the code location's environment, and a run whose config sets
any of them is refused before it starts, with Dagster's message naming the field. What a run may
still choose is its ops' config (which organization, which invoices, resend or not).
Dagster has no public switch for this: how the binding is made lives behind the fence
(dagster_internals/resource_binding.py, docs/dagster-upgrade.md).
"""

from __future__ import annotations

from typing import TypeVar

from invoice_pipelines.dagster_internals.resource_binding import with_closed_config

R = TypeVar("R")  # a ConfigurableResource or ConfigurableIOManager

NOTE = " Fixed by the code location (environment variables); run config cannot change it."


def fixed_at_code_location(resource: R) -> R:
    """The same resource (an instance of the same class, with the same values), bound so that
    run config cannot set any of its fields."""
    return with_closed_config(resource, NOTE)
