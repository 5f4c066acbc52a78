"""Every refusal carries its stable code on every transport (docs/protocol.md, "Errors").

The same mistake is made over WebSocket and over HTTP against one real server;
both answers must name the same code, and the Python client must raise the
class of that code (``UnknownRun`` for ``unknown_run``) on either transport.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

import runstream.errors as errors
from runstream import (
    Client,
    InvalidInput,
    InvalidRequest,
    RunNotActive,
    RunstreamError,
    Server,
    ServerError,
    Unauthorized,
    UnknownRun,
    UnknownWorkflow,
)
from runstream.client.errors import server_error
from runstream.server.http_errors import STATUS, status_of
from tests.conftest import ROOT, RunningServer, serve_in_thread
from tests.runkit import Valve, demo_workflow, schema_workflow, valve_workflow
from tests.wsclient import read_run, recv, send

pytestmark = pytest.mark.anyio

KEY = "s3cret"
LIMIT = 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    valve = Valve()
    server = Server(
        workflows=[demo_workflow(), schema_workflow(), valve_workflow(valve, id="gated")],
        database_url=f"sqlite:///{tmp_path_factory.mktemp('codes')}/runs.db",
        security_key=KEY,
        max_message_size=LIMIT,
    )
    with serve_in_thread(server, ws_max_size=16 * LIMIT) as running:
        yield running
    valve.open()


@pytest.fixture
async def ws(srv: RunningServer) -> AsyncIterator[ClientConnection]:
    async with connect(srv.ws_url) as socket:
        await recv(socket)
        await send(socket, action="authenticate", token=KEY)
        assert (await recv(socket))["event"] == "authenticated"
        yield socket


@pytest.fixture
def http(srv: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.http_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def finished(srv: RunningServer) -> str:
    with httpx.Client(base_url=srv.http_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        response = http.post("/workflows/demo/runs", data={"message": "hi", "stream": "false"})
        assert response.status_code == 200, response.text
        return str(response.json()["run_id"])


@pytest.fixture(scope="module")
def running(srv: RunningServer) -> str:
    """A run of ``gated`` held open by its valve until the module's server stops."""
    with httpx.Client(base_url=srv.http_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        response = http.post("/workflows/gated/runs", data={"message": "hi", "stream": "false", "background": "true"})
        assert response.status_code == 202, response.text
        return str(response.json()["run_id"])


async def ws_error(ws: ClientConnection, **action: Any) -> dict[str, Any]:
    await send(ws, **action)
    answer = await recv(ws)
    assert answer["event"] == "error", answer
    assert answer["error"] and isinstance(answer["error"], str), answer
    return answer


def http_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["detail"], body
    return body


# -- the same refusal, over both transports -----------------------------------


async def test_unknown_workflow(ws: ClientConnection, http: httpx.Client) -> None:
    frame = await ws_error(ws, action="start-workflow", workflow_id="nope", message="x")
    body = http_error(http.post("/workflows/nope/runs", data={"message": "x"}), 404)
    assert frame["code"] == body["code"] == "unknown_workflow"


async def test_unknown_run(ws: ClientConnection, http: httpx.Client) -> None:
    frame = await ws_error(ws, action="reconnect", run_id="no-such-run", last_event_index=None)
    body = http_error(http.get("/runs/no-such-run"), 404)
    assert frame["code"] == body["code"] == "unknown_run"
    assert (await ws_error(ws, action="cancel-workflow", run_id="no-such-run"))["code"] == "unknown_run"


async def test_run_not_active(ws: ClientConnection, http: httpx.Client, finished: str) -> None:
    frame = await ws_error(ws, action="cancel-workflow", run_id=finished)
    body = http_error(http.post(f"/workflows/demo/runs/{finished}/cancel"), 409)
    assert frame["code"] == body["code"] == "run_not_active"


async def test_invalid_input(ws: ClientConnection, http: httpx.Client) -> None:
    frame = await ws_error(ws, action="start-workflow", workflow_id="typed", message={"depth": 2})
    body = http_error(http.post("/workflows/typed/runs", json={"message": {"depth": 2}, "stream": False}), 422)
    assert frame["code"] == body["code"] == "invalid_input"


async def test_an_event_index_the_run_has_not_reached(ws: ClientConnection, http: httpx.Client, running: str) -> None:
    frame = await ws_error(ws, action="reconnect", run_id=running, last_event_index=10_000)
    body = http_error(http.get(f"/workflows/gated/runs/{running}/events", headers={"Last-Event-ID": "10000"}), 422)
    assert frame["code"] == body["code"] == "invalid_request"
    assert "out of range" in frame["error"] and "out of range" in body["detail"]


async def test_unauthorized(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        frame = await ws_error(ws, action="start-workflow", workflow_id="demo", message="x")
        await send(ws, action="authenticate", token="wrong")
        refused = await recv(ws)
    with httpx.Client(base_url=srv.http_url) as http:
        body = http_error(http.get("/workflows"), 401)
        wrong = http_error(http.get("/workflows", headers={"Authorization": "Bearer wrong"}), 401)
    assert refused["event"] == "auth_error" and refused["error"] == "Invalid token"
    assert frame["code"] == refused["code"] == body["code"] == wrong["code"] == "unauthorized"


async def test_unknown_session(http: httpx.Client) -> None:
    assert http_error(http.get("/sessions/no-such-session"), 404)["code"] == "unknown_session"


# -- WebSocket only: frames that break the protocol ----------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "protocol_error"),
        ('{"action": "fly"}', "protocol_error"),
        ('{"action": "reconnect"}', "protocol_error"),
        ('{"action": "ping", "pad": "' + "x" * 2 * LIMIT + '"}', "message_too_large"),
    ],
)
async def test_protocol_errors(ws: ClientConnection, frame: str, code: str) -> None:
    await ws.send(frame)
    answer = await recv(ws)
    assert answer["event"] == "error" and answer["code"] == code and answer["error"]
    await ws.send(b'{"action": "ping"}')
    assert (await recv(ws))["code"] == "protocol_error"
    await send(ws, action="ping")
    assert (await recv(ws))["event"] == "pong"


async def test_shutting_down(tmp_path: Path) -> None:
    server = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path}/runs.db")
    with serve_in_thread(server) as running:
        server.manager.stop_accepting()
        async with connect(running.ws_url) as ws:
            await recv(ws)
            await send(ws, action="start-workflow", workflow_id="demo", message="x")
            controls, events = await read_run(ws)
        with httpx.Client(base_url=running.http_url) as http:
            body = http_error(http.post("/workflows/demo/runs", data={"message": "x"}), 503)
    assert events == [] and controls[-1]["event"] == "error"
    assert controls[-1]["code"] == body["code"] == "shutting_down"


# -- the Python client raises the class of the code -----------------------------


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_client_raises_the_class_of_the_code(
    srv: RunningServer, finished: str, transport: str
) -> None:
    async with Client(srv.http_url, token=KEY, transport=transport, retries=0) as client:  # type: ignore[arg-type]
        with pytest.raises(UnknownRun) as unknown:
            async for _ in client.follow("no-such-run"):
                pass
        assert isinstance(unknown.value, ServerError) and unknown.value.code == "unknown_run"
        with pytest.raises(UnknownWorkflow):
            await client.start("nope", "x")
        with pytest.raises(InvalidInput) as invalid:
            await client.start("typed", {"depth": 2})
        assert invalid.value.status == 422 and isinstance(invalid.value, InvalidRequest)
        with pytest.raises(RunNotActive) as inactive:
            await client.cancel(finished)
        assert inactive.value.status == 409
    async with Client(srv.http_url, token="wrong", transport=transport, retries=0) as client:  # type: ignore[arg-type]
        with pytest.raises(Unauthorized):
            async for _ in client.follow(finished):
                pass
        with pytest.raises(Unauthorized):
            await client.get_run(finished)


def test_a_code_the_client_does_not_know_stays_a_server_error() -> None:
    error = server_error("the moon is full", "moon_full", 418)
    assert type(error) is ServerError and error.code == "moon_full" and error.status == 418
    typed = server_error("Run r not found", "unknown_run")
    assert isinstance(typed, UnknownRun) and isinstance(typed, ServerError) and str(typed) == "Run r not found"
    assert type(server_error("x", "unknown_run")) is type(typed)


# -- the tree itself ----------------------------------------------------------------


def domain_errors() -> list[type[RunstreamError]]:
    return [
        kind for _, kind in inspect.getmembers(errors, inspect.isclass)
        if issubclass(kind, RunstreamError) and kind.__module__ == errors.__name__ and kind is not RunstreamError
    ]  # fmt: skip


def test_every_error_has_its_own_code_a_status_and_a_place_in_the_drawn_tree() -> None:
    kinds = domain_errors()
    assert len({kind.code for kind in kinds}) == len(kinds)
    tree = errors.__doc__ or ""
    for kind in kinds:
        assert kind in STATUS, f"{kind.__name__} has no HTTP status in server/http_errors.py"
        assert re.search(rf"\b{kind.__name__}\s+{kind.code}\b", tree), f"{kind.__name__} is not drawn in errors.py"
        assert errors.error_class(kind.code) is kind
        assert kind.__name__ in errors.__all__


def test_server_side_failures_are_5xx_and_an_unlisted_error_is_500() -> None:
    assert status_of(errors.LogWriteFailed("disk full")) == 503
    assert status_of(errors.StepFailed("timed out")) == 500
    assert status_of(errors.ModelError("cut stream")) == 502

    class Unlisted(RunstreamError):
        code = "unlisted"

    assert status_of(Unlisted("x")) == 500


def test_protocol_doc_lists_every_code() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    missing = [kind.code for kind in domain_errors() if f"`{kind.code}`" not in text]
    assert not missing, f"docs/protocol.md does not list {missing}"


def test_error_frames_are_json_with_error_and_code() -> None:
    from runstream.server.protocol import error_frame

    assert json.loads(error_frame(UnknownRun("r"))) == {"event": "error", "error": "Run r not found", "code": "unknown_run"}
    assert json.loads(error_frame(Unauthorized("Invalid token"), "auth_error"))["event"] == "auth_error"
