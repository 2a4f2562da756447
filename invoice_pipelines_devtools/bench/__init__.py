"""Benchmarks: `invoice-pipelines bench SCENARIO`; each prints one JSON object on its last stdout line.

Each scenario module exposes `add_arguments(parser)` and `run(args) -> dict`.
"""

from __future__ import annotations

import argparse
import importlib
import json

# scenario name -> module under invoice_pipelines_devtools.bench
SCENARIOS: dict[str, str] = {
    "intake": "invoice_pipelines_devtools.bench.intake",
    "ocr": "invoice_pipelines_devtools.bench.ocr",
    "field-accuracy": "invoice_pipelines_devtools.bench.field_accuracy",
    "batch-invoicing": "invoice_pipelines_devtools.bench.batch_invoicing",
    "export": "invoice_pipelines_devtools.bench.export",
    "documents": "invoice_pipelines_devtools.bench.documents",
    "qbo-push": "invoice_pipelines_devtools.bench.qbo_push",
    "overdue": "invoice_pipelines_devtools.bench.overdue",
    "tenants": "invoice_pipelines_devtools.bench.tenants",
    "housekeeping": "invoice_pipelines_devtools.bench.housekeeping",
    "hostile": "invoice_pipelines_devtools.bench.hostile",
    "cli": "invoice_pipelines_devtools.bench.cli",
    "latency": "invoice_pipelines_devtools.bench.latency",
    "backfill": "invoice_pipelines_devtools.bench.backfill",
    "month-end": "invoice_pipelines_devtools.bench.month_end",
    "audit-verify": "invoice_pipelines_devtools.bench.audit_verify",
    "mailbox": "invoice_pipelines_devtools.bench.mailbox",
}


def add_scenarios(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scenario", required=True)
    for name, module_name in SCENARIOS.items():
        p = sub.add_parser(name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.add_arguments(p)


def run_scenario(args: argparse.Namespace) -> int:
    module = importlib.import_module(SCENARIOS[args.scenario])
    result = module.run(args)
    print(json.dumps(result, default=str))
    return 0
