"""The tenants' part of the assemblies: the organizations' partitions, their sensor and the
`organizations` asset and launchpad jobs (tenants/defs.py), and the `organizations` command
(its parsers tenants/commands/cli.py; the reading verbs tenants/commands/reading_commands.py, the writing ones
tenants/commands/run.py, which alone may import Dagster: the partitions they write)."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, FILE_STORES, Area, Command

WRITING = "invoice_pipelines.tenants.commands.run"

AREA = Area(
    "tenants",
    commands=(
        Command(
            "organizations",
            "the organizations: add (one, or many from a CSV), list, show, change, suspend, "
            "resume, offboard",
            run="invoice_pipelines.tenants.commands.reading_commands:run_organizations",
            verb_runs={
                verb: f"{WRITING}:run_{verb}"
                for verb in ("add", "change", "suspend", "resume", "offboard")
            },
        ),
    ),
    parsers="invoice_pipelines.tenants.commands.cli:add_commands",
    definitions="invoice_pipelines.tenants.defs:defs",
    needs=DATABASES | FILE_STORES,
)
