"""OpenTelemetry traces (the ``otel`` extra), recorded with the SDK's in-memory exporter from a
real server: a span per run, step, model call and tool call, under the starting request's trace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from websockets.asyncio.client import connect

from runstream import Agent, DemoModel, Server, Step, Workflow
from tests.conftest import RunningServer, serve_in_thread
from tests.waiting import wait_until
from tests.wsclient import read_run, recv

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def lookup(topic: str) -> str:
    """Look a topic up.

    Args:
        topic: What to look up.
    """
    return f"notes on {topic}"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the first test module to need one sets it
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    agent = Agent(name="Researcher", model=DemoModel(pace=0.0, tokens=12), tools=[lookup],
                  instructions="Call lookup first, then answer.")
    workflow = Workflow(id="traced", name="Traced", steps=[Step(name="Research", agent=agent)])
    with serve_in_thread(Server(workflows=[workflow], database_url=f"sqlite:///{tmp_path}/t.db")) as running:
        yield running


def spans_of(exporter: InMemorySpanExporter, run_id: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if (s.attributes or {}).get("runstream.run_id") == run_id]


def descends_from_the_request(span: ReadableSpan, exporter: InMemorySpanExporter) -> bool:
    """The span's parents lead to the client's span (through the server's own request spans, if any)."""
    by_id = {s.context.span_id: s for s in exporter.get_finished_spans()}
    parent = span.parent
    while parent is not None:
        if format(parent.span_id, "016x") == PARENT_ID:
            return True
        above = by_id.get(parent.span_id)
        parent = above.parent if above is not None else None
    return False


def check_tree(spans: list[ReadableSpan], exporter: InMemorySpanExporter) -> None:
    by_name = {s.name: s for s in spans}
    run, step, tool = by_name["run traced"], by_name["step Research"], by_name["tool lookup"]
    models = [s for s in spans if s.name == "model demo-model"]
    assert len(models) == 2  # the turn that asks for the tool, then the answer
    assert all(format(s.context.trace_id, "032x") == TRACE_ID for s in spans)
    # the server's own request spans (FastAPI's, if any) end after the response: wait for them
    wait_until(lambda: descends_from_the_request(run, exporter), what="the run span's link to the client's span")
    assert step.parent is not None and step.parent.span_id == run.context.span_id
    assert tool.parent is not None and tool.parent.span_id == step.context.span_id
    assert all(m.parent is not None and m.parent.span_id == step.context.span_id for m in models)
    assert models[0].attributes is not None and models[0].attributes["gen_ai.system"] == "demo"


def test_an_http_run_is_traced_under_the_request_traceparent(srv: RunningServer, exporter: InMemorySpanExporter) -> None:
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    run = httpx.post(f"{srv.http_url}/workflows/traced/runs", data={"message": "tides", "stream": "false"},
                     headers=headers, timeout=30).json()
    assert run["status"] == "COMPLETED"
    wait_until(lambda: any(s.name == "run traced" for s in spans_of(exporter, run["run_id"])), what="the run span")
    check_tree(spans_of(exporter, run["run_id"]), exporter)


def test_a_websocket_run_is_traced_under_the_upgrade_request_traceparent(
    srv: RunningServer, exporter: InMemorySpanExporter
) -> None:
    async def start() -> str:
        headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        async with connect(srv.ws_url, additional_headers=headers) as ws:
            assert (await recv(ws))["event"] == "connected"
            await ws.send(json.dumps({"action": "start-workflow", "workflow_id": "traced", "message": "tides"}))
            _, events = await read_run(ws)
            assert events[-1]["event"] == "WorkflowCompleted"
            return str(events[0]["run_id"])

    run_id = asyncio.run(start())
    wait_until(lambda: any(s.name == "run traced" for s in spans_of(exporter, run_id)), what="the run span")
    check_tree(spans_of(exporter, run_id), exporter)
