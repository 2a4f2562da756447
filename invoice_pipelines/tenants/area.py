"""The tenants' part of the assemblies: the organizations' partitions and their sensor
(tenants/defs.py, its sensor in sensors.py); no commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import Area

if TYPE_CHECKING:
    from dagster import Definitions


def _definitions() -> Definitions:
    from invoice_pipelines.tenants.defs import defs

    return defs


AREA = Area("tenants", definitions=_definitions, needs=frozenset({"database"}))
