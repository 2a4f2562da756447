"""Imports inside functions (issue 57): a module imports what it needs at its top, so a reader sees
its dependencies in one place and the import guard sees them as any other. The exceptions are the
seams (`<area>/area.py`: a command's or an area's parts loaded only when asked for), the Dagster
fence (`dagster_internals/`, which loads Dagster's private modules only when its feature is on),
migrations, and the modules below, each with why its import waits. A new import inside a function
elsewhere fails here: move it to the top, or add the module with its reason."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "invoice_pipelines"

WAITS = {
    "areas.py": "the queue's kinds pull in SQLAlchemy; `invoice-pipelines --help` loads areas.py "
    "and must not (test_cli_lazy.py)",
    "cli.py": "the dev tools' commands (seed-demo, bench, qbo-simulator), loaded when named: the "
    "seam of invoice_pipelines_devtools, which the package does not otherwise import",
    "code_server.py": "Dagster's instance and the coordinator's tag, needed only in the code "
    "server's process once a bulk run starts",
    "billing/domain/credit_note_jobs.py": "the launchpad's request (Dagster config) and MetadataValue, "
    "loaded with the queue's Dagster job only: the commands using this module import no Dagster",
    "delivery/domain/batch.py": "the launchpad's request (Dagster config), loaded with the queue's "
    "Dagster job only: the commands using this module import no Dagster",
    "documents/domain/batch.py": "the launchpad's request and MetadataValue as above; fpdf and the font "
    "only for the page listing what a combined PDF lacks",
    "core/organization_values.py": "pycountry (0.1 s to import), only when a country is checked: "
    "the organizations commands' parser reads this module's FIELDS",
    "core/rules.py": "the Unicode confusables table (several MB), read at the first look-alike "
    "check",
    "db/migrate.py": "Alembic, only when the schema is migrated",
    "documents/domain/pdfa.py": "fontTools, only when a renderer worker reads its font; fpdf2's "
    "colour profile found once",
    "einvoice/schematron.py": "Saxon, only when official rules are compiled (a worker)",
    "housekeeping/dead_runs.py": "Alembic and YAML imported ahead on purpose (`_preload`): what "
    "opening Dagster's instance imports, paid before a stop's clock starts",
    "intake/domain/warm_up.py": "the intake's parser, only in a parse worker warming up",
    "quickbooks/domain/sync/bills.py": "the letter writer (fpdf), only when a bill has no document of "
    "its own",
    "resources/ocr/pages.py": "Pillow, only when a scan's page is prepared or measured: whatever "
    "imports the OCR readers (the intake, its commands) loads no imaging library for it",
    "resources/workers/stop_signal.py": "Dagster's interrupt, only when a run was sent SIGTERM: "
    "the worker pool imports this module in every parse and renderer worker, which load no Dagster",
    "resources/ocr/rapid_page.py": "RapidOCR with OpenCV and onnxruntime, only in the page's own "
    "process: resources/ocr/rapid.py imports this module's exit code, and every run that loads "
    "the OCR resource would load the engine with it",
    "resources/ocr/readers.py": "Google Cloud Vision's client and requests, only with "
    "INVOICE_PIPELINES_OCR=vision",
    "resources/files/s3_objects.py": "boto3, only with INVOICE_PIPELINES_STORAGE=s3",
    "resources/files/stores.py": "the Dagster classes of the storage chosen, for a run's resources "
    "only (commands import no Dagster), and not the other storage's (boto3)",
    "settings.py": "Dagster's EnvVar, only for a run's resources: commands import no Dagster",
    "tenants/domain/partition_keys.py": "Dagster's instance and the partitions' name, only when a write "
    "verb of `organizations` writes partitions (DAGSTER_HOME set): the reading verbs and the "
    "validation import no Dagster",
    "lib/run_coordinator.py": "the database, only when a run names an organization: the "
    "webserver and the daemon load this module without needing it",
}


def is_seam(relative: Path) -> bool:
    return (
        relative.name == "area.py"
        or relative.parts[0] == "dagster_internals"
        or "migrations" in relative.parts
    )


def imports_inside_functions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    found += [alias.name for alias in inner.names]
                elif isinstance(inner, ast.ImportFrom):
                    found.append(inner.module or ".")
    return found


def modules_importing_inside_functions() -> dict[str, list[str]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if is_seam(relative):
            continue
        imported = imports_inside_functions(path)
        if imported:
            found[relative.as_posix()] = imported
    return found


def test_imports_inside_functions_only_at_seams_or_with_a_reason():
    found = modules_importing_inside_functions()
    unexplained = {module: names for module, names in found.items() if module not in WAITS}
    assert not unexplained, (
        "imports inside functions outside the seams; move them to the module's top, or name "
        f"the module in WAITS with why its import waits: {unexplained}"
    )
    stale = sorted(set(WAITS) - set(found))
    assert not stale, f"WAITS names modules that import nothing inside a function: {stale}"


def test_the_walk_sees_an_import_in_a_method(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import os\n\nclass A:\n    def f(self):\n        from json import loads\n"
        "        return loads\n"
    )
    assert imports_inside_functions(module) == ["json"]
