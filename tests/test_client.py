"""The Python client: the pure reconnect core, and ``follow`` across real dropped connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from runstream import Client, Event, Server, ServerError, SyncClient
from runstream.client import Backoff, ConnectionLost, FollowCursor, SSEParser
from runstream.errors import ProtocolError
from tests.conftest import RunningServer, serve_in_thread
from tests.cutproxy import cutting_proxy
from tests.runkit import Valve, demo_workflow, valve_workflow
from tests.waiting import until

FAST = (0.001, 0.01)


def event(index: int, name: str = "RunContent") -> Event:
    return Event(name, index, {"event": name, "event_index": index, "run_id": "r"})


def frame(e: Event) -> str:
    return f"event: {e.name}\ndata: {e.to_json()}\n\n"


# -- the pure core -----------------------------------------------------------


def test_cursor_yields_each_index_once_and_ends_at_the_terminal_event() -> None:
    cursor = FollowCursor("r")
    assert [cursor.accept(event(i)) for i in (0, 1, 0, 1, 2)] == [True, True, False, False, True]
    assert cursor.last == 2 and not cursor.done
    assert cursor.accept(event(3, "WorkflowCompleted")) and cursor.done


def test_cursor_refuses_a_gap() -> None:
    cursor = FollowCursor("r", after=4)
    with pytest.raises(ProtocolError):
        cursor.accept(event(6))


def test_cursor_reconnect_action_resumes_after_the_last_index() -> None:
    cursor = FollowCursor("r")
    assert orjson.loads(cursor.reconnect_action()) == {"action": "reconnect", "run_id": "r", "last_event_index": None}
    cursor.accept(event(0))
    assert orjson.loads(cursor.reconnect_action())["last_event_index"] == 0


def test_cursor_skips_controls_and_replayed_events_on_websocket() -> None:
    cursor = FollowCursor("r", after=1)
    assert cursor.feed_ws('{"event": "replay", "run_id": "r", "total_events": 3}') is None
    assert cursor.feed_ws(frame(event(0))) is None
    assert cursor.feed_ws(frame(event(1))) is None
    assert cursor.feed_ws(frame(event(2))) == event(2)
    assert cursor.feed_ws('{"event": "subscribed"}') is None


def test_cursor_turns_errors_and_shutdown_into_exceptions() -> None:
    cursor = FollowCursor("r")
    with pytest.raises(ServerError, match="Run r not found"):
        cursor.feed_ws('{"event": "error", "error": "Run r not found"}')
    with pytest.raises(ConnectionLost):
        cursor.feed_ws('{"event": "server_shutdown", "message": "restarting"}')
    with pytest.raises(ProtocolError):
        cursor.feed_ws("garbage")


def test_sse_parser_ignores_comments_and_joins_data_lines() -> None:
    parser = SSEParser()
    lines = [": ping", "", "id: 0", "event: RunContent", 'data: {"event": "RunContent",', 'data: "event_index": 0}', ""]
    assert [parser.feed_line(line) for line in lines][-1] == Event("RunContent", 0, {"event": "RunContent", "event_index": 0})
    assert all(parser.feed_line(line) is None for line in lines[:-1])


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(1.0, 4.0)
    delays = [backoff.next_delay() for _ in range(5)]
    for delay, base in zip(delays, [1, 2, 4, 4, 4]):
        assert base / 2 <= delay <= base
    backoff.reset()
    assert backoff.next_delay() <= 1.0


# -- against a real server ---------------------------------------------------




@pytest.fixture
def srv(tmp_path: Path, valve: Valve) -> Iterator[RunningServer]:
    server = Server(workflows=[demo_workflow(tokens=60), valve_workflow(valve)], database_url=f"sqlite:///{tmp_path}/runs.db")
    with serve_in_thread(server) as running:
        yield running


def assert_whole_run(events: list[Event]) -> None:
    assert [e.index for e in events] == list(range(len(events)))
    assert events[0].name == "WorkflowStarted" and events[-1].name == "WorkflowCompleted"


@pytest.mark.anyio
@pytest.mark.parametrize(("transport", "cut_after"), [("ws", 400), ("sse", 1500)])  # ws frames are deflated
async def test_follow_through_a_connection_that_drops_every_few_events(
    srv: RunningServer, transport: str, cut_after: int
) -> None:
    drops: list[BaseException] = []
    with cutting_proxy(srv.port, cut_after=cut_after, max_cuts=8) as proxy:
        async with Client(proxy.http_url, transport=transport, backoff=FAST,  # type: ignore[arg-type]
                          on_reconnect=lambda error, delay: drops.append(error)) as client:
            async with Client(srv.http_url) as direct:
                run_id = await direct.start("demo", "a long story")
            events = [e async for e in client.follow(run_id)]
    assert_whole_run(events)
    assert proxy.cuts == 8 and len(drops) == 8
    assert {e.run_id for e in events} == {run_id}


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_follow_after_an_index_and_replay(srv: RunningServer, transport: str) -> None:
    async with Client(srv.http_url, transport=transport) as client:  # type: ignore[arg-type]
        run_id = await client.start("demo", "hello")
        whole = [e async for e in client.follow(run_id)]
        assert_whole_run(whole)
        assert [e async for e in client.follow(run_id, after=10)] == whole[11:]
        assert [e async for e in client.replay(run_id)] == whole


async def shutdown_relay(upstream: str, every: int, times: int) -> AsyncIterator[str]:
    """A WebSocket relay to ``upstream`` that, on its first ``times`` connections, says
    ``server_shutdown`` and closes after ``every`` run events (as a server going down would)."""
    connections = 0

    async def relay(client_ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        shut = connections <= times
        async with connect(upstream) as server_ws:

            async def down() -> None:
                sent = 0
                async for message in server_ws:
                    await client_ws.send(message)
                    sent += str(message).startswith("event:")
                    if shut and sent == every:
                        await client_ws.send('{"event": "server_shutdown", "message": "going away"}')
                        return

            async def up() -> None:
                async for message in client_ws:
                    await server_ws.send(message)

            tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            server_ws.transport.abort()  # unread frames would stall a graceful close for close_timeout

    async with serve(relay, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


@pytest.mark.anyio
async def test_follow_reconnects_when_the_server_says_it_shuts_down(srv: RunningServer) -> None:
    drops: list[BaseException] = []
    relay = shutdown_relay(srv.ws_url, every=5, times=5)
    url = await anext(relay)
    try:
        async with Client(url, backoff=FAST, on_reconnect=lambda error, delay: drops.append(error)) as client:
            async with Client(srv.http_url) as direct:
                run_id = await direct.start("demo", "hello")
            events = [e async for e in client.follow(run_id)]
    finally:
        await relay.aclose()
    assert_whole_run(events)
    assert len(drops) == 5 and all(isinstance(d, ConnectionLost) for d in drops)


@pytest.mark.anyio
async def test_runs_get_run_and_cancel(srv: RunningServer, valve: Valve) -> None:
    async with Client(srv.http_url) as client:
        assert [w["id"] for w in await client.workflows()] == ["demo", "valve"]
        run_id = await client.start("valve", "go", session_id="s1", user_id="ana")
        await until(valve.reached.is_set, what="the run to reach the valve")
        run = await client.get_run(run_id)
        assert run.status == "running" and run.session_id == "s1" and run.user_id == "ana"
        assert [r.run_id for r in await client.runs(status="running")] == [run_id]
        await client.cancel(run_id)
        events = [e async for e in client.follow(run_id)]
        assert events[-1].name == "WorkflowCancelled"
        assert (await client.get_run(run_id)).status == "cancelled"
        assert await client.runs(workflow_id="demo") == []
        with pytest.raises(ServerError) as error:
            await client.cancel(run_id)
        assert error.value.code == "run_not_active" and error.value.status == 409


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_unknown_run_and_workflow_are_server_errors(srv: RunningServer, transport: str) -> None:
    async with Client(srv.http_url, transport=transport) as client:  # type: ignore[arg-type]
        with pytest.raises(ServerError) as error:
            await client.start("nope", "x")
        assert error.value.code == "unknown_workflow"
        with pytest.raises(ServerError, match="nope"):
            [e async for e in client.follow("nope")]


@pytest.mark.anyio
async def test_token_is_sent_over_http_and_websocket(tmp_path: Path) -> None:
    server = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path}/runs.db", security_key="k")
    with serve_in_thread(server) as running:
        async with Client(running.http_url, token="k") as client:
            run_id = await client.start("demo", "hi")
            assert_whole_run([e async for e in client.follow(run_id)])
        async with Client(running.http_url, token="wrong") as client:
            with pytest.raises(ServerError) as error:
                [e async for e in client.follow(run_id)]
            assert error.value.code == "unauthorized"


def test_sync_client(srv: RunningServer) -> None:
    with Client(srv.http_url).sync() as client:
        assert isinstance(client, SyncClient)
        run_id = client.start("demo", "hello")
        events = list(client.follow(run_id))
        assert_whole_run(events)
        assert [e.index for e in client.replay(run_id)] == [e.index for e in events]
        assert client.get_run(run_id).status == "completed"
        assert [r.run_id for r in client.runs()] == [run_id]
