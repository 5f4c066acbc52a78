"""SSE streams: ``id:`` lines, ``Last-Event-ID`` resumes after a cut, heartbeats, and the pure resume plan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runstream import RunRecord, Server
from runstream.errors import InvalidRequest
from runstream.server.sse import follow_after
from tests.conftest import RunningServer, serve_in_thread
from tests.cutproxy import cutting_proxy
from tests.runkit import Valve, demo_workflow, parse_sse, valve_workflow
from tests.waiting import wait_until




@pytest.fixture
def srv(tmp_path: Path, valve: Valve) -> Iterator[RunningServer]:
    server = Server(
        workflows=[demo_workflow(tokens=60), valve_workflow(valve)],
        database_url=f"sqlite:///{tmp_path}/runs.db",
        sse_heartbeat=0.05,
    )
    with serve_in_thread(server) as running:
        yield running


def start(http: httpx.Client, workflow_id: str) -> str:
    return str(http.post(f"/workflows/{workflow_id}/runs", data={"message": "go", "background": "true"}).json()["run_id"])


def read_events(lines: Iterator[str], limit: int | None = None) -> list[dict]:
    """SSE events from a streaming response's lines, up to ``limit``; comments are skipped."""
    events: list[dict] = []
    block: list[str] = []
    for line in lines:
        if line:
            block.append(line)
            continue
        events.extend(parse_sse("\n".join(block)))
        block = []
        if limit is not None and len(events) >= limit:
            break
    return events


def test_follow_after_says_where_a_resumed_stream_starts() -> None:
    running = RunRecord(run_id="r", workflow_id="w")
    finished = RunRecord(run_id="r", workflow_id="w", status="completed")
    assert follow_after(running, None, 0) == -1
    assert follow_after(running, 3, 10) == 3
    assert follow_after(finished, None, 10) == -1
    assert follow_after(finished, 4, 10) == 4
    assert follow_after(finished, 9, 10) is None
    for bad in (-2, 10, 11):
        with pytest.raises(InvalidRequest):
            follow_after(running, bad, 10)
    with pytest.raises(InvalidRequest):
        follow_after(running, 0, 0)


def test_client_leaves_mid_run_then_resumes_with_last_event_id(srv: RunningServer, valve: Valve) -> None:
    with httpx.Client(base_url=srv.http_url, timeout=30) as http:
        run_id = start(http, "valve")
        url = f"/workflows/valve/runs/{run_id}/events"
        with http.stream("GET", url) as response:
            first = read_events(response.iter_lines(), limit=4)
        assert [int(e["id"]) for e in first] == [0, 1, 2, 3]
        assert http.get(f"/runs/{run_id}").json()["status"] == "running"  # leaving never stops the run
        valve.open()
        with http.stream("GET", url, headers={"Last-Event-ID": first[-1]["id"]}) as response:
            rest = read_events(response.iter_lines())
        seen = [int(e["id"]) for e in first + rest]
        assert seen == list(range(len(seen)))
        assert rest[-1]["event"] == "WorkflowCompleted"
        assert http.get(url, headers={"Last-Event-ID": rest[-1]["id"]}).status_code == 204  # EventSource stops


def test_server_drops_every_few_events_and_last_event_id_resumes(srv: RunningServer) -> None:
    with cutting_proxy(srv.port, cut_after=1200, max_cuts=10) as proxy, \
            httpx.Client(base_url=proxy.http_url, timeout=30) as http:
        run_id = start(http, "demo")
        url = f"/workflows/demo/runs/{run_id}/events"
        seen: list[int] = []
        while not seen or seen[-1] != total(srv, run_id):
            headers = {"Last-Event-ID": str(seen[-1])} if seen else {}
            try:
                with http.stream("GET", url, headers=headers) as response:
                    for event in read_events(response.iter_lines()):
                        seen.append(int(event["id"]))
            except httpx.TransportError:
                continue
        assert seen == list(range(len(seen)))
        assert proxy.cuts == 10


def total(srv: RunningServer, run_id: str) -> int | None:
    """The index of the run's last event once it has ended, else None."""
    run = httpx.get(f"{srv.http_url}/runs/{run_id}").json()
    return run["event_count"] - 1 if run["status"] != "running" else None


def test_last_event_id_query_param_and_header_wins(srv: RunningServer) -> None:
    with httpx.Client(base_url=srv.http_url, timeout=30) as http:
        run = http.post("/workflows/demo/runs", data={"message": "go", "stream": "false"}).json()
        url = f"/workflows/demo/runs/{run['run_id']}/events"
        by_query = parse_sse(http.get(url, params={"last_event_id": 10}).text)
        assert by_query[0]["id"] == "11"
        by_header = parse_sse(http.get(url, params={"last_event_id": 10}, headers={"Last-Event-ID": "20"}).text)
        assert by_header[0]["id"] == "21"
        assert [int(e["id"]) for e in by_header] == list(range(21, run["event_count"]))


def test_idle_stream_sends_heartbeats(srv: RunningServer, valve: Valve) -> None:
    with httpx.Client(base_url=srv.http_url, timeout=30) as http:
        run_id = start(http, "valve")
        wait_until(valve.reached.is_set, what="the run to wait at the valve")
        with http.stream("GET", f"/workflows/valve/runs/{run_id}/events") as response:
            lines = response.iter_lines()
            while next(lines) != ": ping":
                pass
            valve.open()
            rest = read_events(lines)
        assert rest[-1]["event"] == "WorkflowCompleted"
