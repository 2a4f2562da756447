"""The tenants' part of the assemblies: the organizations' partitions and their sensor
(tenants/defs.py); no commands."""

from __future__ import annotations

from invoice_pipelines.area import Area


def _definitions():
    from invoice_pipelines.tenants.defs import defs

    return defs


AREA = Area("tenants", definitions=_definitions, needs=frozenset({"database"}))
