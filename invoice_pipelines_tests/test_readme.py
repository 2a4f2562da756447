"""The README documents every setting the code reads, and the commands it promises exist."""

from pathlib import Path

from invoice_pipelines.cli import build_parser
from invoice_pipelines.settings import SETTINGS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table():
    for setting in SETTINGS:
        for name in setting.name.split(" / "):
            assert f"`{name}`" in README, f"{name} missing from README configuration table"


def test_documented_commands_exist():
    sub = build_parser()._subparsers._group_actions[0].choices
    for command in (
        "migrate",
        "seed-demo",
        "parse",
        "batch-invoice",
        "batch-status",
        "batch-list",
        "batch-cancel",
        "batch-retry",
        "batch-documents",
        "batch-send",
        "batch-run",
        "bench",
    ):
        assert command in sub
        assert f"invoice-pipelines {command}" in README
