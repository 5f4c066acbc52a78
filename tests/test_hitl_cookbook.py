"""Every pause example under cookbook/hitl pauses, takes its scripted answer, completes, and is served by the demo server."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.test_workflow_cookbook import load

pytestmark = pytest.mark.anyio

EXAMPLES = {
    "confirmation": "StepPaused",
    "user_input": "StepPaused",
    "route_selection": "RouterPaused",
    "router_review": "StepOutputReview",
    "output_review": "StepOutputReview",
    "error_pause": "StepError",
    "iteration_review": "StepOutputReview",
    "pause_decorator": "StepPaused",
    "tool_confirmation": "StepExecutorPaused",
}
FOLDER = ROOT / "cookbook" / "hitl"


def test_every_example_has_a_test() -> None:
    assert {p.stem for p in FOLDER.glob("[a-z]*.py")} == set(EXAMPLES)


@pytest.mark.parametrize(("example", "kind_event"), sorted(EXAMPLES.items()))
async def test_example_pauses_and_completes_with_its_answers(example: str, kind_event: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FOLDER))
    module: dict[str, Any] = runpy.run_path(str(FOLDER / f"{example}.py"))
    from _answer import answer_run  # the examples' own helper, as `python cookbook/hitl/X.py` runs it

    events = await answer_run(module["workflow"], module["EXAMPLE"], module["ANSWERS"])
    names = [e["event"] for e in events]
    assert names[-1] == "WorkflowCompleted", names
    continues = names.count("StepContinued") + names.count("StepExecutorContinued")
    assert kind_event in names and continues == len(module["ANSWERS"])
    sys.modules.pop("_answer", None)


def test_the_demo_server_serves_every_pause_example(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    demo = load(ROOT / "cookbook" / "agent_os" / "workflow" / "basic_workflow.py", monkeypatch, tmp_path)
    served = set(demo["server"].manager.workflows)
    for example in EXAMPLES:
        assert runpy.run_path(str(FOLDER / f"{example}.py"))["workflow"].id in served, example


async def test_the_error_pause_example_pauses_on_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo server runs one instance of the workflow for every run: a person trying the
    example a second time with the same input must see its pause again."""
    monkeypatch.syspath_prepend(str(FOLDER))
    module: dict[str, Any] = runpy.run_path(str(FOLDER / "error_pause.py"))
    from _answer import answer_run

    for _ in range(2):
        names = [e["event"] for e in await answer_run(module["workflow"], module["EXAMPLE"], module["ANSWERS"])]
        assert names.count("StepError") == 1 and names[-1] == "WorkflowCompleted", names
    sys.modules.pop("_answer", None)
