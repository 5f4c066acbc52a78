"""Every example under cookbook/workflows runs offline to completion, and the demo server serves it."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.enginekit import names, run

pytestmark = pytest.mark.anyio

EXAMPLES = {
    "parallel": "ParallelExecutionCompleted",
    "condition": "ConditionExecutionCompleted",
    "loop": "LoopExecutionCompleted",
    "router": "RouterExecutionCompleted",
    "steps_group": "StepsExecutionCompleted",
    "early_stop": "LoopExecutionCompleted",
    "session_state": "StepCompleted",
    "structured_io": "StepCompleted",
}


def load(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    monkeypatch.setenv("RUNSTREAM_DEMO_PACE", "0")
    monkeypatch.setenv("RUNSTREAM_DATABASE_URL", f"sqlite:///{tmp_path}/demo.db")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return runpy.run_path(str(path))


def test_every_example_has_a_test() -> None:
    assert {p.stem for p in (ROOT / "cookbook" / "workflows").glob("[a-z]*.py")} == set(EXAMPLES)


@pytest.mark.parametrize(("example", "kind_event"), sorted(EXAMPLES.items()))
async def test_example_runs_to_completion(
    example: str, kind_event: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = load(ROOT / "cookbook" / "workflows" / f"{example}.py", monkeypatch, tmp_path)
    workflow = module["workflow"]
    events = await run(workflow, workflow.validate_input(module["EXAMPLE"]))
    assert events[-1][0] == "WorkflowCompleted", events[-1]
    assert kind_event in names(events)


def test_the_demo_server_serves_every_example(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    demo = load(ROOT / "cookbook" / "agent_os" / "workflow" / "basic_workflow.py", monkeypatch, tmp_path)
    served = set(demo["server"].manager.workflows)
    for example in EXAMPLES:
        module = load(ROOT / "cookbook" / "workflows" / f"{example}.py", monkeypatch, tmp_path)
        assert module["workflow"].id in served, example
    assert "content-creation-workflow" in served
