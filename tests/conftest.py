"""Shared test fixtures: real servers on ephemeral ports, real clients, real databases."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from runstream import Server
from tests.runkit import Valve
from tests.waiting import wait_until
from runstream.log import EventLog, open_log

ROOT = Path(__file__).resolve().parents[1]
IN_CI = bool(os.environ.get("CI"))
POSTGRES_URL = os.environ.get("RUNSTREAM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RUNSTREAM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def valve() -> Iterator[Valve]:
    """Holds a test workflow at a point; opened at teardown so no run is left waiting."""
    valve = Valve()
    yield valve
    valve.open()


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
def serve_in_thread(server: Server, app: Any = None, **uvicorn_options: Any) -> Iterator[RunningServer]:
    """Run ``server`` (or ``app``, an ASGI app around ``server.app``) under uvicorn on
    127.0.0.1:<ephemeral> in a thread of its own."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options = server.uvicorn_options(log_level="warning", lifespan="on", **uvicorn_options)
    userver = uvicorn.Server(uvicorn.Config(server.app if app is None else app, **options))
    thread = threading.Thread(target=lambda: asyncio.run(userver.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        wait_until(lambda: userver.started or not thread.is_alive(), 10, what="the test server to start")
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


@functools.cache
def _postgres_reachable() -> bool:
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError):
        return False
    return True


@functools.cache
def _redis_reachable() -> bool:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose tables go to a fresh schema, dropped after the test."""
    require_service("PostgreSQL", _postgres_reachable())
    import asyncpg

    schema = f"test_{uuid.uuid4().hex[:12]}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f"CREATE SCHEMA {schema}"))
    try:
        yield _with_search_path(POSTGRES_URL, schema)
    finally:
        asyncio.run(execute(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", _redis_reachable())
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgres"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty event log's URL, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runstream.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def event_log(log_url: str) -> AsyncIterator[EventLog]:
    """An open, empty event log, once per backend; closed after the test."""
    log = open_log(log_url)
    await log.open()
    try:
        yield log
    finally:
        await log.close()
