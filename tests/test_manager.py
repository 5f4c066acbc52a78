"""The run manager over a real SQLite log, without a server: what it writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from runstream import Agent, DemoModel, LocalHub, RunManager, SQLiteLog, Step, Workflow

pytestmark = pytest.mark.anyio


async def test_token_events_are_written_exactly_as_any_other_event(tmp_path: Path) -> None:
    """Token events take a fast path (constant part serialized once); their JSON must be
    what the general path writes: same keys, same order, same encoding."""
    agent = Agent(name="Writer", model=DemoModel(pace=0, tokens=30))
    workflow = Workflow(name="W", id="w", steps=[Step(name="Write", agent=agent)])
    manager = RunManager(SQLiteLog(tmp_path / "log.db"), LocalHub(), [workflow])
    await manager.start()
    try:
        record = await manager.start_run("w", 'Say "hé" twice', session_id="s")
        await manager.wait(record.run_id)
        events = await manager.log.read(record.run_id, 0, 1000)
    finally:
        await manager.close()
    tokens = [e for e in events if e.name == "RunContent"]
    started = next(e for e in events if e.name == "RunStarted")
    assert len(tokens) == 30 and [e.index for e in events] == list(range(len(events)))
    for event in tokens:
        data = orjson.loads(event.data)
        assert orjson.dumps(data).decode() == event.data
        assert data["event_index"] == event.index and data["event"] == "RunContent"
        expected = [k for k in orjson.loads(started.data) if k not in ("model", "model_provider")] + ["content"]
        assert list(data) == expected
    assert "".join(orjson.loads(e.data)["content"] for e in tokens) == orjson.loads(events[-1].data)["content"]


async def test_a_generator_step_streams_through_the_same_fast_path(tmp_path: Path) -> None:
    """Generator steps' chunks go through the sink's content emitter too: the JSON is what
    the general path writes for the step's other events, plus ``content``."""

    async def produce(_: object) -> AsyncIterator[object]:
        yield "plain "
        yield {"rich": "chunk"}
        yield 'quote " and é'

    workflow = Workflow(name="G", id="g", steps=[Step(name="Produce", executor=produce)])
    manager = RunManager(SQLiteLog(tmp_path / "log.db"), LocalHub(), [workflow])
    await manager.start()
    try:
        record = await manager.start_run("g", "go")
        await manager.wait(record.run_id)
        events = await manager.log.read(record.run_id, 0, 1000)
    finally:
        await manager.close()
    chunks = [orjson.loads(e.data) for e in events if e.name == "RunContent"]
    started = orjson.loads(next(e.data for e in events if e.name == "StepStarted"))
    keys = list(started)
    expected = {k: started[k] for k in keys[: keys.index("depth") + 1]}  # what every event of the step carries
    expected["content"] = None
    per_event = ("content", "event", "event_index", "created_at", "created_at_ms")
    assert [c["content"] for c in chunks] == ["plain ", {"rich": "chunk"}, 'quote " and é']
    for event in (e for e in events if e.name == "RunContent"):
        data = orjson.loads(event.data)
        assert orjson.dumps(data).decode() == event.data and data["event_index"] == event.index
        assert list(data) == list(expected)  # the same keys in the same order
        assert {k: v for k, v in data.items() if k not in per_event} == {
            k: v for k, v in expected.items() if k not in per_event
        }
