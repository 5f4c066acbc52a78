"""The run manager over a real SQLite log, without a server: what it writes."""

from __future__ import annotations

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
