"""The demo server as a real subprocess, for tests that kill it or need port 7777."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "cookbook" / "agent_os" / "workflow" / "basic_workflow.py"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def demo_server(port: int, database: Path, pace: str | None = None, log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Start the demo server on ``port`` over the SQLite file ``database``; SIGKILL it at exit."""
    env = {**os.environ, "PORT": str(port), "RUNSTREAM_DATABASE_URL": f"sqlite:///{database}"}
    env.pop("OPENAI_API_KEY", None)
    if pace is not None:
        env["RUNSTREAM_DEMO_PACE"] = pace
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, str(DEMO)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: port_open(port) or proc.poll() is not None, 30, what=f"the demo server to open port {port}")
        if proc.poll() is not None:
            raise RuntimeError(f"demo server exited before opening port {port} (exit code {proc.poll()})")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if log:
            out.close()  # type: ignore[union-attr]
