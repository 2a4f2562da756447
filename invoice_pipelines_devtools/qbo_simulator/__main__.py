"""`python -m invoice_pipelines_devtools.qbo_simulator`: the qbo-simulator command without loading
the rest of the project (starts in well under a second; SimulatorProcess uses it)."""

from __future__ import annotations

import argparse
import sys

from invoice_pipelines_devtools.qbo_simulator.cli import add_arguments, run_simulator

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m invoice_pipelines_devtools.qbo_simulator")
    add_arguments(parser)
    arguments = parser.parse_args()
    sys.exit(run_simulator(arguments))
