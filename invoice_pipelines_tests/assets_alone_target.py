"""The code location of test_assets_alone.py: the project's definitions, built when this module is
first imported, after the test has pointed the environment at its seeded demo database and
folders (the resources take their settings from the environment the definitions are built in)."""

from invoice_pipelines.definitions import build_definitions

defs = build_definitions()
