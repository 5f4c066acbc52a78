"""Shared test fixtures: real servers on ephemeral ports, real clients, real databases."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from runstream import Server

ROOT = Path(__file__).resolve().parents[1]
IN_CI = bool(os.environ.get("CI"))
POSTGRES_URL = os.environ.get("RUNSTREAM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RUNSTREAM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class RunningServer:
    server: Server
    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/workflows/ws"


@contextmanager
def serve_in_thread(server: Server, **uvicorn_options: Any) -> Iterator[RunningServer]:
    """Run ``server`` under uvicorn on 127.0.0.1:<ephemeral> in a thread of its own."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options = {"ws_max_size": server.max_message_size, "log_level": "warning", "lifespan": "on"}
    options.update(uvicorn_options)
    userver = uvicorn.Server(uvicorn.Config(server.app, **options))
    thread = threading.Thread(target=lambda: asyncio.run(userver.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        deadline = 200
        while not userver.started and thread.is_alive() and deadline:
            threading.Event().wait(0.05)
            deadline -= 1
        if not userver.started:
            raise RuntimeError("test server did not start")
        yield RunningServer(server, port)
    finally:
        userver.should_exit = True
        thread.join(timeout=30)
        sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_service(name: str, reachable: bool) -> None:
    """Skip when a service is down, except in CI, where its absence is a failure."""
    if reachable:
        return
    if IN_CI:
        pytest.fail(f"{name} is not reachable, and CI requires it")
    pytest.skip(f"{name} is not reachable")
