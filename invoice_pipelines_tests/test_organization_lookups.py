"""The organization is looked up where work enters and handed down as a value (docs/architecture.md,
"The organization"): a function below an entry point takes an `Organization`, never a slug or id
to look up again.

An entry point is either a Dagster definition's own function (an asset, op, sensor, schedule:
its partition key, run config or tick) or one of the few modules named below, where work enters
without Dagster's decorator on it. Read from the source, so a new lookup deep in an area fails
here with its place named.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "invoice_pipelines"

# what turns a slug or id into the organization
LOOKUPS = frozenset(
    {
        "find_organization",
        "find_organizations",
        "organization_or_refuse",
        "known_organization",
        "lookup_organization",
    }
)

# the entry points that are no Dagster definition's function, and why each one is
ENTRY_POINT_MODULES = {
    "cli.py": "a command's --org, found once for every command (args.organization, or "
    "args.organizations for a repeatable one)",
    "lib/refusals.py": "a run's partition key or config: the value, or a refusal",
    "lib/run_coordinator.py": "a launched run's organization, for its tags",
    "queue/domain/requests.py": "a queued job's organization id (lookup_organization)",
    "queue/domain/items.py": "a job over invoices, run from its id: once per job",
    "queue/domain/jobs.py": "a retry asked for by job id",
    "queue/dagster_jobs.py": "the batch op's config naming the organization of a new request",
    "billing/domain/credit_note_jobs.py": "a credit notes job, run from its id",
    "quickbooks/assets.py": "the sync assets' shared body (_sync), per partition key",
}

# how a Dagster definition asks for its organization without handling the slug: its config
# (`OrganizationConfig.named_organization`) or its run's partition key (`partition_organization`,
# `PartitionRefusals.organizations`), all three in lib/refusals.py
FROM_DAGSTER = frozenset({"named_organization", "partition_organization"})
# the modules of Dagster definitions, the only ones that have a config or a partition key to give
DAGSTER_MODULES = ("assets.py", "jobs.py", "checks.py", "sensors.py", "schedules.py")

# Dagster's decorators that make a function an entry point
DEFINITIONS = frozenset(
    {
        "asset",
        "multi_asset",
        "graph_asset",
        "asset_check",
        "multi_asset_check",
        "op",
        "sensor",
        "asset_sensor",
        "multi_asset_sensor",
        "run_status_sensor",
        "run_failure_sensor",
        "schedule",
    }
)


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


def _lookups_outside_definitions(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, lookup, enclosing function) of each lookup not in a Dagster definition's own body
    (a function nested in one is below it, and counts)."""
    found = []

    def visit(node: ast.AST, function: ast.FunctionDef | ast.AsyncFunctionDef | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child
            elif isinstance(child, ast.Call) and _name(child.func) in LOOKUPS:
                is_definition = function is not None and any(
                    _name(d) in DEFINITIONS for d in function.decorator_list
                )
                if not is_definition:
                    name = function.name if function else "<module>"
                    found.append((child.lineno, _name(child.func), name))
            visit(child, inner)

    visit(tree, None)
    return found


def _modules() -> dict[str, ast.AST]:
    return {
        path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_the_organization_is_looked_up_only_where_work_enters():
    below = [
        f"invoice_pipelines/{module}:{line}: {lookup}() in {function}"
        for module, tree in _modules().items()
        if module not in ENTRY_POINT_MODULES
        for line, lookup, function in _lookups_outside_definitions(tree)
    ]
    assert not below, (
        "a function below an entry point looks the organization up; take an `Organization` "
        "from the entry point instead:\n" + "\n".join(below)
    )


def test_the_named_entry_points_are_few_and_each_still_one():
    modules = _modules()
    assert len(ENTRY_POINT_MODULES) <= 12
    # a module that no longer looks anything up is no entry point: out of the list with it
    stale = [m for m in ENTRY_POINT_MODULES if not _lookups_outside_definitions(modules[m])]
    assert not stale


# the parameter names a slug-or-id goes by
SLUG_OR_ID_NAMES = ("organization", "org", "key")
# the lookup itself takes one, and the error it raises names it
TAKE_A_SLUG_OR_ID = {("db/tenancy.py", "find_organization"), ("db/tenancy.py", "__init__")}


def _slug_or_id_parameters(tree: ast.AST, module: str) -> list[str]:
    """Each function's parameter named like the organization (or `key`) and typed `str | int`."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if (module, node.name) in TAKE_A_SLUG_OR_ID:
            continue
        arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        for argument in arguments:
            annotation = ast.unparse(argument.annotation) if argument.annotation else ""
            parts = {part.strip() for part in annotation.split("|")}
            if argument.arg in SLUG_OR_ID_NAMES and {"str", "int"} <= parts:
                found.append(f"invoice_pipelines/{module}:{node.lineno}: {node.name}")
    return found


def test_no_function_takes_a_slug_or_id_for_the_organization():
    """`organization: str | int` (or `org`, or `key`) is how a lookup below an entry point
    starts."""
    found = [
        line for module, tree in _modules().items() for line in _slug_or_id_parameters(tree, module)
    ]
    assert not found, "\n".join(found)


def test_the_check_sees_a_key_that_is_a_slug_or_id():
    tree = ast.parse(
        "def suspend(engine, key: str | int, *, reason: str): ...\n"
        "def show(engine, org: int | str): ...\n"
        "def fine(engine, key: str, organization: Organization): ...\n"
    )
    assert _slug_or_id_parameters(tree, "tenants/domain/lifecycle.py") == [
        "invoice_pipelines/tenants/domain/lifecycle.py:1: suspend",
        "invoice_pipelines/tenants/domain/lifecycle.py:2: show",
    ]


def test_the_check_sees_a_lookup_below_an_entry_point():
    tree = ast.parse(
        "from dagster import asset\n"
        "@asset\n"
        "def entry(context):\n"
        "    return known_organization(engine, context.partition_key)\n"
        "def below(engine, slug):\n"
        "    return find_organization(engine, slug)\n"
    )
    assert _lookups_outside_definitions(tree) == [(6, "find_organization", "below")]


def _calls(tree: ast.AST, names: frozenset[str]) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _name(node.func) in names
    ]


def test_the_organization_is_looked_up_in_at_most_twelve_modules():
    """Counted as issue 74 counts it: every module that turns a slug or id into the
    organization, Dagster definitions' own bodies included. The areas' assets and jobs ask
    lib/refusals.py for it (FROM_DAGSTER) instead."""
    looking = sorted(m for m, tree in _modules().items() if _calls(tree, LOOKUPS))
    assert len(looking) <= 12, looking
    assert "lib/refusals.py" in looking


def test_a_config_or_partition_key_becomes_the_organization_only_in_dagster_modules():
    below = [
        f"invoice_pipelines/{module}:{line}"
        for module, tree in _modules().items()
        if not module.endswith(DAGSTER_MODULES) and module != "lib/refusals.py"
        for line in _calls(tree, FROM_DAGSTER)
    ]
    assert not below, "\n".join(below)
