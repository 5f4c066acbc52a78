"""The agent cookbook runs offline on the demo model, tool calls included."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from runstream import RunContext

pytestmark = pytest.mark.anyio

COOKBOOK = Path(__file__).resolve().parents[1] / "cookbook" / "agents" / "agent_with_tools.py"


async def test_agent_with_tools_cookbook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNSTREAM_DEMO_PACE", "0")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    spec = importlib.util.spec_from_file_location("agent_with_tools", COOKBOOK)
    assert spec is not None and spec.loader is not None
    cookbook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cookbook)
    events: list[tuple[str, dict[str, Any]]] = []

    async def emit(name: str, fields: dict[str, Any]) -> None:
        events.append((name, fields))

    await cookbook.trip_workflow.run(RunContext("r", "trip-planner", "Trip Planner", emit), "Oslo")
    results = {f["tool"]["tool_name"]: f["tool"]["result"] for n, f in events if n == "ToolCallCompleted"}
    assert results == {"get_weather": "Oslo: 6°C, rain", "convert_currency": 1.08}
    assert events[-1][0] == "WorkflowCompleted" and events[-1][1]["content"] == "Pack: umbrella"
    assert events[-1][1]["metrics"]["total_tokens"] > 0
