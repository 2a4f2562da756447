"""The two locks pin what pyproject.toml asks for, so every machine installs the same set.

requirements.lock holds [project.dependencies] and what they need, nothing else: the container
image installs it (deploy/Containerfile). requirements-dev.lock adds the dev extra at the same
versions of every runtime package: `make install` syncs to it, so the tests run the versions the
image ships. `make lock` writes both.
"""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
RUNTIME, DEV = "requirements.lock", "requirements-dev.lock"
_PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def _pins(text: str) -> dict[str, str]:
    return {canonicalize_name(m.group(1)): m.group(2) for m in _PIN.finditer(text)}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _runtime_wanted() -> list[Requirement]:
    return [Requirement(line) for line in _project()["dependencies"]]


def _dev_wanted() -> list[Requirement]:
    return [Requirement(line) for line in _project()["optional-dependencies"]["dev"]]


def _dev_only_names() -> set[str]:
    runtime = {canonicalize_name(r.name) for r in _runtime_wanted()}
    return {canonicalize_name(r.name) for r in _dev_wanted()} - runtime


# The checks, each returning what is wrong (empty: nothing). They take the lock texts, so the
# tests below run them on the real locks and, to show they catch it, on doctored ones.


def unpinned(lock_name: str, lock_text: str, wanted: list[Requirement]) -> list[str]:
    pins = _pins(lock_text)
    problems = []
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement.name} is not in {lock_name}: run `make lock`")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(
                f"{lock_name} pins {requirement.name}=={pins[name]}, pyproject.toml asks for "
                f"{requirement.specifier}: run `make lock`"
            )
    return problems


def disagreements(runtime_text: str, dev_text: str) -> list[str]:
    runtime, dev = _pins(runtime_text), _pins(dev_text)
    return [
        f"{RUNTIME} pins {name}=={version}, {DEV} "
        + (f"pins {dev[name]}" if name in dev else "does not pin it")
        + ": run `make lock`"
        for name, version in sorted(runtime.items())
        if dev.get(name) != version
    ]


def dev_packages_in_runtime(runtime_text: str) -> list[str]:
    return [
        f"{RUNTIME} pins the dev-only package {name}: the image would carry it"
        for name in sorted(_pins(runtime_text).keys() & _dev_only_names())
    ]


def pins_without_hashes(text: str) -> list[str]:
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    pinned = [b for b in blocks if "==" in b.split("\n", 1)[0]]
    return [b.split()[0] for b in pinned if "--hash=sha256:" not in b]


def _needed_by_runtime() -> set[str]:
    """Every distribution [project.dependencies] needs, transitively, with their extras, read from
    the metadata of what is installed here (make install: the versions of requirements-dev.lock)."""
    needed: set[str] = set()
    seen: set[tuple[str, str]] = set()
    todo = [(r, "") for r in _runtime_wanted()]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        needed.add(name)
        for wanted_extra in ["", *sorted(requirement.extras)]:
            if (name, wanted_extra) in seen:
                continue
            seen.add((name, wanted_extra))
            try:
                requires = metadata.requires(name) or []
            except metadata.PackageNotFoundError:
                pytest.fail(f"{name} is not installed: run `make install`")
            todo.extend((Requirement(line), wanted_extra) for line in requires)
    return needed


@pytest.fixture(scope="module")
def locks() -> tuple[str, str]:
    return (ROOT / RUNTIME).read_text(), (ROOT / DEV).read_text()


def test_runtime_lock_pins_every_runtime_dependency_within_its_range(locks):
    assert unpinned(RUNTIME, locks[0], _runtime_wanted()) == []


def test_dev_lock_pins_every_dependency_and_dev_tool_within_its_range(locks):
    assert unpinned(DEV, locks[1], [*_runtime_wanted(), *_dev_wanted()]) == []


def test_dev_lock_pins_every_runtime_package_at_the_runtime_locks_version(locks):
    assert disagreements(*locks) == []
    # and it is the runtime lock plus the dev tools, not a copy of it
    assert _pins(locks[1]).keys() > _pins(locks[0]).keys() >= {"dagster", "sqlalchemy"}


def test_runtime_lock_holds_no_dev_tool(locks):
    assert dev_packages_in_runtime(locks[0]) == []


def test_runtime_lock_holds_only_what_the_runtime_dependencies_need(locks):
    # pytest's own needs (pluggy, iniconfig) or moto's (werkzeug, cfn-lint) are dev-only too,
    # though pyproject.toml does not name them
    extra = sorted(_pins(locks[0]).keys() - _needed_by_runtime())
    assert extra == [], f"{RUNTIME} pins what no runtime dependency needs: run `make lock`"


def test_every_pin_has_hashes(locks):
    for text in locks:
        assert len(_pins(text)) > 100
        assert pins_without_hashes(text) == []


def test_the_checks_catch_a_doctored_lock(locks):
    runtime, dev = locks
    # a dev tool in the runtime lock (the old single lock's shape)
    (pytest_block,) = [b for b in re.split(r"\n(?=[A-Za-z0-9])", dev) if b.startswith("pytest==")]
    assert (
        f"{RUNTIME} pins the dev-only package pytest: the image would carry it"
        in dev_packages_in_runtime(runtime + "\n" + pytest_block)
    )
    # the dev lock at another version of a runtime package than the image
    version = _pins(runtime)["sqlalchemy"]
    problems = disagreements(
        runtime, dev.replace(f"\nsqlalchemy=={version} ", "\nsqlalchemy==2.0.0 ")
    )
    assert problems == [f"{RUNTIME} pins sqlalchemy=={version}, {DEV} pins 2.0.0: run `make lock`"]
    # pyproject.toml asking for something a lock does not pin, or not at that version
    wanted = [Requirement("not-in-any-lock>=1"), Requirement("sqlalchemy<2")]
    assert len(unpinned(RUNTIME, runtime, wanted)) == 2
    # a pin without hashes
    assert pins_without_hashes(runtime + "\nsix==1.17.0\n") == ["six==1.17.0"]


def test_the_image_installs_the_runtime_lock_and_make_install_the_dev_lock():
    containerfile = [
        line
        for line in (ROOT / "deploy" / "Containerfile").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    assert not any("requirements-dev" in line for line in containerfile)
    assert "!requirements-dev.lock" not in (ROOT / ".dockerignore").read_text().splitlines()
    makefile = (ROOT / "Makefile").read_text()
    stamp = makefile[makefile.index("$(STAMP): ") : makefile.index("touch $(STAMP)")]
    assert (
        '"$$uv" pip sync -q -p $(BIN)/python --require-hashes --compile-bytecode '
        "requirements-dev.lock" in stamp
    )
    assert "pip install -q --require-hashes -r requirements-dev.lock" in stamp
    assert " requirements.lock" not in stamp
