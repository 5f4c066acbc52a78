"""``/workflows/ws`` and ASGI middleware (docs/http.md, "The WebSocket endpoint and middleware").

There are two fast ways in that skip the ASGI middleware stack (runstream's own
uvicorn transport, and the app's shortcut when mounted in another server) and
the ordinary route. A middleware that would see a WebSocket must never be
skipped silently: with one, every way in goes through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.asyncio.client import connect

from runstream import Server
from runstream.server.channel import AsgiChannel
from runstream.server.transport import DirectWebSocketProtocol
from tests.conftest import RunningServer, serve_in_thread
from tests.runkit import demo_workflow
from tests.wsclient import read_run, recv, send

pytestmark = pytest.mark.anyio

DIRECT: dict[str, Any] = {}
"""``serve_in_thread``'s default: ``Server.uvicorn_options()``, runstream's own transport."""
PLAIN_ASGI: dict[str, Any] = {"ws": "websockets-sansio"}
"""``server.app`` in uvicorn without runstream's transport, as in any other ASGI server."""


class Recorder:
    """A pure ASGI middleware that notes every WebSocket path it sees."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            self.seen.append(scope["path"])
        await self.app(scope, receive, send)


@contextmanager
def served(
    tmp_path: Path, transport: dict[str, Any], wrap: Callable[[Server], Any] | None = None
) -> Iterator[RunningServer]:
    server = Server(workflows=[demo_workflow(tokens=3)], database_url=f"sqlite:///{tmp_path}/runs.db")
    app = wrap(server) if wrap is not None else None
    with serve_in_thread(server, app, **transport) as running:
        yield running


async def channel_of_a_run(running: RunningServer) -> type:
    """Run a workflow over ``/workflows/ws``; the kind of channel that served the socket."""
    async with connect(running.ws_url) as ws:
        await recv(ws)
        (connection,) = running.server.connections
        await send(ws, action="start-workflow", workflow_id="demo", message="hi")
        _, events = await read_run(ws)
    assert events[0]["event_index"] == 0 and events[-1]["event"] == "WorkflowCompleted"
    return type(connection.channel)


@pytest.mark.parametrize("transport", [DIRECT, PLAIN_ASGI], ids=["direct", "plain-asgi"])
async def test_a_middleware_added_to_the_app_sees_the_socket(tmp_path: Path, transport: dict[str, Any]) -> None:
    seen: list[str] = []

    def add(server: Server) -> None:
        server.app.add_middleware(Recorder, seen=seen)

    with served(tmp_path, transport, wrap=add) as running:
        assert await channel_of_a_run(running) is AsgiChannel
    assert seen == ["/workflows/ws"]


@pytest.mark.parametrize("transport", [DIRECT, PLAIN_ASGI], ids=["direct", "plain-asgi"])
async def test_a_middleware_wrapped_around_the_app_sees_the_socket(tmp_path: Path, transport: dict[str, Any]) -> None:
    seen: list[str] = []
    with served(tmp_path, transport, wrap=lambda server: Recorder(server.app, seen)) as running:
        assert await channel_of_a_run(running) is AsgiChannel
    assert seen == ["/workflows/ws"]


async def test_without_middleware_the_socket_takes_the_direct_transport(tmp_path: Path) -> None:
    with served(tmp_path, DIRECT) as running:
        assert await channel_of_a_run(running) is DirectWebSocketProtocol


async def test_an_http_only_middleware_keeps_the_direct_transport_and_runs_for_http(tmp_path: Path) -> None:
    def add(server: Server) -> None:
        @server.app.middleware("http")
        async def tag(request: Request, call_next: Callable[[Request], Any]) -> Response:
            response: Response = await call_next(request)
            response.headers["X-Tagged"] = "yes"
            return response

    with served(tmp_path, DIRECT, wrap=add) as running:
        assert await channel_of_a_run(running) is DirectWebSocketProtocol
        async with httpx.AsyncClient(base_url=running.http_url) as http:
            assert (await http.get("/health")).headers["X-Tagged"] == "yes"
