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
import functools
import re
from pathlib import Path

import pytest

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
    "queue/domain/jobs.py": "a retry asked for by job id; a batch invoicing job run from its id "
    "(job_to_run: once per run)",
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


@functools.cache
def _modules() -> dict[str, ast.AST]:
    """Every module of the package, parsed once for all the checks here (none changes a tree)."""
    return {
        path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


@pytest.fixture(scope="module", autouse=True)
def _trees_let_go():
    """The trees go with the module: half a million nodes kept would slow every later garbage
    collection of the worker."""
    yield
    _modules.cache_clear()


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


# Where an organization's own row is read or written: the lookups and the lifecycle. Anywhere else
# the organizations table is only joined to name the organizations of rows listed across them
# (their slug or name); what an organization is (its settings, currency, country, formats, state)
# comes with the `Organization` value its entry point found.
ROW_READERS = {
    "db/tenancy.py": "the lookups that make the value",
    "tenants/domain/lifecycle.py": "adds, changes, suspends, resumes the organizations",
    "tenants/domain/offboarding.py": "offboards and deletes an organization",
    "db/tables.py": "declares the table",
    "db/read_only_triggers.py": "0055's triggers, which ask whether an organization is offboarded",
    "tenants/domain/listing.py": "organizations list and show: the organizations' own listing",
}
# the columns that name an organization in a listing of other rows
NAMING = frozenset({"id", "slug", "name"})
# an SQL text that reads or writes the table
ORGANIZATIONS_SQL = re.compile(r"\b(from|join|update|into)\s+organizations\b", re.IGNORECASE)
COMPARISONS = frozenset({"in_", "not_in", "is_", "is_not", "__eq__", "like", "ilike"})


def _assigned(node: ast.Assign) -> list[tuple[ast.expr, ast.expr]]:
    """(target, value) of `a = x` and of each element of `a, b = x, y`."""
    pairs = []
    for target in node.targets:
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
            pairs += zip(target.elts, node.value.elts, strict=False)
        else:
            pairs.append((target, node.value))
    return pairs


def _in_join(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether `node` is an argument of a `.join(...)` (the table, its condition)."""
    child = node
    while child in parents:
        parent = parents[child]
        is_join = (
            isinstance(parent, ast.Call)
            and isinstance(parent.func, ast.Attribute)
            and parent.func.attr in {"join", "outerjoin"}
        )
        if is_join and child is not parent.func:
            return True
        child = parent
    return False


def _table_use(name: ast.Name, parents: dict[ast.AST, ast.AST]) -> str | None:
    """What the use of the organizations table at `name` does, or None for naming rows in a
    listing (a join, its slug or name)."""
    if _in_join(name, parents):
        return None
    holder = parents.get(name)
    if name.id != "organizations":  # `o = organizations.c`: `o` stands for the columns
        holder = name
    elif not (isinstance(holder, ast.Attribute) and holder.attr == "c"):
        if isinstance(holder, ast.Call):
            return f"{_name(holder.func)}(organizations)"
        return "uses the organizations table"
    column = parents.get(holder)
    if not isinstance(column, ast.Attribute):
        if isinstance(column, ast.Tuple):
            column = parents.get(column)
        return None if isinstance(column, ast.Assign) else "uses organizations.c"
    if column.attr not in NAMING:
        return f"reads organizations.{column.attr}"
    user = parents.get(column)
    compared = isinstance(user, ast.Compare) or (
        isinstance(user, ast.Attribute)
        and user.attr in COMPARISONS
        and isinstance(parents.get(user), ast.Call)
    )
    return "picks organizations by a value" if compared else None


def _organizations_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) of each read or write of organizations' rows: an SQL text on the table, the
    table anywhere but a join, a column other than the naming ones, or a filter on one outside a
    join's condition."""
    imported = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "invoice_pipelines.db.tables"
        and any(alias.name == "organizations" for alias in node.names)
        for node in ast.walk(tree)
    )
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    # the names given to its columns (`o = organizations.c`)
    aliases = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target, value in _assigned(node)
        if isinstance(target, ast.Name) and ast.unparse(value) == "organizations.c"
    }
    names = {"organizations", *aliases} if imported else set()
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if ORGANIZATIONS_SQL.search(node.value):
                found.append((node.lineno, "SQL text on organizations"))
        elif isinstance(node, ast.Name) and node.id in names:
            if isinstance(node.ctx, ast.Load) and (what := _table_use(node, parents)):
                found.append((node.lineno, what))
    return sorted(found)


def test_only_the_lookups_and_the_lifecycle_read_an_organizations_row():
    modules = _modules()
    reads = [
        f"invoice_pipelines/{module}:{line}: {what}"
        for module, tree in modules.items()
        if module not in ROW_READERS and not module.startswith("db/migrations/")
        for line, what in _organizations_reads(tree)
    ]
    assert not reads, (
        "the organization's row is read again below its entry point; take the `Organization` "
        "value (db/tenancy.py makes it, with every column the work needs) instead:\n"
        + "\n".join(reads)
    )


def test_the_count_sees_a_read_and_lets_a_join_for_the_slug_be():
    tree = ast.parse(
        "from invoice_pipelines.db.tables import organizations, uploads\n"
        "select(organizations.c.currency).where(organizations.c.id == organization_id)\n"
        "select(uploads.c.id, organizations.c.slug).join(\n"
        "    organizations, organizations.c.id == uploads.c.organization_id)\n"
        "conn.execute(update(organizations).values(settings={}))\n"
        "text('SELECT name FROM organizations WHERE id = :id')\n"
        "o = organizations.c\n"
        "select(o.settings).where(o.id == organization.id)\n"
        "p = organizations\n"
    )
    assert _organizations_reads(tree) == [
        (2, "picks organizations by a value"),
        (2, "reads organizations.currency"),
        (5, "update(organizations)"),
        (6, "SQL text on organizations"),
        (8, "picks organizations by a value"),
        (8, "reads organizations.settings"),
        (9, "uses the organizations table"),
    ]
