"""docs/architecture.md and the areas' declarations say how the code is: the layers' table lists
every area `areas.py` assembles, each once, and the modules an `area.py` names in its docstring
exist (a reader follows them to the code)."""

from __future__ import annotations

import re
from pathlib import Path

import invoice_pipelines
from invoice_pipelines.areas import AREAS

PACKAGE = Path(invoice_pipelines.__file__).resolve().parent
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
_ROW = re.compile(r"^\| ([^|]+?) \| ([^|]+) \|", re.MULTILINE)
_FOLDER = re.compile(r"`([a-z_]+)/")
_MODULE = re.compile(r"(?<![\w./])((?:[a-z_]+/)*[a-z_]+\.py)\b")


def _layers() -> dict[str, set[str]]:
    """The layers' table: each layer's name -> the top folders its modules cell names."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    table = text[text.index("| layer | modules | may import |") :].split("\n\n", 1)[0]
    return {name: set(_FOLDER.findall(cells)) for name, cells in _ROW.findall(table)}


def test_the_layers_table_lists_every_area_of_areas_py_once():
    """The "areas" row names exactly the areas `areas.py` assembles that no other row holds as a
    shared layer (resources, db, tenants and queue have an `area.py` too)."""
    layers = _layers()
    listed = layers.pop("areas")
    shared = set().union(*layers.values())
    assembled = {area.name for area in AREAS}
    assert listed == assembled - shared, (
        f"docs/architecture.md lists {sorted(listed)} as areas; areas.py assembles "
        f"{sorted(assembled - shared)} beside the shared layers"
    )
    assert not listed & shared


def _named_modules(docstring: str, area: str) -> list[tuple[str, ...]]:
    """The modules a docstring names, each as the paths it may mean: `intake/commands/cli.py` in
    the package (or the project: `invoice_pipelines_tests/...`), and a bare `run.py` in the folder
    a path named before it (`a/b/x.py, y.py`), in the area's folder or the package's top."""
    folder, named = area, []
    for name in _MODULE.findall(docstring):
        if "/" in name:
            folder = name.rsplit("/", 1)[0]
            named.append((name, f"../{name}"))
        else:
            named.append((f"{folder}/{name}", f"{area}/{name}", name))
    return named


def test_the_modules_an_area_py_names_exist():
    missing = []
    for path in sorted(PACKAGE.glob("*/area.py")):
        source = path.read_text(encoding="utf-8")
        docstring = source.split('"""', 2)[1] if source.startswith('"""') else ""
        for places in _named_modules(docstring, path.parent.name):
            if not any((PACKAGE / place).exists() for place in places):
                missing.append(f"{path.parent.name}/area.py names {places[0]}")
    assert not missing, "\n".join(missing)


def test_the_reading_follows_bare_names_into_the_folder_named_before():
    docstring = "parsers intake/commands/cli.py, what they do parse.py and run.py"
    assert [
        places[0] for places in _named_modules("checks (checks.py), " + docstring, "intake")
    ] == [
        "intake/checks.py",
        "intake/commands/cli.py",
        "intake/commands/parse.py",
        "intake/commands/run.py",
    ]
    # a bare name in none of its places (the intake's commands.py, gone) is found missing
    [gone] = _named_modules("intake/commands/run.py, commands.py", "intake")[1:]
    assert gone == ("intake/commands/commands.py", "intake/commands.py", "commands.py")
    assert not any((PACKAGE / place).exists() for place in gone)
