"""Run in a fresh interpreter (`python -P import_probe.py [--skip MODULE ...]`): imports every module
of the `invoice_pipelines` it finds on the path except invoice_pipelines_devtools and the modules
skipped, then loads the code location's definitions, with `invoice_pipelines_devtools` unimportable
throughout; prints one JSON object: where the package was found, the modules imported, the import
errors, the invoice_pipelines modules loaded in the end, the devtools imports that were refused.

invoice_pipelines_tests/devtools/test_boundary.py runs it on the checkout, test_deploy.py on the
files the container image installs."""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

DEVTOOLS = "invoice_pipelines_devtools"
# Python code that leaves only PYTHONPATH to find invoice_pipelines and its dev tooling: an editable
# install adds the checkout to the path (a .pth entry) or an import hook (setuptools' other mode),
# either of which would find what a tree on PYTHONPATH lacks (invoice_pipelines_devtools among it)
# in the checkout instead; the image has neither
PATH_ONLY = (
    "import os, sys; sys.meta_path[:] = "
    "[f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')]; "
    "sys.path[:] = [p for p in sys.path if p in os.environ.get('PYTHONPATH', '').split(os.pathsep) "
    "or not os.path.isdir(os.path.join(p or os.curdir, 'invoice_pipelines_devtools'))]"
)


class RefuseDevtools(importlib.abc.MetaPathFinder):
    """As if devtools were not installed; remembers who asked."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def find_spec(self, name, path=None, target=None):
        if name == DEVTOOLS or name.startswith(DEVTOOLS + "."):
            self.refused.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def product_modules(package: Path, skip: set[str]) -> list[str]:
    """Every importable module under the package folder, found in the file system (importing a
    package to list it would import devtools too): folders without __init__.py (the migration
    scripts) and __main__ modules are not modules to import."""
    names = []
    for path in sorted(package.rglob("*.py")):
        folders = [path.parent, *path.parent.parents]
        if not all((f / "__init__.py").is_file() for f in folders if f.is_relative_to(package)):
            continue
        parts = (package.name, *path.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if parts[-1] == "__main__" or name in skip:
            continue
        if name == DEVTOOLS or name.startswith(DEVTOOLS + "."):
            continue
        names.append(name)
    return names


def probe(cwd: Path, *, pythonpath: Path | None = None, skip: Iterable[str] = ()) -> dict:
    """This script's JSON, from a fresh interpreter started in `cwd` (`-P`: not on the path);
    given `pythonpath`, the invoice_pipelines found there and nowhere else."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    argv = [sys.executable, "-P", __file__, *(f"--skip={name}" for name in skip)]
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
        argv.append("--path-only")
    completed = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip", action="append", default=[], help="a module not to import")
    parser.add_argument("--path-only", action="store_true", help="see PATH_ONLY")
    args = parser.parse_args()
    if args.path_only:
        exec(PATH_ONLY)

    refuse = RefuseDevtools()
    sys.meta_path.insert(0, refuse)
    import invoice_pipelines

    package = Path(invoice_pipelines.__file__).resolve().parent
    modules = product_modules(package, set(args.skip))
    failed = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # reported, not raised: the test shows every one
            failed[name] = f"{type(exc).__name__}: {exc}"
    try:
        from dagster import Definitions

        from invoice_pipelines.definitions import defs

        Definitions.validate_loadable(defs)
        definitions = "loadable"
    except Exception as exc:
        definitions = f"{type(exc).__name__}: {exc}"
    loaded = sorted(m for m in sys.modules if m.split(".")[0] == "invoice_pipelines")
    print(
        json.dumps(
            {
                "package": str(package),
                "modules": modules,
                "failed": failed,
                "definitions": definitions,
                "loaded": loaded,
                "refused": refuse.refused,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
