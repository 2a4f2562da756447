"""The simulator in a process of its own (benchmarks: the client under test keeps this process's
interpreter to itself), controlled over /_sim like the in-thread one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from invoice_pipelines_devtools.qbo_simulator.server import SimulatorControl


class SimulatorProcess(SimulatorControl):
    """`with SimulatorProcess(time_scale=60) as sim:` the same controls as QboSimulator's
    (create_company, inject, edit_as_user, records, advance, requests, stats, configure)."""

    def __init__(
        self,
        port: int = 0,
        time_scale: float = 1.0,
        data_dir: str | Path | None = None,
        limits: bool = True,
        companies: list[str] = (),
    ) -> None:
        """`companies`: REALM_ID or REALM_ID:CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN, created at
        start unless the data dir has them already."""
        command = [
            sys.executable,
            "-m",
            "invoice_pipelines_devtools.qbo_simulator",
            "--port",
            str(port),
            "--time-scale",
            str(time_scale),
        ]
        if data_dir is not None:
            command += ["--data-dir", str(data_dir)]
        if not limits:
            command.append("--no-limits")
        for spec in companies:
            command += ["--company", spec]
        self._command = command
        self._process: subprocess.Popen | None = None
        super().__init__("http://127.0.0.1:0")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> SimulatorProcess:
        self._process = subprocess.Popen(self._command, stdout=subprocess.PIPE, text=True)
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(10)
            raise RuntimeError(f"the QBO simulator did not start (exit {self._process.returncode})")
        self.base_url = json.loads(line)["base_url"]
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        if self._process.stdout:
            self._process.stdout.close()
        self._process = None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
