"""The parsers of the development tooling's commands: `seed-demo`, `qbo-simulator` and `bench`.
The top-level `cli.py` adds them where devtools is installed and names what each runs in its
`DEVTOOLS` table (`seed-demo` and `bench` in invoice_pipelines_devtools/commands.py,
`qbo-simulator` in qbo_simulator/cli.py); the container image has no devtools, and there each of
these names says so in one sentence (`cli.DEVTOOLS_COMMANDS`)."""

from __future__ import annotations


def add_commands(sub) -> None:
    sub.add_parser("seed-demo")

    from invoice_pipelines_devtools.qbo_simulator.cli import add_commands as add_qbo_simulator

    add_qbo_simulator(sub)

    p = sub.add_parser("bench")
    from invoice_pipelines_devtools.bench import add_scenarios

    add_scenarios(p)
