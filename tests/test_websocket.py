"""The WebSocket protocol (docs/protocol.md, "WebSocket: /workflows/ws") against a real server on an ephemeral port."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from runstream import Agent, DemoModel, Server, Step, Workflow
from runstream.server.transport import DirectWebSocketProtocol
from tests.conftest import RunningServer, serve_in_thread
from tests.runkit import Valve, valve_workflow
from tests.waiting import until
from tests.wsclient import indices, read_run, recv, send

pytestmark = pytest.mark.anyio


def boom(step_input: object) -> str:
    raise ValueError("the research source is unreachable")


def demo_workflow() -> Workflow:
    model = DemoModel(pace=0.0005, tokens=40)
    return Workflow(
        name="Demo",
        id="demo",
        steps=[Step(name="Research", agent=Agent(name="Researcher", model=model)), Step(name="Plan", agent=Agent(name="Planner", model=model))],
    )




BIG = 40_000
"""Tokens of the ``big`` run: ~16 MB of frames, more than loopback's socket buffers hold."""

TRANSPORTS = {"direct": {}, "asgi": {"ws": "websockets-sansio"}}
"""``Server.serve``'s own WebSocket transport, and ``Server.app`` in a plain ASGI server."""


@pytest.fixture(params=TRANSPORTS)
def srv(request: pytest.FixtureRequest, tmp_path: Path, valve: Valve) -> Iterator[RunningServer]:
    workflows = [
        demo_workflow(),
        valve_workflow(valve, before=30, after=170, id="gated"),
        Workflow(name="Broken", id="broken", steps=[boom]),
        Workflow(name="Big", id="big", steps=[Step(name="Write", agent=Agent(name="Writer", model=DemoModel(pace=0, tokens=BIG)))]),
    ]
    server = Server(workflows=workflows, database_url=f"sqlite:///{tmp_path}/runs.db")
    with serve_in_thread(server, **TRANSPORTS[request.param]) as running:
        yield running


async def start(ws_url: str, workflow_id: str, events: int) -> tuple[str, list[dict]]:
    """Start a run, read ``events`` run events, leave as a closed tab does (no close
    handshake); returns the run id and what was seen."""
    ws = await connect(ws_url)
    assert (await recv(ws))["event"] == "connected"
    await send(ws, action="start-workflow", workflow_id=workflow_id, message="Quick test", session_id="s1")
    _, seen = await read_run(ws, limit=events)
    ws.transport.abort()
    return seen[0]["run_id"], seen


async def test_connected_message_and_ping(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        hello = await recv(ws)
        assert hello["event"] == "connected" and hello["requires_auth"] is False and hello["message"]
        await send(ws, action="ping")
        assert await recv(ws) == {"event": "pong"}


async def test_client_that_stops_reading_holds_bounded_server_memory_then_gets_everything(srv: RunningServer) -> None:
    async with connect(srv.ws_url, max_size=None) as ws:  # the client reads nothing: its queue fills, then it stops
        await recv(ws)
        await send(ws, action="start-workflow", workflow_id="big", message="go")
        async with httpx.AsyncClient(base_url=srv.http_url) as http:

            async def finished() -> bool:
                runs = (await http.get("/runs", params={"workflow_id": "big"})).json()
                return bool(runs) and runs[0]["status"] == "completed"

            await until(finished, 30, what="the run to finish without waiting for its reader")
        (socket,) = srv.server.connections
        if isinstance(socket.channel, DirectWebSocketProtocol):
            assert socket.channel.transport.get_write_buffer_size() < 1_000_000  # of the run's ~16 MB
        _, events = await read_run(ws)
    assert indices(events) == list(range(len(events))) and len(events) > BIG


async def test_other_websocket_paths_are_refused(srv: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(srv.ws_url.replace("/workflows/ws", "/elsewhere/ws"))
    assert refused.value.response.status_code == 403


async def test_run_streams_every_event_with_common_fields(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="start-workflow", workflow_id="demo", message="Solar power", session_id="s", user_id="u")
        _, events = await read_run(ws)
    assert indices(events) == list(range(len(events)))
    assert events[0]["event"] == "WorkflowStarted" and events[-1]["event"] == "WorkflowCompleted"
    assert sum(e["event"] == "RunContent" for e in events) == 80
    for e in events:
        assert e["run_id"] == events[0]["run_id"] and e["session_id"] == "s"
        assert e["workflow_id"] == "demo" and e["workflow_name"] == "Demo" and isinstance(e["created_at"], int)
    content = [e for e in events if e["event"] == "RunContent"]
    assert all(e["agent_id"] and e["agent_run_id"] and e["workflow_run_id"] == e["run_id"] for e in content)
    assert all(e["step_name"] in ("Research", "Plan") and e["step_id"] for e in content)


async def test_reconnect_mid_run_catches_up_then_goes_live(srv: RunningServer, valve: Valve) -> None:
    run_id, seen = await start(srv.ws_url, "gated", events=20)
    k = seen[-1]["event_index"]
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="reconnect", run_id=run_id, last_event_index=k, workflow_id="gated", session_id="s1")
        catch_up = await recv(ws)
        assert catch_up["event"] == "catch_up" and catch_up["status"] == "running"
        missed = catch_up["missed_events"]
        assert missed == catch_up["current_event_count"] - (k + 1) and missed > 0
        caught = [await recv(ws) for _ in range(missed)]
        assert indices(caught) == list(range(k + 1, k + 1 + missed))
        subscribed = await recv(ws)
        assert subscribed["event"] == "subscribed" and subscribed["current_event_count"] == catch_up["current_event_count"]
        valve.open()
        _, live = await read_run(ws)
    combined = indices(seen) + indices(caught) + indices(live)
    assert combined == list(range(len(combined)))
    assert live[-1]["event"] == "WorkflowCompleted"


async def test_reconnect_with_null_mid_run_gets_everything_from_zero(srv: RunningServer, valve: Valve) -> None:
    run_id, _ = await start(srv.ws_url, "gated", events=3)
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="reconnect", run_id=run_id, last_event_index=None)
        catch_up = await recv(ws)
        assert catch_up["event"] == "catch_up" and catch_up["missed_events"] == catch_up["current_event_count"]
        valve.open()
        controls, events = await read_run(ws)
    assert [c["event"] for c in controls] == ["subscribed"]
    assert indices(events) == list(range(len(events))) and events[-1]["event"] == "WorkflowCompleted"


async def test_fifty_clients_reconnecting_each_get_every_event(srv: RunningServer, valve: Valve) -> None:
    run_id, _ = await start(srv.ws_url, "gated", events=5)
    rng = random.Random(7)

    async def follower(ready: asyncio.Event, counter: list[int]) -> list[int]:
        last = rng.choice([None, -1, 0, 2, 4])  # indices the run has surely reached: 0..4 were seen
        async with connect(srv.ws_url) as ws:
            await recv(ws)
            await send(ws, action="reconnect", run_id=run_id, last_event_index=last)
            assert (await recv(ws))["event"] in ("catch_up", "subscribed")
            counter.append(1)
            if len(counter) == 50:  # every follower is in before the run may end
                ready.set()
            _, events = await read_run(ws)
        start_at = -1 if last is None else last
        assert indices(events) == list(range(start_at + 1, start_at + 1 + len(events)))
        return indices(events)

    ready, counter = asyncio.Event(), []
    tasks = [asyncio.create_task(follower(ready, counter)) for _ in range(50)]
    await asyncio.wait_for(ready.wait(), 30)
    valve.open()
    results = await asyncio.gather(*tasks)
    final = max(r[-1] for r in results)
    assert all(r[-1] == final for r in results)


async def test_finished_run_replays_from_zero_ignoring_last_index(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="start-workflow", workflow_id="demo", message="Tides")
        _, live = await read_run(ws)
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="reconnect", run_id=live[0]["run_id"], last_event_index=10)
        notice = await recv(ws)
        assert notice["event"] == "replay" and notice["status"] == "completed" and notice["total_events"] == len(live)
        _, replayed = await read_run(ws)
    assert replayed == live


async def test_cancel_mid_run_ends_with_workflow_cancelled(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="start-workflow", workflow_id="gated", message="x")
        _, first = await read_run(ws, limit=5)
        await send(ws, action="cancel-workflow", run_id=first[0]["run_id"])
        _, rest = await read_run(ws)
    assert rest[-1]["event"] == "WorkflowCancelled"
    assert indices(first + rest) == list(range(len(first) + len(rest)))
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="reconnect", run_id=first[0]["run_id"], last_event_index=None)
        notice = await recv(ws)
        assert notice["event"] == "replay" and notice["status"] == "cancelled"


async def test_step_exception_ends_run_with_workflow_error_and_server_goes_on(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="start-workflow", workflow_id="broken", message="x")
        _, events = await read_run(ws)
        assert events[-1]["event"] == "WorkflowError"
        assert "the research source is unreachable" in events[-1]["error"]
        await send(ws, action="ping")
        assert (await recv(ws))["event"] == "pong"


async def test_client_vanishing_mid_stream_leaves_the_run_running(srv: RunningServer, valve: Valve) -> None:
    ws = await connect(srv.ws_url)
    await recv(ws)
    await send(ws, action="start-workflow", workflow_id="gated", message="x")
    _, seen = await read_run(ws, limit=3)
    ws.transport.abort()  # no close handshake: the client is simply gone
    valve.open()
    async with connect(srv.ws_url) as ws2:
        await recv(ws2)
        await send(ws2, action="reconnect", run_id=seen[0]["run_id"], last_event_index=2)
        _, rest = await read_run(ws2)
    assert rest[-1]["event"] == "WorkflowCompleted"


BAD_FRAMES = [
    ("not json", "Invalid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"ping"', "must be a JSON object"),
    ('{"type": "ping"}', "no 'action'"),
    ('{"action": "fly"}', "Unknown action"),
    ('{"action": "start-workflow"}', "workflow_id"),
    ('{"action": "start-workflow", "workflow_id": 7, "message": "x"}', "workflow_id"),
    ('{"action": "start-workflow", "workflow_id": "nope", "message": "x"}', "Workflow nope not found"),
    ('{"action": "reconnect"}', "run_id"),
    ('{"action": "reconnect", "run_id": "r", "last_event_index": "ten"}', "last_event_index"),
    ('{"action": "reconnect", "run_id": "no-such-run", "last_event_index": 1}', "Run no-such-run not found"),
    ('{"action": "cancel-workflow", "run_id": "no-such-run"}', "Run no-such-run not found"),
    ('{"action": "authenticate"}', "token"),
]


@pytest.mark.parametrize(("frame", "complaint"), BAD_FRAMES)
async def test_bad_input_gets_error_and_socket_stays_open(srv: RunningServer, frame: str, complaint: str) -> None:
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await ws.send(frame)
        answer = await recv(ws)
        assert answer["event"] == "error" and complaint in answer["error"]
        await send(ws, action="ping")
        assert (await recv(ws))["event"] == "pong"


async def test_binary_frame_gets_error(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await ws.send(b'{"action": "ping"}')
        assert "Binary frames" in (await recv(ws))["error"]
        await send(ws, action="ping")
        assert (await recv(ws))["event"] == "pong"


async def test_out_of_range_last_event_index_for_running_run(srv: RunningServer, valve: Valve) -> None:
    run_id, _ = await start(srv.ws_url, "gated", events=3)
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        for bad in (10_000, -2):
            await send(ws, action="reconnect", run_id=run_id, last_event_index=bad)
            answer = await recv(ws)
            assert answer["event"] == "error" and "out of range" in answer["error"]
        await send(ws, action="ping")
        assert (await recv(ws))["event"] == "pong"
    valve.open()


async def test_oversized_frame_closes_1009_and_others_are_served(srv: RunningServer) -> None:
    async with connect(srv.ws_url, max_size=None) as other, connect(srv.ws_url) as ws:
        await recv(other)
        await recv(ws)
        await ws.send('{"action": "ping", "pad": "' + "x" * (300 * 1024) + '"}')
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        await send(other, action="ping")
        assert (await recv(other))["event"] == "pong"


async def test_oversized_frame_below_transport_limit_gets_error(tmp_path: Path) -> None:
    server = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path}/db", max_message_size=1024)
    with serve_in_thread(server, ws_max_size=16 * 1024 * 1024) as running:
        async with connect(running.ws_url) as ws:
            await recv(ws)
            await ws.send('{"action": "ping", "pad": "' + "x" * 4096 + '"}')
            answer = await recv(ws)
            assert answer["event"] == "error" and "too large" in answer["error"]
            await send(ws, action="ping")
            assert (await recv(ws))["event"] == "pong"


async def test_authentication_with_security_key(tmp_path: Path) -> None:
    server = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path}/db", security_key="s3cret")
    with serve_in_thread(server) as running:
        async with connect(running.ws_url) as ws:
            assert (await recv(ws))["requires_auth"] is True
            await send(ws, action="ping")
            assert (await recv(ws))["event"] == "pong"
            await send(ws, action="start-workflow", workflow_id="demo", message="x")
            assert "Authentication required" in (await recv(ws))["error"]
            await send(ws, action="authenticate", token="wrong")
            assert (await recv(ws))["event"] == "auth_error"
            await send(ws, action="authenticate", token="s3cret")
            assert (await recv(ws))["event"] == "authenticated"
            await send(ws, action="start-workflow", workflow_id="demo", message="x")
            _, events = await read_run(ws)
            assert events[-1]["event"] == "WorkflowCompleted"


async def test_live_subscribers_with_and_without_compression_each_get_their_own_frames(tmp_path: Path, valve: Valve) -> None:
    """Uncompressed frames are framed once and shared; a compressing client's are its own."""
    server = Server(workflows=[valve_workflow(valve, before=5, after=300)], database_url=f"sqlite:///{tmp_path}/db", compression=True)
    with serve_in_thread(server) as running:
        async with connect(running.ws_url) as deflating, connect(running.ws_url, compression=None) as plain, \
                connect(running.ws_url, compression=None) as other:
            assert deflating.protocol.extensions and not plain.protocol.extensions
            received = {deflating: 0, plain: 0}
            for ws in received:
                ws.data_received = functools.partial(counted, ws, ws.data_received, received)  # type: ignore[method-assign]
            for ws in (deflating, plain, other):
                await recv(ws)
            await send(deflating, action="start-workflow", workflow_id="valve", message="x")
            _, first = await read_run(deflating, limit=5)
            for ws in (plain, other):
                await send(ws, action="reconnect", run_id=first[0]["run_id"], last_event_index=4)
                assert (await recv(ws))["event"] in ("catch_up", "subscribed")  # the run is held at its valve
            valve.open()
            (_, a), (_, b), (_, c) = await asyncio.gather(read_run(deflating), read_run(plain), read_run(other))
    assert a == b == c and indices(a) == list(range(5, 5 + len(a))) and a[-1]["event"] == "WorkflowCompleted"
    assert received[deflating] < received[plain] / 2  # its frames were compressed for it


def counted(ws: object, data_received: Callable[[bytes], None], received: dict[object, int], data: bytes) -> None:
    received[ws] += len(data)
    data_received(data)


@pytest.mark.parametrize("compression", [False, True])
async def test_permessage_deflate_only_when_the_server_enables_it(tmp_path: Path, compression: bool) -> None:
    server = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path}/db", compression=compression)
    with serve_in_thread(server) as running:
        async with connect(running.ws_url) as ws:  # offers permessage-deflate, as browsers do
            await recv(ws)
            assert bool(ws.protocol.extensions) is compression
            await send(ws, action="start-workflow", workflow_id="demo", message="x")
            _, events = await read_run(ws)
            assert events[-1]["event"] == "WorkflowCompleted"
