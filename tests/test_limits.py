"""Limits (docs/security.md): each one answers the client that reached it with a clear error
and a code, and leaves other clients alone. Inputs that used to give a 500 give a 4xx."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from runstream import Limits, Step, StepInput, Workflow
from runstream.server.limits import RateWindow, check_depth
from runstream.errors import LimitExceeded, ProtocolError
from tests.authkit import bearer, jwt_server, token
from tests.conftest import RunningServer
from tests.runkit import Valve, demo_workflow, valve_workflow
from tests.waiting import wait_until
from tests.wsclient import read_run, recv, send

ALICE, BOB, CAROL = token("alice"), token("bob"), token("carol")


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text


def test_rate_window_and_depth_are_pure() -> None:
    window = RateWindow(2, 60)
    window.take("a", now=0)
    window.take("a", now=1)
    with pytest.raises(LimitExceeded) as refused:
        window.take("a", now=2)
    assert refused.value.code == "rate_limited" and refused.value.retry_after == 58
    window.take("b", now=2)  # another key is not affected
    window.take("a", now=60.5)  # the first one left the window
    check_depth([[[1]]], limit=3)
    with pytest.raises(ProtocolError):
        check_depth([[[[1]]]], limit=3)
    deep: list = []
    for _ in range(100_000):  # no recursion: as deep as memory allows
        deep = [deep]
    with pytest.raises(ProtocolError):
        check_depth(deep)


@pytest.fixture
def srv(tmp_path: Path, valve: Valve) -> Iterator[RunningServer]:
    limits = Limits(runs_per_minute=3, max_runs_per_user=1, max_concurrent_runs=2, max_queued_runs=0, max_message_size=64 * 1024)
    with jwt_server(tmp_path, [demo_workflow(), valve_workflow(valve)], limits=limits) as running:
        yield running


@pytest.fixture
def http(srv: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.http_url, timeout=30) as client:
        yield client


def test_bodies_too_large_too_deep_or_out_of_range_get_a_4xx_with_a_code(http: httpx.Client) -> None:
    huge = "x" * (20 * 1024 * 1024)
    assert_error(http.post("/workflows/demo/runs", data={"message": huge}, headers=bearer(ALICE)), 413, "message_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b'{"message": "' + b"x" * 4096

    chunked = http.post("/workflows/demo/runs", content=chunks(),
                        headers={**bearer(ALICE), "Content-Type": "application/json"})
    assert_error(chunked, 413, "message_too_large")
    deep = "[" * 1000 + "]" * 1000
    assert_error(http.post("/workflows/demo/runs", content='{"message": ' + deep + "}",
                           headers={**bearer(ALICE), "Content-Type": "application/json"}), 422, "protocol_error")
    for params in ({"offset": "9223372036854775808"}, {"offset": "-1"}, {"limit": "10000"}, {"user_id": "u" * 1000}):
        assert_error(http.get("/runs", params=params, headers=bearer(ALICE)), 422, "invalid_request")
    assert http.get("/runs", params={"offset": "2147483647"}, headers=bearer(ALICE)).json() == []
    assert http.get("/health").status_code == 200  # the server took all that in its stride


def test_runs_per_user_and_per_server(http: httpx.Client, valve: Valve) -> None:
    def start(who: str, workflow: str = "valve") -> httpx.Response:
        return http.post(f"/workflows/{workflow}/runs", data={"message": "x", "background": "true"}, headers=bearer(who))

    assert start(ALICE).status_code == 202
    assert_error(start(ALICE), 429, "too_many_runs")  # one at a time for alice
    assert start(BOB).status_code == 202  # bob is not affected
    assert_error(start(CAROL), 429, "queue_full")  # the server runs two, its cap, and queues none
    assert start("admin-key").status_code == 429  # the server's limit holds for everyone
    valve.open()
    wait_until(lambda: http.get("/runs", params={"status": "running"}, headers=bearer("admin-key")).json() == [],
               what="the runs to end")
    for _ in range(2):  # alice's second and third starts this minute: a refused start did not count
        assert start(ALICE, "demo").status_code == 202
        wait_until(lambda: http.get("/runs", params={"status": "running"}, headers=bearer("admin-key")).json() == [],
                   what="the run to end")
    refused = start(ALICE, "demo")
    assert_error(refused, 429, "rate_limited")
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert start(CAROL, "demo").status_code == 202
    assert len(http.get("/runs", headers=bearer("admin-key")).json()) == 5  # refused starts started nothing


@pytest.mark.anyio
async def test_websocket_limits_answer_with_codes(tmp_path: Path, valve: Valve) -> None:
    limits = Limits(max_subscriptions=1, max_connections_per_client=2, runs_per_minute=None)
    with jwt_server(tmp_path, [valve_workflow(valve)], limits=limits) as srv:
        async with connect(srv.ws_url) as ws, connect(srv.ws_url) as other:
            await recv(ws)
            await recv(other)
            async with connect(srv.ws_url) as third:
                refused = await recv(third)
                assert refused["event"] == "error" and refused["code"] == "too_many_connections"
                with pytest.raises(ConnectionClosed) as closed:
                    await recv(third)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            await send(ws, action="authenticate", token=ALICE)
            await recv(ws)
            await send(ws, action="start-workflow", workflow_id="valve", message="x")
            _, first = await read_run(ws, limit=1)
            await send(ws, action="start-workflow", workflow_id="valve", message="y")
            controls, _ = await read_run(ws)
            assert controls[-1]["code"] == "too_many_subscriptions"
            await send(ws, action="ping")  # the socket goes on
            assert (await recv(ws))["event"] in ("pong", "StepStarted", "RunContent")
        await asyncio.to_thread(wait_until, lambda: srv.server.client_connections.count("127.0.0.1") == 0, 20, "sockets to close")
        async with connect(srv.ws_url) as again:  # the slots are free again
            assert (await recv(again))["event"] == "connected"
        async with httpx.AsyncClient(base_url=srv.http_url) as http:
            runs = (await http.get("/runs", headers=bearer("admin-key"))).json()
        assert [r["run_id"] for r in runs] == [first[0]["run_id"]]


@pytest.mark.anyio
async def test_a_silent_socket_is_closed_after_the_idle_timeout(tmp_path: Path) -> None:
    with jwt_server(tmp_path, [demo_workflow()], limits=Limits(idle_timeout=0.5)) as srv:
        async with connect(srv.ws_url) as ws:
            await recv(ws)
            notice = await recv(ws)  # it never authenticated
            assert notice["event"] == "error" and notice["code"] == "idle_timeout"
            with pytest.raises(ConnectionClosed) as closed:
                await recv(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def big_workflow(chunks: int = 3000, size: int = 8000) -> Workflow:
    """24 MB of events: more than the socket buffers between the server and a stalled reader hold."""
    async def produce(step_input: StepInput) -> AsyncIterator[str]:
        for i in range(chunks):
            yield f"{i:06d}" + "x" * size
            if i % 50 == 0:
                await asyncio.sleep(0)

    return Workflow(id="big", name="Big", steps=[Step(name="Produce", executor=produce)])


@pytest.mark.anyio
async def test_a_reader_that_stays_behind_is_disconnected_with_a_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="runstream.server.websocket")
    with jwt_server(tmp_path, [big_workflow(), demo_workflow()], limits=Limits(max_lag=1.0)) as srv:
        async with connect(srv.ws_url, max_queue=1, max_size=None) as slow:
            await recv(slow)
            await send(slow, action="authenticate", token=ALICE)
            await recv(slow)
            await send(slow, action="start-workflow", workflow_id="big", message="x")
            # it reads nothing more: the server's writes to it stall
            await asyncio.to_thread(wait_until, lambda: any("behind for over" in r.getMessage() for r in caplog.records),
                                    60, "the slow reader to be dropped")
            codes = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    message = await recv(slow)
                    if message.get("event") == "error":
                        codes.append(message["code"])
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert closed.value.rcvd.reason == "reader too slow" and set(codes) <= {"too_slow"}
        async with connect(srv.ws_url) as good:  # the server goes on serving
            await recv(good)
            await send(good, action="authenticate", token=BOB)
            await recv(good)
            await send(good, action="start-workflow", workflow_id="demo", message="x")
            _, events = await read_run(good)
            assert [e["event_index"] for e in events] == list(range(len(events)))
            assert events[-1]["event"] == "WorkflowCompleted"


def test_sse_streams_count_against_the_clients_connections(tmp_path: Path, valve: Valve) -> None:
    limits = Limits(max_connections_per_client=1, runs_per_minute=None)
    with jwt_server(tmp_path, [valve_workflow(valve)], limits=limits) as srv, \
            httpx.Client(base_url=srv.http_url, timeout=30) as http:
        run_id = http.post("/workflows/valve/runs", data={"message": "x", "background": "true"},
                           headers=bearer(ALICE)).json()["run_id"]
        events = f"/workflows/valve/runs/{run_id}/events"
        with http.stream("GET", events, headers=bearer(ALICE)) as first:
            assert first.status_code == 200
            assert_error(http.get(events, headers=bearer(ALICE)), 429, "too_many_connections")
            refused = http.post("/workflows/valve/runs", data={"message": "x"}, headers=bearer(BOB))  # a stream
            assert_error(refused, 429, "too_many_connections")
        wait_until(lambda: srv.server.client_connections.count("127.0.0.1") == 0, what="the stream to be released")
        valve.open()
        assert http.get(events, headers=bearer(ALICE)).status_code == 200
        runs = http.get("/runs", headers=bearer("admin-key")).json()
        assert [r["run_id"] for r in runs] == [run_id]  # the refused streaming start started no run


@pytest.mark.anyio
async def test_runs_per_minute_over_websocket_say_when_to_retry(tmp_path: Path) -> None:
    with jwt_server(tmp_path, [demo_workflow()], limits=Limits(runs_per_minute=1)) as srv:
        async with connect(srv.ws_url) as ws:
            await recv(ws)
            await send(ws, action="authenticate", token=ALICE)
            await recv(ws)
            await send(ws, action="start-workflow", workflow_id="demo", message="x")
            _, events = await read_run(ws)
            assert events[-1]["event"] == "WorkflowCompleted"
            await send(ws, action="start-workflow", workflow_id="demo", message="x")
            refused = await recv(ws)
            assert refused["event"] == "error" and refused["code"] == "rate_limited" and 0 < refused["retry_after"] <= 60
