"""Run ``tests.apps.crashable`` as a real server process, stop it where a test asks, kill it."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.waiting import wait_until

__all__ = ["CrashableServer"]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CrashableServer:
    """One server process over ``folder/runs.db``; ``folder`` also holds its control files."""

    folder: Path
    crash_at: str = ""
    pace: float = 0.0
    lease_ttl: float = 15.0
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def database(self) -> Path:
        return self.folder / "runs.db"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/workflows/ws"

    def start(self) -> CrashableServer:
        self.port = free_port()
        for marker in self.folder.glob("reached*"):
            marker.unlink()
        env = {
            **os.environ,
            "CRASH_DB": str(self.database),
            "CRASH_PORT": str(self.port),
            "CRASH_DIR": str(self.folder),
            "CRASH_AT": self.crash_at,
            "CRASH_PACE": str(self.pace),
            "CRASH_LEASE_TTL": str(self.lease_ttl),
        }
        output = open(self.folder / f"server-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.apps.crashable"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        output.close()
        wait_until(self._ready, 30, what=f"the server on port {self.port} to start")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited with {self.process.returncode}: {self.output()}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return (self.folder / f"server-{self.port}.log").read_text(errors="replace")

    def reached(self, step: str | None = None) -> bool:
        """Whether it stopped at its ``crash_at`` (or inside ``step``)."""
        if step is None and self.crash_at.startswith("step:"):
            step = self.crash_at[len("step:"):]
        return (self.folder / (f"reached.{step}" if step else "reached")).exists()

    def kill(self) -> None:
        """SIGKILL, and reap it (a zombie would still look alive to the next server)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> int:
        """SIGTERM; returns the exit code once it has exited (it must, by itself)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def executions(self, message: str) -> collections.Counter[str]:
        """How many times each step ran in the run started with ``message``."""
        path = self.folder / "executions"
        lines = path.read_text().splitlines() if path.exists() else []
        return collections.Counter(name for run, _, name in (line.partition("\t") for line in lines) if run == message)
