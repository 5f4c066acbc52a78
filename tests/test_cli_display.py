"""The run view the CLI draws: folding events into steps, streaming text and the outcome (no terminal needed)."""

from __future__ import annotations

import io

from rich.console import Console

from runstream.cli.display import RunView, progress_line, render
from runstream.client import Event


def event(index: int, name: str, **fields: object) -> Event:
    return Event(name, index, {"event": name, "event_index": index, "workflow_name": "Story", "created_at": 0, **fields})


def test_view_follows_steps_text_and_the_end() -> None:
    view = RunView("r1")
    view.add(event(0, "WorkflowStarted"))
    view.add(event(1, "StepStarted", step_name="Research", step_index=0))
    view.add(event(2, "RunContent", step_name="Research", step_index=0, content="Once "))
    view.add(event(3, "RunContent", step_name="Research", step_index=0, content="upon"))
    assert view.status == "running" and view.text == "Once upon"
    assert [(s.name, s.status) for s in view.steps.values()] == [("Research", "running")]
    view.add(event(4, "StepCompleted", step_name="Research", step_index=0, success=True))
    view.add(event(5, "StepStarted", step_name="Write", step_index=1))
    assert view.text == ""
    view.add(event(6, "StepCompleted", step_name="Write", step_index=1, success=False))
    view.add(event(7, "WorkflowError", error="the source is down"))
    assert [s.status for s in view.steps.values()] == ["completed", "error"]
    assert view.status == "error" and view.error == "the source is down" and view.last_index == 7


def test_render_shows_the_run_the_steps_and_the_streaming_text() -> None:
    view = RunView("r1")
    for e in [event(0, "WorkflowStarted"), event(1, "StepStarted", step_name="Research", step_index=0),
              event(2, "RunContent", step_name="Research", step_index=0, content="tides rise")]:
        view.add(e)
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(render(view))
    text = console.export_text()
    assert "Story r1  running" in text and "Research" in text and "tides rise" in text and "event 2" in text


def test_a_queued_run_shows_queued_until_it_starts() -> None:
    view = RunView("r1")
    queued = event(0, "WorkflowQueued", created_at=100)
    view.add(queued)
    assert view.status == "queued" and view.started is None
    assert progress_line(view, queued) == "run r1 of Story queued: every run slot of the server is taken"
    view.add(event(1, "WorkflowStarted", created_at=130))
    assert view.status == "running" and view.started == 130
