"""The run view the CLI draws: folding events into steps, streaming text and the outcome (no terminal
needed), and a real run followed through its server's SIGKILL and restart."""

from __future__ import annotations

import io
from contextlib import ExitStack
from pathlib import Path

import pytest
from rich.console import Console

from runstream.cli.display import RunView, progress_line, render
from runstream.client import Client, Event
from tests.conftest import free_port
from tests.demo_process import demo_server


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
    assert view.text == ""  # the step that started now: nothing streamed yet
    view.add(event(6, "StepCompleted", step_name="Write", step_index=1, success=False))
    view.add(event(7, "WorkflowError", error="the source is down"))
    assert [s.status for s in view.steps.values()] == ["completed", "error"]
    assert view.status == "error" and view.error == "the source is down" and view.last_index == 7


@pytest.mark.parametrize("continued", ["StepContinued", "StepExecutorContinued"])
def test_a_pause_shows_as_paused_until_its_continue(continued: str) -> None:
    view = RunView("r1")
    view.add(event(0, "WorkflowStarted"))
    view.add(event(1, "StepExecutorPaused", step_name="Ship", step_index=0))
    paused = event(2, "WorkflowPaused", paused_step_name="Ship")
    view.add(paused)
    assert view.status == "paused" and progress_line(view, paused) == "  ‖ paused at Ship"
    view.add(event(3, continued, step_name="Ship", step_index=0))
    assert view.status == "running"


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


def test_steps_side_by_side_each_show_their_own_text() -> None:
    view = RunView("r1")
    view.add(event(0, "StepStarted", step_name="A", step_index=0, step_id="a"))
    view.add(event(1, "StepStarted", step_name="B", step_index=1, step_id="b"))
    view.add(event(2, "RunContent", step_name="A", step_index=0, step_id="a", content="tides "))
    view.add(event(3, "RunContent", step_name="B", step_index=1, step_id="b", content="kites "))
    view.add(event(4, "RunContent", step_name="A", step_index=0, step_id="a", content="rise"))
    assert view.text == "tides rise" and view.transcript.of("b") == "kites "


@pytest.mark.anyio
@pytest.mark.timeout(300)  # two demo server processes
async def test_a_run_followed_through_a_crash_shows_its_text_once(tmp_path: Path) -> None:
    """SIGKILL mid-step, a restart on the same port: the client reconnects by itself, the
    resumed step streams its text again, and the view shows it once: at every event, the text
    shown is the start of what that step finally said, never the lost text followed by the new."""
    db, port = tmp_path / "runs.db", free_port()
    shown: list[tuple[str | None, str]] = []
    seen: list[Event] = []
    with ExitStack() as servers:
        proc = servers.enter_context(demo_server(port, db, pace="0.01"))
        async with Client(f"http://127.0.0.1:{port}", backoff=(0.1, 0.5)) as client:
            run_id = await client.start("content-creation-workflow", "Kites")
            view = RunView(run_id)
            async for got in client.follow(run_id):
                view.add(got)
                seen.append(got)
                shown.append((view.streaming, view.text))
                if sum(e.name == "RunContent" for e in seen) == 15 and proc.poll() is None:  # text on screen
                    proc.kill()
                    proc.wait(timeout=30)
                    servers.enter_context(demo_server(port, db, pace="0.001"))
    assert view.status == "completed", view.status
    (resumed,) = [e for e in seen if e.name == "WorkflowResumed"]
    (superseded,) = resumed.data["superseded_step_ids"]
    before = "".join(e.data["content"] for e in seen[:resumed.index] if e.name == "RunContent")
    assert before and superseded in {e.data.get("step_id") for e in seen[:resumed.index]}
    completed = {e.data["step_id"]: e.data["content"] for e in seen if e.name == "StepCompleted"}
    assert view.transcript.of(superseded) == completed[superseded]  # once, though it streamed twice
    for key, text in shown:  # never the lost text followed by the new
        if key is not None:
            assert completed[key].startswith(text), (key, text[:80], completed[key][:80])
