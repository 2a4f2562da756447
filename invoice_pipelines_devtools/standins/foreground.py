"""Running a stand-in from the command line (the demo's
`python -m invoice_pipelines_devtools.standins.*`)."""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable
from pathlib import Path


def port_and_folder(
    argv: list[str] | None, description: str | None, *, port: int, folder: tuple[str, str]
) -> tuple[int, Path]:
    """`--port` and the folder option (`folder`: its flag and default), the folder created."""
    flag, default = folder
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument(flag, dest="folder", metavar=flag.lstrip("-").upper(), default=default)
    args = parser.parse_args(argv)
    path = Path(args.folder)
    path.mkdir(parents=True, exist_ok=True)
    return args.port, path


def stop_on_sigterm() -> None:
    """SIGTERM stops this process like Ctrl-C, whatever it inherited. A process started from a
    Dagster process can inherit SIGTERM ignored: Dagster gives SIGTERM the SIGINT handler, and a
    shell's `&` leaves SIGINT ignored, so a stand-in started by a test run launched that way
    ignored `terminate()` and outlived it (a CI run's `server.wait(10)` timed out)."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def serve_until_interrupted(
    name: str, port: int, start: Callable[[], tuple[str, Callable[[], None]]], where: str
) -> int:
    """Start a stand-in (`start` returns its address and how to stop it) and keep it running
    until Ctrl-C or SIGTERM; the exit status: 1 when the port cannot be had, else 0."""
    stop_on_sigterm()
    try:
        address, stop = start()
    except OSError as exc:
        print(f"{name} stand-in: cannot listen on 127.0.0.1:{port}: {exc}", flush=True)
        return 1
    print(f"{name} stand-in: listening on {address}, {where}", flush=True)
    try:
        # short sleeps: a SIGTERM the kernel hands to the server's thread is handled only when
        # this (the main) thread wakes up
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    return 0
