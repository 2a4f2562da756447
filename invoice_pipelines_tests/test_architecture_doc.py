"""docs/architecture.md and the areas' declarations say how the code is: the layers' table lists
every area `areas.py` assembles, each once, and every top-level module and package (lib/ among
them), nothing gone; the modules at an area's top are of the kinds the doc's table gives or named
where it says what else an area's top holds; and the modules an `area.py` names in its docstring
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


_TOP_NAME = re.compile(r"`([a-z_]+(?:/|\.py))")


def test_the_layers_table_names_every_top_level_module_and_package():
    """Each top-level package and module of the package stands in the layers' table's modules
    column (a room left off the map is one nobody reads the rules of), and it names nothing that
    is gone."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    table = text[text.index("| layer | modules | may import |") :].split("\n\n", 1)[0]
    cells = " ".join(modules for _, modules in _ROW.findall(table))
    named = {name.rstrip("/").removesuffix(".py") for name in _TOP_NAME.findall(cells)}
    present = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert not present - named, f"docs/architecture.md's layers leave out {sorted(present - named)}"
    assert not named - present, f"docs/architecture.md's layers name {sorted(named - present)}"


# the modules of Dagster's kinds an area's top holds (docs/architecture.md, "An area's Dagster
# objects, by kind"), and the two of every area
KIND_MODULES = frozenset(
    {"assets", "partitions", "checks", "jobs", "schedules", "sensors", "defs", "area"}
)


def _areas_folder_paragraph() -> str:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    start = text.index("**An area's folder**")
    return text[start : text.index("\n\n", start)]


def test_an_areas_top_holds_what_the_doc_says():
    """ "An area's folder" names each module at an area's top that is of no kind in the table (a
    resource, a launchpad request's config, ...); every other module there is of a kind, and
    everything else of the area lives in its domain/ and commands/."""
    named = set(_MODULE.findall(_areas_folder_paragraph()))
    extra = {
        f"{path.parent.name}/{path.name}"
        for area in {a.name for a in AREAS} - {"resources", "db"}
        for path in (PACKAGE / area).glob("*.py")
        if path.stem not in KIND_MODULES and path.name != "__init__.py"
    }
    assert not extra - named, (
        f"modules at an area's top that docs/architecture.md does not name: {sorted(extra - named)}"
    )
    gone = {name for name in named if "/" in name and not (PACKAGE / name).exists()}
    assert not gone, f"docs/architecture.md names modules that are gone: {sorted(gone)}"
