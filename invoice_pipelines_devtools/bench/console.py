"""The `invoice-pipelines` a user runs, as a process of its own: how the benchmarks time and attack
the command line without importing the console script's module (which imports the tooling)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# the same entry point where no console script stands beside the interpreter (a bare checkout)
CLI = "import sys; from invoice_pipelines.cli import main; sys.exit(main(sys.argv[1:]))"


def console_script() -> list[str]:
    """The console script beside this interpreter, else the same entry point through `python -c`."""
    script = Path(sys.executable).parent / "invoice-pipelines"
    return [str(script)] if script.is_file() else [sys.executable, "-c", CLI]


def run_console(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """`invoice-pipelines ARGV` in the environment (this one, with `env` over it): its exit code and
    what it wrote to stderr; what it prints is dropped."""
    done = subprocess.run(
        [*console_script(), *argv],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        check=False,
    )
    return done.returncode, done.stderr
