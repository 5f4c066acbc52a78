"""``/metrics``, ``/health`` and ``/ready`` on a real server: the figures move with what it does."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from runstream import Agent, RunManager, Server, Step, StepInput, Workflow
from runstream.errors import ModelError
from runstream.fanout.local import LocalHub
from runstream.log import open_log
from runstream.models.base import Message, Usage
from runstream.events import StoredEvent
from tests.conftest import RunningServer, serve_in_thread
from tests.runkit import Valve, demo_workflow, valve_workflow
from tests.waiting import until, wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(http: httpx.Client) -> Samples:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class BrokenModel:
    """A provider that streams one chunk, then fails as a refused request does."""

    id = "broken-1"
    provider = "brokenco"

    async def stream(self, messages: list[Message]) -> AsyncIterator[str | Usage]:
        yield "half "
        raise ModelError("brokenco: HTTP 500: upstream failed")


@pytest.fixture
def srv(tmp_path: Path, valve: Valve) -> Iterator[RunningServer]:
    broken = Workflow(id="broken", name="Broken", steps=[Step(name="Ask", agent=Agent(name="A", model=BrokenModel()))])
    server = Server(workflows=[demo_workflow(), valve_workflow(valve), broken], database_url=f"sqlite:///{tmp_path}/m.db")
    with serve_in_thread(server) as running:
        yield running


@pytest.fixture
def http(srv: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.http_url, timeout=30) as client:
        yield client


def test_a_run_moves_runs_events_append_latency_and_model_tokens(http: httpx.Client) -> None:
    before = scrape(http)
    run = http.post("/workflows/demo/runs", data={"message": "tides", "stream": "false"}).json()
    assert run["status"] == "COMPLETED"
    after = scrape(http)
    logged = http.get(f"/runs/{run['run_id']}").json()["event_count"]
    assert logged > 20
    assert value(after, "runstream_events_appended_total") - value(before, "runstream_events_appended_total") == logged
    assert value(after, "runstream_append_seconds_count") > value(before, "runstream_append_seconds_count")
    assert value(after, "runstream_runs", workflow="demo", status="completed") == 1
    tokens = value(after, "runstream_model_tokens_total", provider="demo", kind="output")
    assert tokens - value(before, "runstream_model_tokens_total", provider="demo", kind="output") >= 40
    assert value(after, "runstream_model_tokens_total", provider="demo", kind="input") > 0
    assert value(after, "process_resident_memory_bytes") > 0


def test_a_failing_model_counts_an_error_for_its_provider(http: httpx.Client) -> None:
    before = value(scrape(http), "runstream_model_errors_total", provider="brokenco")
    run = http.post("/workflows/broken/runs", data={"message": "x", "stream": "false"}).json()
    assert run["status"] == "ERROR"
    samples = scrape(http)
    assert value(samples, "runstream_model_errors_total", provider="brokenco") == before + 1
    assert value(samples, "runstream_runs", workflow="broken", status="error") == 1


def test_open_sockets_sse_streams_and_the_fanout_lag_are_counted(http: httpx.Client, srv: RunningServer, valve: Valve) -> None:
    lag_before = value(scrape(http), "runstream_fanout_lag_seconds_count")
    run = http.post("/workflows/valve/runs", data={"message": "x", "stream": "false", "background": "true"}).json()
    assert value(scrape(http), "runstream_runs", workflow="valve", status="running") == 1
    with connect(srv.ws_url) as ws, http.stream("GET", f"/workflows/valve/runs/{run['run_id']}/events?last_event_index=-1") as sse:
        lines = sse.iter_lines()
        wait_until(lambda: "a0" in next(lines), what="the SSE stream's first events")
        samples = scrape(http)
        assert value(samples, "runstream_websocket_connections") == 1
        assert value(samples, "runstream_sse_streams") == 1
        valve.open()  # its live events now reach the SSE reader through the hub
        wait_until(lambda: "WorkflowCompleted" in next(lines), what="the run's end on SSE")
        ws.close()
    wait_until(lambda: value(scrape(http), "runstream_sse_streams") == 0, what="the SSE gauge to fall")
    samples = scrape(http)
    assert value(samples, "runstream_websocket_connections") == 0
    assert value(samples, "runstream_fanout_lag_seconds_count") > lag_before


def test_health_and_ready_and_ready_says_draining(http: httpx.Client, srv: RunningServer) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    ready = http.get("/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "database": "ok", "hub": "ok"}
    srv.server.manager.stop_accepting()  # what drain() does first on SIGTERM
    draining = http.get("/ready")
    assert draining.status_code == 503 and draining.json()["status"] == "draining"
    assert http.get("/health").status_code == 200


def test_metrics_need_the_security_key_when_there_is_one(tmp_path: Path) -> None:
    server = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path}/k.db", security_key="s3cret")
    with serve_in_thread(server) as running, httpx.Client(base_url=running.http_url) as http:
        refused = http.get("/metrics")
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        assert http.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert http.get("/ready").status_code == 200  # load balancers carry no key


def test_an_overflowing_subscriber_is_counted_once_per_overflow() -> None:
    from runstream.metrics import SUBSCRIBER_OVERFLOWS

    async def scenario() -> None:
        hub = LocalHub(buffer_limit=2)
        subscriber = hub.subscribe("r")
        before = SUBSCRIBER_OVERFLOWS._value.get()
        events = [StoredEvent(i, "RunContent", "{}") for i in range(3)]
        hub.publish("r", events)
        hub.publish("r", events)  # still behind: the same overflow
        assert subscriber.overflowed
        assert SUBSCRIBER_OVERFLOWS._value.get() == before + 1

    asyncio.run(scenario())


def test_a_takeover_counts_a_lease_takeover(tmp_path: Path) -> None:
    from runstream.metrics import LEASE_TAKEOVERS

    gate = threading.Event()

    async def hold(step_input: StepInput) -> str:
        while not gate.is_set():
            await asyncio.sleep(0.01)
        return "held"

    workflow = Workflow(id="hold", name="Hold", steps=[Step(name="hold", executor=hold)])
    url = f"sqlite:///{tmp_path}/t.db"

    async def scenario() -> None:
        first = RunManager(open_log(url), LocalHub(), [workflow], owner="another-host:1:gone")
        await first.start()
        record = await first.start_run("hold", "x")
        await until(lambda: first.log.next_index(record.run_id), what="the run's first event")
        await first.close()  # interrupted, its lease released: an orphan now
        before = LEASE_TAKEOVERS._value.get()
        gate.set()
        second = RunManager(open_log(url), LocalHub(), [workflow])
        await second.start()
        try:
            await second.wait(record.run_id)
            assert LEASE_TAKEOVERS._value.get() == before + 1
            run = await second.log.get_run(record.run_id)
            assert run is not None and run.status == "completed"
        finally:
            await second.close()

    asyncio.run(scenario())
