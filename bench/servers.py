"""The servers under test, each its own subprocess on a free loopback port, and what /proc says of them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["BENCH", "AGNO_PYTHON", "Proc", "free_port", "start_model", "start_system", "ensure_agno"]

BENCH = Path(__file__).resolve().parent
AGNO_VENV = BENCH / ".venv-agno"
AGNO_PYTHON = AGNO_VENV / "bin" / "python"
AGNO_PACKAGES = ["agno==3.1.10", "fastapi", "uvicorn", "openai", "sqlalchemy[asyncio]", "aiosqlite", "python-multipart", "websockets"]
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A server subprocess: its port, its CPU seconds and resident memory, and a clean stop."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path) -> None:
        self.name, self.port = name, port
        self.log = log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=BENCH.parent)
        self.pid = self.popen.pid
        self._wait_ready(60.0)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; see {self.log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on port {self.port} within {timeout} s; see {self.log}")

    def cpu(self) -> float:
        """User + system CPU seconds of every thread of the process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def rss(self) -> int:
        """Resident memory in bytes."""
        return int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * _PAGE

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def start_model(logs: Path) -> Proc:
    port = free_port()
    argv = [sys.executable, str(BENCH / "model_server.py"), "--port", str(port)]
    return Proc("model", argv, port, logs / "model.log")


def ensure_agno() -> None:
    """Create bench/.venv-agno with AgentOS on first use."""
    if AGNO_PYTHON.exists():
        return
    subprocess.run(["python3", "-m", "venv", str(AGNO_VENV)], check=True)
    subprocess.run([str(AGNO_PYTHON), "-m", "pip", "install", "-q", *AGNO_PACKAGES], check=True)


def start_system(system: str, model: Proc, db: Path, logs: Path, frame_size: int = 600) -> Proc:
    """``runstream``, ``runstream-asgi`` (``Server.app`` under plain uvicorn), ``agno`` or
    ``floor``, serving on a fresh port."""
    port = free_port()
    url = f"http://127.0.0.1:{model.port}/v1"
    if system.startswith("runstream"):
        argv = [sys.executable, str(BENCH / "serve_runstream.py"), "--model-url", url, "--db", str(db)]
        argv += ["--asgi"] if system == "runstream-asgi" else []
    elif system == "agno":
        ensure_agno()
        argv = [str(AGNO_PYTHON), str(BENCH / "serve_agno.py"), "--model-url", url, "--db", str(db)]
    else:
        argv = [sys.executable, str(BENCH / "floor.py"), "--frame-size", str(frame_size)]
    return Proc(system, [*argv, "--port", str(port)], port, logs / f"{system}.log")
