"""What ``server/transport.py`` relies on in uvicorn, pinned: a uvicorn release that changes it
fails here first, by name, rather than somewhere in the WebSocket tests.

The transport subclasses uvicorn's ``WebSocketsSansIOProtocol``, swaps ``self.app``
in ``handle_connect``, deletes the handshake's ``request``, ``response`` and
``scope`` after accepting, and writes to the transport itself.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from uvicorn.middleware.message_logger import MessageLoggerMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect

from runstream import Server
from runstream.server.transport import DirectWebSocketProtocol
from tests.conftest import ROOT, serve_in_thread
from tests.runkit import demo_workflow
from tests.wsclient import recv, send

pytestmark = pytest.mark.anyio


def release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_the_installed_uvicorn_is_in_the_tested_range() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in dependencies if d.startswith("uvicorn")]
    low, high = re.fullmatch(r"uvicorn>=([\d.]+),<([\d.]+)", spec.split(";")[0].strip()).groups()  # type: ignore[union-attr]
    assert release(low) <= release(version("uvicorn")) < release(high), (version("uvicorn"), spec)


def test_the_protocol_class_still_has_what_the_transport_uses() -> None:
    parameters = list(inspect.signature(WebSocketsSansIOProtocol.__init__).parameters)
    assert parameters[:5] == ["self", "config", "server_state", "app_state", "_loop"]
    for name in ("handle_connect", "run_asgi", "send", "receive"):
        assert callable(getattr(WebSocketsSansIOProtocol, name, None)), name
    init = inspect.getsource(WebSocketsSansIOProtocol.__init__)
    for attribute in ("self.app = ", "self.writable = ", "self.close_sent = ", "self.conn = "):
        assert attribute in init, f"uvicorn no longer sets {attribute.strip(' =')} in __init__"
    connect_source = inspect.getsource(WebSocketsSansIOProtocol.handle_connect)
    for attribute in ("self.request = ", "self.response = ", "self.scope", "self.run_asgi()"):
        assert attribute in connect_source, f"handle_connect no longer does {attribute}"
    run_source = inspect.getsource(WebSocketsSansIOProtocol.run_asgi)
    assert "await self.app(self.scope, self.receive, self.send)" in run_source
    assert "self.transport = " in inspect.getsource(WebSocketsSansIOProtocol.connection_made)


def test_uvicorns_own_wrappers_keep_the_app_they_wrap() -> None:
    app = object()
    assert ProxyHeadersMiddleware(app).app is app  # type: ignore[arg-type]
    assert MessageLoggerMiddleware(app).app is app  # type: ignore[arg-type]


async def test_a_direct_connection_drops_the_handshake_after_accepting(tmp_path: Path) -> None:
    server = Server(workflows=[demo_workflow(tokens=3)], database_url=f"sqlite:///{tmp_path}/runs.db")
    with serve_in_thread(server) as running:
        async with connect(running.ws_url) as ws:
            assert (await recv(ws))["event"] == "connected"
            (connection,) = server.connections
            channel = connection.channel
            assert isinstance(channel, DirectWebSocketProtocol)
            for attribute in ("request", "response", "scope"):
                assert not hasattr(channel, attribute), attribute
            await send(ws, action="ping")
            assert (await recv(ws))["event"] == "pong"
