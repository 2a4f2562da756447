"""The fence around Dagster's internals: the only modules of the package that use Dagster's
private API (`dagster._*`: an import, a name taken from it, a module named to import or preload),
one module per purpose. docs/dagster-upgrade.md lists, for each, what it relies on, the test that
fails when Dagster changes it, and how to turn it off.

- `api_server`: runs of `make run`'s code server start from a warm process (code_server.py);
- `instance`: the instance's configured classes as Dagster loads them (the run coordinator, the
  modules opening an instance imports);
- `runs`: what Dagster records about a run without documenting it (the code server that launched
  it, its process, its pools);
- `resource_binding`: a resource bound with its config closed to run config (resources/fixed.py).

They import Dagster and the standard library, nothing of ours (test_import_graph.py): what they
serve hands them its own functions.
"""
